// Requests that do not parse: an invalid UTF-8 proto3 string field, a
// truncated or malformed message.
//
// gRPC 1.51's callback API answers a request it cannot deserialize with
// UNIMPLEMENTED and an empty message (server_callback_handlers.h: a failed
// Deserialize gives an UnimplementedUnaryReactor / UnimplementedWriteReactor
// with a fixed status), before any code of the service runs; a
// SerializationTraits specialization cannot change that status. So a
// server interceptor notes the failed deserialization (POST_RECV_MESSAGE
// without a message) and rewrites the status it sends (PRE_SEND_STATUS)
// into INVALID_ARGUMENT naming the request type, and the field when
// protobuf said which.
//
// Protobuf also wrote one "libprotobuf ERROR" line to stderr per such
// request, whatever --log_level said: its log goes through the server's
// logger instead (server/log.h), the complaints about requests at debug.
//
// Part of the service glue; used by ThrottleServer.
#ifndef THROTTLE_SERVER_SERVICE_UNPARSABLE_REQUEST_H_
#define THROTTLE_SERVER_SERVICE_UNPARSABLE_REQUEST_H_

#include <functional>
#include <memory>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"

namespace throttle::server {

// Sends protobuf's log lines to Log() (event "protobuf_log"): complaints
// about parsing a request at kDebug (the call's failure is reported
// anyway), others at protobuf's level (info, warning, error). Also keeps
// the last parse complaint of the calling thread for the interceptor
// below. Process-wide; the first call installs it, later calls do nothing.
// Call before serving (protobuf's SetLogHandler is not thread-safe).
void RouteProtobufLog();

// Called with the short method name ("CreateThrottle") and the status of a
// call answered INVALID_ARGUMENT because its request did not parse.
using UnparsableRequestCallback =
    std::function<void(absl::string_view method, const grpc::Status& status)>;

// A factory of interceptors for the unary and server-streaming methods of
// `service` (the other calls get none): a call whose request did not parse
// ends with INVALID_ARGUMENT "request does not parse as TYPE ..." instead
// of gRPC's UNIMPLEMENTED with no message, and `on_error` is called.
// `service` must outlive the factory; `on_error` may be empty and must not
// block.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewUnparsableRequestInterceptorFactory(
    const google::protobuf::ServiceDescriptor* service,
    UnparsableRequestCallback on_error);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_UNPARSABLE_REQUEST_H_
