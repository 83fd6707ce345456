#include "server/core/adaptive.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "server/core/format.h"
#include "server/core/limits.h"

namespace throttle::server {

absl::Status ValidateAdaptiveConfig(const AdaptiveConfig& config,
                                    int64_t max_n) {
  if (config.floor_n < 1 || config.floor_n > max_n) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.adaptive.floor_n must be in [1, max_n = ", max_n,
                     "], got ", config.floor_n));
  }
  // Written so that NaN fails too.
  if (!(config.target_rejection_ratio > 0 &&
        config.target_rejection_ratio < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.adaptive.target_rejection_ratio must be in (0, 1), got ",
        FormatDouble(config.target_rejection_ratio)));
  }
  if (config.window <= absl::ZeroDuration() ||
      config.window > kMaxAdaptiveWindow) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.adaptive.window must be in (0, 1h], got ",
                     absl::FormatDuration(config.window)));
  }
  if (config.increase_n < 1 || config.increase_n > max_n) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config.adaptive.increase_n must be in [1, max_n = ", max_n, "], got ",
        config.increase_n));
  }
  if (!(config.decrease_factor > 0 && config.decrease_factor < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.adaptive.decrease_factor must be in (0, 1), got ",
                     FormatDouble(config.decrease_factor)));
  }
  if (config.min_outcomes < 1 || config.min_outcomes > kMaxReportCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.adaptive.min_outcomes must be in [1, ",
                     kMaxReportCount, "], got ", config.min_outcomes));
  }
  return absl::OkStatus();
}

AdaptiveController::AdaptiveController(const AdaptiveConfig& config,
                                       int64_t max_n, absl::Time now)
    : config_(config), max_n_(max_n), rate_n_(max_n), window_start_(now) {}

int64_t AdaptiveController::Clamp(int64_t rate_n) const {
  return std::clamp(rate_n, config_.floor_n, max_n_);
}

int64_t AdaptiveController::NextRate(int64_t successes,
                                     int64_t rejections) const {
  const int64_t outcomes = successes + rejections;
  if (outcomes < config_.min_outcomes) return rate_n_;
  const double ratio =
      static_cast<double>(rejections) / static_cast<double>(outcomes);
  if (ratio > config_.target_rejection_ratio) {
    // Rounded down: for a factor below 1 a rate above the floor always
    // drops by at least one grant.
    return Clamp(static_cast<int64_t>(
        std::floor(static_cast<double>(rate_n_) * config_.decrease_factor)));
  }
  return Clamp(rate_n_ + config_.increase_n);  // both <= 1e9: no overflow
}

bool AdaptiveController::Evaluate(absl::Time now) {
  if (now < NextEvaluation()) return false;
  const int64_t before = rate_n_;
  rate_n_ = NextRate(successes_, rejections_);
  successes_ = 0;
  rejections_ = 0;
  // The windows after the first had no outcomes: skip them at once.
  absl::Duration into_last;
  const int64_t passed =
      absl::IDivDuration(now - window_start_, config_.window, &into_last);
  window_start_ += config_.window * passed;
  return rate_n_ != before;
}

bool AdaptiveController::Report(int64_t successes, int64_t rejections,
                                absl::Time now) {
  const bool changed = Evaluate(now);
  successes_ = SaturatingAdd(successes_, successes);
  rejections_ = SaturatingAdd(rejections_, rejections);
  return changed;
}

bool AdaptiveController::Configure(const AdaptiveConfig& config, int64_t max_n,
                                   absl::Time now) {
  const int64_t before = rate_n_;
  config_ = config;
  max_n_ = max_n;
  rate_n_ = Clamp(rate_n_);
  Evaluate(now);
  return rate_n_ != before;
}

AdaptiveState AdaptiveController::Save() const {
  return {rate_n_, window_start_, successes_, rejections_};
}

void AdaptiveController::Restore(const AdaptiveState& state, absl::Time now) {
  rate_n_ = Clamp(state.rate_n);
  const bool usable = state.window_start != absl::InfinitePast() &&
                      state.window_start != absl::InfiniteFuture() &&
                      state.window_start <= now;
  window_start_ = usable ? state.window_start : now;
  successes_ = state.successes;
  rejections_ = state.rejections;
}

}  // namespace throttle::server
