#include "server/service/unparsable_request.h"

#include <mutex>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/stubs/logging.h"
#include "server/service/log.h"

namespace throttle::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

// Protobuf's complaint about a string field while parsing: "String field
// 'pkg.Message.field' contains invalid UTF-8 data when parsing a protocol
// buffer. ..." (wire_format_lite.cc).
constexpr absl::string_view kParsing = "when parsing a protocol buffer";

// The last parse complaint logged on this thread, until an interceptor on
// the same thread takes it. gRPC deserializes a callback request and runs
// the POST_RECV_MESSAGE interceptors in the same thread; if it did not, the
// complaint is not found and the answer names the type only.
thread_local std::string last_parse_complaint;

LogLevel ServerLevel(google::protobuf::LogLevel level) {
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO:
      return LogLevel::kInfo;
    case google::protobuf::LOGLEVEL_WARNING:
      return LogLevel::kWarning;
    default:
      return LogLevel::kError;
  }
}

void ProtobufLogHandler(google::protobuf::LogLevel level, const char* filename,
                        int line, const std::string& message) {
  const bool parse_complaint = absl::StrContains(message, kParsing);
  if (parse_complaint) last_parse_complaint = message;
  const LogLevel server_level =
      parse_complaint ? LogLevel::kDebug : ServerLevel(level);
  if (!LogEnabled(server_level)) return;
  Log(server_level, "protobuf_log",
      {{"message", message},
       {"source",
        absl::StrCat(filename == nullptr ? "?" : filename, ":", line)}});
}

// Takes this thread's parse complaint; returns the field it names if it is
// one of `type` ("pkg.Message.field"), else "".
std::string TakeFieldComplainedAbout(absl::string_view type) {
  std::string complaint = std::move(last_parse_complaint);
  last_parse_complaint.clear();
  const std::string prefix = absl::StrCat("'", type, ".");
  const size_t begin = complaint.find(prefix);
  if (begin == std::string::npos) return "";
  const size_t end = complaint.find('\'', begin + 1);
  if (end == std::string::npos) return "";
  return complaint.substr(begin + 1, end - begin - 1);
}

struct MethodInfo {
  std::string name;          // "CreateThrottle"
  std::string request_type;  // "throttle.v1.CreateThrottleRequest"
};

class UnparsableRequestInterceptor final
    : public grpc::experimental::Interceptor {
 public:
  UnparsableRequestInterceptor(const MethodInfo* method,
                               const UnparsableRequestCallback* on_error)
      : method_(method), on_error_(on_error) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* batch) override {
    // A unary or server-streaming call receives exactly one message: its
    // request, absent when it did not deserialize.
    if (batch->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE) &&
        batch->GetRecvMessage() == nullptr) {
      unparsable_ = true;
      field_ = TakeFieldComplainedAbout(method_->request_type);
    }
    if (unparsable_ && batch->QueryInterceptionHookPoint(
                           InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status sent = batch->GetSendStatus();
      if (sent.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          sent.error_message().empty()) {
        const grpc::Status status(
            grpc::StatusCode::INVALID_ARGUMENT,
            field_.empty()
                ? absl::StrCat("request does not parse as ",
                               method_->request_type,
                               " (a truncated or malformed message, or a "
                               "string field that is not valid UTF-8)")
                : absl::StrCat("request does not parse as ",
                               method_->request_type, ": string field ", field_,
                               " is not valid UTF-8"));
        batch->ModifySendStatus(status);
        if (*on_error_) (*on_error_)(method_->name, status);
      }
    }
    batch->Proceed();
  }

 private:
  const MethodInfo* const method_;
  const UnparsableRequestCallback* const on_error_;
  bool unparsable_ = false;
  std::string field_;
};

class UnparsableRequestInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  UnparsableRequestInterceptorFactory(
      const google::protobuf::ServiceDescriptor* service,
      UnparsableRequestCallback on_error)
      : on_error_(std::move(on_error)) {
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* method = service->method(i);
      if (method->client_streaming()) continue;  // many messages, or none
      methods_[absl::StrCat("/", service->full_name(), "/", method->name())] =
          MethodInfo{method->name(), method->input_type()->full_name()};
    }
  }

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const auto it = methods_.find(info->method());
    if (it == methods_.end()) return nullptr;
    // Owned by gRPC (ServerRpcInfo keeps it in a unique_ptr).
    return new UnparsableRequestInterceptor(&it->second, &on_error_);
  }

 private:
  const UnparsableRequestCallback on_error_;
  // Full method path -> what the messages name. Not changed after
  // construction, so read by any thread.
  absl::flat_hash_map<std::string, MethodInfo> methods_;
};

}  // namespace

void RouteProtobufLog() {
  static std::once_flag once;
  std::call_once(once,
                 [] { google::protobuf::SetLogHandler(&ProtobufLogHandler); });
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewUnparsableRequestInterceptorFactory(
    const google::protobuf::ServiceDescriptor* service,
    UnparsableRequestCallback on_error) {
  return std::make_unique<UnparsableRequestInterceptorFactory>(
      service, std::move(on_error));
}

}  // namespace throttle::server
