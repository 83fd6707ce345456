// A flag type for durations in the project's one syntax (core/duration.h):
// --shutdown_grace=5s, --shutdown_grace=250ms and --shutdown_grace=0.25
// all parse, where Abseil's absl::Duration flags refuse plain numbers.
//
//   ABSL_FLAG(throttle::DurationFlag, shutdown_grace,
//             throttle::DurationFlag(absl::Seconds(5)), "...");
//   absl::Duration grace = absl::GetFlag(FLAGS_shutdown_grace).value;
//
// Used by the mains; depends on Abseil's flags and the duration parser.
#ifndef THROTTLE_SERVER_DURATION_FLAG_H_
#define THROTTLE_SERVER_DURATION_FLAG_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace throttle {

struct DurationFlag {
  DurationFlag() = default;
  explicit DurationFlag(absl::Duration d) : value(d) {}
  absl::Duration value;
};

// Abseil's flag hooks (found by argument-dependent lookup). Parsing fails
// with the parser's message; the default is shown as "5s", "250ms".
bool AbslParseFlag(absl::string_view text, DurationFlag* flag,
                   std::string* error);
std::string AbslUnparseFlag(const DurationFlag& flag);

}  // namespace throttle

#endif  // THROTTLE_SERVER_DURATION_FLAG_H_
