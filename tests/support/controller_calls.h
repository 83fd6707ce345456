// Controller calls through the raw generated stub, for the service tests
// that talk to a real server over gRPC: each call has its own context with
// a generous 30 s deadline (a wedged server fails the test, a loaded
// machine does not) and returns the call's status for the test to check.
// A fixture derives from it and sets stub_ once its server is up.
#ifndef THROTTLE_TESTS_SUPPORT_CONTROLLER_CALLS_H_
#define THROTTLE_TESTS_SUPPORT_CONTROLLER_CALLS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::testing {

class ControllerCalls {
 public:
  // A fresh context with a 30 s deadline; one per call.
  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(30));
    return context;
  }

  // max_n grants per `per_seconds`; the other fields at their zero value
  // (left to the server's defaults) unless given.
  static v1::ThrottleConfig Rate(int64_t max_n, double per_seconds = 1,
                                 v1::Mode mode = v1::MODE_UNSPECIFIED,
                                 int64_t burst = 0, bool manual_emit = false) {
    v1::ThrottleConfig config;
    config.set_max_n(max_n);
    config.set_per_seconds(per_seconds);
    config.set_mode(mode);
    config.set_burst(burst);
    config.set_manual_emit(manual_emit);
    return config;
  }

  // CreateThrottle; the created throttle goes to `*created` if given.
  grpc::Status CreateThrottle(const std::string& name,
                              const v1::ThrottleConfig& config,
                              v1::ThrottleInfo* created = nullptr) {
    v1::CreateThrottleRequest request;
    request.set_name(name);
    *request.mutable_config() = config;
    v1::CreateThrottleResponse response;
    grpc::Status status =
        stub_->CreateThrottle(Context().get(), request, &response);
    if (created != nullptr) *created = response.throttle();
    return status;
  }
  grpc::Status Start(const std::string& name) {
    v1::StartRequest request;
    request.set_throttle(name);
    v1::StartResponse response;
    return stub_->Start(Context().get(), request, &response);
  }
  // Stop; the response goes to `*response` if given.
  grpc::Status Stop(const std::string& name,
                    v1::StopResponse* response = nullptr) {
    v1::StopRequest request;
    request.set_throttle(name);
    v1::StopResponse ignored;
    return stub_->Stop(Context().get(), request,
                       response != nullptr ? response : &ignored);
  }
  grpc::Status Configure(const std::string& name,
                         const v1::ThrottleConfig& config) {
    v1::ConfigureThrottleRequest request;
    request.set_name(name);
    *request.mutable_config() = config;
    v1::ConfigureThrottleResponse response;
    return stub_->ConfigureThrottle(Context().get(), request, &response);
  }
  // Emit of `count`, reported by `worker_id` (empty: none named).
  grpc::Status Emit(const std::string& name, int64_t count,
                    const std::string& worker_id = "") {
    v1::EmitRequest request;
    request.set_throttle(name);
    request.set_worker_id(worker_id);
    request.set_count(count);
    v1::EmitResponse response;
    return stub_->Emit(Context().get(), request, &response);
  }
  grpc::Status Delete(const std::string& name) {
    v1::DeleteThrottleRequest request;
    request.set_name(name);
    v1::DeleteThrottleResponse response;
    return stub_->DeleteThrottle(Context().get(), request, &response);
  }
  // Mean of the throttle; a failed call is a test failure (and an empty
  // response).
  v1::MeanResponse Mean(const std::string& name, bool include_workers = false) {
    v1::MeanRequest request;
    request.set_throttle(name);
    request.set_include_workers(include_workers);
    v1::MeanResponse response;
    EXPECT_TRUE(stub_->Mean(Context().get(), request, &response).ok());
    return response;
  }

  // The throttle as ListThrottles shows it; a failed call or a name not
  // listed is a test failure (and an empty ThrottleInfo).
  v1::ThrottleInfo Listed(const std::string& name) {
    v1::ListThrottlesResponse response;
    EXPECT_TRUE(stub_
                    ->ListThrottles(Context().get(), v1::ListThrottlesRequest(),
                                    &response)
                    .ok());
    for (const v1::ThrottleInfo& info : response.throttles()) {
      if (info.name() == name) return info;
    }
    ADD_FAILURE() << name << " not listed";
    return {};
  }

 protected:
  std::unique_ptr<v1::Throttle::Stub> stub_;
};

}  // namespace throttle::testing

#endif  // THROTTLE_TESTS_SUPPORT_CONTROLLER_CALLS_H_
