#include "client-lib/src/proto_time.h"

#include <cstdint>

namespace throttle {

void ToProtoDuration(absl::Duration duration, google::protobuf::Duration* out) {
  // The range of google.protobuf.Duration: about +-10,000 years.
  constexpr int64_t kMaxSeconds = 315'576'000'000;
  if (duration >= absl::Seconds(kMaxSeconds)) {
    out->set_seconds(kMaxSeconds);
    out->set_nanos(0);
    return;
  }
  if (duration <= absl::Seconds(-kMaxSeconds)) {
    out->set_seconds(-kMaxSeconds);
    out->set_nanos(0);
    return;
  }
  absl::Duration rest;
  const int64_t seconds = absl::IDivDuration(duration, absl::Seconds(1), &rest);
  // Seconds and nanos share the sign, as the proto type requires.
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(
      absl::IDivDuration(rest, absl::Nanoseconds(1), &rest)));
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& proto) {
  return absl::Seconds(proto.seconds()) + absl::Nanoseconds(proto.nanos());
}

}  // namespace throttle
