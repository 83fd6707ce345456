// throttle::Tank on its Acquire stream against the real throttle_server
// binary on 127.0.0.1 (docs/acquire-client-spec.md, "What is tested"):
// awaits in a loop, counted awaits, a timed-out waiter's withdrawal, Stop
// of waiting threads, threads sharing one Tank, a server restart. Waits are
// on conditions with generous deadlines.
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/manual_clock.h"
#include "tests/support/server_process.h"
#include "tests/support/tank_loop.h"
#include "throttle/controller.h"
#include "throttle/tank.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);

// The throttle `name` as listed, or a default ThrottleInfo.
v1::ThrottleInfo Info(const Controller& controller, const std::string& name) {
  absl::StatusOr<v1::ListThrottlesResponse> list = controller.ListThrottles();
  if (list.ok()) {
    for (const v1::ThrottleInfo& info : list->throttles()) {
      if (info.name() == name) return info;
    }
  }
  return v1::ThrottleInfo();
}

bool AwaitWaitingStreams(const Controller& controller, const std::string& name,
                         int64_t n) {
  return WaitFor([&] { return Info(controller, name).waiting_streams() == n; },
                 kGenerous);
}

int64_t TotalEmissions(const Controller& controller, const std::string& name) {
  absl::StatusOr<v1::MeanResponse> mean = controller.Mean(name);
  return mean.ok() ? mean->total_emissions() : -1;
}

v1::ThrottleConfig Config(int64_t max_n, double per_seconds, v1::Mode mode) {
  v1::ThrottleConfig config;
  config.set_max_n(max_n);
  config.set_per_seconds(per_seconds);
  config.set_mode(mode);
  return config;
}

// Closes the Tank and joins the threads still running on it, for a test
// that ends early.
class JoinOnExit {
 public:
  JoinOnExit(Tank* tank, std::vector<std::thread>* threads)
      : tank_(tank), threads_(threads) {}
  ~JoinOnExit() {
    bool running = false;
    for (std::thread& thread : *threads_) running |= thread.joinable();
    if (running) tank_->Close();
    for (std::thread& thread : *threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  Tank* const tank_;
  std::vector<std::thread>* const threads_;
};

TankOptions Options() {
  TankOptions options;
  options.worker_id = "tank-server-test";
  options.backoff_initial = absl::Milliseconds(20);
  options.backoff_max = absl::Milliseconds(500);
  // These tests count exactly: no grants asked ahead (see
  // AskingAheadOnlyWhereFuelIsUnlimitedAndBoundedByIt).
  options.ask_ahead = 0;
  return options;
}

class TankServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<ServerProcess> server = StartServer(dir_, 0, {});
    ASSERT_TRUE(server.ok()) << server.status();
    server_.emplace(*std::move(server));
    controller_.emplace(server_->address());
  }

  void TearDown() override {
    if (!server_.has_value()) return;
    // Without a client connection left open the server stops at once,
    // instead of after its shutdown grace.
    controller_.reset();
    server_->process.Signal(SIGTERM);
    EXPECT_EQ(server_->process.Wait(kGenerous).value_or(-1), 0);
  }

  // Creates and starts throttle `name`.
  void Run(const std::string& name, const v1::ThrottleConfig& config) {
    ASSERT_TRUE(controller_->CreateThrottle(name, config).ok());
    ASSERT_TRUE(controller_->Start(name).ok());
  }

  TempDir dir_;
  std::optional<ServerProcess> server_;
  std::optional<Controller> controller_;
};

// Monitor-only fuel is not limited: the Tank asks ahead (TankOptions::
// ask_ahead) and the server counts at most that many grants not yet used;
// with ask_ahead 0, or in a limited mode, it counts exactly what was used.
TEST_F(TankServerTest, AskingAheadOnlyWhereFuelIsUnlimitedAndBoundedByIt) {
  struct Case {
    const char* name;
    v1::Mode mode;
    int64_t ask_ahead;
    int64_t most_unused;
  };
  for (const Case& c : {Case{"monitor", v1::MODE_MONITOR_ONLY, 16, 16},
                        Case{"exact", v1::MODE_MONITOR_ONLY, 0, 0},
                        Case{"limited", v1::MODE_SMOOTH, 16, 0}}) {
    Run(c.name, Config(c.mode == v1::MODE_SMOOTH ? 1'000'000 : 1, 1, c.mode));
    // The Tank's pace is measured on this clock: one grant per 10 us of
    // work, a fast worker however slow the machine (and the Latest call
    // below) is. On the real clock a sanitizer build was too slow to ask
    // ahead at all.
    ManualClock clock;
    TankOptions options = Options();
    options.ask_ahead = c.ask_ahead;
    options.clock = &clock;
    Tank tank(server_->address(), c.name, options);
    constexpr int64_t kAwaits = 500;
    for (int64_t i = 1; i <= kAwaits; ++i) {
      ASSERT_TRUE(tank.AwaitFuel().ok()) << c.name << " " << i;
      clock.Advance(absl::Microseconds(10));
      const int64_t counted = TotalEmissions(*controller_, c.name);
      ASSERT_GE(counted, i) << c.name;
      ASSERT_LE(counted, i + c.most_unused) << c.name << " after " << i;
    }
    if (c.most_unused > 0) {
      // It did ask ahead: one round trip served many awaits.
      EXPECT_GT(TotalEmissions(*controller_, c.name), kAwaits) << c.name;
    }
  }
}

// A worker slower than one grant a millisecond asks for nothing ahead, so
// its counts stay exact even with ask_ahead set.
TEST_F(TankServerTest, ASlowWorkerAsksForNothingAhead) {
  Run("slow", Config(1, 1, v1::MODE_MONITOR_ONLY));
  ManualClock clock;  // the Tank's pace is measured on it
  TankOptions options = Options();
  options.ask_ahead = 16;
  options.clock = &clock;
  Tank tank(server_->address(), "slow", options);
  for (int64_t i = 1; i <= 100; ++i) {
    ASSERT_TRUE(tank.AwaitFuel().ok()) << i;
    ASSERT_EQ(TotalEmissions(*controller_, "slow"), i);
    clock.Advance(absl::Milliseconds(5));  // one grant per 5 ms of work
  }
}

TEST_F(TankServerTest, ALoopOfAwaitsGetsFuel) {
  Run("loop", Config(1, 1, v1::MODE_MONITOR_ONLY));
  Tank tank(server_->address(), "loop", Options());
  constexpr int kAwaits = 2000;
  for (int i = 0; i < kAwaits; ++i) {
    const FuelResult result = tank.AwaitFuel();
    ASSERT_EQ(result.outcome, FuelOutcome::kFuel) << i << " " << result.status;
    ASSERT_EQ(result.grants, 1);
  }
  EXPECT_FALSE(tank.killed());
  EXPECT_EQ(TotalEmissions(*controller_, "loop"), kAwaits);
  // The stream stays open, holding no place in the throttle's queue.
  EXPECT_EQ(Info(*controller_, "loop").waiting_streams(), 0);
}

TEST_F(TankServerTest, ACountedAwaitGetsN) {
  Run("counted", Config(100, 1, v1::MODE_WINDOW));
  Tank tank(server_->address(), "counted", Options());
  const FuelResult result = tank.AwaitFuel(40, kGenerous);
  EXPECT_EQ(result.outcome, FuelOutcome::kFuel) << result.status;
  EXPECT_EQ(result.grants, 40);
  EXPECT_EQ(TotalEmissions(*controller_, "counted"), 40);
}

TEST_F(TankServerTest, ATimedOutWaitersDemandIsWithdrawn) {
  // Created, not started: the stream waits.
  ASSERT_TRUE(
      controller_->CreateThrottle("idle", Config(10, 1, v1::MODE_SMOOTH)).ok());
  Tank tank(server_->address(), "idle", Options());
  FuelResult timed_out;
  std::vector<std::thread> waiter;
  JoinOnExit join(&tank, &waiter);
  waiter.emplace_back(
      [&] { timed_out = tank.AwaitFuel(3, absl::Milliseconds(1500)); });
  const bool waited = AwaitWaitingStreams(*controller_, "idle", 1);
  waiter[0].join();
  ASSERT_TRUE(waited);
  EXPECT_EQ(timed_out.outcome, FuelOutcome::kTimedOut);
  EXPECT_EQ(timed_out.grants, 0);
  // The withdrawal reached the server; the Tank's stream is still open.
  ASSERT_TRUE(AwaitWaitingStreams(*controller_, "idle", 0));
  EXPECT_FALSE(tank.killed());
  ASSERT_TRUE(controller_->Start("idle").ok());
  const FuelResult fuel = tank.AwaitFuel(kGenerous);
  EXPECT_EQ(fuel.outcome, FuelOutcome::kFuel) << fuel.status;
  // Nothing was granted for the withdrawn demand.
  EXPECT_EQ(TotalEmissions(*controller_, "idle"), 1);
}

// Deadline-aware admission: with one grant an hour, the next is an hour
// away -- beyond any timeout here -- so AwaitFuelUnlessLate says so at once
// with the expected wait, and CheckFuel gives it as retry_after.
TEST_F(TankServerTest, AwaitFuelUnlessLateSaysAtOnceWhenTheGrantIsTooFar) {
  Run("hourly", Config(1, 3600, v1::MODE_SMOOTH));
  Tank tank(server_->address(), "hourly", Options());
  // Two wanted: the first is free, the second an hour on.
  const FuelResult first = tank.AwaitFuelUnlessLate(2, kGenerous);
  EXPECT_EQ(first.outcome, FuelOutcome::kTooLate) << first.status;
  EXPECT_EQ(first.grants, 1);
  EXPECT_GT(first.expected_wait, absl::Minutes(59));
  EXPECT_LE(first.expected_wait, absl::Hours(1));

  const FuelResult late = tank.AwaitFuelUnlessLate(1, absl::Seconds(30));
  EXPECT_TRUE(late.too_late());
  EXPECT_EQ(late.grants, 0);
  EXPECT_GT(late.expected_wait, absl::Minutes(59));
  EXPECT_LE(late.expected_wait, first.expected_wait);

  absl::StatusOr<FuelCheck> check = tank.CheckFuel();
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_FALSE(check->granted);
  EXPECT_FALSE(check->stopped);
  ASSERT_TRUE(check->retry_after.has_value());
  EXPECT_GT(*check->retry_after, absl::Minutes(59));
  EXPECT_LE(*check->retry_after, late.expected_wait);
  EXPECT_EQ(TotalEmissions(*controller_, "hourly"), 1);
  EXPECT_FALSE(tank.killed());

  // Where the grant is near it waits and gets it.
  Run("fast", Config(100, 1, v1::MODE_SMOOTH));
  Tank fast(server_->address(), "fast", Options());
  const FuelResult fuel = fast.AwaitFuelUnlessLate(5, kGenerous);
  EXPECT_EQ(fuel.outcome, FuelOutcome::kFuel) << fuel.status;
  EXPECT_EQ(fuel.grants, 5);
  absl::StatusOr<FuelCheck> granted = fast.CheckFuel();
  ASSERT_TRUE(granted.ok()) << granted.status();
  if (granted->granted) {
    EXPECT_FALSE(granted->retry_after.has_value());
  }
}

TEST_F(TankServerTest, ReportMovesTheAdaptiveRate) {
  v1::ThrottleConfig config = Config(100, 1, v1::MODE_SMOOTH);
  v1::AdaptiveConfig* adaptive = config.mutable_adaptive();
  adaptive->set_floor_n(10);
  adaptive->mutable_window()->set_nanos(100'000'000);
  adaptive->set_decrease_factor(0.5);
  adaptive->set_min_outcomes(1);
  Run("adaptive", config);
  Tank tank(server_->address(), "adaptive", Options());
  absl::StatusOr<int64_t> current = tank.Report(0, 10);
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_EQ(*current, 100);
  // The window of 100 ms ends; the server halves the rate at its end.
  EXPECT_TRUE(WaitFor(
      [&] { return Info(*controller_, "adaptive").current_max_n() == 50; },
      kGenerous));
  current = tank.Report(1, 0);
  ASSERT_TRUE(current.ok()) << current.status();
  EXPECT_GE(*current, 50);
  // A throttle without `adaptive` refuses reports; counts are validated.
  Run("plain", Config(100, 1, v1::MODE_SMOOTH));
  Tank plain(server_->address(), "plain", Options());
  EXPECT_EQ(plain.Report(1, 0).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tank.Report(-1, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TankServerTest, StopEndsEveryWaitingThreadWithStopped) {
  // One grant an hour: after the first, every thread waits.
  Run("slow", Config(1, 3600, v1::MODE_SMOOTH));
  Tank tank(server_->address(), "slow", Options());
  ASSERT_TRUE(tank.AwaitFuel(kGenerous).ok());
  constexpr int kThreads = 3;
  std::vector<FuelResult> results(kThreads);
  std::atomic<int> entered{0};
  std::vector<std::thread> threads;
  JoinOnExit join(&tank, &threads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++entered;
      results[t] = tank.AwaitFuel();
    });
  }
  ASSERT_TRUE(WaitFor([&] { return entered == kThreads; }, kGenerous));
  ASSERT_TRUE(AwaitWaitingStreams(*controller_, "slow", 1));
  absl::StatusOr<v1::StopResponse> stopped = controller_->Stop("slow");
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(results[t].outcome, FuelOutcome::kStopped)
        << t << " " << results[t].status;
    EXPECT_EQ(results[t].grants, 0);
  }
  EXPECT_TRUE(tank.killed());
  EXPECT_EQ(stopped->total_emissions(), 1);
}

// TankOptions::priority: two Tanks of different classes wait on a throttle
// that has not started; at the Start the higher class gets the grant, the
// lower one the next, one spacing (5 s) later.
TEST_F(TankServerTest, AHigherPriorityTankGetsTheFuelWhileBothWait) {
  ASSERT_TRUE(
      controller_->CreateThrottle("prio", Config(1, 5, v1::MODE_SMOOTH)).ok());
  TankOptions low_options = Options();
  low_options.priority = 0;
  TankOptions high_options = Options();
  high_options.priority = 7;
  Tank low(server_->address(), "prio", low_options);
  Tank high(server_->address(), "prio", high_options);
  FuelResult low_result;
  FuelResult high_result;
  std::atomic<bool> low_done{false};
  std::vector<std::thread> low_thread;
  std::vector<std::thread> high_thread;
  JoinOnExit join_low(&low, &low_thread);
  JoinOnExit join_high(&high, &high_thread);
  low_thread.emplace_back([&] {
    low_result = low.AwaitFuel(kGenerous);
    low_done = true;
  });
  ASSERT_TRUE(AwaitWaitingStreams(*controller_, "prio", 1));
  high_thread.emplace_back([&] { high_result = high.AwaitFuel(kGenerous); });
  ASSERT_TRUE(AwaitWaitingStreams(*controller_, "prio", 2));
  ASSERT_TRUE(controller_->Start("prio").ok());
  high_thread[0].join();
  EXPECT_TRUE(high_result.ok()) << high_result.status;
  // The grant was the higher class's: the lower one still waits.
  EXPECT_FALSE(low_done);
  EXPECT_EQ(Info(*controller_, "prio").waiting_streams(), 1);
  low_thread[0].join();
  EXPECT_TRUE(low_result.ok()) << low_result.status;
  EXPECT_EQ(TotalEmissions(*controller_, "prio"), 2);
}

TEST_F(TankServerTest, ThreadsSharingATankEachGetExactlyTheirGrants) {
  Run("shared", Config(1, 1, v1::MODE_MONITOR_ONLY));
  Tank tank(server_->address(), "shared", Options());
  constexpr int kThreads = 4;
  constexpr int kAwaits = 500;
  std::vector<int64_t> got(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAwaits; ++i) {
        // Plain and counted awaits mixed: 1, 2, 3 grants.
        const FuelResult result = i % 3 == 0
                                      ? tank.AwaitFuel(kGenerous)
                                      : tank.AwaitFuel(1 + i % 3, kGenerous);
        if (result.ok()) got[t] += result.grants;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  int64_t each = 0;
  for (int i = 0; i < kAwaits; ++i) each += i % 3 == 0 ? 1 : 1 + i % 3;
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(got[t], each) << t;
  // Every grant counted reached one waiter: no demand beyond the waiters'.
  EXPECT_EQ(TotalEmissions(*controller_, "shared"), kThreads * each);
}

TEST_F(TankServerTest, AServerRestartMidWaitReconnects) {
  // A server of its own that creates the throttle (not started) as it
  // starts, so that the reconnecting stream finds it.
  const std::vector<std::string> flags = {
      "--throttle=restart max_n=1 per=1 mode=monitor-only"};
  absl::StatusOr<ServerProcess> first = StartServer(dir_, 0, flags);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = first->port;
  Tank tank(first->address(), "restart", Options());
  std::vector<std::thread> waiter;
  JoinOnExit join(&tank, &waiter);
  FuelResult result;
  {
    Controller controller(first->address());
    ASSERT_TRUE(controller.Start("restart").ok());
    ASSERT_TRUE(tank.AwaitFuel(kGenerous).ok());
    // Then the waiter waits across the restart: the restarted throttle is
    // not started.
    first->process.Signal(SIGTERM);
    ASSERT_EQ(first->process.Wait(kGenerous).value_or(-1), 0);
  }
  waiter.emplace_back([&] { result = tank.AwaitFuel(2, kGenerous); });
  absl::StatusOr<ServerProcess> restarted = StartServer(dir_, port, flags);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  Controller controller(restarted->address());
  // The waiter came back and asks again before the throttle starts.
  const bool waiting = AwaitWaitingStreams(controller, "restart", 1);
  ASSERT_TRUE(controller.Start("restart").ok());
  waiter[0].join();
  EXPECT_TRUE(waiting);
  EXPECT_EQ(result.outcome, FuelOutcome::kFuel) << result.status;
  EXPECT_EQ(result.grants, 2);
  EXPECT_EQ(TotalEmissions(controller, "restart"), 2);
  restarted->process.Signal(SIGTERM);
  EXPECT_EQ(restarted->process.Wait(kGenerous).value_or(-1), 0);
}

// Graceful degradation against a real server killed with SIGKILL and
// restarted with its --state_dir (so the throttle comes back running).
class DegradationTest : public TankServerTest {
 protected:
  // Starts the server of this test with `spec` (a --throttle) on `port`.
  absl::StatusOr<ServerProcess> Serve(const std::string& spec, int port) {
    return StartServer(dir_, port,
                       {"--throttle=" + spec, "--state_dir=" + dir_.File("s")});
  }
  // Kills `server` (SIGKILL) and reaps it.
  static void Kill(ServerProcess& server) {
    server.process.Signal(SIGKILL);
    server.process.Wait(kGenerous).IgnoreError();
  }
};

// A worker thread: awaits fuel on a Tank of its own until destroyed or a
// wait fails, and counts its grants.
class Worker {
 public:
  Worker(const std::string& address, const std::string& throttle)
      : tank_(address, throttle, Options()), loop_(&tank_, kGenerous) {}
  int64_t grants() const { return loop_.grants(); }
  bool failed() const { return loop_.failed(); }

 private:
  Tank tank_;
  TankLoop loop_;  // after tank_: stopped first
};

TEST_F(DegradationTest, LocalShareCarriesWorkersThroughAServerKill) {
  constexpr double kRate = 40;  // per second, 20 each
  const std::string spec =
      "degrade max_n=40 per=1 degradation=local_share local_share_for=60s";
  absl::StatusOr<ServerProcess> first = Serve(spec, 0);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = first->port;
  {
    Controller controller(first->address());
    ASSERT_TRUE(controller.Start("degrade").ok());
  }
  Worker a(first->address(), "degrade");
  Worker b(first->address(), "degrade");
  // Both get server grants (and so learn their share).
  ASSERT_TRUE(
      WaitFor([&] { return a.grants() >= 5 && b.grants() >= 5; }, kGenerous));
  Kill(*first);
  const absl::Time killed = absl::Now();
  const int64_t before_a = a.grants();
  const int64_t before_b = b.grants();
  // Both go on locally, until a second's worth of the rate was granted.
  ASSERT_TRUE(WaitFor(
      [&] {
        return a.grants() > before_a && b.grants() > before_b &&
               a.grants() - before_a + b.grants() - before_b >= kRate;
      },
      kGenerous));
  const double outage = absl::ToDoubleSeconds(absl::Now() - killed);
  const int64_t local = a.grants() - before_a + b.grants() - before_b;
  // Within the fleet's rate from the kill on: each worker may take one
  // grant at the outage's start and one may have been on its way.
  EXPECT_LE(local, kRate * outage + 2 * 2) << "in " << outage << " s";
  EXPECT_FALSE(a.failed());
  EXPECT_FALSE(b.failed());

  // The server comes back (running, from its state) and grants again: its
  // count grows, and so do the workers'.
  absl::StatusOr<ServerProcess> restarted = Serve(spec, port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  Controller controller(restarted->address());
  const int64_t stored = TotalEmissions(controller, "degrade");
  ASSERT_GE(stored, 0);
  const int64_t back_a = a.grants();
  const int64_t back_b = b.grants();
  EXPECT_TRUE(WaitFor(
      [&] {
        return TotalEmissions(controller, "degrade") >= stored + 10 &&
               a.grants() > back_a && b.grants() > back_b;
      },
      kGenerous));
  EXPECT_FALSE(a.failed());
  EXPECT_FALSE(b.failed());
  restarted->process.Signal(SIGTERM);
  EXPECT_EQ(restarted->process.Wait(kGenerous).value_or(-1), 0);
}

TEST_F(DegradationTest, FailFastEndsWaitsWithUnavailableUntilTheServerIsBack) {
  const std::string spec = "ff max_n=100 per=1 degradation=fail_fast";
  absl::StatusOr<ServerProcess> first = Serve(spec, 0);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = first->port;
  {
    Controller controller(first->address());
    ASSERT_TRUE(controller.Start("ff").ok());
  }
  Tank tank(first->address(), "ff", Options());
  ASSERT_TRUE(tank.AwaitFuel(kGenerous).ok());  // told the policy
  Kill(*first);
  // Far sooner than the wait's own limit: at once, or after one failed
  // reconnect attempt to a closed port.
  const absl::Time asked = absl::Now();
  FuelResult result = tank.AwaitFuel(kGenerous);
  EXPECT_EQ(result.outcome, FuelOutcome::kError);
  EXPECT_TRUE(absl::IsUnavailable(result.status)) << result.status;
  EXPECT_LT(absl::Now() - asked, kGenerous / 2);
  result = tank.AwaitFuel(kGenerous);
  EXPECT_TRUE(absl::IsUnavailable(result.status)) << result.status;

  absl::StatusOr<ServerProcess> restarted = Serve(spec, port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  // Each wait fails or gets fuel: fuel again once a reconnect got through.
  EXPECT_TRUE(WaitFor(
      [&] {
        const FuelResult again = tank.AwaitFuel(kGenerous);
        return again.ok();
      },
      kGenerous));
  restarted->process.Signal(SIGTERM);
  EXPECT_EQ(restarted->process.Wait(kGenerous).value_or(-1), 0);
}

TEST_F(DegradationTest, AfterLocalShareForWaitsFailWithUnavailable) {
  const std::string spec =
      "short max_n=20 per=1 degradation=local_share local_share_for=1s";
  absl::StatusOr<ServerProcess> server = Serve(spec, 0);
  ASSERT_TRUE(server.ok()) << server.status();
  {
    Controller controller(server->address());
    ASSERT_TRUE(controller.Start("short").ok());
  }
  Tank tank(server->address(), "short", Options());
  ASSERT_TRUE(tank.AwaitFuel(kGenerous).ok());
  Kill(*server);
  const absl::Time killed = absl::Now();
  int64_t local = 0;
  FuelResult result;
  while ((result = tank.AwaitFuel(kGenerous)).ok()) ++local;
  const double lasted = absl::ToDoubleSeconds(absl::Now() - killed);
  EXPECT_TRUE(absl::IsUnavailable(result.status)) << result.status;
  EXPECT_GT(local, 0);
  // At most the share (20/s, alone) for 1 s, plus the one at the start.
  EXPECT_LE(local, 21);
  EXPECT_GE(lasted, 1.0);
}

// The AwaitFuel calls follow the policy too (docs/clients.md): a
// fail-if-late wait and a zero-timeout poll through a server kill get local
// grants at no more than the share, and server grants once it is back.
TEST_F(DegradationTest, LocalShareCarriesAwaitFuelCallsThroughAServerKill) {
  constexpr double kRate = 20;  // per second: the most this Tank's share is
  const std::string spec =
      "calls max_n=20 per=1 degradation=local_share local_share_for=60s";
  absl::StatusOr<ServerProcess> first = Serve(spec, 0);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = first->port;
  {
    Controller controller(first->address());
    ASSERT_TRUE(controller.Start("calls").ok());
  }
  Tank tank(first->address(), "calls", Options());
  // Told the policy and a share by the server on an AwaitFuel call.
  ASSERT_TRUE(tank.AwaitFuelUnlessLate(1, kGenerous).ok());
  Kill(*first);
  const absl::Time killed = absl::Now();
  // Alternately a poll and a fail-if-late wait of 1 s (longer than the
  // spacing, so never too late) until they got 20 local grants.
  int64_t polled = 0, waited = 0, not_granted = 0;
  bool failed = false;
  for (int i = 0; polled + waited < 20 && absl::Now() - killed < kGenerous;
       ++i) {
    const FuelResult result =
        i % 2 == 0 ? tank.AwaitFuel(1, absl::ZeroDuration())
                   : tank.AwaitFuelUnlessLate(1, absl::Seconds(1));
    if (result.ok()) {
      ++(i % 2 == 0 ? polled : waited);
    } else if (result.outcome == FuelOutcome::kTimedOut ||
               result.outcome == FuelOutcome::kTooLate) {
      ++not_granted;
    } else {
      failed = true;
      ADD_FAILURE() << result.status;
      break;
    }
  }
  const double outage = absl::ToDoubleSeconds(absl::Now() - killed);
  ASSERT_FALSE(failed);
  EXPECT_GT(polled, 0);
  EXPECT_GT(waited, 0);
  // Polls come faster than the share: most find no grant due.
  EXPECT_GT(not_granted, 0);
  // Within the share from the kill on, plus the one at the start.
  EXPECT_LE(polled + waited, kRate * outage + 1) << "in " << outage << " s";

  // Back (running, from its state): the server's grants take over.
  absl::StatusOr<ServerProcess> restarted = Serve(spec, port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  Controller controller(restarted->address());
  const int64_t stored = TotalEmissions(controller, "calls");
  ASSERT_GE(stored, 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        tank.AwaitFuelUnlessLate(1, absl::Seconds(1)).status.IgnoreError();
        return TotalEmissions(controller, "calls") >= stored + 3;
      },
      kGenerous));
  restarted->process.Signal(SIGTERM);
  EXPECT_EQ(restarted->process.Wait(kGenerous).value_or(-1), 0);
}

TEST_F(DegradationTest, FailFastEndsAwaitFuelCallsAtOnce) {
  const std::string spec = "ffcalls max_n=100 per=1 degradation=fail_fast";
  absl::StatusOr<ServerProcess> first = Serve(spec, 0);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = first->port;
  {
    Controller controller(first->address());
    ASSERT_TRUE(controller.Start("ffcalls").ok());
  }
  Tank tank(first->address(), "ffcalls", Options());
  // Told the policy on the Acquire stream: the calls share it.
  ASSERT_TRUE(tank.AwaitFuel(kGenerous).ok());
  Kill(*first);
  const absl::Time asked = absl::Now();
  // Far sooner than the wait's own limit.
  FuelResult result = tank.AwaitFuelUnlessLate(1, kGenerous);
  EXPECT_EQ(result.outcome, FuelOutcome::kError);
  EXPECT_TRUE(absl::IsUnavailable(result.status)) << result.status;
  EXPECT_LT(absl::Now() - asked, kGenerous / 2);
  result = tank.AwaitFuel(1, absl::ZeroDuration());
  EXPECT_EQ(result.outcome, FuelOutcome::kError);
  EXPECT_TRUE(absl::IsUnavailable(result.status)) << result.status;

  absl::StatusOr<ServerProcess> restarted = Serve(spec, port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_TRUE(WaitFor(
      [&] { return tank.AwaitFuelUnlessLate(1, absl::Seconds(5)).ok(); },
      kGenerous));
  // A poll is answered by the server again (granted once fuel is free).
  EXPECT_TRUE(WaitFor(
      [&] { return tank.AwaitFuel(1, absl::ZeroDuration()).ok(); }, kGenerous));
  restarted->process.Signal(SIGTERM);
  EXPECT_EQ(restarted->process.Wait(kGenerous).value_or(-1), 0);
}

}  // namespace
}  // namespace throttle::testing
