// Names of the proto's enums as people type and read them: in throttlectl,
// the tutorial, the benchmarks and the server's throttle specs
// ("smooth", "window", "bucket", "unbounded", "monitor-only").
#ifndef THROTTLE_NAMES_H_
#define THROTTLE_NAMES_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "throttle/v1/throttle.pb.h"

namespace throttle {

// Parses a mode name; case-insensitive, '_' taken as '-'. Returns
// INVALID_ARGUMENT naming the value and the choices otherwise.
absl::StatusOr<v1::Mode> ModeFromName(absl::string_view name);

// "smooth" ... "monitor-only"; "unspecified" for MODE_UNSPECIFIED or an
// unknown value.
std::string ModeName(v1::Mode mode);

// "created", "running", "stopped"; "unspecified" otherwise.
std::string StateName(v1::State state);

}  // namespace throttle

#endif  // THROTTLE_NAMES_H_
