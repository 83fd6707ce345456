// The AwaitFuel and Acquire reactors: one open stream each, fed by the
// throttle table.
//
// Part of the service glue; talks only to the table (throttle_table.h).
#ifndef THROTTLE_SERVER_SERVICE_FUEL_REACTOR_H_
#define THROTTLE_SERVER_SERVICE_FUEL_REACTOR_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "server/service/stream_limits.h"
#include "server/service/throttle_table.h"
#include "throttle/v1/throttle.pb.h"

namespace throttle::server {

// Starts serving one AwaitFuel call: validates the request, opens its
// stream in `table` (or finishes the call with the error). `admitted` is
// the verdict of the service's checks (identity, policy, limits): a call
// not admitted ends at once with it. The reactor holds `slot` (its place
// under the stream limits; may be null) until it is deleted. The reactor
// is owned by gRPC and deletes itself when the call is done and no
// delivery holds it. `table` must outlive every call.
grpc::ServerWriteReactor<v1::AwaitFuelResponse>* NewFuelReactor(
    ThrottleTable* table, const v1::AwaitFuelRequest& request,
    const grpc::Status& admitted, std::unique_ptr<StreamLimits::Slot> slot);

// Admits a stream on the throttle it names (identity, policy, stream
// limits): its place under the limits, or the error to finish with.
using AdmitStreamFn =
    std::function<absl::StatusOr<std::unique_ptr<StreamLimits::Slot>>(
        const std::string& throttle)>;

// Starts serving one Acquire call: its first message is admitted by
// `admit` (which must stay callable while the call runs), validated and
// opens an on-demand stream in `table`; each later message changes its
// demand. Owned by gRPC like the AwaitFuel reactor.
grpc::ServerBidiReactor<v1::AcquireRequest, v1::AcquireResponse>*
NewAcquireReactor(ThrottleTable* table, AdmitStreamFn admit);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_FUEL_REACTOR_H_
