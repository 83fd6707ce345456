// Names of the proto's enums as people type and read them: in throttlectl,
// the tutorial, the benchmarks and the server's throttle specs
// ("smooth", "window", "bucket", "unbounded", "monitor-only"; degradations
// "wait", "fail_fast", "local_share").
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

// Parses a degradation name: "wait", "fail_fast" or "local_share", exactly
// as the server's --throttle spec and config file take them. Returns
// INVALID_ARGUMENT naming the value and the choices otherwise.
absl::StatusOr<v1::Degradation> DegradationFromName(absl::string_view name);

// "wait", "fail_fast", "local_share"; "unspecified" for
// DEGRADATION_UNSPECIFIED or an unknown value.
std::string DegradationName(v1::Degradation degradation);

// "created", "running", "stopped"; "unspecified" otherwise.
std::string StateName(v1::State state);

}  // namespace throttle

#endif  // THROTTLE_NAMES_H_
