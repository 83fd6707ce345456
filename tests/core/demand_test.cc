// On-demand (Acquire) streams and the catch-up bound, under a fake clock.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "server/core/scheduler.h"
#include "tests/core/scheduler_test_util.h"

namespace throttle::server {
namespace {

using testing::Config;
using testing::kT0;
using testing::MaxInWindow;
using testing::OnDemand;
using testing::TimesOf;

// Grants per stream in `events`.
std::map<StreamId, int64_t> GrantsByStream(
    const std::vector<StreamEvent>& events) {
  std::map<StreamId, int64_t> by_stream;
  for (const StreamEvent& e : events) by_stream[e.stream] += e.grants;
  return by_stream;
}

class DemandTest : public ::testing::Test {
 protected:
  // A running smooth throttle of `rate` per second.
  void Run(int64_t rate, Mode mode = Mode::kSmooth) {
    scheduler_ =
        std::make_unique<Scheduler>(Config(rate, absl::Seconds(1), mode));
    ASSERT_TRUE(scheduler_->Start(kT0).ok());
  }
  StreamId Open(const StreamRequest& request, absl::Time now) {
    return scheduler_->Open(request, now, &events_);
  }
  // Advances in steps of `step` up to `until`.
  void AdvanceTo(absl::Time from, absl::Time until, absl::Duration step) {
    for (absl::Time t = from; t <= until; t += step) {
      scheduler_->Advance(t, &events_);
    }
  }

  std::unique_ptr<Scheduler> scheduler_;
  std::vector<StreamEvent> events_;
};

TEST_F(DemandTest, AStreamGetsItsDemandAndNothingMore) {
  Run(100);
  const StreamId id = Open(OnDemand(3), kT0);
  AdvanceTo(kT0, kT0 + absl::Seconds(2), absl::Milliseconds(1));
  EXPECT_EQ(GrantsByStream(events_)[id], 3);
  for (const StreamEvent& e : events_) EXPECT_EQ(e.end, EndReason::kNone);
  // Met, it stays open but is not waiting.
  EXPECT_EQ(scheduler_->waiting_streams(), 0);

  events_.clear();
  const absl::Time later = kT0 + absl::Seconds(3);
  ASSERT_EQ(*scheduler_->AddDemand(id, 0, 2, later), 2);
  EXPECT_EQ(scheduler_->waiting_streams(), 1);
  AdvanceTo(later, later + absl::Seconds(1), absl::Milliseconds(1));
  EXPECT_EQ(GrantsByStream(events_)[id], 2);
  // Idle time earns no credit beyond the catch-up (here one spacing,
  // 10 ms): the grants are dated from at most that before the new demand,
  // spaced as the rate says.
  const std::vector<absl::Time> times = TimesOf(events_);
  ASSERT_EQ(times.size(), 2u);
  EXPECT_GE(times[0], later - absl::Milliseconds(10));
  EXPECT_GE(times[1] - times[0], absl::Milliseconds(10));
}

TEST_F(DemandTest, ShortIdleGapsDoNotLowerTheRate) {
  // Two workers that each ask again 0.2-2.6 ms after their grant could
  // take about 1,400/s together, but now and then neither waits. Slots that
  // pass in such a gap are granted when a worker comes within the catch-up,
  // so the rate holds at 1,000/s; without catch-up each gap is lost.
  for (const bool catch_up : {true, false}) {
    ThrottleConfig config = Config(1000, absl::Seconds(1), Mode::kSmooth);
    if (!catch_up) config.catch_up = absl::ZeroDuration();
    scheduler_ = std::make_unique<Scheduler>(config);
    ASSERT_TRUE(scheduler_->Start(kT0).ok());
    events_.clear();
    std::mt19937 gen(3);
    std::map<StreamId, absl::Time> asks_at;
    asks_at[Open(OnDemand(0), kT0)] = kT0;
    asks_at[Open(OnDemand(0), kT0)] = kT0 + absl::Microseconds(800);
    int64_t granted = 0;
    std::vector<absl::Time> times;
    for (absl::Time t = kT0; t < kT0 + absl::Seconds(2);
         t += absl::Microseconds(100)) {
      for (auto& [id, at] : asks_at) {
        if (at <= t) {
          ASSERT_TRUE(scheduler_->AddDemand(id, 0, 1, t).ok());
          at = absl::InfiniteFuture();
        }
      }
      events_.clear();
      scheduler_->Advance(t, &events_);
      for (const StreamEvent& e : events_) {
        granted += e.grants;
        asks_at[e.stream] =
            t + absl::Microseconds(
                    std::uniform_int_distribution<int>(200, 2600)(gen));
        for (absl::Time g : TimesOf({e})) times.push_back(g);
      }
    }
    std::sort(times.begin(), times.end());
    EXPECT_LE(MaxInWindow(times, absl::Seconds(1)), 1000);
    if (catch_up) {
      EXPECT_GE(granted, 1999);
    } else {
      EXPECT_LT(granted, 1950);
    }
  }
}

TEST_F(DemandTest, AStreamOpenedWithoutDemandWaitsForNone) {
  Run(1000);
  const StreamId idle = Open(OnDemand(0), kT0);
  const StreamId busy = Open(OnDemand(5), kT0);
  EXPECT_EQ(scheduler_->waiting_streams(), 1);
  AdvanceTo(kT0, kT0 + absl::Milliseconds(100), absl::Milliseconds(1));
  std::map<StreamId, int64_t> got = GrantsByStream(events_);
  EXPECT_EQ(got[idle], 0);
  EXPECT_EQ(got[busy], 5);
}

TEST_F(DemandTest, WithdrawnDemandIsNotServed) {
  Run(10);  // one grant per 100 ms
  const StreamId first = Open(OnDemand(1), kT0);
  scheduler_->Advance(kT0, &events_);  // the first grant is due at once
  ASSERT_EQ(GrantsByStream(events_)[first], 1);
  events_.clear();

  const StreamId id = Open(OnDemand(4), kT0 + absl::Milliseconds(1));
  EXPECT_EQ(*scheduler_->AddDemand(id, 3, 0, kT0 + absl::Milliseconds(2)), 1);
  EXPECT_EQ(*scheduler_->AddDemand(id, 5, 0, kT0 + absl::Milliseconds(3)), 0);
  EXPECT_EQ(scheduler_->waiting_streams(), 0);
  AdvanceTo(kT0, kT0 + absl::Seconds(2), absl::Milliseconds(5));
  EXPECT_TRUE(events_.empty());
  // Capacity not taken by withdrawn demand is there for the next asker.
  const absl::Time at = kT0 + absl::Seconds(2);
  ASSERT_TRUE(scheduler_->AddDemand(id, 0, 1, at).ok());
  scheduler_->Advance(at, &events_);
  EXPECT_EQ(GrantsByStream(events_)[id], 1);
}

TEST_F(DemandTest, DemandBeyondTheLimitIsRefusedAndChangesNothing) {
  Run(10);
  const StreamId id = Open(OnDemand(5), kT0);
  const absl::StatusOr<int64_t> refused =
      scheduler_->AddDemand(id, 0, kMaxOutstandingDemand, kT0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("demand"), absl::string_view::npos);
  EXPECT_EQ(*scheduler_->AddDemand(id, 0, 0, kT0), 5);
}

TEST_F(DemandTest, StreamsWithStandingDemandShareRoundRobin) {
  Run(1000);
  const StreamId a = Open(OnDemand(1), kT0);
  const StreamId b = Open(OnDemand(1), kT0);
  const StreamId c = Open(OnDemand(1), kT0);
  // Each worker asks again as soon as its grant arrives.
  std::map<StreamId, int64_t> got;
  for (absl::Time t = kT0; t < kT0 + absl::Seconds(3);
       t += absl::Microseconds(250)) {
    events_.clear();
    scheduler_->Advance(t, &events_);
    for (const StreamEvent& e : events_) {
      got[e.stream] += e.grants;
      ASSERT_TRUE(scheduler_->AddDemand(e.stream, 0, e.grants, t).ok());
    }
  }
  EXPECT_EQ(got[a] + got[b] + got[c], 3000);
  for (StreamId id : {a, b, c}) EXPECT_NEAR(got[id], 1000, 1);
}

TEST_F(DemandTest, WeightsApplyToStreamsThatWantMore) {
  Run(1000);
  const StreamId heavy = Open(OnDemand(1000, /*weight=*/3), kT0);
  const StreamId light = Open(OnDemand(1000, /*weight=*/1), kT0);
  AdvanceTo(kT0, kT0 + absl::Milliseconds(400), absl::Milliseconds(1));
  std::map<StreamId, int64_t> got = GrantsByStream(events_);
  EXPECT_NEAR(got[heavy], 3 * got[light], 4);
}

TEST_F(DemandTest, AStreamThatComesBackGoesToTheBackOfTheLine) {
  Run(10);  // 100 ms apart
  const StreamId a = Open(OnDemand(1), kT0);
  scheduler_->Advance(kT0, &events_);  // a is served at once
  const StreamId b = Open(OnDemand(1), kT0);
  const StreamId c = Open(OnDemand(1), kT0);
  // a asks again after b and c: it is served last.
  ASSERT_TRUE(scheduler_->AddDemand(a, 0, 1, kT0).ok());
  events_.clear();
  AdvanceTo(kT0, kT0 + absl::Seconds(1), absl::Milliseconds(10));
  std::vector<StreamId> order;
  for (const StreamEvent& e : events_) order.push_back(e.stream);
  EXPECT_EQ(order, (std::vector<StreamId>{b, c, a}));
}

TEST_F(DemandTest, MonitorOnlyGrantsTheWholeDemandAtOnce) {
  Run(1, Mode::kMonitorOnly);
  const StreamId id = Open(OnDemand(7), kT0);
  scheduler_->Advance(kT0, &events_);
  EXPECT_EQ(GrantsByStream(events_)[id], 7);
  EXPECT_EQ(scheduler_->waiting_streams(), 0);
  events_.clear();
  scheduler_->Advance(kT0 + absl::Seconds(1), &events_);
  EXPECT_TRUE(events_.empty());  // no demand, no grant
  ASSERT_TRUE(scheduler_->AddDemand(id, 0, 2, kT0 + absl::Seconds(1)).ok());
  scheduler_->Advance(kT0 + absl::Seconds(1), &events_);
  EXPECT_EQ(GrantsByStream(events_)[id], 2);
}

TEST_F(DemandTest, StopEndsIdleAndWaitingStreams) {
  Run(10);
  const StreamId idle = Open(OnDemand(0), kT0);
  const StreamId waiting = Open(OnDemand(100), kT0);
  events_.clear();
  ASSERT_TRUE(scheduler_->Stop(kT0 + absl::Milliseconds(1), &events_).ok());
  std::map<StreamId, EndReason> ends;
  for (const StreamEvent& e : events_) ends[e.stream] = e.end;
  EXPECT_EQ(ends[idle], EndReason::kStopped);
  EXPECT_EQ(ends[waiting], EndReason::kStopped);
  EXPECT_EQ(scheduler_->waiting_streams(), 0);
}

TEST_F(DemandTest, ConfigureLeavesIdleStreamsIdle) {
  Run(1, Mode::kMonitorOnly);
  const StreamId id = Open(OnDemand(1), kT0);
  scheduler_->Advance(kT0, &events_);
  events_.clear();
  scheduler_->Configure(Config(1000, absl::Seconds(1), Mode::kSmooth), kT0);
  AdvanceTo(kT0, kT0 + absl::Seconds(1), absl::Milliseconds(1));
  EXPECT_EQ(GrantsByStream(events_)[id], 0);
  EXPECT_EQ(scheduler_->waiting_streams(), 0);
}

// --- The catch-up bound ---

// Grants made at real time `t` (the Advance that allotted them) in any
// window [t, t + per): what a worker sees, not the nominal schedule.
int64_t MaxRealInWindow(std::vector<absl::Time> made, absl::Duration per) {
  std::sort(made.begin(), made.end());
  return MaxInWindow(made, per);
}

TEST(CatchUpTest, DefaultIsOnePercentOfPerButAtLeastOneSpacing) {
  EXPECT_EQ(Config(50'000, absl::Seconds(1), Mode::kSmooth).DefaultCatchUp(),
            absl::Milliseconds(10));
  EXPECT_EQ(Config(4, absl::Seconds(1), Mode::kSmooth).DefaultCatchUp(),
            absl::Milliseconds(250));
}

// A running scheduler of `config` with one count-0 stream open since kT0
// (its events go to *events).
std::unique_ptr<Scheduler> RunningWithOneStream(
    const ThrottleConfig& config, std::vector<StreamEvent>* events) {
  auto scheduler = std::make_unique<Scheduler>(config);
  EXPECT_TRUE(scheduler->Start(kT0).ok());
  StreamRequest forever;
  forever.count = 0;
  scheduler->Open(forever, kT0, events);
  return scheduler;
}

TEST(CatchUpTest, AStallIsCaughtUpOnlyWithinTheBound) {
  ThrottleConfig config = Config(1000, absl::Seconds(1), Mode::kSmooth);
  config.catch_up = absl::Milliseconds(10);
  std::vector<StreamEvent> events;
  std::unique_ptr<Scheduler> scheduler = RunningWithOneStream(config, &events);
  scheduler->Advance(kT0, &events);
  events.clear();
  // The refill loop stalls for 200 ms: only what fell due in its last
  // 10 ms (one grant per ms) is granted.
  scheduler->Advance(kT0 + absl::Milliseconds(200), &events);
  const std::vector<absl::Time> times = TimesOf(events);
  EXPECT_GE(times.size(), 10u);
  EXPECT_LE(times.size(), 11u);
  for (absl::Time t : times) EXPECT_GE(t, kT0 + absl::Milliseconds(190));
  // The schedule goes on from there at the rate, for a loop on time.
  events.clear();
  for (int ms = 201; ms <= 300; ++ms) {
    scheduler->Advance(kT0 + absl::Milliseconds(ms), &events);
  }
  EXPECT_EQ(TimesOf(events).size(), 100u);
}

TEST(CatchUpTest, WithoutTheBoundAStallTurnsIntoABurst) {
  // catch_up = per: everything that fell due is caught up (the old way).
  ThrottleConfig config = Config(1000, absl::Seconds(1), Mode::kSmooth);
  config.catch_up = absl::Seconds(1);
  std::vector<StreamEvent> events;
  std::unique_ptr<Scheduler> scheduler = RunningWithOneStream(config, &events);
  scheduler->Advance(kT0, &events);
  events.clear();
  scheduler->Advance(kT0 + absl::Milliseconds(200), &events);
  EXPECT_GE(static_cast<int64_t>(TimesOf(events).size()), 199);
}

TEST(CatchUpTest, ZeroCatchUpNeverDatesAGrantBeforeItIsMade) {
  ThrottleConfig config = Config(1000, absl::Seconds(1), Mode::kSmooth);
  config.catch_up = absl::ZeroDuration();
  std::vector<StreamEvent> events;
  std::unique_ptr<Scheduler> scheduler = RunningWithOneStream(config, &events);
  std::mt19937 gen(7);
  absl::Time t = kT0;
  for (int i = 0; i < 2000; ++i) {
    t += absl::Microseconds(std::uniform_int_distribution<int>(100, 5000)(gen));
    events.clear();
    scheduler->Advance(t, &events);
    for (absl::Time at : TimesOf(events)) EXPECT_EQ(at, t);
  }
}

TEST(CatchUpTest, RealTimeWindowsStayWithinTheBoundAcrossRandomStalls) {
  // At 50,000/s in smooth mode with the default catch-up (10 ms), a refill
  // loop that stalls at random for up to 50 ms gives no window of real time
  // more than max_n plus the catch-up's grants (1%). (Window and bucket
  // modes may burst by design; their bound is on the schedule.)
  {
    for (uint32_t seed = 1; seed <= 5; ++seed) {
      const int64_t max_n = 50'000;
      std::vector<StreamEvent> events;
      std::unique_ptr<Scheduler> scheduler = RunningWithOneStream(
          Config(max_n, absl::Seconds(1), Mode::kSmooth), &events);
      std::mt19937 gen(seed);
      std::vector<absl::Time> made;
      absl::Time t = kT0;
      absl::Duration missed;  // what stalls beyond the catch-up lost
      int64_t stalls = 0;
      while (t < kT0 + absl::Seconds(4)) {
        const bool stall = std::uniform_int_distribution<int>(0, 999)(gen) < 3;
        const absl::Duration step =
            stall ? absl::Milliseconds(
                        std::uniform_int_distribution<int>(11, 50)(gen))
                  : absl::Microseconds(
                        std::uniform_int_distribution<int>(50, 500)(gen));
        if (step > absl::Milliseconds(10)) {
          missed += step - absl::Milliseconds(10);
          ++stalls;
        }
        t += step;
        events.clear();
        scheduler->Advance(t, &events);
        const int64_t n = static_cast<int64_t>(TimesOf(events).size());
        made.insert(made.end(), n, t);
      }
      const int64_t worst = MaxRealInWindow(made, absl::Seconds(1));
      // Window and bucket may start with a burst of max_n; after that each
      // window of real time sees at most max_n + 1% (the catch-up).
      EXPECT_LE(worst, max_n + max_n / 100 + 1) << "seed " << seed;
      // And the mean rate loses only what stalls beyond 10 ms missed (each
      // caught-up stretch has both its ends: one grant more per stall).
      const double expected =
          absl::ToDoubleSeconds(t - kT0 - missed) * static_cast<double>(max_n);
      EXPECT_GE(static_cast<double>(made.size()), expected - 1) << seed;
      EXPECT_LE(static_cast<double>(made.size()), expected + 1 + stalls)
          << seed;
    }
  }
}

}  // namespace
}  // namespace throttle::server
