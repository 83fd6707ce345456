// Deadline-aware admission (StreamRequest::fail_if_late) and HasFuel's
// retry_after under a fake clock. The invariant, both ways: a stream
// refused as too late would in fact not have got its grant within its wait
// limit (the same scenario without fail_if_late shows when it comes), and
// a stream admitted, with nobody arriving after it, gets its grant within
// its wait limit and when it was expected.
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/core/scheduler.h"
#include "tests/core/scheduler_test_util.h"

namespace throttle::server {
namespace {

using testing::Config;
using testing::kT0;
using testing::OnDemand;
using testing::RunUntil;

StreamRequest Request(int64_t count, int64_t weight = 1) {
  StreamRequest request;
  request.count = count;
  request.weight = weight;
  return request;
}

// A stream of `count` grants with `wait_limit` that asks fail_if_late.
StreamRequest FailIfLate(int64_t count, absl::Duration wait_limit,
                         bool fail_if_late = true) {
  StreamRequest request = Request(count);
  request.wait_limit = wait_limit;
  request.fail_if_late = fail_if_late;
  return request;
}

// A throttle, the streams ahead of the probe (opened from the start, with
// the clock run to `probe_at`), and the probe.
struct Scenario {
  std::string name;
  ThrottleConfig config;
  // Opens the streams ahead from kT0 (the throttle started then), may run
  // the clock up to probe_at, and returns the time it reached.
  std::function<absl::Time(Scheduler&, std::vector<StreamEvent>*)> ahead;
  absl::Time probe_at;
  StreamRequest probe = Request(1);
  // How far the expectation may be off: zero (exact) but during a warm-up
  // ramp, whose clock is rounded (a few nanoseconds per grant ahead).
  absl::Duration tolerance = absl::ZeroDuration();
};

// What became of the probe in one run.
struct Outcome {
  EndReason end = EndReason::kNone;
  absl::Duration expected_wait;           // with kTooLate
  std::optional<absl::Time> first_grant;  // nominal time
  absl::Duration expected;                // ExpectedWait just before Open
};

Outcome RunProbe(const Scenario& s, absl::Duration wait_limit,
                 bool fail_if_late) {
  Scheduler scheduler(s.config);
  EXPECT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  const absl::Time reached = s.ahead(scheduler, &events);
  RunUntil(scheduler, reached, s.probe_at, &events);
  events.clear();
  Outcome outcome;
  outcome.expected =
      scheduler.ExpectedWait(s.probe_at, s.probe.priority).value();
  StreamRequest request = s.probe;
  request.wait_limit = wait_limit;
  request.fail_if_late = fail_if_late;
  const StreamId probe = scheduler.Open(request, s.probe_at, &events);
  RunUntil(scheduler, s.probe_at, s.probe_at + absl::Seconds(60), &events);
  for (const StreamEvent& e : events) {
    if (e.stream != probe) continue;
    if (e.grants > 0 && !outcome.first_grant)
      outcome.first_grant = e.granted_at;
    if (e.end != EndReason::kNone && outcome.end == EndReason::kNone) {
      outcome.end = e.end;
      outcome.expected_wait = e.expected_wait;
    }
  }
  return outcome;
}

// Checks the invariant for one scenario over a range of wait limits; at
// least one must be refused and one admitted, or the scenario tests
// nothing.
void CheckAdmission(const Scenario& s) {
  SCOPED_TRACE(s.name);
  const Outcome free = RunProbe(s, absl::InfiniteDuration(), false);
  ASSERT_TRUE(free.first_grant.has_value());
  const absl::Duration actual =
      std::max(absl::ZeroDuration(), *free.first_grant - s.probe_at);
  // The expectation is exact when nobody else arrives.
  EXPECT_LE(absl::AbsDuration(free.expected - actual), s.tolerance);
  int refused = 0;
  int admitted = 0;
  for (absl::Duration w = absl::Milliseconds(1);
       w <= actual * 2 + absl::Seconds(1); w += absl::Milliseconds(7)) {
    SCOPED_TRACE(absl::FormatDuration(w));
    const Outcome late = RunProbe(s, w, true);
    if (late.end == EndReason::kTooLate) {
      ++refused;
      // Refused: without fail_if_late it would not have been served in time.
      EXPECT_GT(actual, w);
      EXPECT_EQ(late.expected_wait, free.expected);
      EXPECT_FALSE(late.first_grant.has_value());
      const Outcome plain = RunProbe(s, w, false);
      EXPECT_EQ(plain.end, EndReason::kWaitLimitPassed);
      EXPECT_FALSE(plain.first_grant.has_value());
    } else {
      ++admitted;
      // Admitted: served within its wait limit, when expected.
      ASSERT_TRUE(late.first_grant.has_value());
      EXPECT_LE(*late.first_grant - s.probe_at, w);
      EXPECT_LE(*late.first_grant - s.probe_at, free.expected + s.tolerance);
      EXPECT_NE(late.end, EndReason::kWaitLimitPassed);
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(admitted, 0);
}

// The streams ahead: `requests`, opened at kT0 in this order.
std::function<absl::Time(Scheduler&, std::vector<StreamEvent>*)> Opens(
    std::vector<StreamRequest> requests) {
  return [=](Scheduler& scheduler, std::vector<StreamEvent>* events) {
    for (const StreamRequest& request : requests) {
      scheduler.Open(request, kT0, events);
    }
    return kT0;
  };
}

// n streams ahead, each of `count` grants and `weight`.
std::function<absl::Time(Scheduler&, std::vector<StreamEvent>*)> Ahead(
    int n, int64_t count, int64_t weight = 1) {
  return Opens(std::vector<StreamRequest>(n, Request(count, weight)));
}

TEST(Admission, SmoothModeSeveralStreamsAhead) {
  CheckAdmission({"smooth", Config(10, absl::Seconds(1), Mode::kSmooth),
                  Ahead(3, 5), kT0 + absl::Milliseconds(30)});
}

TEST(Admission, SmoothModeNobodyAheadWaitsForTheSpacing) {
  CheckAdmission({"smooth alone", Config(2, absl::Seconds(1), Mode::kSmooth),
                  Ahead(1, 1), kT0 + absl::Milliseconds(100)});
}

TEST(Admission, WindowMode) {
  // 4 per second: the first 4 grants at kT0, then each as its slot leaves
  // the window.
  CheckAdmission({"window", Config(4, absl::Seconds(1), Mode::kWindow),
                  Ahead(3, 4), kT0 + absl::Milliseconds(200)});
}

TEST(Admission, WindowModeStaggeredLog) {
  // One grant each at 0, 90 and 240 ms fills the window's log at three
  // times, so each slot frees on its own; then two streams wait (weights 2
  // and 1): the probe's turn comes after three grants at 1000, 1090 and
  // 1240 ms, at 2000 ms.
  Scenario s{"window staggered", Config(3, absl::Seconds(1), Mode::kWindow),
             [](Scheduler& scheduler, std::vector<StreamEvent>* events) {
               absl::Time last = kT0;
               for (const int ms : {0, 90, 240, 250, 260}) {
                 const absl::Time at = kT0 + absl::Milliseconds(ms);
                 RunUntil(scheduler, last, at, events);
                 scheduler.Open(
                     ms < 250 ? Request(1) : Request(10, ms == 250 ? 2 : 1), at,
                     events);
                 last = at;
               }
               return last;
             },
             kT0 + absl::Milliseconds(300)};
  CheckAdmission(s);
  EXPECT_EQ(RunProbe(s, absl::InfiniteDuration(), false).first_grant,
            kT0 + absl::Seconds(2));
}

TEST(Admission, WindowModeAfterAGiveBack) {
  // Grants at 0, 100 and 200 ms; the one at 100 ms, in the middle of the
  // window's log, is given back (it never reached its worker), so of two
  // streams at 300 ms one gets the freed slot; the slots free again at
  // 1000, 1200 and 1300 ms, and the probe, after those two streams' turns,
  // gets the third.
  ThrottleConfig config = Config(3, absl::Seconds(1), Mode::kWindow);
  config.catch_up = absl::ZeroDuration();  // each grant dated when made
  Scenario s{"window give-back", config,
             [](Scheduler& scheduler, std::vector<StreamEvent>* events) {
               absl::Time last = kT0;
               for (const int ms : {0, 100, 200, 300}) {
                 const absl::Time at = kT0 + absl::Milliseconds(ms);
                 RunUntil(scheduler, last, at, events);
                 if (ms == 300) {  // in the middle of the log
                   const StreamEvent& back = (*events)[1];  // at 100 ms
                   EXPECT_EQ(back.granted_at, kT0 + absl::Milliseconds(100));
                   EXPECT_EQ(back.grants, 1);
                   scheduler.GiveBack(back.granted_at, back.grants,
                                      back.spacing, back.epoch);
                 }
                 scheduler.Open(Request(ms < 300 ? 1 : 10), at, events);
                 if (ms == 300) scheduler.Open(Request(10), at, events);
                 last = at;
               }
               RunUntil(scheduler, last, last, events);
               return last;
             },
             kT0 + absl::Milliseconds(400)};
  CheckAdmission(s);
  EXPECT_EQ(RunProbe(s, absl::InfiniteDuration(), false).first_grant,
            kT0 + absl::Milliseconds(1300));
}

TEST(Admission, WindowModeSeveralWindowsAhead) {
  CheckAdmission({"window rounds", Config(3, absl::Seconds(1), Mode::kWindow),
                  Ahead(4, 10, 2), kT0 + absl::Milliseconds(500)});
}

TEST(Admission, BucketModeWithBurstCredit) {
  // A bucket of 8 at 4 per second: the streams ahead take 6 at once, the
  // probe's turn comes from the credit left and the refill.
  Scenario s{"bucket", Config(4, absl::Seconds(1), Mode::kBucket, 8),
             Ahead(5, 3), kT0 + absl::Milliseconds(10)};
  CheckAdmission(s);
  // With the credit the probe is served at once.
  Scenario credit{"bucket credit",
                  Config(4, absl::Seconds(1), Mode::kBucket, 8), Ahead(2, 1),
                  kT0 + absl::Milliseconds(10)};
  EXPECT_EQ(RunProbe(credit, absl::Milliseconds(1), true).end,
            EndReason::kCountReached);
}

TEST(Admission, UnboundedMode) {
  CheckAdmission({"unbounded", Config(5, absl::Seconds(1), Mode::kUnbounded),
                  Ahead(2, 6), kT0 + absl::Milliseconds(50)});
}

// During a warm-up ramp the expectation follows the ramped rate: the
// streams ahead are served slower than at the full rate, and the probe's
// grant comes when the ramp lets it.
TEST(Admission, DuringAWarmUpRampTheExpectationFollowsTheRamp) {
  for (const Mode mode :
       {Mode::kSmooth, Mode::kBucket, Mode::kUnbounded, Mode::kWindow}) {
    ThrottleConfig config = Config(10, absl::Seconds(1), mode);
    config.warm_up = absl::Seconds(4);
    config.warm_up_from = 0.25;
    Scenario s{"warm-up, mode " + std::to_string(static_cast<int>(mode)),
               config, Ahead(3, 4), kT0 + absl::Milliseconds(20)};
    s.tolerance = absl::Microseconds(1);
    CheckAdmission(s);
  }
}

TEST(Admission, WeightsAndCountsShapeTheTurnsAhead) {
  // Weights 3 and 2 with plenty to go give 3 + 2 ahead; a weight-4 stream
  // that wants only 1 more gives 1.
  Scenario s{"weights", Config(10, absl::Seconds(1), Mode::kSmooth),
             Opens({Request(30, 3), Request(30, 2), Request(1, 4)}),
             kT0 + absl::Milliseconds(1)};
  CheckAdmission(s);
  s.probe = Request(5, 3);
  s.name = "weights, probe weight 3";
  CheckAdmission(s);
}

TEST(Admission, OnDemandStreamsAheadCountTheirDemand) {
  Scenario s{"on demand", Config(10, absl::Seconds(1), Mode::kSmooth),
             // 2 ahead, none (idle), 3 ahead.
             Opens({OnDemand(2, 5), OnDemand(0, 5), OnDemand(7, 3)}),
             kT0 + absl::Milliseconds(1)};
  CheckAdmission(s);
}

TEST(Admission, HeldStreamsAreNotAhead) {
  Scenario s{"held", Config(10, absl::Seconds(1), Mode::kSmooth),
             [](Scheduler& scheduler, std::vector<StreamEvent>* events) {
               scheduler.Open(Request(5), kT0, events);
               const StreamId held = scheduler.Open(Request(0, 9), kT0, events);
               scheduler.Hold(held);
               return kT0;
             },
             kT0 + absl::Milliseconds(1)};
  CheckAdmission(s);
}

TEST(Admission, AfterAGrantTheNextIsCheckedAgain) {
  // The probe gets its first grant at once, then five streams join behind
  // it: its second grant comes after their turns, 600 ms on, beyond its
  // 300 ms limit.
  for (const bool fail_if_late : {true, false}) {
    SCOPED_TRACE(fail_if_late);
    Scheduler scheduler(Config(10, absl::Seconds(1), Mode::kSmooth));
    ASSERT_TRUE(scheduler.Start(kT0).ok());
    std::vector<StreamEvent> events;
    const StreamRequest probe =
        FailIfLate(3, absl::Milliseconds(300), fail_if_late);
    const StreamId id = scheduler.Open(probe, kT0, &events);
    for (int i = 0; i < 5; ++i) scheduler.Open(Request(10), kT0, &events);
    RunUntil(scheduler, kT0, kT0 + absl::Seconds(5), &events);
    int64_t grants = 0;
    std::optional<StreamEvent> end;
    for (const StreamEvent& e : events) {
      if (e.stream != id) continue;
      grants += e.grants;
      if (e.end != EndReason::kNone) end = e;
    }
    EXPECT_EQ(grants, 1);
    ASSERT_TRUE(end.has_value());
    if (fail_if_late) {
      EXPECT_EQ(end->end, EndReason::kTooLate);
      EXPECT_EQ(end->expected_wait, absl::Milliseconds(600));
    } else {
      EXPECT_EQ(end->end, EndReason::kWaitLimitPassed);
    }
  }
}

TEST(Admission, WithNoLaterArrivalsAnAdmittedStreamNeverMissesItsLimit) {
  // Random streams (weights, counts, wait limits, half fail_if_late) all
  // open at once, so nobody arrives after any of them: a fail_if_late
  // stream is refused or ended as too late, or gets every grant within its
  // wait limit -- through single steps and whole rounds, in every mode.
  int too_late = 0;
  int served = 0;
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    const Mode modes[] = {Mode::kSmooth, Mode::kWindow, Mode::kBucket,
                          Mode::kUnbounded};
    const Mode mode = modes[seed % 4];
    const int64_t max_n = std::uniform_int_distribution<int64_t>(2, 50)(rng);
    Scheduler scheduler(Config(max_n, absl::Seconds(1), mode,
                               mode == Mode::kBucket ? max_n * 2 : 0));
    ASSERT_TRUE(scheduler.Start(kT0).ok());
    std::vector<StreamEvent> events;
    std::vector<bool> late_ok(1, false);  // by stream id
    const int streams = std::uniform_int_distribution<int>(1, 12)(rng);
    for (int i = 0; i < streams; ++i) {
      StreamRequest request =
          Request(std::uniform_int_distribution<int64_t>(1, 30)(rng),
                  std::uniform_int_distribution<int64_t>(1, 4)(rng));
      request.wait_limit =
          absl::Milliseconds(std::uniform_int_distribution<int>(1, 1500)(rng));
      request.fail_if_late = rng() % 2 == 0;
      const StreamId id = scheduler.Open(request, kT0, &events);
      late_ok.resize(id + 1, false);
      late_ok[id] = request.fail_if_late;
    }
    RunUntil(scheduler, kT0, kT0 + absl::Seconds(120), &events);
    for (const StreamEvent& e : events) {
      if (!late_ok[e.stream]) continue;
      SCOPED_TRACE(seed);
      EXPECT_NE(e.end, EndReason::kWaitLimitPassed);
      if (e.end == EndReason::kTooLate) ++too_late;
      if (e.end == EndReason::kCountReached) ++served;
    }
  }
  EXPECT_GT(too_late, 0);
  EXPECT_GT(served, 0);
}

TEST(Admission, AStreamAdmittedAloneIsNeverTooLate) {
  // Its own turn: the probe's grants come one spacing apart, within 150 ms.
  Scheduler scheduler(Config(10, absl::Seconds(1), Mode::kSmooth));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  const StreamRequest probe = FailIfLate(20, absl::Milliseconds(150));
  const StreamId id = scheduler.Open(probe, kT0, &events);
  RunUntil(scheduler, kT0, kT0 + absl::Seconds(5), &events);
  int64_t grants = 0;
  for (const StreamEvent& e : events) {
    if (e.stream != id) continue;
    grants += e.grants;
    if (e.end != EndReason::kNone) {
      EXPECT_EQ(e.end, EndReason::kCountReached);
    }
  }
  EXPECT_EQ(grants, 20);
}

TEST(Admission, MonitorOnlyIsNeverTooLate) {
  Scheduler scheduler(Config(1, absl::Seconds(1), Mode::kMonitorOnly));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  for (int i = 0; i < 3; ++i) scheduler.Open(Request(5), kT0, &events);
  EXPECT_EQ(scheduler.ExpectedWait(kT0), absl::ZeroDuration());
  const StreamRequest probe = FailIfLate(2, absl::Nanoseconds(1));
  const StreamId id = scheduler.Open(probe, kT0, &events);
  scheduler.Advance(kT0, &events);
  int64_t grants = 0;
  for (const StreamEvent& e : events) {
    if (e.stream != id) continue;
    grants += e.grants;
    EXPECT_NE(e.end, EndReason::kTooLate);
  }
  EXPECT_EQ(grants, 2);
}

TEST(Admission, NotStartedIsNeverTooLate) {
  Scheduler scheduler(Config(1, absl::Seconds(100), Mode::kSmooth));
  std::vector<StreamEvent> events;
  EXPECT_FALSE(scheduler.ExpectedWait(kT0).has_value());
  const StreamRequest probe = FailIfLate(1, absl::Milliseconds(10));
  const StreamId id = scheduler.Open(probe, kT0, &events);
  EXPECT_TRUE(events.empty());  // it waits as without fail_if_late
  scheduler.Advance(kT0 + absl::Milliseconds(10), &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].stream, id);
  EXPECT_EQ(events[0].end, EndReason::kWaitLimitPassed);
}

TEST(Admission, ZeroWaitLimitEndsAsWithoutFailIfLate) {
  // "Only if free at once" takes what is free and ends for its wait limit,
  // not as too late (found by the scheduler fuzzer).
  Scheduler scheduler(Config(1, absl::Seconds(1), Mode::kSmooth));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  StreamRequest probe = Request(3, 2);
  probe.wait_limit = absl::ZeroDuration();
  probe.fail_if_late = true;
  scheduler.Open(probe, kT0, &events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].grants, 1);
  EXPECT_EQ(events[1].end, EndReason::kWaitLimitPassed);
}

TEST(Admission, AGrantDatedBackByTheCatchUpKeepsTheDeadline) {
  // One grant per 10 s (catch-up 10 s). A stream opening 25 s in gets a
  // grant dated 15 s, when its slot passed, and the next is due at once:
  // it is not too late, though 15 s + its 200 ms limit lies in the past
  // (found by the scheduler fuzzer).
  Scheduler scheduler(Config(1, absl::Seconds(10), Mode::kSmooth));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  scheduler.Open(Request(1), kT0, &events);
  scheduler.Advance(kT0, &events);
  events.clear();
  const absl::Time now = kT0 + absl::Seconds(25);
  const StreamRequest probe = FailIfLate(2, absl::Milliseconds(200));
  scheduler.Open(probe, now, &events);
  scheduler.Advance(now, &events);
  ASSERT_EQ(testing::TimesOf(events).size(), 2u);
  EXPECT_EQ(testing::TimesOf(events)[0], kT0 + absl::Seconds(15));
  EXPECT_EQ(events.back().end, EndReason::kCountReached);
}

TEST(Admission, NoWaitLimitIsNeverTooLate) {
  Scheduler scheduler(Config(1, absl::Seconds(100), Mode::kSmooth));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  for (int i = 0; i < 3; ++i) scheduler.Open(Request(1), kT0, &events);
  StreamRequest probe = Request(1);
  probe.fail_if_late = true;  // wait_limit infinite
  scheduler.Open(probe, kT0, &events);
  for (const StreamEvent& e : events) EXPECT_NE(e.end, EndReason::kTooLate);
}

TEST(Admission, HasFuelRetryAfterIsTheExpectedWaitOfANewStream) {
  for (const Mode mode : {Mode::kSmooth, Mode::kWindow, Mode::kBucket}) {
    SCOPED_TRACE(static_cast<int>(mode));
    Scheduler scheduler(
        Config(5, absl::Seconds(1), mode, mode == Mode::kBucket ? 5 : 0));
    ASSERT_TRUE(scheduler.Start(kT0).ok());
    std::vector<StreamEvent> events;
    // Nobody waits: HasFuel takes the free grants, then says when the
    // next is free.
    absl::Time now = kT0 + absl::Milliseconds(1);
    HasFuelResult result;
    int granted = 0;
    while ((result = scheduler.HasFuel(now)).granted) {
      EXPECT_FALSE(result.retry_after.has_value());
      ++granted;
    }
    EXPECT_GE(granted, 1);
    ASSERT_TRUE(result.retry_after.has_value());
    EXPECT_EQ(result.retry_after, scheduler.ExpectedWait(now));
    EXPECT_GT(*result.retry_after, absl::ZeroDuration());
    // With streams waiting, a new stream's grant comes at retry_after.
    for (int i = 0; i < 3; ++i) scheduler.Open(Request(2), now, &events);
    result = scheduler.HasFuel(now);
    EXPECT_FALSE(result.granted);
    ASSERT_TRUE(result.retry_after.has_value());
    EXPECT_EQ(result.retry_after, scheduler.ExpectedWait(now));
    events.clear();
    const StreamId probe = scheduler.Open(Request(1), now, &events);
    RunUntil(scheduler, now, now + absl::Seconds(30), &events);
    std::optional<absl::Time> first;
    for (const StreamEvent& e : events) {
      if (e.stream == probe && e.grants > 0 && !first) first = e.granted_at;
    }
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(*first - now, *result.retry_after);
  }
}

StreamRequest OfClass(StreamRequest request, int64_t priority) {
  request.priority = priority;
  return request;
}

TEST(Admission, HigherClassesAheadCountAllTheyWantLowerOnesNothing) {
  // At the probe (class 2): 2 grants left to class 6, the turns of 2 and 1
  // in class 2; the count-0 class-0 stream is not ahead.
  Scenario s{"classes", Config(10, absl::Seconds(1), Mode::kSmooth),
             Opens({OfClass(Request(3), 6), OfClass(Request(4, 2), 2),
                    OfClass(Request(5), 2), OfClass(Request(0), 0)}),
             kT0 + absl::Milliseconds(1), OfClass(Request(1), 2)};
  CheckAdmission(s);
  EXPECT_EQ(RunProbe(s, absl::InfiniteDuration(), false).first_grant,
            kT0 + absl::Milliseconds(600));
}

TEST(Admission, BehindAnEndlessHigherClassTheStarvationBoundIsExpected) {
  ThrottleConfig config = Config(10, absl::Seconds(1), Mode::kSmooth);
  config.starvation_bound = absl::Seconds(1);
  Scenario s{"starvation bound", config, Opens({OfClass(Request(0), 9)}),
             kT0 + absl::Milliseconds(200), OfClass(Request(1), 0)};
  CheckAdmission(s);
  EXPECT_EQ(RunProbe(s, absl::InfiniteDuration(), false).first_grant,
            kT0 + absl::Milliseconds(1200));
}

TEST(Admission, BehindAnEndlessHigherClassWithoutABoundIsNever) {
  Scheduler scheduler(Config(10, absl::Seconds(1), Mode::kSmooth));
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  std::vector<StreamEvent> events;
  scheduler.Open(OfClass(Request(0), 1), kT0, &events);
  EXPECT_EQ(scheduler.ExpectedWait(kT0, 0), absl::InfiniteDuration());
  // HasFuel (the default class) has no retry-after to give.
  const HasFuelResult has_fuel = scheduler.HasFuel(kT0);
  EXPECT_FALSE(has_fuel.granted);
  EXPECT_FALSE(has_fuel.retry_after.has_value());
  const StreamId probe = scheduler.Open(
      OfClass(FailIfLate(1, absl::Seconds(3600)), 0), kT0, &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].stream, probe);
  EXPECT_EQ(events[0].end, EndReason::kTooLate);
  EXPECT_EQ(events[0].expected_wait, absl::InfiniteDuration());
  // Of its class or above, it is admitted.
  events.clear();
  scheduler.Open(OfClass(FailIfLate(1, absl::Seconds(3600)), 1), kT0, &events);
  EXPECT_TRUE(events.empty());
}

TEST(Admission, HasFuelRetryAfterIsUnsetWhenStoppedOrNotStarted) {
  Scheduler scheduler(Config(1, absl::Seconds(1), Mode::kSmooth));
  EXPECT_FALSE(scheduler.HasFuel(kT0).retry_after.has_value());
  ASSERT_TRUE(scheduler.Start(kT0).ok());
  EXPECT_TRUE(scheduler.HasFuel(kT0).granted);
  EXPECT_TRUE(scheduler.HasFuel(kT0).retry_after.has_value());
  std::vector<StreamEvent> events;
  ASSERT_TRUE(scheduler.Stop(kT0, &events).ok());
  const HasFuelResult stopped = scheduler.HasFuel(kT0);
  EXPECT_TRUE(stopped.stopped);
  EXPECT_FALSE(stopped.retry_after.has_value());
}

}  // namespace
}  // namespace throttle::server
