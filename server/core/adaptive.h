// The adaptive ceiling of one throttle (issue 14, part 4): AIMD on the
// rejection ratio its workers report.
//
// Part of the scheduler core (no gRPC, no threads, no clock of its own).
// Workers report how their work went (successes and downstream
// rejections); at the end of each evaluation window the controller looks
// at the outcomes reported in that window and lowers the rate
// multiplicatively when the rejection ratio passed the target, or raises
// it additively otherwise, between a floor and the ceiling (the
// throttle's configured max_n). The owner applies the rate it returns to
// the scheduler (Scheduler::SetRate). docs/DECISIONS.md, "Adaptive
// ceiling", gives the reasons.
//
// Rates are counted as the throttle's max_n is: grants per `per` of its
// configuration, integers >= 1.
//
// Not thread-safe: the owner serialises all calls.
#ifndef THROTTLE_SERVER_CORE_ADAPTIVE_H_
#define THROTTLE_SERVER_CORE_ADAPTIVE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace throttle::server {

// The longest evaluation window, and the most outcomes one report may
// carry of each kind.
inline constexpr absl::Duration kMaxAdaptiveWindow = absl::Hours(1);
inline constexpr int64_t kMaxReportCount = 1'000'000;

// The defaults are what an empty AdaptiveConfig in the proto means.
struct AdaptiveConfig {
  // The lowest rate, grants per `per`; in [1, max_n].
  int64_t floor_n = 1;
  // A window whose rejection ratio (rejections / outcomes) is above this
  // lowers the rate; at or below it raises the rate. In (0, 1).
  double target_rejection_ratio = 0.05;
  // How long the controller collects outcomes before it decides; in
  // (0, kMaxAdaptiveWindow].
  absl::Duration window = absl::Seconds(1);
  // Added to the rate after a window at or below the target, grants per
  // `per`; in [1, max_n].
  int64_t increase_n = 1;
  // The rate is multiplied by this (rounded down, at least floor_n) after
  // a window above the target. In (0, 1).
  double decrease_factor = 0.5;
  // A window with fewer outcomes (successes + rejections) than this
  // changes nothing: too few to judge. In [1, kMaxReportCount].
  int64_t min_outcomes = 10;
};

// Checks `config` for a throttle whose ceiling is `max_n`. Returns
// INVALID_ARGUMENT naming the field (as the proto spells it, under
// config.adaptive) and its value when one is out of range, OK otherwise.
absl::Status ValidateAdaptiveConfig(const AdaptiveConfig& config,
                                    int64_t max_n);

// The outcomes of the window in progress and the rate in effect; what a
// throttle's durable record keeps.
struct AdaptiveState {
  int64_t rate_n = 0;
  absl::Time window_start = absl::InfinitePast();
  int64_t successes = 0;
  int64_t rejections = 0;
};

class AdaptiveController {
 public:
  // Starts at the ceiling `max_n` (the configured rate), with a window
  // beginning at `now`. `config` must pass ValidateAdaptiveConfig(config,
  // max_n).
  AdaptiveController(const AdaptiveConfig& config, int64_t max_n,
                     absl::Time now);

  AdaptiveController(const AdaptiveController&) = delete;
  AdaptiveController& operator=(const AdaptiveController&) = delete;

  // The rate in effect, grants per `per`: in [floor_n, max_n].
  int64_t rate_n() const { return rate_n_; }
  const AdaptiveConfig& config() const { return config_; }
  // When the window in progress ends: Evaluate must be called then if
  // has_outcomes() (a window without outcomes changes nothing, and the
  // next Evaluate or Report skips it).
  absl::Time NextEvaluation() const { return window_start_ + config_.window; }
  bool has_outcomes() const { return successes_ > 0 || rejections_ > 0; }

  // Closes every window that ended at or before `now`: the first of them
  // decides on its outcomes, the others had none (they change nothing).
  // Returns whether the rate changed. Constant time, however many windows
  // passed.
  bool Evaluate(absl::Time now);

  // Counts the outcomes of one report, in [0, kMaxReportCount] each (the
  // service validates them), into the window in progress at `now` (after
  // closing the windows that ended before). Returns whether the rate
  // changed.
  bool Report(int64_t successes, int64_t rejections, absl::Time now);

  // Replaces the settings and the ceiling (both valid, as for the
  // constructor) at `now`: the rate is clamped into the new [floor_n,
  // max_n], the window in progress goes on with its outcomes under the new
  // window length (it closes at once if it is already longer). Returns
  // whether the rate changed.
  bool Configure(const AdaptiveConfig& config, int64_t max_n, absl::Time now);

  AdaptiveState Save() const;
  // Takes over a saved state at `now`; its rate is clamped into
  // [floor_n, max_n]. A window that ended while nobody ran the controller
  // is evaluated at the next Evaluate or Report; a window start that is
  // not finite or lies after `now` (another server's clock) becomes `now`.
  void Restore(const AdaptiveState& state, absl::Time now);

 private:
  // The decision on one window's outcomes.
  int64_t NextRate(int64_t successes, int64_t rejections) const;
  int64_t Clamp(int64_t rate_n) const;

  AdaptiveConfig config_;
  int64_t max_n_;
  int64_t rate_n_;
  absl::Time window_start_;
  int64_t successes_ = 0;
  int64_t rejections_ = 0;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_CORE_ADAPTIVE_H_
