// Durable state and reservations in the scheduler core, under a fake
// clock: the grant limit and the grant deadline stop every grant, Save and
// Restore keep the schedule, and a takeover from the last stored state
// keeps each mode's bound over the grants of the old and the new server
// together.
#include <algorithm>
#include <random>
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

int64_t Granted(const std::vector<StreamEvent>& events) {
  int64_t n = 0;
  for (const StreamEvent& e : events) n += e.grants;
  return n;
}

TEST(Reservation, GrantLimitStopsGrantsUntilRaised) {
  Scheduler s(Config(10, absl::Seconds(1), Mode::kBucket, 10));
  s.SetGrantLimit(3);
  ASSERT_TRUE(s.Start(kT0).ok());
  std::vector<StreamEvent> events;
  s.Open({0, 1, absl::InfiniteDuration()}, kT0, &events);
  s.Advance(kT0, &events);
  EXPECT_EQ(Granted(events), 3);  // a full bucket, but only 3 reserved
  EXPECT_EQ(s.grants_recorded(), 3);
  EXPECT_EQ(s.NextWakeup(), absl::InfiniteFuture());
  EXPECT_FALSE(s.HasFuel(kT0).granted);

  events.clear();
  s.SetGrantLimit(8);
  s.Advance(kT0, &events);
  EXPECT_EQ(Granted(events), 5);  // the rest of the burst, as reserved
  EXPECT_EQ(s.grants_recorded(), 8);
}

TEST(Reservation, NoGrantAtOrAfterTheDeadlineInAnyMode) {
  for (Mode mode : {Mode::kSmooth, Mode::kWindow, Mode::kBucket,
                    Mode::kUnbounded, Mode::kMonitorOnly}) {
    SCOPED_TRACE(ModeName(mode));
    Scheduler s(Config(100, absl::Seconds(1), mode));
    ASSERT_TRUE(s.Start(kT0).ok());
    s.SetGrantDeadline(kT0 + absl::Seconds(1));
    std::vector<StreamEvent> events;
    s.Open({0, 1, absl::InfiniteDuration()}, kT0, &events);
    s.Advance(kT0 + absl::Milliseconds(500), &events);
    EXPECT_GT(Granted(events), 0);

    // Grants that fell due before the deadline are not handed out after it.
    events.clear();
    s.Advance(kT0 + absl::Seconds(3), &events);
    EXPECT_EQ(Granted(events), 0);
    EXPECT_FALSE(s.HasFuel(kT0 + absl::Seconds(3)).granted);
    // Latched: the scheduler does not ask to be woken for them.
    EXPECT_EQ(s.NextWakeup(), absl::InfiniteFuture());

    s.SetGrantDeadline(kT0 + absl::Seconds(10));
    s.Open({1, 1, absl::InfiniteDuration()}, kT0 + absl::Seconds(4), &events);
    s.Advance(kT0 + absl::Seconds(4), &events);
    EXPECT_GT(Granted(events), 0);
  }
}

TEST(Reservation, SaveAndRestoreKeepTheSchedule) {
  for (Mode mode :
       {Mode::kSmooth, Mode::kWindow, Mode::kBucket, Mode::kUnbounded}) {
    SCOPED_TRACE(ModeName(mode));
    const ThrottleConfig config = Config(4, absl::Seconds(1), mode, 3);
    Scheduler a(config);
    ASSERT_TRUE(a.Start(kT0).ok());
    std::vector<StreamEvent> events;
    a.Open({5, 1, absl::InfiniteDuration()}, kT0, &events);
    absl::Time now = kT0;
    while (true) {
      a.Advance(now, &events);
      if (a.waiting_streams() == 0) break;
      now = std::max(now, a.NextWakeup());
    }
    const SchedulerState saved = a.Save();
    EXPECT_EQ(saved.state, State::kRunning);
    EXPECT_EQ(saved.monitor.total, 5);

    Scheduler b(config);
    b.Restore(saved, 0, now);
    EXPECT_EQ(b.state(), State::kRunning);
    EXPECT_EQ(b.total_emissions(), 5);
    EXPECT_EQ(b.Mean(now).run.runtime, a.Mean(now).run.runtime);
    EXPECT_EQ(b.Mean(now).lowest_gap, a.Mean(now).lowest_gap);

    // Both grant the next one at the same nominal time.
    std::vector<StreamEvent> ea, eb;
    a.Open({1, 1, absl::InfiniteDuration()}, now, &ea);
    b.Open({1, 1, absl::InfiniteDuration()}, now, &eb);
    const absl::Time next = a.NextWakeup();
    EXPECT_EQ(b.NextWakeup(), next);
    a.Advance(next, &ea);
    b.Advance(next, &eb);
    ASSERT_EQ(Granted(ea), 1);
    ASSERT_EQ(Granted(eb), 1);
    EXPECT_EQ(ea.back().granted_at, eb.back().granted_at);
  }
}

TEST(Reservation, RestoreOfAStoppedThrottleStaysStopped) {
  const ThrottleConfig config = Config(4, absl::Seconds(1), Mode::kSmooth);
  Scheduler a(config);
  ASSERT_TRUE(a.Start(kT0).ok());
  std::vector<StreamEvent> events;
  ASSERT_TRUE(a.Stop(kT0 + absl::Seconds(2), &events).ok());
  Scheduler b(config);
  b.Restore(a.Save(), 2, kT0 + absl::Seconds(5));
  EXPECT_EQ(b.state(), State::kStopped);
  EXPECT_EQ(b.Totals(kT0 + absl::Seconds(9)).runtime, absl::Seconds(2));
  EXPECT_TRUE(b.Start(kT0 + absl::Seconds(9)).ok());
}

// One server granting to a busy count-0 stream under reservations of
// `chunk` grants, renewed when fewer than half are left; a renewal's write
// takes `write_steps` steps to commit. What it stores is what a new server
// would start from.
class ReservingServer {
 public:
  struct Stored {
    SchedulerState state;
    int64_t reserved = 0;  // grants beyond `state` the server may make
  };

  ReservingServer(const ThrottleConfig& config, int64_t chunk, int write_steps)
      : scheduler_(config), chunk_(chunk), write_steps_(write_steps) {
    scheduler_.SetGrantLimit(0);
  }

  // A new server taking over at `now` from `stored`.
  ReservingServer(const ThrottleConfig& config, int64_t chunk, int write_steps,
                  const Stored& stored, absl::Time now)
      : ReservingServer(config, chunk, write_steps) {
    scheduler_.Restore(stored.state, stored.reserved, now);
  }

  Scheduler& scheduler() { return scheduler_; }
  const Stored& stored() const { return stored_; }

  void Open(absl::Time now) {
    std::vector<StreamEvent> events;
    scheduler_.Open({0, 1, absl::InfiniteDuration()}, now, &events);
  }

  // One step at `now`: commits a write in flight, grants, starts a write.
  void Step(absl::Time now, std::vector<absl::Time>* grants) {
    std::vector<StreamEvent> events;
    if (in_flight_ && --steps_left_ <= 0) {
      in_flight_ = false;
      stored_ = pending_;
      scheduler_.SetGrantLimit(pending_limit_);
    }
    scheduler_.Advance(now, &events);
    const std::vector<absl::Time> times = TimesOf(events);
    grants->insert(grants->end(), times.begin(), times.end());
    const int64_t left =
        scheduler_.grant_limit() - scheduler_.grants_recorded();
    if (!in_flight_ && left <= chunk_ / 2) {
      in_flight_ = true;
      steps_left_ = write_steps_;
      pending_limit_ = std::max(scheduler_.grant_limit(),
                                scheduler_.grants_recorded() + chunk_);
      pending_ = {scheduler_.Save(),
                  pending_limit_ - scheduler_.grants_recorded()};
    }
  }

 private:
  Scheduler scheduler_;
  const int64_t chunk_;
  const int write_steps_;
  Stored stored_;
  bool in_flight_ = false;
  int steps_left_ = 0;
  Stored pending_;
  int64_t pending_limit_ = 0;
};

// Runs an old server from kT0, kills it at a random moment, lets a new one
// take over from what was stored after a random gap, and returns the
// nominal times of both servers' grants, merged and sorted.
std::vector<absl::Time> Takeover(const ThrottleConfig& config, int64_t chunk,
                                 uint32_t seed, int64_t* new_grants) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> step_us(1, 40000);
  std::vector<absl::Time> grants;
  ReservingServer old_server(config, chunk, 1 + static_cast<int>(seed % 4));
  absl::Time now = kT0;
  EXPECT_TRUE(old_server.scheduler().Start(now).ok());
  old_server.Open(now);
  const absl::Time dies = kT0 + absl::Milliseconds(500 + rng() % 3000);
  while (now < dies) {
    old_server.Step(now, &grants);
    now += absl::Microseconds(step_us(rng));
  }
  now += absl::Microseconds(rng() % 1500000);  // the takeover takes a while
  ReservingServer new_server(config, chunk, 1, old_server.stored(), now);
  new_server.Open(now);
  const size_t before = grants.size();
  const absl::Time end = now + absl::Seconds(3);
  while (now < end) {
    new_server.Step(now, &grants);
    now += absl::Microseconds(step_us(rng));
  }
  *new_grants = static_cast<int64_t>(grants.size() - before);
  std::sort(grants.begin(), grants.end());
  return grants;
}

TEST(Reservation, TakeoverKeepsTheWindowBoundOfSmoothAndWindowMode) {
  for (Mode mode : {Mode::kSmooth, Mode::kWindow}) {
    for (uint32_t seed = 1; seed <= 40; ++seed) {
      SCOPED_TRACE(::testing::Message() << ModeName(mode) << " seed " << seed);
      const ThrottleConfig config = Config(50, absl::Seconds(1), mode);
      int64_t new_grants = 0;
      const std::vector<absl::Time> grants =
          Takeover(config, 1 + seed % 13, seed, &new_grants);
      EXPECT_LE(MaxInWindow(grants, config.per), config.max_n);
      EXPECT_GT(new_grants, 50);  // the new server does serve
    }
  }
}

TEST(Reservation, TakeoverKeepsTheBucketBound) {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    const ThrottleConfig config =
        Config(50, absl::Seconds(1), Mode::kBucket, 20);
    const absl::Duration interval = config.per / config.max_n;
    int64_t new_grants = 0;
    const std::vector<absl::Time> g =
        Takeover(config, 1 + seed % 29, seed, &new_grants);
    // Any burst + 1 + m consecutive grants span at least (m + 1) intervals.
    for (size_t i = 0; i < g.size(); ++i) {
      for (int64_t m = 0; m < 40; ++m) {
        const size_t j = i + config.burst + m;
        if (j >= g.size()) break;
        ASSERT_GE(g[j] - g[i], interval * (m + 1)) << "at grant " << i;
      }
    }
    EXPECT_GT(new_grants, 50);
  }
}

TEST(Reservation, TakeoverWithoutTheReservationWouldOverGrant) {
  // The check above can fail: a new server that trusts the stored limiter
  // state alone (reserved = 0) hands out a second window in window mode.
  const ThrottleConfig config = Config(50, absl::Seconds(1), Mode::kWindow);
  int found = 0;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::vector<absl::Time> grants;
    ReservingServer old_server(config, 25, 1);
    absl::Time now = kT0;
    ASSERT_TRUE(old_server.scheduler().Start(now).ok());
    old_server.Open(now);
    for (int i = 0; i < 140 + static_cast<int>(seed); ++i) {
      old_server.Step(now, &grants);
      now += absl::Milliseconds(7);
    }
    ReservingServer::Stored stored = old_server.stored();
    stored.reserved = 0;
    ReservingServer new_server(config, 25, 1, stored, now);
    new_server.Open(now);
    for (int i = 0; i < 200; ++i) {
      new_server.Step(now, &grants);
      now += absl::Milliseconds(7);
    }
    std::sort(grants.begin(), grants.end());
    if (MaxInWindow(grants, config.per) > config.max_n) ++found;
  }
  EXPECT_GT(found, 0);
}

TEST(Reservation, CapacityLostAtATakeoverIsAtMostOneChunk) {
  // Smooth 100/s, chunk 25: the new server's first grant is no later than
  // 25 intervals after the later of the takeover and the old schedule.
  const ThrottleConfig config = Config(100, absl::Seconds(1), Mode::kSmooth);
  const absl::Duration interval = absl::Milliseconds(10);
  std::vector<absl::Time> grants;
  ReservingServer old_server(config, 25, 1);
  absl::Time now = kT0;
  ASSERT_TRUE(old_server.scheduler().Start(now).ok());
  old_server.Open(now);
  for (int i = 0; i < 300; ++i) {
    old_server.Step(now, &grants);
    now += absl::Milliseconds(3);
  }
  const absl::Time takeover = now;
  ReservingServer new_server(config, 25, 1, old_server.stored(), takeover);
  new_server.Open(takeover);
  std::vector<absl::Time> after;
  for (int i = 0; i < 1000 && after.empty(); ++i) {
    new_server.Step(now, &after);
    now += absl::Milliseconds(1);
  }
  ASSERT_FALSE(after.empty());
  EXPECT_LE(after.front(), std::max(takeover, grants.back()) + interval * 26);
}

}  // namespace
}  // namespace throttle::server
