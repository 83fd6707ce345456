// Priority classes and the starvation bound (StreamRequest::priority,
// ThrottleConfig::starvation_bound) under a fake clock: a higher class is
// served first, weights share a class as before, a lower class gets
// nothing while a higher one waits -- until the starvation bound, which is
// honoured at the first grant due at or after it -- and the mode's window
// bound holds whoever gets the grants.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/scheduler.h"
#include "tests/core/scheduler_test_util.h"

namespace throttle::server {
namespace {

using testing::Config;
using testing::kT0;
using testing::MaxInWindow;
using testing::OnDemand;
using testing::RunUntil;

StreamRequest Request(int64_t count, int64_t priority, int64_t weight = 1) {
  StreamRequest request;
  request.count = count;
  request.weight = weight;
  request.priority = priority;
  return request;
}

// One grant's stream and nominal time.
struct GrantAt {
  StreamId stream;
  absl::Time at;
};

std::vector<GrantAt> Grants(const std::vector<StreamEvent>& events) {
  std::vector<GrantAt> grants;
  for (const StreamEvent& e : events) {
    for (int64_t i = 0; i < e.grants; ++i) {
      grants.push_back({e.stream, e.granted_at + e.spacing * i});
    }
  }
  return grants;
}

std::map<StreamId, int64_t> GrantsByStream(
    const std::vector<StreamEvent>& events) {
  std::map<StreamId, int64_t> by_stream;
  for (const StreamEvent& e : events) by_stream[e.stream] += e.grants;
  return by_stream;
}

// The times of the grants to `stream`.
std::vector<absl::Time> TimesOf(const std::vector<StreamEvent>& events,
                                StreamId stream) {
  std::vector<absl::Time> times;
  for (const GrantAt& g : Grants(events)) {
    if (g.stream == stream) times.push_back(g.at);
  }
  return times;
}

class PriorityTest : public ::testing::Test {
 protected:
  // A running throttle of `rate` per second, with `bound` as starvation
  // bound.
  void Run(int64_t rate, absl::Duration bound = absl::ZeroDuration(),
           Mode mode = Mode::kSmooth) {
    ThrottleConfig config = Config(rate, absl::Seconds(1), mode);
    config.starvation_bound = bound;
    ASSERT_TRUE(ValidateConfig(config).ok());
    scheduler_ = std::make_unique<Scheduler>(config);
    ASSERT_TRUE(scheduler_->Start(kT0).ok());
  }
  StreamId Open(const StreamRequest& request, absl::Time now = kT0) {
    return scheduler_->Open(request, now, &events_);
  }
  void RunTo(absl::Time from, absl::Time until) {
    RunUntil(*scheduler_, from, until, &events_);
  }

  std::unique_ptr<Scheduler> scheduler_;
  std::vector<StreamEvent> events_;
};

TEST_F(PriorityTest, AHigherClassIsServedFirst) {
  Run(10);
  const StreamId low = Open(Request(3, 0));
  const StreamId mid = Open(Request(2, 4));
  const StreamId high = Open(Request(2, 9));
  RunTo(kT0, kT0 + absl::Seconds(5));
  std::vector<StreamId> order;
  for (const GrantAt& g : Grants(events_)) order.push_back(g.stream);
  EXPECT_EQ(order,
            (std::vector<StreamId>{high, high, mid, mid, low, low, low}));
}

TEST_F(PriorityTest, WeightsShareAClassAsWithoutClasses) {
  Run(20);
  const StreamId a = Open(Request(0, 5, 2));
  const StreamId b = Open(Request(0, 5, 1));
  const StreamId low = Open(Request(0, 1, 5));
  RunTo(kT0, kT0 + absl::Seconds(10));
  std::map<StreamId, int64_t> by_stream = GrantsByStream(events_);
  // 20 per second for 10 s, 2:1 within the class, nothing below it.
  EXPECT_EQ(by_stream[a] + by_stream[b], 201);
  EXPECT_NEAR(static_cast<double>(by_stream[a]) / by_stream[b], 2.0, 0.02);
  EXPECT_EQ(by_stream[low], 0);
}

TEST_F(PriorityTest, ALowerClassGetsNothingWhileAHigherWaits) {
  Run(100);
  const StreamId high = Open(Request(0, 3));
  const StreamId low = Open(Request(1, 2));
  RunTo(kT0, kT0 + absl::Seconds(60));
  EXPECT_EQ(GrantsByStream(events_)[low], 0);
  EXPECT_EQ(GrantsByStream(events_)[high], 6001);
  // The higher class gone, the lower gets the next grant.
  const absl::Time gone = kT0 + absl::Seconds(60) + absl::Milliseconds(5);
  scheduler_->Close(high);
  events_.clear();
  RunTo(gone, gone + absl::Seconds(1));
  EXPECT_EQ(TimesOf(events_, low),
            std::vector<absl::Time>{kT0 + absl::Milliseconds(60010)});
}

TEST_F(PriorityTest, TheStarvationBoundIsHonouredExactly) {
  // 10 per second: a grant every 100 ms. A lower class that waited 950 ms
  // gets the first grant due after that: at 1 s, then (counting from its
  // grant) at 2 s, 3 s, ... -- one each time, the rest to the higher class.
  Run(10, absl::Milliseconds(950));
  const StreamId high = Open(Request(0, 7));
  const StreamId low = Open(Request(0, 0));
  RunTo(kT0, kT0 + absl::Seconds(10));
  std::vector<absl::Time> want;
  for (int s = 1; s <= 10; ++s) want.push_back(kT0 + absl::Seconds(s));
  EXPECT_EQ(TimesOf(events_, low), want);
  EXPECT_EQ(GrantsByStream(events_)[high], 101 - 10);
}

TEST_F(PriorityTest, TheLongestStarvedClassGoesFirst) {
  // Two lower classes, both past the bound at 1 s: the one that waited
  // longer (class 1, since 0 ms) gets the grant at 1 s, class 2 (since
  // 50 ms) the next, at 1.1 s.
  Run(10, absl::Milliseconds(950));
  Open(Request(0, 9));
  const StreamId one = Open(Request(1, 1));
  RunTo(kT0, kT0 + absl::Milliseconds(50));
  const StreamId two = Open(Request(1, 2), kT0 + absl::Milliseconds(50));
  RunTo(kT0 + absl::Milliseconds(50), kT0 + absl::Seconds(3));
  EXPECT_EQ(TimesOf(events_, one),
            std::vector<absl::Time>{kT0 + absl::Seconds(1)});
  EXPECT_EQ(TimesOf(events_, two),
            std::vector<absl::Time>{kT0 + absl::Milliseconds(1100)});
}

TEST_F(PriorityTest, OnDemandStreamsKeepTheirClass) {
  // A higher Acquire stream takes its demand first; idle, it does not hold
  // back the lower class; new demand puts it first again.
  Run(10);
  const StreamId other = Open(OnDemand(2));  // class 0, as `low`
  const StreamId low = Open(Request(0, 0));
  StreamRequest on_demand_high = OnDemand(2);
  on_demand_high.priority = 8;
  const StreamId acquire = Open(on_demand_high);
  RunTo(kT0, kT0 + absl::Milliseconds(450));
  // 0..400 ms: five grants, two to the class-8 stream first.
  std::vector<StreamId> order;
  for (const GrantAt& g : Grants(events_)) order.push_back(g.stream);
  ASSERT_EQ(order.size(), 5u);
  EXPECT_EQ(order[0], acquire);
  EXPECT_EQ(order[1], acquire);
  EXPECT_NE(order[2], acquire);
  EXPECT_EQ(GrantsByStream(events_)[low] + GrantsByStream(events_)[other], 3);
  events_.clear();
  const absl::Time later = kT0 + absl::Milliseconds(450);
  ASSERT_TRUE(scheduler_->AddDemand(acquire, 0, 3, later).ok());
  RunTo(later, kT0 + absl::Milliseconds(750));
  EXPECT_EQ(TimesOf(events_, acquire),
            (std::vector<absl::Time>{kT0 + absl::Milliseconds(500),
                                     kT0 + absl::Milliseconds(600),
                                     kT0 + absl::Milliseconds(700)}));
}

TEST_F(PriorityTest, ConfigureKeepsTheClassesAndSetsTheBound) {
  Run(10);
  const StreamId high = Open(Request(0, 5));
  const StreamId low = Open(Request(0, 1));
  RunTo(kT0, kT0 + absl::Seconds(2));
  EXPECT_EQ(GrantsByStream(events_)[low], 0);
  // A starvation bound from 2.001 s: the lower class has waited since it
  // opened, but its wait counts from the Configure: its grant is the first
  // due at or after 2.501 s, at 2.6 s.
  ThrottleConfig config = scheduler_->config();
  config.starvation_bound = absl::Milliseconds(500);
  const absl::Time at = kT0 + absl::Seconds(2) + absl::Milliseconds(1);
  scheduler_->Configure(config, at);
  events_.clear();
  RunTo(at, kT0 + absl::Seconds(3));
  EXPECT_EQ(TimesOf(events_, low),
            std::vector<absl::Time>{kT0 + absl::Milliseconds(2600)});
  EXPECT_GT(GrantsByStream(events_)[high], 0);
}

TEST_F(PriorityTest, StopEndsEveryClassAndAStartServesThemAgain) {
  Run(10, absl::Seconds(1));
  const StreamId high = Open(Request(0, 5));
  const StreamId low = Open(Request(0, 1));
  RunTo(kT0, kT0 + absl::Milliseconds(500));
  events_.clear();
  ASSERT_TRUE(scheduler_->Stop(kT0 + absl::Milliseconds(500), &events_).ok());
  std::map<StreamId, EndReason> ends;
  for (const StreamEvent& e : events_) ends[e.stream] = e.end;
  EXPECT_EQ(ends[high], EndReason::kStopped);
  EXPECT_EQ(ends[low], EndReason::kStopped);
  EXPECT_EQ(scheduler_->waiting_streams(), 0);
  const absl::Time start = kT0 + absl::Seconds(5);
  ASSERT_TRUE(scheduler_->Start(start).ok());
  events_.clear();
  const StreamId low2 = Open(Request(1, 0), start);
  const StreamId high2 = Open(Request(1, 3), start);
  RunTo(start, start + absl::Seconds(1));
  std::vector<StreamId> order;
  for (const GrantAt& g : Grants(events_)) order.push_back(g.stream);
  EXPECT_EQ(order, (std::vector<StreamId>{high2, low2}));
}

TEST_F(PriorityTest, TheWindowBoundHoldsAcrossClasses) {
  // Window mode, 5 per second, three classes and a starvation bound: in
  // any second at most 5 grants, whoever got them, and the lower classes
  // are not starved beyond the bound and one slot.
  Run(5, absl::Milliseconds(700), Mode::kWindow);
  Open(Request(0, 9, 3));
  const StreamId mid = Open(Request(0, 4));
  const StreamId low = Open(Request(0, 0, 2));
  RunTo(kT0, kT0 + absl::Seconds(30));
  std::vector<absl::Time> times;
  for (const GrantAt& g : Grants(events_)) times.push_back(g.at);
  std::sort(times.begin(), times.end());
  EXPECT_EQ(MaxInWindow(times, absl::Seconds(1)), 5);
  for (const StreamId id : {mid, low}) {
    const std::vector<absl::Time> got = TimesOf(events_, id);
    ASSERT_GE(got.size(), 10u);
    for (size_t i = 1; i < got.size(); ++i) {
      EXPECT_GE(got[i] - got[i - 1], absl::Milliseconds(700));
    }
  }
}

TEST_F(PriorityTest, ExpectedWaitCountsHigherClasses) {
  Run(10);
  Open(Request(3, 6));     // 3 grants of a higher class
  Open(Request(5, 2, 2));  // a turn of 2 in class 2
  Open(Request(0, 0));     // a lower class: not ahead
  // Class 2: 3 + 2 grants ahead, its grant the sixth: 500 ms.
  EXPECT_EQ(scheduler_->ExpectedWait(kT0, 2), absl::Milliseconds(500));
  // Class 9: nobody ahead.
  EXPECT_EQ(scheduler_->ExpectedWait(kT0, 9), absl::ZeroDuration());
  // A count-0 stream above: never, without a starvation bound.
  Open(Request(0, 7));
  EXPECT_EQ(scheduler_->ExpectedWait(kT0, 2), absl::InfiniteDuration());
}

TEST_F(PriorityTest, ExpectedWaitUnderTheStarvationBound) {
  // With a bound, an unbounded higher class leaves the bound's guarantee:
  // a class-2 stream behind a turn of 2 waits the bound for its class's
  // next grant, then one more bound per grant ahead.
  Run(10, absl::Seconds(1));
  Open(Request(0, 7));
  Open(Request(5, 2, 2));
  EXPECT_EQ(scheduler_->ExpectedWait(kT0, 2), absl::Seconds(3));
  RunTo(kT0, kT0 + absl::Seconds(4));
  // The class-2 stream got its grants at 1 s, 2 s and 3 s (one each time).
  std::vector<absl::Time> got;
  for (const GrantAt& g : Grants(events_)) {
    if (g.stream == 2) got.push_back(g.at);
  }
  EXPECT_EQ(got, (std::vector<absl::Time>{
                     kT0 + absl::Seconds(1), kT0 + absl::Seconds(2),
                     kT0 + absl::Seconds(3), kT0 + absl::Seconds(4)}));
}

TEST(PriorityConfig, TheStarvationBoundIsValidated) {
  ThrottleConfig config = Config(1, absl::Seconds(1), Mode::kSmooth);
  config.starvation_bound = -absl::Seconds(1);
  EXPECT_EQ(ValidateConfig(config).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ValidateConfig(config).message().find("starvation_bound"),
            std::string::npos);
  config.starvation_bound = kMaxStarvationBound + absl::Seconds(1);
  EXPECT_FALSE(ValidateConfig(config).ok());
  config.starvation_bound = kMaxStarvationBound;
  EXPECT_TRUE(ValidateConfig(config).ok());
}

}  // namespace
}  // namespace throttle::server
