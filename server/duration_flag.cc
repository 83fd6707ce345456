#include "server/duration_flag.h"

#include "absl/status/statusor.h"
#include "server/core/duration.h"

namespace throttle {

bool AbslParseFlag(absl::string_view text, DurationFlag* flag,
                   std::string* error) {
  absl::StatusOr<absl::Duration> parsed = server::ParseDuration(text);
  if (!parsed.ok()) {
    *error = std::string(parsed.status().message());
    return false;
  }
  flag->value = *parsed;
  return true;
}

std::string AbslUnparseFlag(const DurationFlag& flag) {
  return server::FormatDuration(flag.value);
}

}  // namespace throttle
