// The AwaitFuel reactor: one open stream, fed by the throttle table.
//
// Part of the service glue; talks only to the table (throttle_table.h).
#ifndef THROTTLE_SERVER_SERVICE_FUEL_REACTOR_H_
#define THROTTLE_SERVER_SERVICE_FUEL_REACTOR_H_

#include "grpcpp/grpcpp.h"
#include "server/service/throttle_table.h"
#include "throttle/v1/throttle.pb.h"

namespace throttle::server {

// Starts serving one AwaitFuel call: validates the request, opens its
// stream in `table` (or finishes the call with the error). The reactor is
// owned by gRPC and deletes itself when the call is done and no delivery
// holds it. `table` must outlive every call.
grpc::ServerWriteReactor<v1::AwaitFuelResponse>* NewFuelReactor(
    ThrottleTable* table, const v1::AwaitFuelRequest& request);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_FUEL_REACTOR_H_
