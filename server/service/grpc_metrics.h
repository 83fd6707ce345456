// Per-method request counts by code and handling times, under the names
// and labels of the gRPC ecosystem's Prometheus interceptors
// (grpc-ecosystem/go-grpc-prometheus, whose dashboards and alerts then
// work unchanged):
//   grpc_server_started_total{grpc_service,grpc_method,grpc_type}
//   grpc_server_handled_total{grpc_service,grpc_method,grpc_type,grpc_code}
//   grpc_server_handling_seconds{grpc_service,grpc_method,grpc_type}
// grpc_type is unary, client_stream, server_stream or bidi_stream;
// grpc_code is the code's name as Go spells it (OK, NotFound,
// InvalidArgument, ...). A call is handled when its status is sent, or
// when it ends without one (the client went away: Canceled).
//
// Part of the service glue; a server interceptor that ThrottleServer
// installs after the others, so it counts the status the client gets.
#ifndef THROTTLE_SERVER_SERVICE_GRPC_METRICS_H_
#define THROTTLE_SERVER_SERVICE_GRPC_METRICS_H_

#include <memory>

#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"
#include "prometheus/registry.h"
#include "server/service/clock.h"

namespace throttle::server {

// A factory of interceptors that record the metrics above in `registry`
// for every call of every service, timing calls with `clock` (not owned;
// must outlive the server). The interceptors never block.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewGrpcMetricsInterceptorFactory(std::shared_ptr<prometheus::Registry> registry,
                                 const Clock* clock);

// The name of `code` as go-grpc-prometheus labels it ("NotFound").
const char* GoStatusCodeName(grpc::StatusCode code);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_GRPC_METRICS_H_
