// Status mapping of the client library (client-lib/): gRPC status -> absl.
//
// The library reports every failure as absl::Status. gRPC 1.51 ships no
// converter, but the numeric codes of the two are the same, so the mapping is
// one function. (The server maps the other way at its service boundary.)
#ifndef THROTTLE_STATUS_H_
#define THROTTLE_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace throttle {

// Returns the absl::Status with the code and message of `status`; OK for OK.
// A code outside the canonical range (0..16) becomes UNKNOWN. Never blocks.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace throttle

#endif  // THROTTLE_STATUS_H_
