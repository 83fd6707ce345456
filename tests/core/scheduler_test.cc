// Invariants of the scheduler core under a fake clock: rate and window
// bounds of every mode over random arrival and cancel patterns, fairness,
// counts, wait limits, stop, configuration changes and statistics.
#include "server/core/scheduler.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/scheduler_test_util.h"

namespace throttle::server {
namespace {

using testing::Config;
using testing::kT0;
using testing::MaxInWindow;
using testing::TimesOf;

// Drives one scheduler through a random workload: streams arrive, some are
// cancelled, the clock moves to the next wake-up or event, sometimes late
// (as a loaded refill loop would be). Records every grant.
class Simulation {
 public:
  Simulation(const ThrottleConfig& config, uint32_t seed)
      : scheduler_(config), rng_(seed) {}

  Scheduler& scheduler() { return scheduler_; }
  absl::Time now() const { return now_; }
  const std::vector<absl::Time>& grant_times() const { return grant_times_; }
  std::map<StreamId, int64_t>& granted() { return granted_; }
  std::map<StreamId, EndReason>& ended() { return ended_; }

  StreamId Open(const StreamRequest& request) {
    std::vector<StreamEvent> events;
    const StreamId id = scheduler_.Open(request, now_, &events);
    wanted_[id] = request.count;
    Apply(events);
    Advance();
    return id;
  }

  void Advance() {
    std::vector<StreamEvent> events;
    scheduler_.Advance(now_, &events);
    Apply(events);
    // After Advance nothing may be due: its wake-up is in the future.
    EXPECT_GT(scheduler_.NextWakeup(), now_);
  }

  // Moves to the next wake-up, but not past `limit`; `late_by` simulates a
  // late refill loop.
  void RunUntil(absl::Time limit,
                absl::Duration max_late = absl::ZeroDuration()) {
    while (true) {
      absl::Time next = scheduler_.NextWakeup();
      if (next > limit) break;
      if (max_late > absl::ZeroDuration()) {
        std::uniform_int_distribution<int64_t> late(
            0, absl::ToInt64Nanoseconds(max_late));
        next += absl::Nanoseconds(late(rng_));
        next = std::min(next, limit);
      }
      now_ = std::max(now_, next);
      Advance();
    }
    now_ = std::max(now_, limit);
    Advance();
  }

  // Random workload for `duration`: arrivals every ~`gap`, counts 0..4,
  // 20% cancelled after a while.
  void RandomWorkload(absl::Duration duration, absl::Duration gap,
                      absl::Duration max_late) {
    const absl::Time end = now_ + duration;
    std::uniform_int_distribution<int> count(0, 4);
    std::uniform_int_distribution<int> pct(0, 99);
    std::exponential_distribution<double> arrival(1.0 /
                                                  absl::ToDoubleSeconds(gap));
    std::vector<StreamId> open;
    while (now_ < end) {
      const absl::Time next_arrival =
          now_ + absl::Seconds(arrival(rng_)) + absl::Nanoseconds(1);
      RunUntil(std::min(next_arrival, end), max_late);
      if (now_ >= end) break;
      if (pct(rng_) < 20 && !open.empty()) {
        std::uniform_int_distribution<size_t> pick(0, open.size() - 1);
        const size_t i = pick(rng_);
        scheduler_.Close(open[i]);
        cancelled_.insert({open[i], true});
        open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        StreamRequest request;
        request.count = count(rng_);
        open.push_back(Open(request));
      }
    }
  }

  void CheckCounts() {
    for (const auto& [id, n] : granted_) {
      const int64_t want = wanted_[id];
      if (want > 0) {
        EXPECT_LE(n, want) << "stream " << id;
      }
      if (ended_[id] == EndReason::kCountReached) {
        EXPECT_EQ(n, want) << "stream " << id;
      }
    }
  }

 private:
  void Apply(const std::vector<StreamEvent>& events) {
    for (const StreamEvent& e : events) {
      EXPECT_FALSE(ended_.count(e.stream)) << "event after end";
      EXPECT_FALSE(cancelled_.count(e.stream)) << "grant to a cancelled stream";
      if (e.grants > 0) {
        EXPECT_LE(e.granted_at, now_) << "grant before it fell due";
        for (int64_t i = 0; i < e.grants; ++i)
          grant_times_.push_back(e.granted_at + e.spacing * i);
        EXPECT_LE(e.granted_at + e.spacing * (e.grants - 1), now_)
            << "grant before it fell due";
        granted_[e.stream] += e.grants;
      }
      if (e.end != EndReason::kNone) ended_[e.stream] = e.end;
    }
  }

  Scheduler scheduler_;
  std::mt19937 rng_;
  absl::Time now_ = kT0;
  std::vector<absl::Time> grant_times_;
  std::map<StreamId, int64_t> granted_;
  std::map<StreamId, int64_t> wanted_;
  std::map<StreamId, EndReason> ended_;
  std::map<StreamId, bool> cancelled_;
};

std::vector<absl::Time> Sorted(std::vector<absl::Time> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Scheduler, SmoothModeNeverExceedsRatePerWindow) {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    const int64_t max_n = 1 + static_cast<int64_t>(seed % 7) * 3;
    const absl::Duration per = absl::Milliseconds(100 + 37 * seed);
    Simulation sim(Config(max_n, per, Mode::kSmooth), seed);
    ASSERT_TRUE(sim.scheduler().Start(sim.now()).ok());
    sim.RandomWorkload(per * 20, per / max_n, per / max_n / 2);
    const auto times = Sorted(sim.grant_times());
    ASSERT_GT(times.size(), 10u) << "seed " << seed;
    EXPECT_LE(MaxInWindow(times, per), max_n) << "seed " << seed;
    for (size_t i = 1; i < times.size(); ++i) {
      ASSERT_GE(times[i] - times[i - 1], per / max_n) << "seed " << seed;
    }
    sim.CheckCounts();
  }
}

TEST(Scheduler, WindowModeNeverExceedsMaxNInAnySlidingWindow) {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    const int64_t max_n = 1 + static_cast<int64_t>(seed % 5) * 4;
    const absl::Duration per = absl::Milliseconds(250 + 11 * seed);
    Simulation sim(Config(max_n, per, Mode::kWindow), seed);
    ASSERT_TRUE(sim.scheduler().Start(sim.now()).ok());
    sim.RandomWorkload(per * 20, per / max_n / 2, per / 10);
    const auto times = Sorted(sim.grant_times());
    ASSERT_GT(times.size(), 10u);
    EXPECT_EQ(MaxInWindow(times, per), max_n) << "seed " << seed;
    sim.CheckCounts();
  }
}

TEST(Scheduler, WindowModeAllowsBurstOfMaxN) {
  Simulation sim(Config(5, absl::Seconds(1), Mode::kWindow), 1);
  ASSERT_TRUE(sim.scheduler().Start(sim.now()).ok());
  StreamRequest request;
  request.count = 7;
  sim.Open(request);
  EXPECT_EQ(sim.grant_times().size(), 5u);  // all at once
  sim.RunUntil(kT0 + absl::Milliseconds(999));
  EXPECT_EQ(sim.grant_times().size(), 5u);
  sim.RunUntil(kT0 + absl::Seconds(1));
  EXPECT_EQ(sim.grant_times().size(), 7u);
}

TEST(Scheduler, BucketModeHoldsBurstPlusRate) {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    const int64_t max_n = 2 + seed % 6;
    const int64_t burst = 1 + seed % 9;
    const absl::Duration per = absl::Milliseconds(300 + 7 * seed);
    const absl::Duration interval = per / max_n;
    Simulation sim(Config(max_n, per, Mode::kBucket, burst), seed);
    ASSERT_TRUE(sim.scheduler().Start(sim.now()).ok());
    sim.RandomWorkload(per * 20, interval / 3, interval / 2);
    const auto times = Sorted(sim.grant_times());
    ASSERT_GT(times.size(), 10u);
    // In any window [t_i, t_j] at most burst + (t_j - t_i) / interval grants.
    for (size_t i = 0; i < times.size(); ++i) {
      for (size_t j = i; j < times.size() && j < i + 64; ++j) {
        const double allowed =
            static_cast<double>(burst) +
            absl::FDivDuration(times[j] - times[i], interval) + 1e-9;
        ASSERT_LE(static_cast<double>(j - i + 1), allowed)
            << "seed " << seed << " i " << i << " j " << j;
      }
    }
  }
}

TEST(Scheduler, BucketModeStartsFullAndRefillsAtRate) {
  Simulation sim(Config(4, absl::Seconds(1), Mode::kBucket, 10), 1);
  ASSERT_TRUE(sim.scheduler().Start(sim.now()).ok());
  StreamRequest request;
  request.count = 0;
  sim.Open(request);
  EXPECT_EQ(sim.grant_times().size(), 10u);
  sim.RunUntil(kT0 + absl::Seconds(2));
  EXPECT_EQ(sim.grant_times().size(), 18u);
}

TEST(Scheduler, UnboundedModeHoldsMeanRateAndCatchesUp) {
  Simulation sim(Config(10, absl::Seconds(1), Mode::kUnbounded), 1);
  ASSERT_TRUE(sim.scheduler().Start(sim.now()).ok());
  // Idle for 2 s: the credit accumulates...
  sim.RunUntil(kT0 + absl::Seconds(2));
  StreamRequest request;
  request.count = 0;
  sim.Open(request);
  // ...so the waiting stream gets 21 grants at once (slots 0..2 s).
  EXPECT_EQ(sim.grant_times().size(), 21u);
  sim.RunUntil(kT0 + absl::Seconds(10), absl::Milliseconds(30));
  EXPECT_EQ(sim.grant_times().size(), 101u);  // mean rate held exactly
}

TEST(Scheduler, UnboundedModeRandomWorkloadNeverRunsAhead) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const int64_t max_n = 3 + seed % 5;
    const absl::Duration per = absl::Seconds(1);
    Simulation sim(Config(max_n, per, Mode::kUnbounded), seed);
    ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
    sim.RandomWorkload(absl::Seconds(20), per / max_n, absl::Milliseconds(20));
    const auto times = Sorted(sim.grant_times());
    for (size_t k = 0; k < times.size(); ++k) {
      // Grant k never before its slot k * per / max_n.
      ASSERT_GE(times[k], kT0 + per * static_cast<int64_t>(k) / max_n);
    }
  }
}

TEST(Scheduler, MonitorOnlyGrantsEverythingAtOnce) {
  Simulation sim(Config(1, absl::Seconds(1), Mode::kMonitorOnly), 1);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  StreamRequest request;
  request.count = 1000;
  const StreamId id = sim.Open(request);
  EXPECT_EQ(sim.granted()[id], 1000);
  EXPECT_EQ(sim.ended()[id], EndReason::kCountReached);
  EXPECT_EQ(sim.scheduler().total_emissions(), 1000);
}

TEST(Scheduler, MonitorOnlyCountZeroStreamWaitsForDelivery) {
  Simulation sim(Config(1, absl::Seconds(1), Mode::kMonitorOnly), 1);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  StreamRequest request;
  request.count = 0;
  const StreamId id = sim.Open(request);
  EXPECT_EQ(sim.granted()[id], 1);
  sim.Advance();
  EXPECT_EQ(sim.granted()[id], 1);  // parked until delivered
  sim.scheduler().MarkDelivered(id, sim.now());
  sim.Advance();
  EXPECT_EQ(sim.granted()[id], 2);
}

TEST(Scheduler, EqualStreamsShareRoundRobin) {
  for (int k : {2, 3, 7, 50}) {
    Simulation sim(Config(100, absl::Seconds(1), Mode::kSmooth), 1);
    std::vector<StreamId> ids;
    StreamRequest request;
    request.count = 0;
    for (int i = 0; i < k; ++i) ids.push_back(sim.Open(request));
    ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
    sim.RunUntil(kT0 + absl::Milliseconds(10 * 997), absl::Milliseconds(25));
    const int64_t total = static_cast<int64_t>(sim.grant_times().size());
    for (StreamId id : ids) {
      EXPECT_NEAR(static_cast<double>(sim.granted()[id]),
                  static_cast<double>(total) / k, 1.0)
          << "k " << k;
    }
  }
}

TEST(Scheduler, WeightsSetShares) {
  Simulation sim(Config(60, absl::Seconds(1), Mode::kSmooth), 1);
  StreamRequest request;
  request.count = 0;
  const StreamId one = sim.Open(request);
  request.weight = 2;
  const StreamId two = sim.Open(request);
  request.weight = 3;
  const StreamId three = sim.Open(request);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  sim.RunUntil(kT0 + absl::Seconds(10) - absl::Nanoseconds(1));
  // 600 grants in turns of 1 + 2 + 3.
  EXPECT_EQ(sim.grant_times().size(), 600u);
  EXPECT_EQ(sim.granted()[one], 100);
  EXPECT_EQ(sim.granted()[two], 200);
  EXPECT_EQ(sim.granted()[three], 300);
}

TEST(Scheduler, ArrivalOrderIsServiceOrder) {
  Simulation sim(Config(1, absl::Seconds(1), Mode::kSmooth), 1);
  StreamRequest request;  // count 1
  const StreamId a = sim.Open(request);
  const StreamId b = sim.Open(request);
  const StreamId c = sim.Open(request);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  sim.Advance();
  EXPECT_EQ(sim.granted()[a], 1);
  EXPECT_EQ(sim.granted().count(b), 0u);
  sim.RunUntil(kT0 + absl::Seconds(1));
  EXPECT_EQ(sim.granted()[b], 1);
  EXPECT_EQ(sim.granted().count(c), 0u);
}

TEST(Scheduler, CountIsHonouredAndStreamEnds) {
  Simulation sim(Config(10, absl::Seconds(1), Mode::kSmooth), 1);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  StreamRequest request;
  request.count = 3;
  const StreamId id = sim.Open(request);
  sim.RunUntil(kT0 + absl::Seconds(5));
  EXPECT_EQ(sim.granted()[id], 3);
  EXPECT_EQ(sim.ended()[id], EndReason::kCountReached);
  EXPECT_EQ(sim.scheduler().waiting_streams(), 0);
}

TEST(Scheduler, WaitsBeforeFirstStart) {
  Simulation sim(Config(10, absl::Seconds(1), Mode::kSmooth), 1);
  StreamRequest request;
  const StreamId id = sim.Open(request);
  sim.RunUntil(kT0 + absl::Seconds(3));
  EXPECT_EQ(sim.granted().count(id), 0u);
  EXPECT_EQ(sim.ended().count(id), 0u);
  ASSERT_TRUE(sim.scheduler().Start(sim.now()).ok());
  sim.Advance();
  EXPECT_EQ(sim.granted()[id], 1);
  EXPECT_EQ(sim.grant_times()[0], kT0 + absl::Seconds(3));  // not before Start
}

TEST(Scheduler, WaitLimitEndsStreamWithoutFuel) {
  Simulation sim(Config(1, absl::Seconds(10), Mode::kSmooth), 1);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  StreamRequest hog;
  hog.count = 0;
  const StreamId first = sim.Open(hog);  // takes the only grant for 10 s
  StreamRequest request;
  request.wait_limit = absl::Seconds(2);
  const StreamId waiter = sim.Open(request);
  sim.RunUntil(kT0 + absl::Seconds(2) - absl::Nanoseconds(1));
  EXPECT_EQ(sim.ended().count(waiter), 0u);
  sim.RunUntil(kT0 + absl::Seconds(2));
  EXPECT_EQ(sim.ended()[waiter], EndReason::kWaitLimitPassed);
  EXPECT_EQ(sim.granted()[first], 1);
  EXPECT_EQ(sim.granted().count(waiter), 0u);
}

TEST(Scheduler, WaitLimitRestartsAfterEachGrant) {
  Simulation sim(Config(1, absl::Seconds(1), Mode::kSmooth), 1);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  StreamRequest request;
  request.count = 0;
  request.wait_limit = absl::Milliseconds(1500);
  const StreamId id = sim.Open(request);
  sim.RunUntil(kT0 + absl::Seconds(5));
  EXPECT_EQ(sim.ended().count(id), 0u);
  EXPECT_EQ(sim.granted()[id], 6);
}

TEST(Scheduler, ZeroWaitLimitTakesOnlyFreeFuel) {
  Simulation sim(Config(1, absl::Seconds(1), Mode::kSmooth), 1);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  StreamRequest request;
  request.wait_limit = absl::ZeroDuration();
  const StreamId first = sim.Open(request);
  EXPECT_EQ(sim.granted()[first], 1);
  EXPECT_EQ(sim.ended()[first], EndReason::kCountReached);
  const StreamId second = sim.Open(request);
  EXPECT_EQ(sim.granted().count(second), 0u);
  EXPECT_EQ(sim.ended()[second], EndReason::kWaitLimitPassed);
}

TEST(Scheduler, StopEndsEveryStreamAndLaterOpensEndAtOnce) {
  Simulation sim(Config(1, absl::Seconds(1), Mode::kSmooth), 1);
  StreamRequest request;
  request.count = 0;
  const StreamId a = sim.Open(request);
  const StreamId b = sim.Open(request);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  sim.RunUntil(kT0 + absl::Seconds(2));
  std::vector<StreamEvent> events;
  ASSERT_TRUE(sim.scheduler().Stop(sim.now(), &events).ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].stream, a);
  EXPECT_EQ(events[1].stream, b);
  for (const auto& e : events) EXPECT_EQ(e.end, EndReason::kStopped);
  EXPECT_EQ(sim.scheduler().waiting_streams(), 0);
  events.clear();
  sim.scheduler().Open(request, sim.now(), &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].end, EndReason::kStopped);
  EXPECT_EQ(sim.scheduler().NextWakeup(), absl::InfiniteFuture());
}

TEST(Scheduler, StartOfRunningAndStopOfStoppedAreRejected) {
  Scheduler scheduler(Config(4, absl::Seconds(1), Mode::kSmooth));
  std::vector<StreamEvent> events;
  EXPECT_EQ(scheduler.Stop(kT0, &events).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  EXPECT_EQ(scheduler.Start(kT0).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(scheduler.Stop(kT0 + absl::Seconds(1), &events).ok());
  EXPECT_EQ(scheduler.Stop(kT0 + absl::Seconds(2), &events).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler.state(), State::kStopped);
}

TEST(Scheduler, CancelledStreamGetsNothingAndOthersGetItsShare) {
  Simulation sim(Config(2, absl::Seconds(1), Mode::kSmooth), 1);
  StreamRequest request;
  request.count = 0;
  const StreamId a = sim.Open(request);
  const StreamId b = sim.Open(request);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  sim.RunUntil(kT0 + absl::Seconds(1));
  sim.scheduler().Close(a);
  const int64_t a_before = sim.granted()[a];
  sim.RunUntil(kT0 + absl::Seconds(5));
  EXPECT_EQ(sim.granted()[a], a_before);
  EXPECT_EQ(sim.granted()[a] + sim.granted()[b], 11);
}

TEST(Scheduler, GivenBackFuelGoesToTheNextStreamAndIsNotCounted) {
  Simulation sim(Config(1, absl::Seconds(1), Mode::kSmooth), 1);
  StreamRequest request;
  const StreamId a = sim.Open(request);
  const StreamId b = sim.Open(request);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  sim.Advance();
  ASSERT_EQ(sim.granted()[a], 1);
  EXPECT_EQ(sim.scheduler().total_emissions(), 1);
  // a's grant could not be written: it comes back and goes to b at once.
  sim.scheduler().GiveBack(kT0, 1, absl::ZeroDuration(), 0);
  EXPECT_EQ(sim.scheduler().total_emissions(), 0);
  sim.Advance();
  EXPECT_EQ(sim.granted()[b], 1);
  EXPECT_EQ(sim.scheduler().total_emissions(), 1);
}

TEST(Scheduler, WindowModeGiveBackFreesItsSlot) {
  Simulation sim(Config(2, absl::Seconds(1), Mode::kWindow), 1);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  StreamRequest request;
  request.count = 0;
  const StreamId id = sim.Open(request);
  EXPECT_EQ(sim.granted()[id], 2);
  sim.scheduler().GiveBack(kT0, 1, absl::ZeroDuration(), 0);
  sim.Advance();
  EXPECT_EQ(sim.granted()[id], 3);
  EXPECT_EQ(sim.scheduler().total_emissions(), 2);
}

// Found by the scheduler fuzzer: fuel given back came back as more fuel.
TEST(Scheduler, WindowModeGiveBackIsNeverReGrantedInThePast) {
  const absl::Duration per = absl::Milliseconds(10);
  Scheduler scheduler(Config(3, per, Mode::kWindow));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  StreamRequest request;
  request.count = 0;
  scheduler.Open(request, kT0, &events);
  scheduler.Open(request, kT0, &events);
  scheduler.Advance(kT0, &events);  // 3 at 0
  std::vector<StreamEvent> second;
  scheduler.Advance(kT0 + per, &second);  // 3 at 10 ms
  ASSERT_EQ(TimesOf(second).size(), 3u);
  for (const StreamEvent& e : second) {  // all three come back
    if (e.grants > 0)
      scheduler.GiveBack(e.granted_at, e.grants, e.spacing, e.epoch);
  }
  std::vector<StreamEvent> again;
  scheduler.Advance(kT0 + per, &again);
  std::vector<absl::Time> times = TimesOf(events);
  for (absl::Time t : TimesOf(again)) {
    EXPECT_GE(t, kT0 + per);  // not dated back to when the streams waited
    times.push_back(t);
  }
  EXPECT_EQ(TimesOf(again).size(), 3u);
  EXPECT_LE(MaxInWindow(Sorted(times), per), 3);
}

TEST(Scheduler, SmoothModeGiveBackOfAnOlderGrantGivesNoExtraFuel) {
  Scheduler scheduler(Config(1, absl::Seconds(1), Mode::kSmooth));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  StreamRequest request;
  request.count = 0;
  scheduler.Open(request, kT0, &events);
  for (int s = 0; s <= 2; ++s) {
    scheduler.Advance(kT0 + absl::Seconds(s), &events);
  }
  ASSERT_EQ(TimesOf(events).size(), 3u);  // at 0, 1 s, 2 s
  scheduler.GiveBack(kT0, 1, absl::ZeroDuration(), events.front().epoch);
  std::vector<StreamEvent> more;
  scheduler.Advance(kT0 + absl::Seconds(2), &more);
  EXPECT_TRUE(TimesOf(more).empty());  // the slot at 0 is past
  scheduler.Advance(kT0 + absl::Seconds(3), &more);
  EXPECT_EQ(TimesOf(more), std::vector<absl::Time>{kT0 + absl::Seconds(3)});
}

TEST(Scheduler, FuelOfAnEarlierConfigurationIsNotCreditedToTheNewOne) {
  Scheduler scheduler(Config(1, absl::Seconds(1), Mode::kSmooth));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  ASSERT_TRUE(scheduler.HasFuel(kT0).granted);
  std::vector<StreamEvent> events;
  StreamRequest request;
  request.count = 1;
  scheduler.Open(request, kT0, &events);
  scheduler.Advance(kT0 + absl::Seconds(1), &events);
  ASSERT_EQ(TimesOf(events).size(), 1u);
  const StreamEvent granted = events.back();
  scheduler.Configure(Config(1, absl::Seconds(1), Mode::kUnbounded),
                      kT0 + absl::Seconds(1));
  EXPECT_TRUE(scheduler.HasFuel(kT0 + absl::Seconds(1)).granted);
  scheduler.GiveBack(granted.granted_at, granted.grants, granted.spacing,
                     granted.epoch);
  EXPECT_FALSE(scheduler.HasFuel(kT0 + absl::Seconds(1)).granted);
  EXPECT_EQ(scheduler.total_emissions(), 2);  // the monitor uncounted it
}

TEST(Scheduler, ConfigureKeepsStreamsAndAppliesNewRate) {
  Simulation sim(Config(1, absl::Seconds(1), Mode::kSmooth), 1);
  StreamRequest request;
  request.count = 0;
  const StreamId id = sim.Open(request);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  sim.RunUntil(kT0 + absl::Seconds(2));  // grants at 0, 1, 2
  EXPECT_EQ(sim.granted()[id], 3);
  sim.scheduler().Configure(Config(10, absl::Seconds(1), Mode::kSmooth),
                            sim.now());
  sim.RunUntil(kT0 + absl::Seconds(3));  // 2.1 .. 3.0
  EXPECT_EQ(sim.granted()[id], 13);
  EXPECT_EQ(sim.ended().count(id), 0u);
  const auto times = Sorted(sim.grant_times());
  for (size_t i = 1; i < times.size(); ++i) {
    EXPECT_GE(times[i] - times[i - 1], absl::Milliseconds(100));
  }
}

// Reconfiguring from each mode into each mode, with a stream waiting all
// along: after the change the new mode's bound holds, counted from the
// last grant before it (a bucket starts empty, a window remembers that
// last grant), as docs/DECISIONS.md promises.
TEST(Scheduler, ReconfigureIntoAndOutOfEachModeKeepsTheNewBound) {
  const Mode kModes[] = {Mode::kSmooth, Mode::kWindow, Mode::kBucket,
                         Mode::kUnbounded, Mode::kMonitorOnly};
  for (Mode from : kModes) {
    for (Mode to : kModes) {
      SCOPED_TRACE(std::string(ModeName(from)) + " -> " + ModeName(to));
      Simulation sim(Config(10, absl::Seconds(1), from, 5), 7);
      StreamRequest request;
      request.count = 0;
      const StreamId id = sim.Open(request);
      ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
      if (from == Mode::kMonitorOnly) {
        // Delivered one at a time: a few deliveries, then the change.
        for (int i = 0; i < 3; ++i) {
          sim.scheduler().MarkDelivered(id, sim.now());
          sim.Advance();
        }
      } else {
        sim.RunUntil(kT0 + absl::Milliseconds(1750), absl::Milliseconds(30));
      }
      const size_t before = sim.grant_times().size();
      const absl::Time last_before = Sorted(sim.grant_times()).back();
      const absl::Time change = sim.now();
      const ThrottleConfig next = Config(20, absl::Seconds(1), to, 10);
      sim.scheduler().Configure(next, change);
      sim.Advance();
      if (to == Mode::kMonitorOnly) {
        sim.scheduler().MarkDelivered(id, sim.now());
        sim.Advance();
        EXPECT_GT(sim.grant_times().size(), before);  // no limit
        continue;
      }
      sim.RunUntil(change + absl::Seconds(3), absl::Milliseconds(30));
      std::vector<absl::Time> after(sim.grant_times().begin() + before,
                                    sim.grant_times().end());
      after = Sorted(after);
      ASSERT_FALSE(after.empty());
      const absl::Duration interval = absl::Milliseconds(50);
      // The last grant before the change, then what came after it.
      std::vector<absl::Time> seen = {last_before};
      seen.insert(seen.end(), after.begin(), after.end());
      switch (to) {
        case Mode::kSmooth:
          for (size_t i = 1; i < seen.size(); ++i) {
            EXPECT_GE(seen[i] - seen[i - 1], interval) << i;
          }
          break;
        case Mode::kBucket:
          // Starts empty: no burst at the change; at most one grant per
          // interval after the last one while a stream waits all along.
          for (size_t i = 0; i < after.size(); ++i) {
            EXPECT_GE(after[i] - last_before, interval * (i + 1)) << i;
          }
          break;
        case Mode::kWindow:
          EXPECT_LE(MaxInWindow(seen, absl::Seconds(1)), 20);
          break;
        case Mode::kUnbounded:
          // Credit from the change on: never ahead of 1 + rate * elapsed.
          for (size_t i = 0; i < after.size(); ++i) {
            EXPECT_LE(static_cast<double>(i + 1),
                      1 + 20 * absl::ToDoubleSeconds(after[i] - change))
                << i;
          }
          break;
        case Mode::kMonitorOnly:
          break;
      }
      EXPECT_EQ(sim.ended().count(id), 0u);  // the stream stayed open
    }
  }
}

TEST(Scheduler, HasFuelDefersToWaitingStreams) {
  Scheduler scheduler(Config(1, absl::Seconds(1), Mode::kSmooth));
  EXPECT_FALSE(scheduler.HasFuel(kT0).granted);
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  EXPECT_TRUE(scheduler.HasFuel(kT0).granted);
  EXPECT_FALSE(scheduler.HasFuel(kT0 + absl::Milliseconds(999)).granted);
  std::vector<StreamEvent> events;
  StreamRequest request;
  scheduler.Open(request, kT0 + absl::Milliseconds(999), &events);
  EXPECT_FALSE(scheduler.HasFuel(kT0 + absl::Seconds(1)).granted);
  ASSERT_TRUE(scheduler.Stop(kT0 + absl::Seconds(1), &events).ok());
  const HasFuelResult stopped = scheduler.HasFuel(kT0 + absl::Seconds(2));
  EXPECT_FALSE(stopped.granted);
  EXPECT_TRUE(stopped.stopped);
}

TEST(Scheduler, EmitCountsOnlyInManualEmitMode) {
  ThrottleConfig config = Config(4, absl::Seconds(1), Mode::kSmooth);
  Scheduler automatic(config);
  ASSERT_TRUE(automatic.Start(kT0).ok());
  EXPECT_EQ(automatic.Emit(1, kT0).status().code(),
            absl::StatusCode::kFailedPrecondition);
  config.manual_emit = true;
  Scheduler manual(config);
  EXPECT_EQ(manual.Emit(1, kT0).status().code(),
            absl::StatusCode::kFailedPrecondition);  // not running
  ASSERT_TRUE(manual.Start(kT0).ok());
  EXPECT_TRUE(manual.HasFuel(kT0).granted);
  EXPECT_EQ(manual.total_emissions(), 0);  // grants are not emissions
  EXPECT_EQ(*manual.Emit(3, kT0 + absl::Milliseconds(10)), 3);
  EXPECT_EQ(*manual.Emit(2, kT0 + absl::Milliseconds(20)), 5);
}

TEST(Scheduler, StatsMatchHandComputedValues) {
  Simulation sim(Config(4, absl::Seconds(1), Mode::kSmooth), 1);
  StreamRequest request;
  request.count = 0;
  sim.Open(request);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  sim.RunUntil(kT0 + absl::Seconds(5));  // grants at 0, .25, ..., 5.0
  EXPECT_EQ(sim.grant_times().size(), 21u);

  const LatestStats latest =
      sim.scheduler().Latest(absl::Seconds(1), sim.now());
  EXPECT_EQ(latest.emissions, 4);  // (4.0, 5.0]: 4.25 4.5 4.75 5.0
  EXPECT_DOUBLE_EQ(latest.emissions_per_second, 4.0);
  EXPECT_DOUBLE_EQ(latest.seconds_between_emissions, 0.25);
  const LatestStats half =
      sim.scheduler().Latest(absl::Milliseconds(500), sim.now());
  EXPECT_EQ(half.emissions, 2);
  EXPECT_DOUBLE_EQ(half.emissions_per_second, 4.0);

  const MeanStats mean = sim.scheduler().Mean(sim.now());
  EXPECT_EQ(mean.run.runtime, absl::Seconds(5));
  EXPECT_EQ(mean.run.total_emissions, 21);
  EXPECT_DOUBLE_EQ(mean.run.mean_emissions_per_second, 21.0 / 5.0);
  EXPECT_DOUBLE_EQ(mean.run.mean_seconds_between_emissions, 5.0 / 21.0);
  EXPECT_EQ(mean.lowest_gap, absl::Milliseconds(250));
  EXPECT_EQ(mean.highest_gap, absl::Milliseconds(250));

  std::vector<StreamEvent> events;
  const auto stats = sim.scheduler().Stop(kT0 + absl::Seconds(5), &events);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->runtime, absl::Seconds(5));
  EXPECT_EQ(stats->total_emissions, 21);
  EXPECT_DOUBLE_EQ(stats->mean_seconds_between_emissions, 5.0 / 21.0);
  EXPECT_DOUBLE_EQ(stats->mean_emissions_per_second, 4.2);
}

TEST(Scheduler, RuntimeAndTotalsCarryOverStopAndStart) {
  Simulation sim(Config(2, absl::Seconds(1), Mode::kSmooth), 1);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  StreamRequest request;
  request.count = 0;
  sim.Open(request);
  sim.RunUntil(kT0 + absl::Seconds(2));  // 0, .5, 1, 1.5, 2
  std::vector<StreamEvent> events;
  ASSERT_TRUE(sim.scheduler().Stop(sim.now(), &events).ok());
  sim.RunUntil(kT0 + absl::Seconds(10));  // stopped 8 s: not runtime
  ASSERT_TRUE(sim.scheduler().Start(sim.now()).ok());
  sim.Open(request);
  sim.RunUntil(kT0 + absl::Seconds(11));  // 10, 10.5, 11
  const auto stats = sim.scheduler().Stop(sim.now(), &events);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->runtime, absl::Seconds(3));
  EXPECT_EQ(stats->total_emissions, 8);
  // The 8 s across the stop is no gap.
  EXPECT_EQ(sim.scheduler().Mean(sim.now()).highest_gap,
            absl::Milliseconds(500));
}

TEST(Scheduler, LateRefillLoopBatchesGrantsWithoutDrift) {
  Simulation sim(Config(1000, absl::Seconds(1), Mode::kSmooth), 1);
  StreamRequest request;
  request.count = 0;
  const StreamId id = sim.Open(request);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  // The loop wakes up to 5 ms late: grants come in batches, the schedule
  // stays exact.
  sim.RunUntil(kT0 + absl::Seconds(10), absl::Milliseconds(5));
  EXPECT_EQ(sim.granted()[id], 10001);
}

// --- No call costs time proportional to a count, a burst or idle credit ---

// CPU time of this thread: a bound on work done, unaffected by other load.
absl::Duration ThreadCpuTime() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return absl::DurationFromTimespec(ts);
}

// Grants of `events` to `id`, and how many events carried them.
std::pair<int64_t, int64_t> GrantsTo(const std::vector<StreamEvent>& events,
                                     StreamId id) {
  int64_t grants = 0;
  int64_t messages = 0;
  for (const StreamEvent& e : events) {
    if (e.stream != id || e.grants == 0) continue;
    grants += e.grants;
    ++messages;
  }
  return {grants, messages};
}

// A billion grants one at a time take tens of seconds; a batch, microseconds.
// The bound is 100 times what a batch needs even under sanitizers.
constexpr absl::Duration kBatchCpuBound = absl::Seconds(1);

TEST(Scheduler, BillionBurstOfBucketModeIsOneBatch) {
  Scheduler scheduler(
      Config(10'000'000, absl::Seconds(1), Mode::kBucket, 1'000'000'000));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  const absl::Duration cpu = ThreadCpuTime();
  std::vector<StreamEvent> events;
  StreamRequest request;
  request.count = 0;
  const StreamId id = scheduler.Open(request, kT0, &events);
  scheduler.Advance(kT0, &events);
  EXPECT_EQ(GrantsTo(events, id),
            std::make_pair(int64_t{1'000'000'000}, int64_t{1}));
  EXPECT_GT(scheduler.NextWakeup(), kT0);
  // Giving the whole batch back is arithmetic too, and it goes out again.
  scheduler.GiveBack(kT0, 1'000'000'000, absl::ZeroDuration(), 0);
  events.clear();
  scheduler.Advance(kT0, &events);
  EXPECT_EQ(GrantsTo(events, id).first, 1'000'000'000);
  EXPECT_LT(ThreadCpuTime() - cpu, kBatchCpuBound);
}

TEST(Scheduler, IdleCreditOfUnboundedModeIsOneBatch) {
  Scheduler scheduler(Config(10'000'000, absl::Seconds(1), Mode::kUnbounded));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  const absl::Time later = kT0 + absl::Seconds(10);
  const absl::Duration cpu = ThreadCpuTime();
  std::vector<StreamEvent> events;
  StreamRequest request;
  request.count = 0;
  const StreamId id = scheduler.Open(request, later, &events);
  scheduler.Advance(later, &events);
  // Grant k falls due at k / 1e7 s: grants 0 .. 1e8 are due at 10 s.
  EXPECT_EQ(GrantsTo(events, id),
            std::make_pair(int64_t{100'000'001}, int64_t{1}));
  EXPECT_EQ(scheduler.NextWakeup(), later + absl::Nanoseconds(100));
  EXPECT_LT(ThreadCpuTime() - cpu, kBatchCpuBound);
}

TEST(Scheduler, FullWindowOfWindowModeIsOneBatch) {
  Scheduler scheduler(Config(1'000'000, absl::Seconds(1), Mode::kWindow));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  const absl::Duration cpu = ThreadCpuTime();
  std::vector<StreamEvent> events;
  StreamRequest request;
  request.count = 0;
  const StreamId id = scheduler.Open(request, kT0, &events);
  scheduler.Advance(kT0, &events);
  EXPECT_EQ(GrantsTo(events, id),
            std::make_pair(int64_t{1'000'000}, int64_t{1}));
  EXPECT_EQ(scheduler.NextWakeup(), kT0 + absl::Seconds(1));
  events.clear();
  scheduler.Advance(kT0 + absl::Seconds(1) - absl::Nanoseconds(1), &events);
  EXPECT_EQ(GrantsTo(events, id).first, 0);
  scheduler.Advance(kT0 + absl::Seconds(1), &events);
  EXPECT_EQ(GrantsTo(events, id),
            std::make_pair(int64_t{1'000'000}, int64_t{1}));
  EXPECT_LT(ThreadCpuTime() - cpu, kBatchCpuBound);
}

TEST(Scheduler, WholeRoundsAtOnceKeepWeightsAndCounts) {
  // 6,000 grants at once among weights 1, 2, 3 and a weight-2 stream that
  // wants only 7: it gets its 7, the others split the rest 1:2:3.
  Scheduler scheduler(Config(1, absl::Seconds(1), Mode::kBucket, 6000));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  std::vector<StreamId> ids;
  for (int64_t weight : {1, 2, 3}) {
    StreamRequest request;
    request.count = 0;
    request.weight = weight;
    ids.push_back(scheduler.Open(request, kT0, &events));
  }
  StreamRequest seven;
  seven.count = 7;
  seven.weight = 2;
  const StreamId short_one = scheduler.Open(seven, kT0, &events);
  scheduler.Advance(kT0, &events);
  EXPECT_EQ(GrantsTo(events, short_one).first, 7);
  const int64_t one = GrantsTo(events, ids[0]).first;
  const int64_t two = GrantsTo(events, ids[1]).first;
  const int64_t three = GrantsTo(events, ids[2]).first;
  EXPECT_EQ(one + two + three + 7, 6000);
  EXPECT_NEAR(static_cast<double>(two), 2.0 * one, 2.0);
  EXPECT_NEAR(static_cast<double>(three), 3.0 * one, 3.0);
  // Batched per stream, not one event per grant.
  EXPECT_LT(events.size(), 20u);
}

TEST(Scheduler, ManyStreamsShareABigBurstEqually) {
  Scheduler scheduler(
      Config(1000, absl::Seconds(1), Mode::kBucket, 1'000'000'000));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  const absl::Duration cpu = ThreadCpuTime();
  std::vector<StreamEvent> events;
  std::vector<StreamId> ids;
  StreamRequest request;
  request.count = 0;
  for (int i = 0; i < 1000; ++i) {
    ids.push_back(scheduler.Open(request, kT0, &events));
  }
  scheduler.Advance(kT0, &events);
  for (StreamId id : ids) EXPECT_EQ(GrantsTo(events, id).first, 1'000'000);
  EXPECT_LT(ThreadCpuTime() - cpu, kBatchCpuBound);
}

TEST(Scheduler, HeldStreamGetsNothingUntilReleased) {
  Simulation sim(Config(10, absl::Seconds(1), Mode::kSmooth), 1);
  StreamRequest request;
  request.count = 0;
  const StreamId held = sim.Open(request);
  const StreamId other = sim.Open(request);
  ASSERT_TRUE(sim.scheduler().Start(kT0).ok());
  sim.scheduler().Hold(held);
  sim.RunUntil(kT0 + absl::Seconds(1) - absl::Nanoseconds(1));
  EXPECT_EQ(sim.granted()[held], 0);
  EXPECT_EQ(sim.granted()[other], 10);
  EXPECT_EQ(sim.scheduler().waiting_streams(), 2);  // still open
  sim.scheduler().Release(held, sim.now());
  sim.RunUntil(kT0 + absl::Seconds(2) - absl::Nanoseconds(1));
  EXPECT_EQ(sim.granted()[held], 5);
  EXPECT_EQ(sim.granted()[other], 15);
}

TEST(Scheduler, LateLoopAtHighRateServesWholeRoundsOnTheSchedule) {
  // One wake-up a second late at 1e6/s, caught up whole (catch_up = per):
  // three streams (weights 1, 1, 2) get their shares in a few spaced
  // events, every grant on the smooth schedule (1 us apart), not a million
  // steps.
  ThrottleConfig config = Config(1'000'000, absl::Seconds(1), Mode::kSmooth);
  config.catch_up = absl::Seconds(1);
  Scheduler scheduler(config);
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  std::vector<StreamId> ids;
  for (int64_t weight : {1, 1, 2}) {
    StreamRequest request;
    request.count = 0;
    request.weight = weight;
    ids.push_back(scheduler.Open(request, kT0, &events));
  }
  const absl::Time late = kT0 + absl::Seconds(1);
  const absl::Duration cpu = ThreadCpuTime();
  scheduler.Advance(late, &events);
  EXPECT_LT(ThreadCpuTime() - cpu, kBatchCpuBound);
  EXPECT_LT(events.size(), 20u);
  std::vector<absl::Time> times;
  for (const StreamEvent& e : events) {
    for (int64_t i = 0; i < e.grants; ++i) {
      times.push_back(e.granted_at + e.spacing * i);
    }
  }
  std::sort(times.begin(), times.end());
  ASSERT_EQ(times.size(), 1'000'001u);
  EXPECT_EQ(times.front(), kT0);
  EXPECT_EQ(times.back(), late);
  for (size_t i = 1; i < times.size(); ++i) {
    ASSERT_EQ(times[i] - times[i - 1], absl::Microseconds(1)) << i;
  }
  EXPECT_NEAR(static_cast<double>(GrantsTo(events, ids[0]).first), 250'000, 2);
  EXPECT_NEAR(static_cast<double>(GrantsTo(events, ids[1]).first), 250'000, 2);
  EXPECT_NEAR(static_cast<double>(GrantsTo(events, ids[2]).first), 500'000, 2);
  EXPECT_EQ(scheduler.NextWakeup(), late + absl::Microseconds(1));
}

TEST(Scheduler, MaxRateWithOneStreamCostsOneStepPerWakeUp) {
  // 1e7/s, the highest rate a throttle may have, one count-0 stream, the
  // loop waking every 100 us for 1 s: each wake-up is one span.
  Scheduler scheduler(Config(10'000'000, absl::Seconds(1), Mode::kUnbounded));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  StreamRequest request;
  request.count = 0;
  const StreamId id = scheduler.Open(request, kT0, &events);
  int64_t grants = 0;
  int64_t messages = 0;
  for (int i = 0; i <= 10'000; ++i) {
    events.clear();
    scheduler.Advance(kT0 + absl::Microseconds(100) * i, &events);
    auto [g, m] = GrantsTo(events, id);
    grants += g;
    messages += m;
  }
  EXPECT_EQ(grants, 10'000'001);
  EXPECT_LE(messages, 10'001 * 2);
}

}  // namespace
}  // namespace throttle::server
