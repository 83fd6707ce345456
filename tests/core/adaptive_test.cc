// The adaptive ceiling under a fake clock: the AIMD steps, the clamps, the
// minimum of outcomes, windows without reports, a simulated downstream
// whose limit changes, and the mode's window bound through every rate
// change the scheduler applies.
#include "server/core/adaptive.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/core/scheduler.h"
#include "tests/core/scheduler_test_util.h"

namespace throttle::server {
namespace {

using testing::Config;
using testing::kT0;
using testing::TimesOf;

AdaptiveConfig Aimd(int64_t floor_n, double target, int64_t increase_n,
                    double factor, int64_t min_outcomes) {
  AdaptiveConfig config;
  config.floor_n = floor_n;
  config.target_rejection_ratio = target;
  config.window = absl::Seconds(1);
  config.increase_n = increase_n;
  config.decrease_factor = factor;
  config.min_outcomes = min_outcomes;
  return config;
}

TEST(AdaptiveControllerTest, StartsAtTheCeiling) {
  AdaptiveController controller(Aimd(10, 0.1, 5, 0.5, 1), 100, kT0);
  EXPECT_EQ(controller.rate_n(), 100);
  EXPECT_EQ(controller.NextEvaluation(), kT0 + absl::Seconds(1));
}

TEST(AdaptiveControllerTest, DecreasesMultiplicativelyAboveTheTarget) {
  AdaptiveController controller(Aimd(10, 0.1, 5, 0.7, 1), 100, kT0);
  // 11 of 100 rejected: above 0.1.
  EXPECT_FALSE(controller.Report(89, 11, kT0 + absl::Milliseconds(500)));
  EXPECT_EQ(controller.rate_n(), 100);  // not before the window ends
  EXPECT_TRUE(controller.Evaluate(kT0 + absl::Seconds(1)));
  EXPECT_EQ(controller.rate_n(), 70);
  controller.Report(0, 1, kT0 + absl::Milliseconds(1500));
  EXPECT_TRUE(controller.Evaluate(kT0 + absl::Seconds(2)));
  EXPECT_EQ(controller.rate_n(), 49);
  controller.Report(0, 1, kT0 + absl::Milliseconds(2500));
  EXPECT_TRUE(controller.Evaluate(kT0 + absl::Seconds(3)));
  EXPECT_EQ(controller.rate_n(), 34);  // 34.3 rounded down
}

TEST(AdaptiveControllerTest, IncreasesAdditivelyAtOrBelowTheTarget) {
  AdaptiveController controller(Aimd(10, 0.1, 5, 0.5, 1), 100, kT0);
  controller.Report(0, 10, kT0);
  controller.Evaluate(kT0 + absl::Seconds(1));
  ASSERT_EQ(controller.rate_n(), 50);
  // Exactly at the target (10 of 100) is not above it.
  controller.Report(90, 10, kT0 + absl::Seconds(1));
  EXPECT_TRUE(controller.Evaluate(kT0 + absl::Seconds(2)));
  EXPECT_EQ(controller.rate_n(), 55);
  controller.Report(7, 0, kT0 + absl::Seconds(2));
  EXPECT_TRUE(controller.Evaluate(kT0 + absl::Seconds(3)));
  EXPECT_EQ(controller.rate_n(), 60);
}

TEST(AdaptiveControllerTest, ClampsToTheFloorAndTheCeiling) {
  AdaptiveController controller(Aimd(40, 0.1, 30, 0.5, 1), 100, kT0);
  controller.Report(0, 5, kT0);
  controller.Evaluate(kT0 + absl::Seconds(1));
  EXPECT_EQ(controller.rate_n(), 50);
  controller.Report(0, 5, kT0 + absl::Seconds(1));
  controller.Evaluate(kT0 + absl::Seconds(2));
  EXPECT_EQ(controller.rate_n(), 40);  // 25 held at the floor
  controller.Report(0, 5, kT0 + absl::Seconds(2));
  EXPECT_FALSE(controller.Evaluate(kT0 + absl::Seconds(3)));
  EXPECT_EQ(controller.rate_n(), 40);
  for (int s = 3; s < 6; ++s) {
    controller.Report(5, 0, kT0 + absl::Seconds(s));
    controller.Evaluate(kT0 + absl::Seconds(s + 1));
  }
  EXPECT_EQ(controller.rate_n(), 100);  // 40 + 90 held at the ceiling
}

TEST(AdaptiveControllerTest, FewerOutcomesThanTheMinimumChangeNothing) {
  AdaptiveController controller(Aimd(1, 0.1, 5, 0.5, 10), 100, kT0);
  controller.Report(0, 5, kT0);
  controller.Report(0, 4, kT0 + absl::Milliseconds(900));
  EXPECT_FALSE(controller.Evaluate(kT0 + absl::Seconds(1)));
  EXPECT_EQ(controller.rate_n(), 100);
  // The nine did not carry over: the next window starts from none.
  controller.Report(0, 9, kT0 + absl::Milliseconds(1100));
  EXPECT_FALSE(controller.Evaluate(kT0 + absl::Seconds(2)));
  EXPECT_EQ(controller.rate_n(), 100);
  // Ten outcomes from several reports are enough.
  controller.Report(0, 6, kT0 + absl::Milliseconds(2100));
  controller.Report(0, 4, kT0 + absl::Milliseconds(2200));
  EXPECT_TRUE(controller.Evaluate(kT0 + absl::Seconds(3)));
  EXPECT_EQ(controller.rate_n(), 50);
}

TEST(AdaptiveControllerTest, WindowsWithoutReportsChangeNothingAndCostOneStep) {
  AdaptiveController controller(Aimd(1, 0.1, 5, 0.5, 1), 100, kT0);
  controller.Report(0, 1, kT0);
  // A long silence: the first window decides, the billion after it had
  // nothing to say, and the next window begins at a whole window.
  const absl::Time late =
      kT0 + absl::Seconds(1'000'000'000) + absl::Milliseconds(300);
  EXPECT_TRUE(controller.Evaluate(late));
  EXPECT_EQ(controller.rate_n(), 50);
  EXPECT_EQ(controller.NextEvaluation(), kT0 + absl::Seconds(1'000'000'001));
  EXPECT_FALSE(controller.Evaluate(controller.NextEvaluation()));
  EXPECT_EQ(controller.rate_n(), 50);
}

TEST(AdaptiveControllerTest, AReportAfterTheWindowEndedCountsInTheNextOne) {
  AdaptiveController controller(Aimd(1, 0.1, 5, 0.5, 1), 100, kT0);
  controller.Report(10, 0, kT0);
  // Arrives after the end: the first window (no rejections) closes first.
  EXPECT_FALSE(controller.Report(0, 10, kT0 + absl::Seconds(1)));
  EXPECT_EQ(controller.rate_n(), 100);  // +5 held at the ceiling
  EXPECT_TRUE(controller.Evaluate(kT0 + absl::Seconds(2)));
  EXPECT_EQ(controller.rate_n(), 50);
}

TEST(AdaptiveControllerTest, ConfigureClampsTheRateIntoTheNewRange) {
  AdaptiveController controller(Aimd(1, 0.1, 5, 0.5, 1), 100, kT0);
  EXPECT_TRUE(controller.Configure(Aimd(1, 0.1, 5, 0.5, 1), 60, kT0));
  EXPECT_EQ(controller.rate_n(), 60);
  EXPECT_TRUE(controller.Configure(Aimd(80, 0.1, 5, 0.5, 1), 200, kT0));
  EXPECT_EQ(controller.rate_n(), 80);
  EXPECT_FALSE(controller.Configure(Aimd(10, 0.1, 5, 0.5, 1), 200, kT0));
  EXPECT_EQ(controller.rate_n(), 80);
}

TEST(AdaptiveControllerTest, SaveAndRestoreKeepTheRateAndTheWindow) {
  AdaptiveController first(Aimd(1, 0.1, 5, 0.5, 1), 100, kT0);
  first.Report(0, 1, kT0);
  first.Evaluate(kT0 + absl::Seconds(1));
  first.Report(3, 7, kT0 + absl::Milliseconds(1500));
  const AdaptiveState saved = first.Save();
  AdaptiveController second(Aimd(1, 0.1, 5, 0.5, 1), 100,
                            kT0 + absl::Seconds(1.6));
  second.Restore(saved, kT0 + absl::Seconds(1.6));
  EXPECT_EQ(second.rate_n(), 50);
  EXPECT_EQ(second.NextEvaluation(), kT0 + absl::Seconds(2));
  EXPECT_TRUE(second.Evaluate(kT0 + absl::Seconds(2)));
  EXPECT_EQ(second.rate_n(), 25);
  // A window start from the future (another server's clock) restarts now.
  AdaptiveState future = saved;
  future.window_start = kT0 + absl::Hours(5);
  second.Restore(future, kT0 + absl::Seconds(3));
  EXPECT_EQ(second.NextEvaluation(), kT0 + absl::Seconds(4));
}

TEST(AdaptiveConfigTest, RejectsEachFieldOutOfRangeNamingIt) {
  struct Case {
    AdaptiveConfig config;
    const char* message;
  };
  AdaptiveConfig ok = Aimd(1, 0.1, 5, 0.5, 1);
  EXPECT_TRUE(ValidateAdaptiveConfig(ok, 100).ok());
  std::vector<Case> cases;
  AdaptiveConfig c = ok;
  c.floor_n = 101;
  cases.push_back({c,
                   "config.adaptive.floor_n must be in [1, max_n = 100], "
                   "got 101"});
  c = ok;
  c.floor_n = 0;
  cases.push_back({c,
                   "config.adaptive.floor_n must be in [1, max_n = 100], "
                   "got 0"});
  c = ok;
  c.target_rejection_ratio = 1;
  cases.push_back(
      {c, "config.adaptive.target_rejection_ratio must be in (0, 1), got 1"});
  c = ok;
  c.window = absl::ZeroDuration();
  cases.push_back({c, "config.adaptive.window must be in (0, 1h], got 0"});
  c = ok;
  c.increase_n = 0;
  cases.push_back({c,
                   "config.adaptive.increase_n must be in [1, max_n = "
                   "100], got 0"});
  c = ok;
  c.decrease_factor = 1;
  cases.push_back(
      {c, "config.adaptive.decrease_factor must be in (0, 1), got 1"});
  c = ok;
  c.min_outcomes = 0;
  cases.push_back(
      {c, "config.adaptive.min_outcomes must be in [1, 1000000], got 0"});
  for (const Case& test : cases) {
    const absl::Status status = ValidateAdaptiveConfig(test.config, 100);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(), test.message);
  }
}

// A throttle with one always-hungry worker whose work goes to a
// downstream that accepts at most `limit` grants in each second of the
// fake clock and rejects the rest; the worker reports each outcome as it
// happens. The clock runs in 10 ms steps; at each window's end the
// controller decides and the scheduler takes the new rate.
class DownstreamSim {
 public:
  DownstreamSim(Mode mode, int64_t ceiling, const AdaptiveConfig& adaptive)
      : scheduler_(Config(ceiling, absl::Seconds(1), mode)),
        controller_(adaptive, ceiling, kT0),
        now_(kT0) {
    changes_.push_back({kT0, ceiling});
    std::vector<StreamEvent> events;
    EXPECT_TRUE(scheduler_.Start(now_).ok());
    StreamRequest forever;
    forever.count = 0;
    scheduler_.Open(forever, now_, &events);
    Step(events);
  }

  // Runs `seconds` of the fake clock against a downstream limit of `limit`
  // per second.
  void Run(int seconds, int64_t limit) {
    limit_ = limit;
    for (int step = 0; step < seconds * 100; ++step) {
      now_ += absl::Milliseconds(10);
      if (now_ >= controller_.NextEvaluation()) {
        controller_.Evaluate(now_);
        rates_.push_back(controller_.rate_n());
        if (controller_.rate_n() != scheduler_.rate_max_n()) {
          scheduler_.SetRate(controller_.rate_n(), now_);
          changes_.push_back({now_, controller_.rate_n()});
        }
      }
      std::vector<StreamEvent> events;
      Step(events);
    }
  }

  // The rate after each window, in order.
  const std::vector<int64_t>& rates() const { return rates_; }
  // Every grant's nominal time, sorted.
  const std::vector<absl::Time>& grants() const { return grants_; }
  // The rate in effect for a grant at `t`.
  int64_t RateAt(absl::Time t) const {
    int64_t rate = changes_.front().second;
    for (const auto& [at, n] : changes_) {
      if (at <= t) rate = n;
    }
    return rate;
  }
  size_t changes() const { return changes_.size() - 1; }

 private:
  void Step(std::vector<StreamEvent>& events) {
    scheduler_.Advance(now_, &events);
    for (absl::Time t : TimesOf(events)) {
      grants_.push_back(t);
      const int64_t second = absl::ToInt64Seconds(t - kT0);
      if (second != second_) {
        second_ = second;
        accepted_in_second_ = 0;
      }
      const bool accepted = accepted_in_second_ < limit_;
      if (accepted) ++accepted_in_second_;
      controller_.Report(accepted ? 1 : 0, accepted ? 0 : 1, now_);
    }
  }

  Scheduler scheduler_;
  AdaptiveController controller_;
  absl::Time now_;
  int64_t limit_ = 0;
  int64_t second_ = -1;
  int64_t accepted_in_second_ = 0;
  std::vector<int64_t> rates_;
  std::vector<absl::Time> grants_;
  std::vector<std::pair<absl::Time, int64_t>> changes_;
};

// The band the rate oscillates in under a downstream limit L (grants per
// window of one second): it grows while a window's grants G satisfy
// G <= L / (1 - target), so to at most L / (1 - target) + increase (+1
// for a window holding one grant more than its rate), and falls from
// above that to factor x that (-1 for rounding and a window one short).
struct Band {
  int64_t low;
  int64_t high;
};
Band Oscillation(int64_t limit, const AdaptiveConfig& c) {
  const double threshold = limit / (1 - c.target_rejection_ratio);
  return {static_cast<int64_t>((threshold - 1) * c.decrease_factor) - 1,
          static_cast<int64_t>(threshold) + 1 + c.increase_n};
}

TEST(AdaptiveDownstreamTest, RateFollowsADownstreamLimitThatChanges) {
  const AdaptiveConfig aimd = Aimd(10, 0.05, 5, 0.7, 10);
  DownstreamSim sim(Mode::kSmooth, 300, aimd);
  struct Phase {
    int64_t limit;
    // Windows the rate may take to enter the band: log(start / high) /
    // log(1 / factor) + 1 going down, (low - start) / increase + 1 going up.
    size_t converge_windows;
  };
  const Phase phases[] = {{200, 4}, {80, 5}, {150, 12}};
  size_t begin = 0;
  for (const Phase& phase : phases) {
    sim.Run(40, phase.limit);
    const Band band = Oscillation(phase.limit, aimd);
    const std::vector<int64_t>& rates = sim.rates();
    ASSERT_EQ(rates.size(), begin + 40);
    for (size_t w = begin + phase.converge_windows; w < rates.size(); ++w) {
      EXPECT_GE(rates[w], band.low)
          << "limit " << phase.limit << " window " << w - begin;
      EXPECT_LE(rates[w], band.high)
          << "limit " << phase.limit << " window " << w - begin;
    }
    // It oscillates (probes above the limit and backs off), not settles.
    const auto [lo, hi] = std::minmax_element(
        rates.begin() + begin + phase.converge_windows, rates.end());
    EXPECT_LT(*lo, phase.limit);
    EXPECT_GT(*hi, phase.limit);
    begin = rates.size();
  }
}

// Evaluation windows of 0.7 s: rate changes fall inside the throttle's
// windows of one second, not only at their edges.
AdaptiveConfig OffsetAimd() {
  AdaptiveConfig config = Aimd(10, 0.05, 20, 0.5, 10);
  config.window = absl::Milliseconds(700);
  return config;
}

TEST(AdaptiveDownstreamTest, WindowModeNeverExceedsTheRateInEffect) {
  DownstreamSim sim(Mode::kWindow, 300, OffsetAimd());
  sim.Run(30, 200);
  sim.Run(30, 60);
  sim.Run(30, 250);
  ASSERT_GT(sim.changes(), 20u);
  const std::vector<absl::Time>& grants = sim.grants();
  // Every window of one second that ends at a grant holds at most the rate
  // in effect for that grant.
  size_t lo = 0;
  for (size_t hi = 0; hi < grants.size(); ++hi) {
    while (grants[hi] - grants[lo] >= absl::Seconds(1)) ++lo;
    ASSERT_LE(static_cast<int64_t>(hi - lo + 1), sim.RateAt(grants[hi]))
        << "grant " << hi << " at " << grants[hi] - kT0;
  }
}

TEST(AdaptiveDownstreamTest, SmoothModeSpacesEveryGrantAtTheRateInEffect) {
  DownstreamSim sim(Mode::kSmooth, 300, OffsetAimd());
  sim.Run(30, 200);
  sim.Run(30, 60);
  sim.Run(30, 250);
  ASSERT_GT(sim.changes(), 20u);
  const std::vector<absl::Time>& grants = sim.grants();
  for (size_t i = 1; i < grants.size(); ++i) {
    // The limiter's interval, per / max_n rounded to the Duration's tick.
    const absl::Duration gap = absl::Seconds(1) / sim.RateAt(grants[i]);
    ASSERT_GE(grants[i] - grants[i - 1], gap)
        << "grant " << i << " at " << grants[i] - kT0;
  }
}

TEST(AdaptiveDownstreamTest, ARateChangeKeepsOpenStreamsAndBurstsNothing) {
  Scheduler scheduler(Config(100, absl::Seconds(1), Mode::kWindow));
  std::vector<StreamEvent> events;
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  StreamRequest forever;
  forever.count = 0;
  const StreamId id = scheduler.Open(forever, kT0, &events);
  scheduler.Advance(kT0, &events);
  // Window mode bursts its 100 at once.
  ASSERT_EQ(TimesOf(events).size(), 100u);
  events.clear();
  const absl::Time half = kT0 + absl::Milliseconds(500);
  scheduler.SetRate(40, half);
  EXPECT_EQ(scheduler.rate_max_n(), 40);
  EXPECT_EQ(scheduler.config().max_n, 100);
  scheduler.Advance(kT0 + absl::Milliseconds(999), &events);
  EXPECT_TRUE(events.empty());  // the window is still full at 40
  scheduler.Advance(kT0 + absl::Seconds(1), &events);
  ASSERT_EQ(TimesOf(events).size(), 40u);
  for (const StreamEvent& e : events) {
    EXPECT_EQ(e.stream, id);
    EXPECT_EQ(e.end, EndReason::kNone);
  }
  // Configure sets the rate back to the configured max_n.
  scheduler.Configure(Config(100, absl::Seconds(1), Mode::kWindow),
                      kT0 + absl::Seconds(1));
  EXPECT_EQ(scheduler.rate_max_n(), 100);
}

ThrottleConfig AdaptiveThrottle(int64_t max_n, Mode mode) {
  ThrottleConfig config = Config(max_n, absl::Seconds(1), mode);
  config.adaptive = Aimd(10, 0.1, 5, 0.5, 1);
  return config;
}

TEST(SchedulerAdaptiveTest, ReportNeedsAnAdaptiveThrottleThatStarted) {
  Scheduler plain(Config(100, absl::Seconds(1), Mode::kSmooth));
  ASSERT_TRUE(plain.Start(kT0).ok());
  EXPECT_EQ(plain.Report(1, 0, kT0).status().code(),
            absl::StatusCode::kFailedPrecondition);
  Scheduler adaptive(AdaptiveThrottle(100, Mode::kSmooth));
  EXPECT_EQ(adaptive.Report(1, 0, kT0).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(adaptive.Start(kT0).ok());
  absl::StatusOr<int64_t> rate = adaptive.Report(1, 0, kT0);
  ASSERT_TRUE(rate.ok()) << rate.status();
  EXPECT_EQ(*rate, 100);
}

TEST(SchedulerAdaptiveTest, AWindowEndWakesTheSchedulerAndSetsTheRate) {
  Scheduler scheduler(AdaptiveThrottle(100, Mode::kSmooth));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  // Nothing to decide, nothing to wake for.
  EXPECT_EQ(scheduler.NextWakeup(), absl::InfiniteFuture());
  ASSERT_TRUE(scheduler.Report(5, 5, kT0 + absl::Milliseconds(200)).ok());
  EXPECT_EQ(scheduler.NextWakeup(), kT0 + absl::Seconds(1));
  std::vector<StreamEvent> events;
  scheduler.Advance(kT0 + absl::Milliseconds(999), &events);
  EXPECT_EQ(scheduler.rate_max_n(), 100);
  scheduler.Advance(kT0 + absl::Seconds(1), &events);
  EXPECT_EQ(scheduler.rate_max_n(), 50);
  EXPECT_EQ(scheduler.config().max_n, 100);
  EXPECT_EQ(scheduler.NextWakeup(), absl::InfiniteFuture());
  // The grants follow: 50 in the next second, at 20 ms spacing.
  StreamRequest forever;
  forever.count = 0;
  scheduler.Open(forever, kT0 + absl::Seconds(1), &events);
  for (int ms = 1000; ms < 2000; ms += 5) {
    scheduler.Advance(kT0 + absl::Milliseconds(ms), &events);
  }
  const std::vector<absl::Time> times = TimesOf(events);
  EXPECT_EQ(times.size(), 50u);
}

TEST(SchedulerAdaptiveTest, ConfigureKeepsTheRateWithinTheNewRange) {
  Scheduler scheduler(AdaptiveThrottle(100, Mode::kWindow));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  ASSERT_TRUE(scheduler.Report(0, 1, kT0).ok());
  ASSERT_TRUE(scheduler.Report(0, 1, kT0 + absl::Seconds(1)).ok());
  ASSERT_EQ(scheduler.rate_max_n(), 50);
  // A new ceiling below the rate clamps it; a new unrelated field keeps it.
  scheduler.Configure(AdaptiveThrottle(40, Mode::kWindow),
                      kT0 + absl::Seconds(1.5));
  EXPECT_EQ(scheduler.rate_max_n(), 40);
  ThrottleConfig higher = AdaptiveThrottle(400, Mode::kWindow);
  scheduler.Configure(higher, kT0 + absl::Seconds(1.6));
  EXPECT_EQ(scheduler.rate_max_n(), 40);
  // Without `adaptive` the configured rate is back.
  scheduler.Configure(Config(400, absl::Seconds(1), Mode::kWindow),
                      kT0 + absl::Seconds(1.7));
  EXPECT_EQ(scheduler.rate_max_n(), 400);
  EXPECT_EQ(scheduler.Report(0, 1, kT0 + absl::Seconds(1.8)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(SchedulerAdaptiveTest, SaveAndRestoreKeepTheAdaptiveRate) {
  const ThrottleConfig config = AdaptiveThrottle(100, Mode::kWindow);
  Scheduler first(config);
  ASSERT_TRUE(first.Start(kT0).ok());
  ASSERT_TRUE(first.Report(0, 1, kT0).ok());
  std::vector<StreamEvent> events;
  first.Advance(kT0 + absl::Seconds(1), &events);
  ASSERT_EQ(first.rate_max_n(), 50);
  ASSERT_TRUE(first.Report(0, 3, kT0 + absl::Seconds(1.5)).ok());
  const SchedulerState saved = first.Save();
  ASSERT_TRUE(saved.adaptive.has_value());
  Scheduler second(config);
  second.Restore(saved, 0, kT0 + absl::Seconds(1.7));
  EXPECT_EQ(second.rate_max_n(), 50);
  // The window in progress and its outcomes came along.
  EXPECT_EQ(second.NextWakeup(), kT0 + absl::Seconds(2));
  second.Advance(kT0 + absl::Seconds(2), &events);
  EXPECT_EQ(second.rate_max_n(), 25);
}

TEST(SchedulerAdaptiveTest, AStateSavedWithoutAdaptiveStartsAtTheCeiling) {
  // Saved by a server (or a configuration) without the adaptive ceiling.
  Scheduler first(Config(100, absl::Seconds(1), Mode::kSmooth));
  ASSERT_TRUE(first.Start(kT0).ok());
  SchedulerState saved = first.Save();
  ASSERT_FALSE(saved.adaptive.has_value());
  Scheduler second(AdaptiveThrottle(100, Mode::kSmooth));
  second.Restore(saved, 0, kT0 + absl::Seconds(1));
  absl::StatusOr<int64_t> rate = second.Report(0, 1, kT0 + absl::Seconds(1));
  ASSERT_TRUE(rate.ok()) << rate.status();
  EXPECT_EQ(*rate, 100);
}

TEST(SchedulerAdaptiveTest, ValidateConfigChecksAdaptive) {
  ThrottleConfig config = AdaptiveThrottle(100, Mode::kSmooth);
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.adaptive->floor_n = 200;
  EXPECT_EQ(ValidateConfig(config).message(),
            "config.adaptive.floor_n must be in [1, max_n = 100], got 200");
  config = AdaptiveThrottle(100, Mode::kMonitorOnly);
  EXPECT_EQ(ValidateConfig(config).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace throttle::server
