#include "server/core/format.h"

#include <charconv>
#include <cmath>

namespace throttle::server {

std::string FormatDouble(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  const double magnitude = std::fabs(value);
  const std::chars_format format =
      magnitude == 0 || (magnitude >= 1e-4 && magnitude < 1e16)
          ? std::chars_format::fixed
          : std::chars_format::scientific;
  // Fixed notation below 1e16 needs at most 16 integer digits, or "0." and
  // 4 zeros before 17 significant ones: well within the buffer.
  char buffer[64];
  const std::to_chars_result result =
      std::to_chars(buffer, buffer + sizeof(buffer), value, format);
  return std::string(buffer, result.ptr);
}

}  // namespace throttle::server
