// The one duration syntax of the project: "250ms", "1.5s", "2m", "1h30m"
// (a number with a unit: ns, us, ms, s, m, h; units may be combined), or a
// plain number, which is seconds ("0.25", "60"). Used by the server's
// duration flags, its config file and the --throttle spec; meant for the
// CLI and the clients too.
//
// Its own small library (Abseil only, no gRPC), like format.h.
#ifndef THROTTLE_SERVER_CORE_DURATION_H_
#define THROTTLE_SERVER_CORE_DURATION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace throttle::server {

// Parses `text` (surrounding blanks ignored) in the one duration syntax.
// Negative values parse (callers check their range); infinities and NaN do
// not. INVALID_ARGUMENT saying what is accepted and quoting `text`,
// without a field name: callers prefix the field.
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text);

// A duration as ParseDuration reads it back: "250ms", "1.5s", "2m", "0".
std::string FormatDuration(absl::Duration duration);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_CORE_DURATION_H_
