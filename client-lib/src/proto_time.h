// absl::Duration -> google.protobuf.Duration for the client library
// (client-lib/). Private to the library; not installed.
#ifndef THROTTLE_CLIENT_LIB_SRC_PROTO_TIME_H_
#define THROTTLE_CLIENT_LIB_SRC_PROTO_TIME_H_

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"

namespace throttle {

// Sets `out` to `duration`, truncated to whole nanoseconds. An infinite
// duration becomes the largest (or smallest) value the proto type allows,
// +-315,576,000,000 s, which the server rejects where a limit applies.
void ToProtoDuration(absl::Duration duration, google::protobuf::Duration* out);

// `proto` as an absl::Duration (the server sends only valid ones).
absl::Duration FromProtoDuration(const google::protobuf::Duration& proto);

}  // namespace throttle

#endif  // THROTTLE_CLIENT_LIB_SRC_PROTO_TIME_H_
