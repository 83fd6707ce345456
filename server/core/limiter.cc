#include "server/core/limiter.h"

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
  // A new limiter starts full; one rebuilt after a grant at `last_grant`
  // starts empty, its next grant one interval after that one.
  GcraLimiter(absl::Duration interval, int64_t capacity, absl::Time last_grant)
      : interval_(interval),
        tolerance_(interval * (capacity - 1)),
        tat_(last_grant == absl::InfinitePast()
                 ? absl::InfinitePast()
                 : last_grant + interval + tolerance_) {}

  absl::Time NextAllowed() const override {
    if (tat_ == absl::InfinitePast()) return absl::InfinitePast();
    return tat_ - tolerance_;
  }
  int64_t AllowedAt(absl::Time at, int64_t want) const override {
    // Grant j (from 0) of a batch at `at` is allowed while
    // max(tat_, at) + j * interval_ - tolerance_ <= at.
    const absl::Time base = std::max(tat_, at);
    return std::min(want, (at - base + tolerance_) / interval_ + 1);
  }
  absl::Time NthAllowed(absl::Time from, int64_t n) const override {
    // Grant j is allowed once its arrival time, base + j * interval_, is
    // within the tolerance: a full bucket's grants all fall at `from`.
    return std::max(from, std::max(tat_, from) + interval_ * n - tolerance_);
  }
  absl::Duration Spacing() const override { return interval_; }
  int64_t DueBy(absl::Time now, int64_t want) const override {
    return std::min(want, (now - NextAllowed()) / interval_ + 1);
  }
  void Record(absl::Time at, int64_t n, absl::Duration spacing) override {
    // Whether all at `at` or spaced from it, the theoretical arrival time
    // moves by one interval per grant.
    tat_ = std::max(tat_, at) + interval_ * n;
    newest_ = std::max(newest_, at + spacing * (n - 1));
  }
  void GiveBack(absl::Time last, int64_t n) override {
    // Only the newest grants can be undone: later grants were scheduled
    // after them, so an older grant's slot is past and gives nothing back.
    // (A tat_ far in the past is a full bucket, never more than full.)
    if (newest_ == absl::InfinitePast() || last < newest_) return;
    tat_ -= interval_ * n;
  }
  LimiterState Save() const override {
    LimiterState state;
    state.tat = tat_;
    state.newest = newest_;
    return state;
  }
  void Load(const LimiterState& state) override {
    tat_ = state.tat;
    newest_ = state.newest;
  }

 private:
  const absl::Duration interval_;
  const absl::Duration tolerance_;
  absl::Time tat_;
  absl::Time newest_ = absl::InfinitePast();  // newest grant recorded here
};

// Sliding window: the last max_n grants, as runs of grants that share a
// nominal time, sorted by time. A grant is allowed while fewer than max_n
// were recorded, or once the oldest of the last max_n has left the window.
class WindowLimiter final : public Limiter {
 public:
  WindowLimiter(int64_t max_n, absl::Duration per, absl::Time last_grant)
      : max_n_(max_n), per_(per) {
    if (last_grant != absl::InfinitePast()) {
      log_.push_back({last_grant, 1});
      ends_.push_back(1);
      size_ = 1;
    }
  }

  absl::Time NextAllowed() const override {
    if (size_ < max_n_) return absl::InfinitePast();
    return log_.front().at + per_;
  }
  int64_t AllowedAt(absl::Time at, int64_t want) const override {
    // Free room, plus every grant whose slot has left the window by `at`.
    // Each run looked at is forgotten by the Record that follows, so the
    // walk is amortised constant per run.
    int64_t allowed = max_n_ - size_;
    for (auto it = log_.begin(); allowed < want && it != log_.end(); ++it) {
      if (it->at + per_ > at) break;
      allowed += it->n;
    }
    return std::min(allowed, want);
  }
  absl::Time NthAllowed(absl::Time from, int64_t n) const override {
    // Grant j (from 0) is allowed once the grant max_n_ before it has left
    // the window: for j < max_n_ that is the log's grant j - (max_n_ -
    // size_) (none: allowed at once), later ones recur every per_.
    const int64_t rounds = n / max_n_;
    const int64_t index = n % max_n_ - (max_n_ - size_);
    absl::Time at = from;
    if (index >= 0) {
      // The run holding the log's grant `index`: the first whose end
      // passes it.
      const auto run =
          std::upper_bound(ends_.begin(), ends_.end(), dropped_ + index);
      at = std::max(from, log_[run - ends_.begin()].at + per_);
    }
    return at + per_ * rounds;
  }
  void Record(absl::Time at, int64_t n,
              absl::Duration /*spacing: always zero*/) override {
    // Grants are recorded in time order (the scheduler never dates one
    // before the newest); keep the runs sorted all the same.
    auto it = std::upper_bound(
        log_.begin(), log_.end(), at,
        [](absl::Time t, const Run& run) { return t < run.at; });
    size_t index = it - log_.begin();
    if (it != log_.begin() && std::prev(it)->at == at) {
      std::prev(it)->n += n;
      --index;
    } else {
      log_.insert(it, {at, n});
      ends_.insert(ends_.begin() + index,
                   index == 0 ? dropped_ : ends_[index - 1]);
    }
    AddToEnds(index, n);
    size_ += n;
    // Forget the oldest beyond the last max_n.
    while (size_ > max_n_) {
      Run& oldest = log_.front();
      const int64_t drop = std::min(oldest.n, size_ - max_n_);
      oldest.n -= drop;
      size_ -= drop;
      dropped_ += drop;
      if (oldest.n == 0) {
        log_.pop_front();
        ends_.pop_front();
      }
    }
  }
  void GiveBack(absl::Time at, int64_t n) override {
    // Forgetting them is exact: the grants pruned from the log are older
    // than every grant in it, and no new grant is dated before the newest,
    // so a pruned grant never shares a window with max_n - 1 others.
    auto it = std::lower_bound(
        log_.begin(), log_.end(), at,
        [](const Run& run, absl::Time t) { return run.at < t; });
    if (it == log_.end() || it->at != at) return;  // already forgotten
    const int64_t undone = std::min(n, it->n);
    const size_t index = it - log_.begin();
    it->n -= undone;
    size_ -= undone;
    AddToEnds(index, -undone);
    if (it->n == 0) {
      log_.erase(it);
      ends_.erase(ends_.begin() + index);
    }
  }
  LimiterState Save() const override {
    LimiterState state;
    state.runs.assign(log_.begin(), log_.end());
    return state;
  }
  void Load(const LimiterState& state) override {
    log_.clear();
    ends_.clear();
    size_ = 0;
    dropped_ = 0;
    for (const Run& run : state.runs)
      Record(run.at, run.n, absl::ZeroDuration());
  }

 private:
  using Run = LimiterState::Run;
  // Adds `n` to the ends of run `index` and every later run. Grants are
  // recorded and given back at the newest end, so this is constant time
  // but for a stall's out-of-order record.
  void AddToEnds(size_t index, int64_t n) {
    for (size_t i = index; i < ends_.size(); ++i) ends_[i] += n;
  }

  const int64_t max_n_;
  const absl::Duration per_;
  std::deque<Run> log_;
  // ends_[i]: grants recorded in runs up to and including log_[i], counted
  // from the first ever (those forgotten included), so the run holding the
  // log's j-th grant is found by binary search (NthAllowed).
  std::deque<int64_t> ends_;
  int64_t dropped_ = 0;  // grants forgotten from the front of log_
  int64_t size_ = 0;     // grants in log_, <= max_n_
};

// Credit accrues from the first Start without limit: grant k (from 0) is
// allowed at origin + k * interval. Stopped time does not accrue.
class UnboundedLimiter final : public Limiter {
 public:
  explicit UnboundedLimiter(absl::Duration interval) : interval_(interval) {}

  absl::Time NextAllowed() const override {
    if (paused_) return absl::InfiniteFuture();
    return origin_ + interval_ * granted_;
  }
  int64_t AllowedAt(absl::Time at, int64_t want) const override {
    // Every grant due by `at`: grants granted_ .. (at - origin) / interval.
    return std::clamp<int64_t>((at - origin_) / interval_ - granted_ + 1, 1,
                               want);
  }
  absl::Time NthAllowed(absl::Time from, int64_t n) const override {
    if (paused_) return absl::InfiniteFuture();
    return std::max(from, origin_ + interval_ * (granted_ + n));
  }
  absl::Duration Spacing() const override { return interval_; }
  int64_t DueBy(absl::Time now, int64_t want) const override {
    return std::min(want, (now - NextAllowed()) / interval_ + 1);
  }
  void Record(absl::Time /*at*/, int64_t n,
              absl::Duration /*spacing*/) override {
    granted_ += n;
  }
  // The credit comes back: the mean rate over the run is what this mode
  // holds, and that counts only grants that were delivered.
  void GiveBack(absl::Time /*last*/, int64_t n) override {
    granted_ -= std::min(n, granted_);
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
  LimiterState Save() const override {
    LimiterState state;
    state.started = started_;
    state.paused = paused_;
    state.origin = origin_;
    state.paused_at = paused_at_;
    state.granted = granted_;
    return state;
  }
  void Load(const LimiterState& state) override {
    started_ = state.started;
    paused_ = state.paused;
    origin_ = state.origin;
    paused_at_ = state.paused_at;
    granted_ = state.granted;
  }

 private:
  const absl::Duration interval_;
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
  absl::Time NthAllowed(absl::Time from, int64_t /*n*/) const override {
    return from;
  }
  int64_t AllowedAt(absl::Time /*at*/, int64_t want) const override {
    return want;
  }
  void Record(absl::Time /*at*/, int64_t /*n*/,
              absl::Duration /*spacing*/) override {}
  void GiveBack(absl::Time /*last*/, int64_t /*n*/) override {}
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
      return std::make_unique<UnboundedLimiter>(interval);
    case Mode::kMonitorOnly:
      return std::make_unique<NoLimiter>();
  }
  return std::make_unique<NoLimiter>();
}

}  // namespace throttle::server
