#include "server/core/duration.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace throttle::server {

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text) {
  const absl::string_view stripped = absl::StripAsciiWhitespace(text);
  const auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a duration: \"", absl::CHexEscape(text.substr(0, 40)),
        "\" (give seconds as a number, or a number with a unit: 250ms, "
        "1.5s, 2m, 1h)"));
  };
  double seconds = 0;
  // SimpleAtod also takes "inf", "nan" and hexadecimal floats: only plain
  // decimal numbers are seconds.
  if (!stripped.empty() && stripped.find_first_not_of("+-.0123456789eE") ==
                               absl::string_view::npos) {
    if (!absl::SimpleAtod(stripped, &seconds) || !std::isfinite(seconds)) {
      return bad();
    }
    return absl::Seconds(seconds);
  }
  absl::Duration duration;
  if (!absl::ParseDuration(stripped, &duration) ||
      duration == absl::InfiniteDuration() ||
      duration == -absl::InfiniteDuration()) {
    return bad();
  }
  return duration;
}

std::string FormatDuration(absl::Duration duration) {
  return absl::FormatDuration(duration);
}

}  // namespace throttle::server
