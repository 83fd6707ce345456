#include "server/core/limiter.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <utility>

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
  void DropCredit(absl::Time now) override {
    tat_ = std::max(tat_, now + tolerance_);
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
  void DropCredit(absl::Time now) override {
    if (!started_ || now < origin_) return;
    granted_ = std::max(granted_, (now - origin_) / interval_);
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

// `state` with each of its times passed through `map`.
template <typename Map>
LimiterState Retimed(LimiterState state, Map map) {
  state.tat = map(state.tat);
  state.newest = map(state.newest);
  for (LimiterState::Run& run : state.runs) run.at = map(run.at);
  state.origin = map(state.origin);
  state.paused_at = map(state.paused_at);
  return state;
}

// Warm-up: the mode's limiter, unchanged, counts on the ramp's clock
// (WarmUp::Virtual), which runs at warm_up_from x real time at the start
// of a ramp and at real time after it: at its full rate on that clock it
// hands out the ramped rate in real time, and any window of real time is
// at most as long on it, so the mode's bound holds throughout. Window mode
// may burst max_n at once, which would defeat a ramp: during one, its
// grants are also spaced at the ramped rate by `gate_`.
class WarmUpLimiter final : public Limiter {
 public:
  WarmUpLimiter(std::unique_ptr<Limiter> inner, std::unique_ptr<Limiter> gate,
                absl::Duration interval, const WarmUp& ramp)
      : inner_(std::move(inner)),
        gate_(std::move(gate)),
        interval_(interval),
        ramp_(ramp) {}

  absl::Time NextAllowed() const override {
    const absl::Time next = ramp_.Real(inner_->NextAllowed());
    if (gate_ == nullptr) return next;
    return std::max(next,
                    std::min(ramp_.Real(gate_->NextAllowed()), gate_until()));
  }
  int64_t AllowedAt(absl::Time at, int64_t want) const override {
    const int64_t n = inner_->AllowedAt(ramp_.Virtual(at), want);
    if (gate_ == nullptr || at >= gate_until()) return n;
    return gate_->AllowedAt(ramp_.Virtual(at), n);
  }
  absl::Time NthAllowed(absl::Time from, int64_t n) const override {
    // The inner limiter's answer on the ramp's clock, in real time. In
    // window mode during the ramp the gate spaces grants too: each bound
    // alone gives the earliest time it allows, so their later one is the
    // expectation (exact unless both bind within the same grants).
    const absl::Time v = ramp_.Virtual(from);
    const absl::Time at = ramp_.Real(inner_->NthAllowed(v, n));
    if (gate_ == nullptr || from >= gate_until()) return at;
    return std::max(at, ramp_.Real(gate_->NthAllowed(v, n)));
  }
  absl::Duration Spacing() const override {
    if (!InRamp()) return inner_->Spacing();
    // Window mode's grants go one step at a time during a ramp: its log
    // must see each at its own time.
    if (gate_ != nullptr) return absl::ZeroDuration();
    // The spacing shrinks along the ramp: the one at the next grant is the
    // widest of the stretch after it, so a run spaced by it never comes
    // faster than the ramp allows.
    const absl::Duration inner = inner_->Spacing();
    if (inner == absl::ZeroDuration()) return inner;
    return absl::Ceil(inner / ramp_.FractionAt(NextAllowed()),
                      absl::Nanoseconds(1));
  }
  int64_t DueBy(absl::Time now, int64_t want) const override {
    if (!InRamp()) return inner_->DueBy(ramp_.Virtual(now), want);
    const absl::Duration spacing = Spacing();
    if (spacing == absl::ZeroDuration()) return 1;
    return std::min(want, (now - NextAllowed()) / spacing + 1);
  }
  void Record(absl::Time at, int64_t n, absl::Duration spacing) override {
    if (spacing > absl::ZeroDuration() && n > 1 && ramp_.active() &&
        at < ramp_.end()) {
      // A run spaced in real time during the ramp is at least the inner
      // spacing apart on the ramp's clock; recorded as its first n - 1 at
      // `at` and the last at its own time, the next grant comes at least
      // one inner spacing after the last.
      const absl::Time last = at + spacing * (n - 1);
      inner_->Record(Stamp(at), n - 1, absl::ZeroDuration());
      inner_->Record(Stamp(last), 1, absl::ZeroDuration());
      return;
    }
    inner_->Record(Stamp(at), n, spacing);
    if (gate_ != nullptr && at < gate_until()) {
      gate_->Record(Stamp(at), n, spacing);
    }
  }
  void GiveBack(absl::Time last, int64_t n) override {
    inner_->GiveBack(Stamp(last), n);
    if (gate_ != nullptr) gate_->GiveBack(Stamp(last), n);
  }
  void Pause(absl::Time now) override { inner_->Pause(ramp_.Virtual(now)); }
  void Resume(absl::Time now) override { inner_->Resume(ramp_.Virtual(now)); }
  void DropCredit(absl::Time now) override {
    inner_->DropCredit(ramp_.Virtual(now));
  }
  void BeginWarmUp(const WarmUp& ramp, absl::Time now) override {
    // The new clock starts at `now` where the old one reads less: every
    // time the inner limiter holds moves by the difference, so what it
    // holds relative to `now` -- the time to its next grant, a window's
    // age, unbounded credit -- is unchanged. (Mapping them through real
    // time instead would turn the old ramp's lag into credit.)
    const absl::Duration shift = ramp.Virtual(now) - ramp_.Virtual(now);
    inner_->Load(
        Retimed(inner_->Save(), [shift](absl::Time v) { return v + shift; }));
    ramp_ = ramp;
    DropCredit(now);
    // A fresh gate: its first grant at `now`.
    if (gate_ != nullptr) {
      gate_ = std::make_unique<GcraLimiter>(interval_, 1, absl::InfinitePast());
    }
  }
  // Only on a limiter that holds nothing yet (a restore): its saved state
  // is in real time.
  void ContinueWarmUp(const WarmUp& ramp) override {
    const LimiterState state = Save();
    ramp_ = ramp;
    Load(state);
  }
  // In real time, so that a state saved under one ramp loads under another.
  // Window mode keeps its gate in the GCRA fields, which it does not use.
  LimiterState Save() const override {
    LimiterState state = inner_->Save();
    if (gate_ != nullptr) {
      const LimiterState gate = gate_->Save();
      state.tat = gate.tat;
      state.newest = gate.newest;
    }
    return Retimed(std::move(state),
                   [this](absl::Time v) { return ramp_.Real(v); });
  }
  void Load(const LimiterState& real) override {
    const LimiterState state =
        Retimed(real, [this](absl::Time t) { return ramp_.Virtual(t); });
    inner_->Load(state);
    if (gate_ != nullptr) gate_->Load(state);
  }

 private:
  // Where a grant made at `at` is recorded on the ramp's clock. Within the
  // ramp that clock is computed in doubles and rounded, so it may run up
  // to some 2 ns faster between two grants than real time does; a grant
  // of the ramp is recorded kRampSlack later, so the spacing the inner
  // limiter keeps on its clock is never more than what passed in real time.
  absl::Time Stamp(absl::Time at) const {
    const absl::Time v = ramp_.Virtual(at);
    return ramp_.active() && at < ramp_.end() ? v + kRampSlack : v;
  }
  static constexpr absl::Duration kRampSlack = absl::Nanoseconds(4);

  // Whether the next grant falls within the ramp.
  bool InRamp() const { return ramp_.active() && NextAllowed() < ramp_.end(); }
  // The gate applies to grants dated before the ramp's end.
  absl::Time gate_until() const {
    return ramp_.active() ? ramp_.end() : absl::InfinitePast();
  }

  std::unique_ptr<Limiter> inner_;
  std::unique_ptr<Limiter> gate_;  // window mode only
  const absl::Duration interval_;
  WarmUp ramp_;
};

// The full-rate nanoseconds a ramp of `length` starting from `from` has
// counted `tau` after its start (tau in [0, length]): the integral of
// from + (1 - from) * s / length. Computed in double nanoseconds (exact
// below 2^53, some 104 days), monotone in tau since each rounding is.
double RampNanos(double from, double length_ns, double tau_ns) {
  return from * tau_ns + (1 - from) / (2 * length_ns) * tau_ns * tau_ns;
}

}  // namespace

double WarmUp::FractionAt(absl::Time t) const {
  if (!active() || t < start || t >= end()) return 1;
  return from + (1 - from) * absl::FDivDuration(t - start, length);
}

absl::Time WarmUp::Virtual(absl::Time t) const {
  if (!active() || t <= start || t == absl::InfiniteFuture()) return t;
  const double length_ns = absl::ToDoubleNanoseconds(length);
  if (t >= end()) {
    return start +
           absl::Nanoseconds(
               std::floor(RampNanos(from, length_ns, length_ns))) +
           (t - end());
  }
  return start + absl::Nanoseconds(std::floor(RampNanos(
                     from, length_ns, absl::ToDoubleNanoseconds(t - start))));
}

absl::Time WarmUp::Real(absl::Time v) const {
  if (!active() || v <= start || v == absl::InfiniteFuture()) return v;
  const double length_ns = absl::ToDoubleNanoseconds(length);
  const absl::Duration ramp_virtual =
      absl::Nanoseconds(std::floor(RampNanos(from, length_ns, length_ns)));
  if (v - start >= ramp_virtual) return end() + (v - start - ramp_virtual);
  // Solve k tau^2 + from tau = u for tau, in the form without cancellation.
  const double u = absl::ToDoubleNanoseconds(v - start);
  const double k = (1 - from) / (2 * length_ns);
  const double tau = 2 * u / (from + std::sqrt(from * from + 4 * k * u));
  absl::Time t = start + absl::Nanoseconds(std::ceil(tau));
  // Rounding may leave it a little short. The ramp's clock is convex, so a
  // step along its slope at t reaches v (another absorbs that step's
  // rounding); the ramp's end always does.
  while (Virtual(t) < v) {
    const double short_ns = absl::ToDoubleNanoseconds(v - Virtual(t));
    t = std::min(end(), t + absl::Nanoseconds(std::max(
                                1.0, std::ceil(short_ns / FractionAt(t)))));
  }
  return t;
}

std::unique_ptr<Limiter> MakeLimiter(const ThrottleConfig& config,
                                     absl::Time last_grant,
                                     const WarmUp& ramp) {
  // Round the interval up to the Duration's resolution: a truncated one
  // would fit max_n + 1 grants into one window of `per`.
  absl::Duration interval = config.per / config.max_n;
  if (interval * config.max_n < config.per) interval += absl::Nanoseconds(0.25);
  if (config.WarmUpApplies()) {
    ThrottleConfig plain = config;
    plain.warm_up = absl::ZeroDuration();
    const absl::Time virtual_last = ramp.Virtual(last_grant);
    std::unique_ptr<Limiter> gate;
    if (config.mode == Mode::kWindow) {
      gate = std::make_unique<GcraLimiter>(interval, 1, virtual_last);
    }
    return std::make_unique<WarmUpLimiter>(MakeLimiter(plain, virtual_last),
                                           std::move(gate), interval, ramp);
  }
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
