#include "server/core/throttle_config.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "server/core/format.h"

namespace throttle::server {

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kSmooth:
      return "smooth";
    case Mode::kWindow:
      return "window";
    case Mode::kBucket:
      return "bucket";
    case Mode::kUnbounded:
      return "unbounded";
    case Mode::kMonitorOnly:
      return "monitor-only";
  }
  return "unknown";
}

absl::Status ValidateConfig(const ThrottleConfig& config) {
  if (config.max_n < 1 || config.max_n > kMaxMaxN) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.max_n must be in [1, ", kMaxMaxN, "], got ", config.max_n));
  }
  const double per_seconds = absl::ToDoubleSeconds(config.per);
  if (!(per_seconds > 0) || per_seconds > kMaxPerSeconds) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.per_seconds must be in (0, ", FormatDouble(kMaxPerSeconds),
        "], got ", FormatDouble(per_seconds)));
  }
  const double rate = static_cast<double>(config.max_n) / per_seconds;
  if (rate > kMaxRatePerSecond) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.max_n / config.per_seconds must be at most ",
        FormatDouble(kMaxRatePerSecond), " per second, got ", config.max_n,
        " / ", FormatDouble(per_seconds), " = ", FormatDouble(rate)));
  }
  if (config.mode == Mode::kWindow && config.max_n > kMaxWindowModeMaxN) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.max_n must be at most ", kMaxWindowModeMaxN,
                     " in window mode, got ", config.max_n));
  }
  if (config.burst < 0 || config.burst > kMaxMaxN) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.burst must be in [0, ", kMaxMaxN, "], got ", config.burst));
  }
  if (config.burst != 0 && config.mode != Mode::kBucket) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.burst applies to bucket mode only; got ",
                     config.burst, " in ", ModeName(config.mode), " mode"));
  }
  if (config.catch_up.has_value() && (*config.catch_up < absl::ZeroDuration() ||
                                      *config.catch_up > config.per)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.catch_up must be in [0, per_seconds = ",
                     FormatDouble(per_seconds), "s], got ",
                     absl::FormatDuration(*config.catch_up)));
  }
  if (config.warm_up < absl::ZeroDuration() || config.warm_up > kMaxWarmUp) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.warm_up must be in [0, 30 days], got ",
                     absl::FormatDuration(config.warm_up)));
  }
  // Written so that NaN fails too.
  if (!(config.warm_up_from >= 0 && config.warm_up_from <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.warm_up_from must be in (0, 1] (0 = 1/3), got ",
                     FormatDouble(config.warm_up_from)));
  }
  if (config.starvation_bound < absl::ZeroDuration() ||
      config.starvation_bound > kMaxStarvationBound) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.starvation_bound must be in [0, 30 days], got ",
                     absl::FormatDuration(config.starvation_bound)));
  }
  if (config.degradation == Degradation::kLocalShare
          ? (config.local_share_for <= absl::ZeroDuration() ||
             config.local_share_for > kMaxLocalShareFor)
          : config.local_share_for != absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.local_share_for must be in (0, 1 hour] with "
                     "DEGRADATION_LOCAL_SHARE and unset otherwise, got ",
                     absl::FormatDuration(config.local_share_for)));
  }
  if (config.adaptive.has_value()) {
    if (config.mode == Mode::kMonitorOnly) {
      return absl::InvalidArgumentError(
          "config.adaptive applies to limited modes; got it in monitor-only "
          "mode");
    }
    return ValidateAdaptiveConfig(*config.adaptive, config.max_n);
  }
  return absl::OkStatus();
}

absl::Duration ThrottleConfig::DefaultCatchUp() const {
  return std::max(per / 100, per / max_n);
}

absl::Duration ThrottleConfig::EffectiveCatchUp() const {
  return catch_up.value_or(DefaultCatchUp());
}

int64_t ReservationChunk(const ThrottleConfig& config, absl::Duration ahead) {
  const double grants = std::ceil(static_cast<double>(config.max_n) *
                                  absl::FDivDuration(ahead, config.per));
  return static_cast<int64_t>(
      std::clamp(grants, 2.0, static_cast<double>(kMaxMaxN)));
}

}  // namespace throttle::server
