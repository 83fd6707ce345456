#include "throttle/controller.h"

#include <memory>
#include <utility>

#include "client-lib/src/call_registry.h"
#include "client-lib/src/proto_time.h"
#include "client-lib/src/real_time.h"
#include "throttle/channel.h"
#include "throttle/status.h"

namespace throttle {
namespace {

absl::Status ClosedError() {
  return absl::CancelledError("throttle::Controller is closed");
}

}  // namespace

Controller::Controller(const std::string& target, ControllerOptions options)
    : Controller(CreateInsecureChannel(target), std::move(options)) {}

Controller::Controller(std::shared_ptr<grpc::ChannelInterface> channel,
                       ControllerOptions options)
    : options_(std::move(options)),
      stub_(v1::Throttle::NewStub(std::move(channel))),
      calls_(std::make_unique<CallRegistry>()) {}

Controller::~Controller() { Close(); }

void Controller::Close() { calls_->Close(); }

template <typename Request, typename Response>
absl::StatusOr<Response> Controller::Call(StubMethod<Request, Response> method,
                                          const Request& request) const {
  CallRegistry::Call call(calls_.get());
  if (!call.registered()) return ClosedError();
  grpc::ClientContext* context = call.context();
  context->set_deadline(GrpcDeadlineAfter(options_.deadline));
  context->set_wait_for_ready(options_.wait_for_ready);
  Response response;
  const grpc::Status status = ((*stub_).*method)(context, request, &response);
  if (status.error_code() == grpc::StatusCode::CANCELLED && calls_->closed()) {
    return ClosedError();
  }
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<v1::CreateThrottleResponse> Controller::CreateThrottle(
    absl::string_view name, const v1::ThrottleConfig& config) const {
  v1::CreateThrottleRequest request;
  request.set_name(std::string(name));
  *request.mutable_config() = config;
  return Call(&v1::Throttle::Stub::CreateThrottle, request);
}

absl::StatusOr<v1::ConfigureThrottleResponse> Controller::ConfigureThrottle(
    absl::string_view name, const v1::ThrottleConfig& config) const {
  return ConfigureThrottle(name, config, google::protobuf::FieldMask());
}

absl::StatusOr<v1::ConfigureThrottleResponse> Controller::ConfigureThrottle(
    absl::string_view name, const v1::ThrottleConfig& config,
    const google::protobuf::FieldMask& update_mask) const {
  v1::ConfigureThrottleRequest request;
  request.set_name(std::string(name));
  *request.mutable_config() = config;
  *request.mutable_update_mask() = update_mask;
  return Call(&v1::Throttle::Stub::ConfigureThrottle, request);
}

absl::Status Controller::DeleteThrottle(absl::string_view name) const {
  v1::DeleteThrottleRequest request;
  request.set_name(std::string(name));
  return Call(&v1::Throttle::Stub::DeleteThrottle, request).status();
}

absl::StatusOr<v1::ListThrottlesResponse> Controller::ListThrottles() const {
  return Call(&v1::Throttle::Stub::ListThrottles, v1::ListThrottlesRequest());
}

absl::StatusOr<v1::StartResponse> Controller::Start(
    absl::string_view name) const {
  v1::StartRequest request;
  request.set_throttle(std::string(name));
  return Call(&v1::Throttle::Stub::Start, request);
}

absl::StatusOr<v1::StopResponse> Controller::Stop(
    absl::string_view name) const {
  v1::StopRequest request;
  request.set_throttle(std::string(name));
  return Call(&v1::Throttle::Stub::Stop, request);
}

absl::StatusOr<v1::LatestResponse> Controller::Latest(
    absl::string_view name, absl::Duration window, bool include_workers) const {
  v1::LatestRequest request;
  request.set_throttle(std::string(name));
  ToProtoDuration(window, request.mutable_window());
  request.set_include_workers(include_workers);
  return Call(&v1::Throttle::Stub::Latest, request);
}

absl::StatusOr<v1::MeanResponse> Controller::Mean(absl::string_view name,
                                                  bool include_workers) const {
  v1::MeanRequest request;
  request.set_throttle(std::string(name));
  request.set_include_workers(include_workers);
  return Call(&v1::Throttle::Stub::Mean, request);
}

}  // namespace throttle
