// Warm-up ramps under a fake clock: the grants follow the linear curve, the
// mode's bound holds at every point of the ramp, and Stop/Start, Configure,
// Save/Restore and stalls of the refill loop keep both.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/scheduler.h"
#include "tests/core/scheduler_test_util.h"

namespace throttle::server {
namespace {

using testing::Config;
using testing::kT0;
using testing::MaxInWindow;
using testing::TimesOf;

constexpr Mode kLimitedModes[] = {Mode::kSmooth, Mode::kWindow, Mode::kBucket,
                                  Mode::kUnbounded};

ThrottleConfig WarmConfig(int64_t max_n, Mode mode, absl::Duration warm_up,
                          double from) {
  ThrottleConfig config = Config(max_n, absl::Seconds(1), mode);
  config.warm_up = warm_up;
  config.warm_up_from = from;
  return config;
}

// The curve, written out independently of the code under test: grants a
// ramp of `rate` per second from `from` over `length`, started at `start`,
// allows in [start, start + x), for x >= 0 (the full rate after the ramp).
double CurveGrants(double rate, double from, absl::Duration length,
                   absl::Duration x) {
  const double w = absl::ToDoubleSeconds(length);
  const double s = std::max(0.0, absl::ToDoubleSeconds(x));
  if (s >= w) return rate * (from * w + (1 - from) * w / 2 + (s - w));
  return rate * (from * s + (1 - from) * s * s / (2 * w));
}

// Grants the curve allows in [a, b).
struct Curve {
  double rate;
  double from;
  absl::Duration length;
  absl::Time start;
  double Between(absl::Time a, absl::Time b) const {
    return CurveGrants(rate, from, length, b - start) -
           CurveGrants(rate, from, length, a - start);
  }
};

// Grants in [a, b) of the sorted `times`.
int64_t CountIn(const std::vector<absl::Time>& times, absl::Time a,
                absl::Time b) {
  return std::lower_bound(times.begin(), times.end(), b) -
         std::lower_bound(times.begin(), times.end(), a);
}

// Expects each slice [from + i * slice, from + (i + 1) * slice) before
// `to` to hold the curve's grants, within one.
void ExpectSlicesFollow(const std::vector<absl::Time>& times,
                        const Curve& curve, absl::Time from, absl::Time to,
                        absl::Duration slice = absl::Seconds(1)) {
  for (absl::Time a = from; a < to; a += slice) {
    EXPECT_NEAR(static_cast<double>(CountIn(times, a, a + slice)),
                curve.Between(a, a + slice), 1.0)
        << "slice from " << (a - curve.start) << " into the ramp";
  }
}

// The most any window [t, t + per) starting at a grant and ending by
// `until` holds beyond what the curve allows in it (the windows that hold
// most start at a grant).
double WorstExcess(const std::vector<absl::Time>& sorted, absl::Duration per,
                   const Curve& curve,
                   absl::Time until = absl::InfiniteFuture()) {
  double worst = -std::numeric_limits<double>::infinity();
  size_t hi = 0;
  for (size_t lo = 0; lo < sorted.size() && sorted[lo] + per <= until; ++lo) {
    hi = std::max(hi, lo);
    while (hi < sorted.size() && sorted[hi] < sorted[lo] + per) ++hi;
    const double allowed = curve.Between(sorted[lo], sorted[lo] + per);
    worst = std::max(worst, static_cast<double>(hi - lo) - allowed);
  }
  return worst;
}

// One throttle with a count-0 stream always waiting, advanced in steps.
class Ramp {
 public:
  explicit Ramp(const ThrottleConfig& config)
      : scheduler_(std::make_unique<Scheduler>(config)) {}

  Scheduler& scheduler() { return *scheduler_; }
  void Start(absl::Time now) {
    ASSERT_TRUE(scheduler_->Start(now).ok());
    OpenForever(now);
  }
  void OpenForever(absl::Time now) {
    StreamRequest forever;
    forever.count = 0;
    scheduler_->Open(forever, now, &events_);
  }
  void Stop(absl::Time now) {
    ASSERT_TRUE(scheduler_->Stop(now, &events_).ok());
  }
  // Advances every `step` from now_ + step up to `until`.
  void AdvanceTo(absl::Time until, absl::Duration step) {
    while (now_ + step <= until) {
      now_ += step;
      scheduler_->Advance(now_, &events_);
    }
  }
  void set_now(absl::Time now) { now_ = now; }
  // Events so far (a spaced run of grants is one).
  size_t events() const { return events_.size(); }
  // One Advance at `now`; returns the grants it made.
  int64_t AdvanceAt(absl::Time now) {
    const size_t before = events_.size();
    now_ = now;
    scheduler_->Advance(now, &events_);
    int64_t grants = 0;
    for (size_t i = before; i < events_.size(); ++i)
      grants += events_[i].grants;
    return grants;
  }
  // Every grant so far, sorted.
  std::vector<absl::Time> Times() const {
    std::vector<absl::Time> times = TimesOf(events_);
    std::sort(times.begin(), times.end());
    return times;
  }
  // Replaces the scheduler by one restored from its saved state at `now`,
  // as a server taking over does.
  void SaveAndRestore(absl::Time now) {
    const SchedulerState saved = scheduler_->Save();
    auto restored = std::make_unique<Scheduler>(scheduler_->config());
    restored->Restore(saved, 0, now);
    scheduler_ = std::move(restored);
    OpenForever(now);
  }

 private:
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<StreamEvent> events_;
  absl::Time now_ = kT0;
};

TEST(WarmUpTest, EachSliceOfTheRampFollowsTheCurveInEveryMode) {
  for (Mode mode : kLimitedModes) {
    SCOPED_TRACE(ModeName(mode));
    const absl::Duration warm_up = absl::Seconds(10);
    Ramp ramp(WarmConfig(1000, mode, warm_up, 0.25));
    ramp.Start(kT0);
    ramp.AdvanceTo(kT0 + absl::Seconds(13), absl::Milliseconds(1));
    const std::vector<absl::Time> times = ramp.Times();
    const Curve curve{1000, 0.25, warm_up, kT0};
    // Slices of half a second: during the ramp, and at the full rate after.
    ExpectSlicesFollow(times, curve, kT0, kT0 + absl::Seconds(13),
                       absl::Milliseconds(500));
    // The first slice is well below the full rate, the last ones at it.
    EXPECT_LT(CountIn(times, kT0, kT0 + absl::Seconds(1)), 300);
    EXPECT_EQ(CountIn(times, kT0 + absl::Seconds(11), kT0 + absl::Seconds(12)),
              1000);
    // The mode's bound at every point: never more than max_n in any window
    // of per, nor (within one grant) more than the ramped rate allows.
    EXPECT_LE(MaxInWindow(times, absl::Seconds(1)), 1000);
    EXPECT_LE(WorstExcess(times, absl::Seconds(1), curve), 1.0);
  }
}

TEST(WarmUpTest, AFullBucketAtStartDoesNotDefeatTheRamp) {
  // A bucket of 5000 that is full at Start (nothing granted yet) would
  // hand out 5000 at once; the ramp starts it empty.
  ThrottleConfig config =
      WarmConfig(1000, Mode::kBucket, absl::Seconds(10), 0.1);
  config.burst = 5000;
  Ramp ramp(config);
  ramp.Start(kT0);
  ramp.AdvanceTo(kT0 + absl::Seconds(1), absl::Milliseconds(1));
  const double allowed = Curve{1000, 0.1, absl::Seconds(10), kT0}.Between(
      kT0, kT0 + absl::Seconds(1));
  EXPECT_LE(static_cast<double>(ramp.Times().size()), allowed + 1);
}

TEST(WarmUpTest, WithoutWarmUpTheRateIsFullFromTheStart) {
  // The control: the same throttle without a warm-up grants its full rate
  // in the first second, so the curve test above measures the ramp.
  Ramp ramp(WarmConfig(1000, Mode::kSmooth, absl::ZeroDuration(), 0));
  ramp.Start(kT0);
  ramp.AdvanceTo(kT0 + absl::Seconds(1), absl::Milliseconds(1));
  EXPECT_GE(CountIn(ramp.Times(), kT0, kT0 + absl::Seconds(1)), 999);
  EXPECT_EQ(ramp.scheduler().RateFraction(kT0), 1.0);
}

TEST(WarmUpTest, RateFractionFollowsTheRampAndTheDefaultFromIsAThird) {
  Ramp ramp(WarmConfig(1000, Mode::kSmooth, absl::Seconds(30), 0));
  EXPECT_EQ(ramp.scheduler().RateFraction(kT0), 1.0);  // not started
  ramp.Start(kT0);
  EXPECT_NEAR(ramp.scheduler().RateFraction(kT0), 1.0 / 3, 1e-9);
  EXPECT_NEAR(ramp.scheduler().RateFraction(kT0 + absl::Seconds(15)), 2.0 / 3,
              1e-9);
  EXPECT_EQ(ramp.scheduler().RateFraction(kT0 + absl::Seconds(30)), 1.0);
}

TEST(WarmUpTest, AShortStopGoesOnWithTheRampALongOneStartsANewRamp) {
  const absl::Duration warm_up = absl::Seconds(10);
  Ramp ramp(WarmConfig(1000, Mode::kSmooth, warm_up, 0.25));
  const Curve first{1000, 0.25, warm_up, kT0};
  ramp.Start(kT0);
  ramp.AdvanceTo(kT0 + absl::Seconds(4), absl::Milliseconds(1));
  // Stopped for 2 s (< warm_up): the ramp goes on by the clock.
  ramp.Stop(kT0 + absl::Seconds(4));
  ramp.set_now(kT0 + absl::Seconds(6));
  ramp.Start(kT0 + absl::Seconds(6));
  ramp.AdvanceTo(kT0 + absl::Seconds(20), absl::Milliseconds(1));
  std::vector<absl::Time> times = ramp.Times();
  ExpectSlicesFollow(times, first, kT0 + absl::Seconds(6),
                     kT0 + absl::Seconds(12));
  // Stopped for 11 s (>= warm_up): a new ramp from 25% at the Start.
  const absl::Time restart = kT0 + absl::Seconds(31);
  ramp.Stop(kT0 + absl::Seconds(20));
  ramp.set_now(restart);
  ramp.Start(restart);
  ramp.AdvanceTo(restart + absl::Seconds(12), absl::Milliseconds(1));
  times = ramp.Times();
  const Curve second{1000, 0.25, warm_up, restart};
  ExpectSlicesFollow(times, second, restart, restart + absl::Seconds(12));
  // A short stop after the ramp ended: the full rate at once.
  const absl::Time again = restart + absl::Seconds(15);
  ramp.Stop(restart + absl::Seconds(12));
  ramp.set_now(again);
  ramp.Start(again);
  ramp.AdvanceTo(again + absl::Seconds(1), absl::Milliseconds(1));
  EXPECT_NEAR(static_cast<double>(
                  CountIn(ramp.Times(), again, again + absl::Seconds(1))),
              1000, 1.0);
  EXPECT_LE(MaxInWindow(ramp.Times(), absl::Seconds(1)), 1000);
}

TEST(WarmUpTest, ConfigureDuringTheRampGoesOnWithTheNewRate) {
  for (Mode mode : kLimitedModes) {
    SCOPED_TRACE(ModeName(mode));
    const absl::Duration warm_up = absl::Seconds(10);
    Ramp ramp(WarmConfig(1000, mode, warm_up, 0.25));
    ramp.Start(kT0);
    ramp.AdvanceTo(kT0 + absl::Seconds(5), absl::Milliseconds(1));
    // Doubled at 5 s: the ramp goes on from its start at the new rate.
    ramp.scheduler().Configure(WarmConfig(2000, mode, warm_up, 0.25),
                               kT0 + absl::Seconds(5));
    ramp.AdvanceTo(kT0 + absl::Seconds(12), absl::Milliseconds(1));
    const std::vector<absl::Time> times = ramp.Times();
    const Curve doubled{2000, 0.25, warm_up, kT0};
    ExpectSlicesFollow(times, doubled, kT0 + absl::Seconds(6),
                       kT0 + absl::Seconds(12));
    // After the ramp, a longer warm_up does not bring it back.
    ThrottleConfig longer = WarmConfig(2000, mode, absl::Seconds(100), 0.25);
    ramp.scheduler().Configure(longer, kT0 + absl::Seconds(12));
    EXPECT_EQ(ramp.scheduler().RateFraction(kT0 + absl::Seconds(13)), 1.0);
    ramp.AdvanceTo(kT0 + absl::Seconds(14), absl::Milliseconds(1));
    EXPECT_NEAR(
        static_cast<double>(CountIn(ramp.Times(), kT0 + absl::Seconds(13),
                                    kT0 + absl::Seconds(14))),
        2000, 1.0);
  }
}

TEST(WarmUpTest, ConfiguringTheWarmUpAwayEndsTheRamp) {
  Ramp ramp(WarmConfig(1000, Mode::kSmooth, absl::Seconds(10), 0.25));
  ramp.Start(kT0);
  ramp.AdvanceTo(kT0 + absl::Seconds(2), absl::Milliseconds(1));
  ramp.scheduler().Configure(
      WarmConfig(1000, Mode::kSmooth, absl::ZeroDuration(), 0),
      kT0 + absl::Seconds(2));
  ramp.AdvanceTo(kT0 + absl::Seconds(4), absl::Milliseconds(1));
  EXPECT_NEAR(static_cast<double>(CountIn(ramp.Times(), kT0 + absl::Seconds(3),
                                          kT0 + absl::Seconds(4))),
              1000, 1.0);
}

TEST(WarmUpTest, ARestoreMidRampGoesOnWithTheRamp) {
  for (Mode mode : kLimitedModes) {
    SCOPED_TRACE(ModeName(mode));
    const absl::Duration warm_up = absl::Seconds(10);
    Ramp ramp(WarmConfig(1000, mode, warm_up, 0.25));
    ramp.Start(kT0);
    ramp.AdvanceTo(kT0 + absl::Seconds(4), absl::Milliseconds(1));
    // Another server takes over at 4 s from the state saved then.
    ramp.SaveAndRestore(kT0 + absl::Seconds(4));
    EXPECT_NEAR(ramp.scheduler().RateFraction(kT0 + absl::Seconds(4)),
                0.25 + 0.75 * 0.4, 1e-9);
    ramp.AdvanceTo(kT0 + absl::Seconds(12), absl::Milliseconds(1));
    const std::vector<absl::Time> times = ramp.Times();
    const Curve curve{1000, 0.25, warm_up, kT0};
    ExpectSlicesFollow(times, curve, kT0 + absl::Seconds(4),
                       kT0 + absl::Seconds(12));
    EXPECT_LE(MaxInWindow(times, absl::Seconds(1)), 1000);
    EXPECT_LE(WorstExcess(times, absl::Seconds(1), curve), 1.0);
  }
}

TEST(WarmUpTest, RandomStallsOfTheLoopKeepTheBound) {
  // A refill loop that stalls at random for up to 50 ms, at 20,000/s with
  // the default catch-up (10 ms): no window of real time holds more than
  // the ramped rate allows plus the catch-up's grants (1% of max_n), nor
  // more than max_n plus those (smooth; window and bucket may burst after
  // a stall by design, their bound is on the nominal schedule); unbounded
  // mode, which catches up by design, never gets ahead of the curve's
  // total and catches up to it.
  const int64_t max_n = 20'000;
  const absl::Duration warm_up = absl::Seconds(3);
  for (Mode mode : kLimitedModes) {
    for (uint32_t seed = 1; seed <= 3; ++seed) {
      SCOPED_TRACE(::testing::Message() << ModeName(mode) << " seed " << seed);
      Ramp ramp(WarmConfig(max_n, mode, warm_up, 0.2));
      ramp.Start(kT0);
      const Curve curve{static_cast<double>(max_n), 0.2, warm_up, kT0};
      std::mt19937 gen(seed);
      std::vector<absl::Time> made;  // the real time each grant was made
      absl::Time t = kT0;
      while (t < kT0 + absl::Seconds(5)) {
        const bool stall = std::uniform_int_distribution<int>(0, 999)(gen) < 3;
        t += stall ? absl::Milliseconds(
                         std::uniform_int_distribution<int>(11, 50)(gen))
                   : absl::Microseconds(
                         std::uniform_int_distribution<int>(50, 500)(gen));
        made.insert(made.end(), ramp.AdvanceAt(t), t);
        if (mode == Mode::kUnbounded) {
          ASSERT_LE(static_cast<double>(made.size()),
                    curve.Between(kT0, t) + 1);
        }
      }
      if (mode == Mode::kUnbounded) {
        EXPECT_GE(static_cast<double>(made.size()), curve.Between(kT0, t) - 1);
        continue;
      }
      const std::vector<absl::Time> nominal = ramp.Times();
      if (mode == Mode::kBucket) {
        // A stall is idle time to a bucket: it refills, at the ramped rate,
        // up to its capacity (here max_n), and bursts that.
        EXPECT_LE(WorstExcess(nominal, absl::Seconds(1), curve), max_n + 1);
        continue;
      }
      // The nominal schedule keeps the bound exactly: max_n in any window,
      // and within the ramp what the ramped rate allows. (A window throttle
      // that missed grants in a stall late in the ramp has room in its
      // window when the ramp ends, and bursts then, as window mode does.)
      EXPECT_LE(MaxInWindow(nominal, absl::Seconds(1)), max_n);
      EXPECT_LE(WorstExcess(nominal, absl::Seconds(1), curve,
                            mode == Mode::kWindow ? kT0 + warm_up
                                                  : absl::InfiniteFuture()),
                1.0);
      if (mode == Mode::kSmooth) {
        // In real time, plus what the catch-up hands out late.
        EXPECT_LE(WorstExcess(made, absl::Seconds(1), curve), max_n / 100 + 1);
        EXPECT_LE(MaxInWindow(made, absl::Seconds(1)), max_n + max_n / 100 + 1);
      }
    }
  }
}

TEST(WarmUpTest, ALateLoopCatchesUpTheRampInOneSpacedRun) {
  // At a million per second a loop 10 ms late owes some 5,000 grants: they
  // go out as a few spaced runs, not one step each, never ahead of the
  // curve and short of it by a hair (each run is spaced at its start).
  for (Mode mode : {Mode::kSmooth, Mode::kBucket, Mode::kUnbounded}) {
    SCOPED_TRACE(ModeName(mode));
    const absl::Duration warm_up = absl::Seconds(10);
    Ramp ramp(WarmConfig(1'000'000, mode, warm_up, 0.5));
    ramp.Start(kT0);
    ramp.AdvanceAt(kT0);
    ramp.AdvanceAt(kT0 + absl::Milliseconds(5));
    const int64_t made = ramp.AdvanceAt(kT0 + absl::Milliseconds(10));
    EXPECT_GT(made, 2000);
    EXPECT_LE(ramp.events(), 8u);
    const double allowed = Curve{1e6, 0.5, warm_up, kT0}.Between(
        kT0, kT0 + absl::Milliseconds(10));
    const double got = static_cast<double>(ramp.Times().size());
    EXPECT_LE(got, allowed + 1);
    EXPECT_GE(got, allowed - 5);
  }
}

// Whether `sorted` conforms to a token bucket of `burst` refilled at
// max_n per `per` that starts full, to the nanosecond and below: the
// generic cell rate algorithm in units of per / max_n, exact (as the
// scheduler fuzzer checks it).
bool ConformsToBucket(const std::vector<absl::Time>& sorted, int64_t max_n,
                      absl::Duration per, int64_t burst) {
  const absl::Duration tolerance = (burst - 1) * per;
  absl::Duration tat = -absl::InfiniteDuration();
  for (absl::Time at : sorted) {
    const absl::Duration scaled = (at - kT0) * max_n;
    if (scaled < tat - tolerance) return false;
    tat = std::max(tat, scaled) + per;
  }
  return true;
}

TEST(WarmUpTest, GrantsAroundTheRampsEndKeepTheBoundToTheNanosecond) {
  // Found by the scheduler fuzzer: the ramp's clock is computed in doubles
  // and rounded, and a grant made after the ramp came 0.34 ns too early
  // after a burst at its end (17 per 3 ms, burst 7, a ramp of 3 ms).
  ThrottleConfig config =
      WarmConfig(17, Mode::kBucket, absl::Milliseconds(3), 0);
  config.per = absl::Milliseconds(3);
  config.burst = 7;
  for (double late_ns : {3'175'463.0, 3'175'000.0, 3'100'000.5, 2'999'999.25}) {
    Ramp ramp(config);
    ramp.Start(kT0);
    ramp.AdvanceAt(kT0);
    ramp.AdvanceAt(kT0 + absl::Nanoseconds(late_ns));
    ramp.AdvanceAt(kT0 + absl::Microseconds(6373.647));
    ramp.AdvanceAt(kT0 + absl::Microseconds(10030.583));
    const std::vector<absl::Time> times = ramp.Times();
    EXPECT_GE(times.size(), 10u);
    EXPECT_TRUE(ConformsToBucket(times, config.max_n, config.per, config.burst))
        << "late " << late_ns << " ns";
  }
}

TEST(WarmUpTest, ANewRampAfterStopsInventsNoUnboundedCredit) {
  // Found by the scheduler fuzzer: an unbounded throttle, 1 per second,
  // ramps from 1/32 over 3 s at each Start after a stop of 3 s or more.
  // Its credit is what the running time earned on the ramps' clocks; a
  // new ramp took the old one's lag for credit, and granted at once.
  ThrottleConfig config =
      WarmConfig(1, Mode::kUnbounded, absl::Seconds(3), 1.0 / 32);
  Ramp ramp(config);
  ramp.Start(kT0);
  ramp.AdvanceTo(kT0 + absl::Milliseconds(8180), absl::Milliseconds(10));
  ramp.Stop(kT0 + absl::Milliseconds(8180));
  const size_t first_run = ramp.Times().size();
  for (int64_t ms : {15965, 19856, 23747}) {  // stops of 7.8 s, then 3.9 s
    ramp.set_now(kT0 + absl::Milliseconds(ms));
    ramp.Start(kT0 + absl::Milliseconds(ms));
    ramp.AdvanceAt(kT0 + absl::Milliseconds(ms));
    ramp.Stop(kT0 + absl::Milliseconds(ms));
  }
  // 8.18 s of running earns grants 0..8 at most at the full rate; on the
  // first ramp's clock 6.7 s passed: grants 0..6, all made in the first
  // run, and none since.
  EXPECT_EQ(first_run, 7u);
  EXPECT_EQ(ramp.Times().size(), 7u);
}

TEST(WarmUpTest, MonitorOnlyIgnoresTheWarmUp) {
  ThrottleConfig config =
      WarmConfig(10, Mode::kMonitorOnly, absl::Seconds(10), 0.1);
  Scheduler scheduler(config);
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  StreamRequest hundred;
  hundred.count = 100;
  scheduler.Open(hundred, kT0, &events);
  scheduler.Advance(kT0, &events);
  EXPECT_EQ(TimesOf(events).size(), 100u);
  EXPECT_EQ(scheduler.RateFraction(kT0), 1.0);
}

TEST(WarmUpTest, HasFuelFollowsTheRamp) {
  const absl::Duration warm_up = absl::Seconds(10);
  Scheduler scheduler(WarmConfig(1000, Mode::kSmooth, warm_up, 0.25));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  int64_t granted = 0;
  // Polled every 10 us: HasFuel takes a grant only when asked, so each
  // one is up to a poll late (and the next spaced from it).
  for (absl::Time t = kT0; t < kT0 + absl::Seconds(1);
       t += absl::Microseconds(10)) {
    granted += scheduler.HasFuel(t).granted ? 1 : 0;
  }
  const Curve curve{1000, 0.25, warm_up, kT0};
  EXPECT_NEAR(static_cast<double>(granted),
              curve.Between(kT0, kT0 + absl::Seconds(1)), 1.5);
}

TEST(WarmUpTest, ATinyStartingFractionAndTheLongestRampCostLittle) {
  // warm_up_from near 0 and a 30-day ramp: the clock's inverse stays
  // exact and cheap; the first grants come slowly but do come.
  Ramp ramp(WarmConfig(1000, Mode::kSmooth, kMaxWarmUp, 1e-12));
  ramp.Start(kT0);
  ramp.AdvanceTo(kT0 + absl::Seconds(100), absl::Milliseconds(10));
  const double allowed = Curve{1000, 1e-12, kMaxWarmUp, kT0}.Between(
      kT0, kT0 + absl::Seconds(100));
  EXPECT_NEAR(static_cast<double>(ramp.Times().size()), allowed, 1.0);
  EXPECT_GE(ramp.Times().size(), 1u);
}

TEST(WarmUpTest, ValidateConfigChecksTheWarmUpFields) {
  ThrottleConfig config = WarmConfig(10, Mode::kSmooth, absl::Seconds(1), 0.5);
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.warm_up = kMaxWarmUp;
  config.warm_up_from = 1;
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.warm_up_from = 0;  // the default, 1/3
  EXPECT_TRUE(ValidateConfig(config).ok());

  config.warm_up = -absl::Seconds(1);
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "config.warm_up must be in [0, 30 days], got -1s");
  config.warm_up = kMaxWarmUp + absl::Seconds(1);
  status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "config.warm_up must be in [0, 30 days], got 720h1s");

  config.warm_up = absl::Seconds(1);
  for (double bad : {-0.5, 1.5, std::nan("")}) {
    config.warm_up_from = bad;
    status = ValidateConfig(config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("config.warm_up_from must be in (0, 1]"),
              absl::string_view::npos)
        << status.message();
  }
  config.warm_up_from = 1.5;
  EXPECT_EQ(std::string(ValidateConfig(config).message()),
            "config.warm_up_from must be in (0, 1] (0 = 1/3), got 1.5");
}

}  // namespace
}  // namespace throttle::server
