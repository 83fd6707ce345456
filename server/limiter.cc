#include "server/limiter.h"

#include <algorithm>
#include <cstdint>
#include <deque>

namespace throttle::server {
namespace {

// Generic cell rate algorithm: smooth mode is a bucket of capacity 1.
// `tat_` is the theoretical arrival time of the next grant if the bucket
// were empty; a grant at `at` is allowed when at >= tat_ - tolerance_.
class GcraLimiter final : public Limiter {
 public:
  GcraLimiter(absl::Duration interval, int64_t capacity, absl::Time last_grant)
      : interval_(interval),
        tolerance_(interval * (capacity - 1)),
        tat_(last_grant == absl::InfinitePast() ? absl::InfinitePast()
                                                : last_grant + interval) {}

  absl::Time NextAllowed() const override {
    if (tat_ == absl::InfinitePast()) return absl::InfinitePast();
    return tat_ - tolerance_;
  }
  void Record(absl::Time at) override { tat_ = std::max(tat_, at) + interval_; }
  void GiveBack(absl::Time /*at*/) override {
    if (tat_ != absl::InfinitePast()) tat_ -= interval_;
  }

 private:
  const absl::Duration interval_;
  const absl::Duration tolerance_;
  absl::Time tat_;
};

// Sliding window: the log of the last max_n grant times.
class WindowLimiter final : public Limiter {
 public:
  WindowLimiter(int64_t max_n, absl::Duration per, absl::Time last_grant)
      : max_n_(static_cast<size_t>(max_n)), per_(per) {
    if (last_grant != absl::InfinitePast()) log_.push_back(last_grant);
  }

  absl::Time NextAllowed() const override {
    if (log_.size() < max_n_) return absl::InfinitePast();
    return log_.front() + per_;
  }
  void Record(absl::Time at) override {
    // Grants are recorded in time order except after a GiveBack; keep the
    // log sorted either way.
    log_.insert(std::upper_bound(log_.begin(), log_.end(), at), at);
    while (log_.size() > max_n_) log_.pop_front();
  }
  void GiveBack(absl::Time at) override {
    auto it = std::lower_bound(log_.begin(), log_.end(), at);
    if (it != log_.end() && *it == at) log_.erase(it);
  }

 private:
  const size_t max_n_;
  const absl::Duration per_;
  std::deque<absl::Time> log_;
};

// Credit accrues from the first Start without limit: grant k (from 0) is
// allowed at origin + k * per / max_n. Stopped time does not accrue.
class UnboundedLimiter final : public Limiter {
 public:
  UnboundedLimiter(int64_t max_n, absl::Duration per)
      : max_n_(max_n), per_(per) {}

  absl::Time NextAllowed() const override {
    if (paused_) return absl::InfiniteFuture();
    // per * granted / max_n without overflow or drift.
    return origin_ + per_ * (granted_ / max_n_) +
           per_ * (granted_ % max_n_) / max_n_;
  }
  void Record(absl::Time /*at*/) override { ++granted_; }
  void GiveBack(absl::Time /*at*/) override {
    if (granted_ > 0) --granted_;
  }
  void Pause(absl::Time now) override {
    if (paused_) return;
    paused_ = true;
    paused_at_ = now;
  }
  void Resume(absl::Time now) override {
    if (!paused_) return;
    paused_ = false;
    origin_ = started_ ? origin_ + (now - paused_at_) : now;
    started_ = true;
  }

 private:
  const int64_t max_n_;
  const absl::Duration per_;
  bool started_ = false;
  bool paused_ = true;
  absl::Time origin_;
  absl::Time paused_at_;
  int64_t granted_ = 0;
};

// Monitor-only: no limit.
class NoLimiter final : public Limiter {
 public:
  absl::Time NextAllowed() const override { return absl::InfinitePast(); }
  void Record(absl::Time /*at*/) override {}
  void GiveBack(absl::Time /*at*/) override {}
};

}  // namespace

std::unique_ptr<Limiter> MakeLimiter(const ThrottleConfig& config,
                                     absl::Time last_grant) {
  // Round the interval up to the Duration's resolution: a truncated one
  // would fit max_n + 1 grants into one window of `per`.
  absl::Duration interval = config.per / config.max_n;
  if (interval * config.max_n < config.per) interval += absl::Nanoseconds(0.25);
  switch (config.mode) {
    case Mode::kSmooth:
      return std::make_unique<GcraLimiter>(interval, 1, last_grant);
    case Mode::kBucket:
      return std::make_unique<GcraLimiter>(interval, config.EffectiveBurst(),
                                           last_grant);
    case Mode::kWindow:
      return std::make_unique<WindowLimiter>(config.max_n, config.per,
                                             last_grant);
    case Mode::kUnbounded:
      return std::make_unique<UnboundedLimiter>(config.max_n, config.per);
    case Mode::kMonitorOnly:
      return std::make_unique<NoLimiter>();
  }
  return std::make_unique<NoLimiter>();
}

}  // namespace throttle::server
