// Rate limiters of the scheduler core: one per shaping mode.
//
// Part of the scheduler core (no gRPC, no threads, no clock of its own). A
// limiter only answers "when may the next grant be?" and records grants; the
// scheduler decides who gets them. Times are nominal: the moment a grant fell
// due on the throttle's schedule, which may be a little before the moment
// the refill loop got round to it. Keeping the schedule nominal is what
// holds the rate when the loop wakes late: grants that fell due meanwhile
// are handed out together, at their own times, and nothing drifts.
//
// Not thread-safe: the owner (one throttle's scheduler) serialises calls.
#ifndef THROTTLE_SERVER_CORE_LIMITER_H_
#define THROTTLE_SERVER_CORE_LIMITER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "server/core/throttle_config.h"

namespace throttle::server {

// A limiter's state, to be stored and restored across a restart or a
// failover (see Scheduler::Save). Each mode uses its own fields.
struct LimiterState {
  // Smooth and bucket (GCRA): theoretical arrival time, newest grant.
  absl::Time tat = absl::InfinitePast();
  absl::Time newest = absl::InfinitePast();
  // Window: the last max_n grants as runs sharing a nominal time.
  struct Run {
    absl::Time at;
    int64_t n = 0;
  };
  std::vector<Run> runs;
  // Unbounded: grant k is allowed at origin + k * interval.
  bool started = false;
  bool paused = true;
  absl::Time origin = absl::UnixEpoch();
  absl::Time paused_at = absl::UnixEpoch();
  int64_t granted = 0;
};

// A warm-up ramp (docs/DECISIONS.md, "Warm-up"): from `start` the rate is
// from x the configured rate, growing linearly to the full rate at
// start + length. No ramp when start is infinite or length is zero.
struct WarmUp {
  absl::Time start = absl::InfiniteFuture();
  absl::Duration length;
  double from = 1;

  bool active() const {
    return start != absl::InfiniteFuture() && start != absl::InfinitePast() &&
           length > absl::ZeroDuration();
  }
  absl::Time end() const { return active() ? start + length : start; }
  // The fraction of the full rate in effect at `t`: 1 outside the ramp.
  double FractionAt(absl::Time t) const;
  // The ramp's clock: the full-rate time that has passed by `t`, so that a
  // limiter counting on it at the full rate hands out the ramped rate in
  // real time. The identity before the ramp, `t` minus a constant after
  // it; monotone, and infinite times map to themselves.
  absl::Time Virtual(absl::Time t) const;
  // The earliest real time whose Virtual() is at least `v`.
  absl::Time Real(absl::Time v) const;
};

class Limiter {
 public:
  virtual ~Limiter() = default;

  // The earliest nominal time at which one more grant is allowed.
  // absl::InfinitePast() when a grant is allowed at any time.
  virtual absl::Time NextAllowed() const = 0;

  // How many of `want` >= 1 grants are allowed at nominal time
  // `at` >= NextAllowed(), all at that one instant: at least 1, at most
  // `want`. A burst or idle credit of a billion costs no more than one
  // grant (amortised constant time).
  virtual int64_t AllowedAt(absl::Time at, int64_t want) const = 0;

  // The nominal time of grant `n` (from 0) of those made from `from` on,
  // each as early as this limiter allows and none dated before `from` (the
  // deadline-aware admission's expectation: n = the grants due to others
  // first). absl::InfiniteFuture() if it never falls due. Constant or
  // logarithmic time, whatever `n`.
  virtual absl::Time NthAllowed(absl::Time from, int64_t n) const = 0;

  // The gap between grants when the limiter hands them out one at a time
  // on a regular schedule (smooth, bucket once empty, unbounded); zero if
  // its schedule is not regular (window, no limit).
  virtual absl::Duration Spacing() const { return absl::ZeroDuration(); }

  // With Spacing() > 0: how many of `want` >= 1 grants fall due at
  // NextAllowed(), NextAllowed() + Spacing(), ... up to `now` (at least 1
  // when NextAllowed() <= now). Constant time, so a late refill loop or a
  // rate of millions per second costs one step, not one per grant.
  virtual int64_t DueBy(absl::Time /*now*/, int64_t /*want*/) const {
    return 1;
  }

  // Records `n` grants from nominal time `at`, `spacing` apart: all at
  // `at` (spacing zero) when n <= AllowedAt(at, n), or at `at` =
  // NextAllowed() and every Spacing() after it when n <= DueBy(now, n).
  // The scheduler never dates a grant before the newest one recorded.
  virtual void Record(absl::Time at, int64_t n, absl::Duration spacing) = 0;

  // Undoes `n` grants recorded by this limiter whose newest fell at
  // `last`, never delivered, so that their fuel can go to another stream
  // -- as far as that keeps the mode's bound: a smooth or bucket limiter
  // only takes back the newest grants it recorded (an older grant's slot
  // is past), a window limiter forgets them from its log. Constant time in
  // `n`.
  virtual void GiveBack(absl::Time last, int64_t n) = 0;

  // The throttle stopped at `now` / started again at `now`. Only the
  // unbounded limiter cares: credit does not accumulate while stopped.
  virtual void Pause(absl::Time /*now*/) {}
  virtual void Resume(absl::Time /*now*/) {}

  // Drops any burst or idle credit held at `now` (nominal): the next grant
  // is allowed at `now`, and the ones after it at the limiter's pace.
  virtual void DropCredit(absl::Time /*now*/) {}

  // A ramp begins at `now` (a Start; `ramp` starts at `now`): from now on
  // the limiter counts on ramp.Virtual() time, and whatever burst or credit
  // it holds is dropped, so that the ramp starts from one grant at `now`
  // (a full bucket does not defeat the warm-up). Only the warm-up limiter
  // cares.
  virtual void BeginWarmUp(const WarmUp& /*ramp*/, absl::Time /*now*/) {}
  // Takes over `ramp` as the current one, on a limiter that holds nothing
  // yet, before its Load (a restore of a throttle saved mid-ramp). Only the
  // warm-up limiter cares.
  virtual void ContinueWarmUp(const WarmUp& /*ramp*/) {}

  // The state, and its restore into a limiter made for the same
  // configuration (no grant recorded yet). Load trusts its input to come
  // from Save of the same mode.
  virtual LimiterState Save() const { return {}; }
  virtual void Load(const LimiterState& /*state*/) {}
};

// Makes the limiter for `config` (which must be valid). `last_grant` is the
// nominal time of the throttle's last grant under a previous configuration
// (absl::InfinitePast() if none): the new limiter treats it as its own last
// grant, so a reconfiguration does not open a burst. The unbounded limiter
// starts accruing credit at its first Resume. With config.WarmUpApplies()
// the limiter follows `ramp` (none by default) and later ones set by
// BeginWarmUp; its saved state is in real time whatever the ramp.
std::unique_ptr<Limiter> MakeLimiter(const ThrottleConfig& config,
                                     absl::Time last_grant,
                                     const WarmUp& ramp = WarmUp());

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_CORE_LIMITER_H_
