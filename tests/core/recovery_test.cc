// Recovery after a restore (Scheduler::Restore, docs/DECISIONS.md "Graceful
// degradation"): a fleet of workers, each with the client library's
// LocalShare, on one fake clock. Server A serves them and tells each its
// share; A is killed (every worker grants locally at its last share);
// server B restores A's saved state and the workers come back one by one,
// at seeded random times, each stopping its local grants at its first grant
// from B. In every sliding window of `per` over the whole run, the grants
// the fleet made (local + server, counted when a worker has them) stay
// within the rate. Without the recovery (a record with no open weight, as
// stored before it existed) the same run overshoots: the check can fail.
// Plus the recovery's unit tests. Nothing here sleeps.
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client-lib/src/local_share.h"
#include "gtest/gtest.h"
#include "server/core/scheduler.h"
#include "tests/core/scheduler_test_util.h"

namespace throttle::server {
namespace {

using testing::Config;
using testing::kT0;
using testing::MaxInWindow;

constexpr absl::Duration kStep = absl::Milliseconds(1);
constexpr absl::Duration kLocalShareFor = absl::Seconds(10);

ThrottleConfig LocalShareConfig(int64_t max_n, Mode mode = Mode::kSmooth) {
  ThrottleConfig config = Config(max_n, absl::Seconds(1), mode);
  config.degradation = Degradation::kLocalShare;
  config.local_share_for = kLocalShareFor;
  return config;
}

StreamRequest Hungry(int64_t weight) {
  StreamRequest request;
  request.count = 0;  // until the throttle stops
  request.weight = weight;
  return request;
}

struct Fleet {
  ThrottleConfig config;
  std::vector<int64_t> weights;
  uint64_t seed = 1;
  // What server B restores: A's state as saved, or without its open
  // weight (a record written before the recovery existed).
  bool recovery = true;
  // Adaptive: a window of rejections reported at kT0 halves the rate.
  bool reject_at_start = false;
};

struct Outcome {
  int64_t most_in_a_window = 0;  // the largest sum over a sliding `per`
  int64_t local_grants = 0;
  int64_t server_grants = 0;
  int64_t back = 0;  // workers served by B
};

struct Worker {
  int64_t weight = 1;
  LocalShare local;
  StreamId stream = 0;  // on the server serving it; 0: none
  bool back = false;    // got a grant from B
  absl::Time reconnect_at;
};

// Server A from kT0 to kT0 + 3 s, the outage to kT0 + 5 s, then server B
// with reconnects in [kT0 + 5 s, kT0 + 8 s], to kT0 + 12 s.
Outcome Simulate(const Fleet& fleet) {
  const absl::Time kill_at = kT0 + absl::Seconds(3);
  const absl::Time restore_at = kT0 + absl::Seconds(5);
  const absl::Time end_at = kT0 + absl::Seconds(12);
  std::mt19937_64 gen(fleet.seed);
  std::vector<Worker> workers(fleet.weights.size());
  for (size_t i = 0; i < workers.size(); ++i) {
    workers[i].weight = fleet.weights[i];
    workers[i].reconnect_at =
        restore_at + absl::Milliseconds(absl::Uniform(gen, 0, 3000));
  }
  std::vector<absl::Time> granted;  // every grant, when its worker had it
  Outcome outcome;
  // Hands `events` of `server` to their workers at `now`: the grants
  // count, the share told is taken, and local granting stops.
  const auto deliver = [&](Scheduler& server,
                           const std::vector<StreamEvent>& events,
                           absl::Time now, bool from_b) {
    for (const StreamEvent& event : events) {
      for (Worker& w : workers) {
        if (w.stream != event.stream || event.grants == 0) continue;
        granted.insert(granted.end(), event.grants, now);
        outcome.server_grants += event.grants;
        w.local.Update(
            v1::DEGRADATION_LOCAL_SHARE, kLocalShareFor,
            server.SharePerSecond(w.weight, server.open_weight(), now));
        if (from_b && !w.back) {
          w.back = true;
          ++outcome.back;
          w.local.ServerBack();
        }
      }
    }
  };
  const auto take_local = [&](absl::Time now) {
    for (Worker& w : workers) {
      while (w.local.Take(1, now) == 1) {
        granted.push_back(now);
        ++outcome.local_grants;
      }
    }
  };

  Scheduler a(fleet.config);
  std::vector<StreamEvent> events;
  EXPECT_TRUE(a.Start(kT0).ok());
  for (Worker& w : workers) w.stream = a.Open(Hungry(w.weight), kT0, &events);
  if (fleet.reject_at_start) {
    EXPECT_TRUE(a.Report(0, 100, kT0).ok());
  }
  absl::Time t = kT0;
  for (; t < kill_at; t += kStep) {
    events.clear();
    a.Advance(t, &events);
    deliver(a, events, t, false);
  }
  const SchedulerState saved = a.Save();
  for (Worker& w : workers) {
    w.local.ServerLost(t);
    w.stream = 0;
  }
  for (; t < restore_at; t += kStep) take_local(t);

  Scheduler b(fleet.config);
  SchedulerState restored = saved;
  if (!fleet.recovery) restored.open_weight = 0;
  b.Restore(restored, 0, t);
  for (; t < end_at; t += kStep) {
    take_local(t);  // still local until B's first grant
    events.clear();
    for (Worker& w : workers) {
      if (w.stream == 0 && t >= w.reconnect_at) {
        w.stream = b.Open(Hungry(w.weight), t, &events);
      }
    }
    b.Advance(t, &events);
    deliver(b, events, t, true);
  }
  std::sort(granted.begin(), granted.end());
  // From two `per` on: the first holds a bucket's initial burst (the
  // mode's own allowance) or the adaptive rate before it fell.
  granted.erase(granted.begin(),
                std::lower_bound(granted.begin(), granted.end(),
                                 kT0 + 2 * fleet.config.per));
  outcome.most_in_a_window = MaxInWindow(granted, fleet.config.per);
  return outcome;
}

// The most a window may hold beyond max_n: each worker's local pacer hands
// one grant at once when its outage begins (LocalShare: share x elapsed +
// 1), and a worker that is back still grants locally until B's first grant
// reaches it -- at most its turn's wait in B's ring, in which its share
// brings at most its weight -- plus one for the server's own schedule (a
// grant dated back by the catch-up).
int64_t Slack(const Fleet& fleet) {
  int64_t slack = 1;
  for (int64_t weight : fleet.weights) slack += 1 + weight;
  return slack;
}

std::string Describe(const Fleet& fleet, const Outcome& outcome) {
  return absl::StrCat("seed ", fleet.seed, ": most in a window ",
                      outcome.most_in_a_window, " (max_n ", fleet.config.max_n,
                      " + slack ", Slack(fleet), "), local ",
                      outcome.local_grants, ", server ", outcome.server_grants,
                      ", back ", outcome.back);
}

TEST(RecoveryTest, TheFleetStaysWithinTheRateThroughAKillAndARestore) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    for (Mode mode : {Mode::kSmooth, Mode::kBucket, Mode::kWindow}) {
      Fleet fleet;
      fleet.config = LocalShareConfig(200, mode);
      fleet.weights = {1, 2, 1, 3};
      fleet.seed = seed;
      const Outcome outcome = Simulate(fleet);
      SCOPED_TRACE(absl::StrCat("mode ", static_cast<int>(mode)));
      EXPECT_EQ(outcome.back, 4) << Describe(fleet, outcome);
      EXPECT_GT(outcome.local_grants, 0) << Describe(fleet, outcome);
      EXPECT_LE(outcome.most_in_a_window, 200 + Slack(fleet))
          << Describe(fleet, outcome);
    }
  }
}

TEST(RecoveryTest, WithoutTheRecoveryTheSameRunOvershoots) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    Fleet fleet;
    fleet.config = LocalShareConfig(200);
    fleet.weights = {1, 2, 1, 3};
    fleet.seed = seed;
    fleet.recovery = false;
    const Outcome outcome = Simulate(fleet);
    // The first worker back gets the whole rate while the others, 6 of
    // the 7 weights, still grant locally.
    EXPECT_GT(outcome.most_in_a_window, 200 + Slack(fleet))
        << Describe(fleet, outcome);
  }
}

TEST(RecoveryTest, AnAdaptiveRateIsWhatIsSharedAndRecovered) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    Fleet fleet;
    fleet.config = LocalShareConfig(200);
    fleet.config.adaptive = AdaptiveConfig();
    fleet.weights = {2, 1, 1, 1, 3};
    fleet.seed = seed;
    fleet.reject_at_start = true;  // the rate halves after a second
    const Outcome outcome = Simulate(fleet);
    EXPECT_EQ(outcome.back, 5) << Describe(fleet, outcome);
    // The adaptive rate is 100 from the first second on (no outcomes
    // after: no window changes it): the fleet stays within it, the shares
    // told at that rate.
    EXPECT_LE(outcome.most_in_a_window, 100 + Slack(fleet))
        << Describe(fleet, outcome);
  }
}

TEST(RecoveryTest, AWarmUpRampIsWhatIsSharedAndRecovered) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    Fleet fleet;
    fleet.config = LocalShareConfig(200);
    fleet.config.warm_up = absl::Seconds(30);
    fleet.config.warm_up_from = 0.25;
    fleet.weights = {1, 1, 2};
    fleet.seed = seed;
    const Outcome outcome = Simulate(fleet);
    EXPECT_EQ(outcome.back, 3) << Describe(fleet, outcome);
    // By the end (12 s of 30) the ramp allows 200 x (0.25 + 0.75 x 0.4).
    EXPECT_LE(outcome.most_in_a_window, 110 + Slack(fleet))
        << Describe(fleet, outcome);
  }
}

// --- The recovery's rules ---

// A's state with running streams of `weights` open (degradation from
// `config`).
SchedulerState SavedWithStreams(const ThrottleConfig& config,
                                const std::vector<int64_t>& weights,
                                bool stop = false) {
  Scheduler a(config);
  std::vector<StreamEvent> events;
  EXPECT_TRUE(a.Start(kT0).ok());
  for (int64_t w : weights) a.Open(Hungry(w), kT0, &events);
  a.Advance(kT0 + absl::Seconds(1), &events);
  if (stop) {
    EXPECT_TRUE(a.Stop(kT0 + absl::Seconds(1), &events).ok());
  }
  return a.Save();
}

const absl::Time kRestore = kT0 + absl::Seconds(5);

TEST(RecoveryTest, TheRateFollowsTheStreamsBackAndEndsWhenTheWeightIsBack) {
  const ThrottleConfig config = LocalShareConfig(200);
  const SchedulerState saved = SavedWithStreams(config, {1, 3});
  EXPECT_EQ(saved.open_weight, 4);
  Scheduler b(config);
  b.Restore(saved, 0, kRestore);
  EXPECT_TRUE(b.recovering());
  EXPECT_EQ(b.max_n_in_effect(), 1);  // nobody back: never 0 grants
  std::vector<StreamEvent> events;
  const StreamId one = b.Open(Hungry(1), kRestore, &events);
  b.Advance(kRestore, &events);
  EXPECT_EQ(b.max_n_in_effect(), 50);
  EXPECT_DOUBLE_EQ(b.SharePerSecond(1, b.open_weight(), kRestore), 50);
  b.Close(one);
  b.Advance(kRestore, &events);
  EXPECT_EQ(b.max_n_in_effect(), 1);
  b.Open(Hungry(3), kRestore, &events);
  b.Advance(kRestore, &events);
  EXPECT_EQ(b.max_n_in_effect(), 150);
  EXPECT_DOUBLE_EQ(b.SharePerSecond(3, b.open_weight(), kRestore), 150);
  b.Open(Hungry(1), kRestore, &events);
  b.Advance(kRestore, &events);
  EXPECT_FALSE(b.recovering());
  EXPECT_EQ(b.max_n_in_effect(), 200);
  // Over for good: a stream leaving later is no outage.
  b.Close(one + 1);
  b.Advance(kRestore, &events);
  EXPECT_EQ(b.max_n_in_effect(), 200);
}

TEST(RecoveryTest, EndsAtLocalShareForAndWakesTheSchedulerThen) {
  const ThrottleConfig config = LocalShareConfig(200);
  Scheduler b(config);
  b.Restore(SavedWithStreams(config, {1, 1, 1, 1}), 0, kRestore);
  std::vector<StreamEvent> events;
  b.Open(Hungry(1), kRestore, &events);
  b.Advance(kRestore, &events);
  EXPECT_EQ(b.max_n_in_effect(), 50);
  const absl::Time end = kRestore + kLocalShareFor;
  testing::RunUntil(b, kRestore, end - absl::Nanoseconds(1), &events);
  EXPECT_TRUE(b.recovering());
  EXPECT_LE(b.NextWakeup(), end);
  b.Advance(end, &events);
  EXPECT_FALSE(b.recovering());
  EXPECT_EQ(b.max_n_in_effect(), 200);
}

TEST(RecoveryTest, NoneForWaitFailFastMonitorOnlyAStoppedThrottleOrNoStream) {
  for (Degradation degradation : {Degradation::kWait, Degradation::kFailFast}) {
    ThrottleConfig config = Config(200, absl::Seconds(1), Mode::kSmooth);
    config.degradation = degradation;
    Scheduler b(config);
    b.Restore(SavedWithStreams(config, {1, 1}), 0, kRestore);
    EXPECT_FALSE(b.recovering());
    EXPECT_EQ(b.max_n_in_effect(), 200);
  }
  const ThrottleConfig monitor = LocalShareConfig(200, Mode::kMonitorOnly);
  Scheduler m(monitor);
  m.Restore(SavedWithStreams(monitor, {1, 1}), 0, kRestore);
  EXPECT_FALSE(m.recovering());
  EXPECT_EQ(m.SharePerSecond(1, 1, kRestore), 0);

  const ThrottleConfig config = LocalShareConfig(200);
  Scheduler stopped(config);
  stopped.Restore(SavedWithStreams(config, {1, 1}, /*stop=*/true), 0, kRestore);
  EXPECT_FALSE(stopped.recovering());
  Scheduler empty(config);
  empty.Restore(SavedWithStreams(config, {}), 0, kRestore);
  EXPECT_FALSE(empty.recovering());
  EXPECT_EQ(empty.max_n_in_effect(), 200);
}

TEST(RecoveryTest, ASaveDuringTheRecoveryKeepsItsWeight) {
  const ThrottleConfig config = LocalShareConfig(200);
  Scheduler b(config);
  b.Restore(SavedWithStreams(config, {2, 2}), 0, kRestore);
  std::vector<StreamEvent> events;
  b.Open(Hungry(1), kRestore, &events);
  b.Advance(kRestore, &events);
  const SchedulerState again = b.Save();
  EXPECT_EQ(again.open_weight, 4);
  // A third server restoring that record waits for the same weight.
  const absl::Time later = kRestore + absl::Seconds(2);
  Scheduler c(config);
  c.Restore(again, 0, later);
  EXPECT_TRUE(c.recovering());
  c.Open(Hungry(2), later, &events);
  c.Advance(later, &events);
  EXPECT_EQ(c.max_n_in_effect(), 100);
}

TEST(RecoveryTest, AServerGoingAwayStillSavesTheWeightOfTheStreamsItClosed) {
  const ThrottleConfig config = LocalShareConfig(200);
  Scheduler a(config);
  std::vector<StreamEvent> events;
  ASSERT_TRUE(a.Start(kT0).ok());
  a.Open(Hungry(2), kT0, &events);
  a.Open(Hungry(1), kT0, &events);
  a.EndAll(EndReason::kClosed, &events);  // a graceful shutdown, a handover
  EXPECT_EQ(a.open_weight(), 0);
  EXPECT_EQ(a.Save().open_weight, 3);
}

TEST(RecoveryTest, ScalesTheAdaptiveRateAndNeverGrantsNothing) {
  ThrottleConfig config = LocalShareConfig(2);
  Scheduler b(config);
  b.Restore(SavedWithStreams(config, {1, 1, 1, 1}), 0, kRestore);
  std::vector<StreamEvent> events;
  b.Open(Hungry(1), kRestore, &events);
  b.Advance(kRestore, &events);
  EXPECT_EQ(b.max_n_in_effect(), 1);  // 2 x 1/4 rounds to 0: one per `per`
  testing::RunUntil(b, kRestore, kRestore + absl::Seconds(3), &events);
  EXPECT_GE(testing::TimesOf(events).size(), 3u);

  config = LocalShareConfig(200);
  config.adaptive = AdaptiveConfig();
  Scheduler adaptive(config);
  adaptive.Restore(SavedWithStreams(config, {1, 1}), 0, kRestore);
  adaptive.SetRate(120, kRestore);
  adaptive.Open(Hungry(1), kRestore, &events);
  adaptive.Advance(kRestore, &events);
  EXPECT_EQ(adaptive.rate_max_n(), 120);
  EXPECT_EQ(adaptive.max_n_in_effect(), 60);
  EXPECT_DOUBLE_EQ(adaptive.SharePerSecond(1, 1, kRestore), 60);
}

TEST(RecoveryTest, TheShareFollowsTheAdaptiveRateAndTheWarmUpRamp) {
  ThrottleConfig config = LocalShareConfig(200);
  config.adaptive = AdaptiveConfig();
  Scheduler adaptive(config);
  ASSERT_TRUE(adaptive.Start(kT0).ok());
  adaptive.SetRate(80, kT0);
  EXPECT_DOUBLE_EQ(adaptive.SharePerSecond(1, 4, kT0), 20);

  config = LocalShareConfig(200);
  config.warm_up = absl::Seconds(10);
  config.warm_up_from = 0.5;
  Scheduler ramp(config);
  ASSERT_TRUE(ramp.Start(kT0).ok());
  EXPECT_DOUBLE_EQ(ramp.SharePerSecond(1, 2, kT0), 50);
  EXPECT_DOUBLE_EQ(ramp.SharePerSecond(1, 2, kT0 + absl::Seconds(5)), 75);
  EXPECT_DOUBLE_EQ(ramp.SharePerSecond(1, 2, kT0 + absl::Seconds(20)), 100);
}

}  // namespace
}  // namespace throttle::server
