// Loopback integration tests: the real throttle_server binary on
// 127.0.0.1:0, real worker processes running the seed's loop through the
// client library. Waits are on conditions with generous deadlines; exact
// timing bounds are left to the fake-clock tests of the scheduler.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "throttle/controller.h"
#include "throttle/tank.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);

int64_t TotalEmissions(const Controller& controller, const std::string& name) {
  auto mean = controller.Mean(name);
  return mean.ok() ? mean->total_emissions() : -1;
}

bool AwaitWaiting(const Controller& controller, const std::string& name,
                  int64_t n) {
  return WaitFor(
      [&] {
        auto list = controller.ListThrottles();
        if (!list.ok()) return false;
        for (const auto& info : list->throttles()) {
          if (info.name() == name) return info.waiting_streams() >= n;
        }
        return false;
      },
      kGenerous);
}

class Fleet {
 public:
  Fleet(const TempDir& dir, const std::string& address, const std::string& name,
        int n) {
    for (int i = 0; i < n; ++i) {
      outputs_.push_back(dir.File(absl::StrCat("worker", i, ".out")));
      auto worker =
          StartWorker(address, name, absl::StrCat("w", i), outputs_.back());
      EXPECT_TRUE(worker.ok()) << worker.status();
      if (worker.ok()) workers_.push_back(*std::move(worker));
    }
  }
  Subprocess& worker(int i) { return workers_[static_cast<size_t>(i)]; }
  int64_t Grants(int i) const {
    return CountLines(outputs_[static_cast<size_t>(i)], "fuel");
  }
  int64_t TotalGrants() const {
    int64_t total = 0;
    for (size_t i = 0; i < outputs_.size(); ++i)
      total += Grants(static_cast<int>(i));
    return total;
  }
  std::string LastLine(int i) const {
    auto lines = ReadLines(outputs_[static_cast<size_t>(i)]);
    return lines.empty() ? "" : lines.back();
  }
  size_t size() const { return workers_.size(); }

 private:
  std::vector<std::string> outputs_;
  std::vector<Subprocess> workers_;
};

TEST(Integration, StopEndsEveryWorkerAndEveryGrantIsCountedOnce) {
  TempDir dir;
  auto server = StartServer(dir, 0, {"--throttle=work max_n=20 per=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  Fleet fleet(dir, server->address(), "work", 3);
  ASSERT_EQ(fleet.size(), 3u);
  ASSERT_TRUE(AwaitWaiting(controller, "work", 3));
  ASSERT_TRUE(controller.Start("work").ok());
  ASSERT_TRUE(WaitFor([&] { return TotalEmissions(controller, "work") >= 30; },
                      kGenerous));
  auto stopped = controller.Stop("work");
  ASSERT_TRUE(stopped.ok()) << stopped.status();

  for (int i = 0; i < 3; ++i) {
    auto code = fleet.worker(i).Wait(kGenerous);
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0);
    EXPECT_EQ(fleet.LastLine(i), "stopped");
  }
  // Every grant the server counted reached exactly one worker.
  EXPECT_EQ(fleet.TotalGrants(), stopped->total_emissions());
  // Round-robin: nobody starves (loose bound; exact shares are unit-tested).
  for (int i = 0; i < 3; ++i) {
    EXPECT_GE(fleet.Grants(i), stopped->total_emissions() / 6)
        << "worker " << i;
  }
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(kGenerous).value_or(-1), 0);
}

TEST(Integration, ControllerReadsWhatEachWorkerGot) {
  TempDir dir;
  auto server = StartServer(dir, 0, {"--throttle=work max_n=20 per=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  Fleet fleet(dir, server->address(), "work", 3);  // worker ids w0, w1, w2
  ASSERT_EQ(fleet.size(), 3u);
  ASSERT_TRUE(AwaitWaiting(controller, "work", 3));
  const absl::Time started = absl::Now();
  ASSERT_TRUE(controller.Start("work").ok());
  ASSERT_TRUE(WaitFor([&] { return TotalEmissions(controller, "work") >= 30; },
                      kGenerous));
  ASSERT_TRUE(controller.Stop("work").ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(fleet.worker(i).Wait(kGenerous).value_or(-1), 0);
  }

  auto mean = controller.Mean("work", /*include_workers=*/true);
  ASSERT_TRUE(mean.ok()) << mean.status();
  ASSERT_EQ(mean->workers_size(), 3) << mean->ShortDebugString();
  double sum = 0;
  double sum_of_squares = 0;
  for (const v1::WorkerStats& w : mean->workers()) {
    ASSERT_EQ(w.worker_id().size(), 2u) << w.ShortDebugString();
    const int i = w.worker_id()[1] - '0';
    ASSERT_TRUE(w.worker_id()[0] == 'w' && i >= 0 && i < 3)
        << w.ShortDebugString();
    // What the server counted is what the worker received.
    EXPECT_EQ(w.grants(), fleet.Grants(i)) << w.ShortDebugString();
    EXPECT_EQ(w.emissions(), 0);
    EXPECT_FALSE(w.others());
    EXPECT_NEAR(w.grants_per_second(),
                static_cast<double>(w.grants()) / mean->runtime_seconds(),
                1e-6);
    sum += static_cast<double>(w.grants());
    sum_of_squares += static_cast<double>(w.grants() * w.grants());
  }
  EXPECT_EQ(fleet.TotalGrants(), mean->total_emissions());
  EXPECT_NEAR(mean->fairness_index(), sum * sum / (3 * sum_of_squares), 1e-9);
  EXPECT_GT(mean->fairness_index(), 0.5);  // 1/3: one worker took all

  auto latest =
      controller.Latest("work", absl::Seconds(60), /*include_workers=*/true);
  ASSERT_TRUE(latest.ok()) << latest.status();
  if (absl::Now() - started < absl::Seconds(50)) {  // the run is in it
    ASSERT_EQ(latest->workers_size(), 3) << latest->ShortDebugString();
    for (const v1::WorkerStats& w : latest->workers()) {
      EXPECT_EQ(w.grants(), fleet.Grants(w.worker_id()[1] - '0'));
    }
  }
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(kGenerous).value_or(-1), 0);
}

TEST(Integration, KilledWorkersFuelGoesToTheOthers) {
  TempDir dir;
  auto server = StartServer(dir, 0, {"--throttle=work max_n=20 per=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  Fleet fleet(dir, server->address(), "work", 3);
  ASSERT_TRUE(AwaitWaiting(controller, "work", 3));
  ASSERT_TRUE(controller.Start("work").ok());
  ASSERT_TRUE(WaitFor([&] { return fleet.Grants(0) >= 2; }, kGenerous));
  fleet.worker(0).Signal(SIGKILL);
  ASSERT_TRUE(fleet.worker(0).Wait(kGenerous).ok());
  const int64_t killed_got = fleet.Grants(0);
  const int64_t others_before = fleet.Grants(1) + fleet.Grants(2);
  // The throttle keeps flowing to the two survivors.
  ASSERT_TRUE(WaitFor(
      [&] { return fleet.Grants(1) + fleet.Grants(2) >= others_before + 20; },
      kGenerous));
  auto stopped = controller.Stop("work");
  ASSERT_TRUE(stopped.ok());
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(fleet.worker(i).Wait(kGenerous).value_or(-1), 0);
  }
  EXPECT_EQ(fleet.Grants(0), killed_got);
  // No grant counted twice. A grant already on the wire when the worker
  // died may have been counted without being read: at most one.
  const int64_t received = fleet.TotalGrants();
  EXPECT_GE(stopped->total_emissions(), received);
  EXPECT_LE(stopped->total_emissions(), received + 1);
}

TEST(Integration, WorkersReconnectAfterServerRestart) {
  TempDir dir;
  const std::vector<std::string> flags = {"--throttle=work max_n=50 per=1"};
  auto server = StartServer(dir, 0, flags);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = server->port;
  {
    Controller controller(server->address());
    Fleet fleet(dir, server->address(), "work", 2);
    ASSERT_TRUE(AwaitWaiting(controller, "work", 2));
    ASSERT_TRUE(controller.Start("work").ok());
    ASSERT_TRUE(
        WaitFor([&] { return fleet.Grants(0) >= 3 && fleet.Grants(1) >= 3; },
                kGenerous));

    // Graceful stop: streams are told UNAVAILABLE, the process exits 0.
    server->process.Signal(SIGTERM);
    ASSERT_EQ(server->process.Wait(kGenerous).value_or(-1), 0);
    const int64_t before0 = fleet.Grants(0);
    const int64_t before1 = fleet.Grants(1);

    auto restarted = StartServer(dir, port, flags);
    ASSERT_TRUE(restarted.ok()) << restarted.status();
    ASSERT_TRUE(AwaitWaiting(controller, "work", 2));  // both came back
    ASSERT_TRUE(controller.Start("work").ok());
    EXPECT_TRUE(WaitFor(
        [&] {
          return fleet.Grants(0) >= before0 + 3 &&
                 fleet.Grants(1) >= before1 + 3;
        },
        kGenerous));
    ASSERT_TRUE(controller.Stop("work").ok());
    for (int i = 0; i < 2; ++i) {
      EXPECT_EQ(fleet.worker(i).Wait(kGenerous).value_or(-1), 0);
      EXPECT_EQ(fleet.LastLine(i), "stopped");
    }
    restarted->process.Signal(SIGTERM);
    EXPECT_EQ(restarted->process.Wait(kGenerous).value_or(-1), 0);
  }
}

// After a long outage workers get fuel again within about the client
// library's backoff cap (2 s) of the server's return. On gRPC's default
// reconnect schedule (1 s, x1.6 +-20%, up to 120 s) the attempts after a
// 10 s outage fall at about 9.3 and 15.9 s: some 5.5 s after the restart.
// Three workers, each with its own channel and jitter, make that default
// miss the bound in practically every run. THROTTLE_TEST_OUTAGE (e.g. 30s)
// sets another outage, for measuring (docs/BENCHMARKS.md).
TEST(Integration, WorkersGetFuelSoonAfterALongOutage) {
  absl::Duration outage = absl::Seconds(10);
  if (const char* env = std::getenv("THROTTLE_TEST_OUTAGE")) {
    ASSERT_TRUE(absl::ParseDuration(env, &outage)) << env;
  }
  constexpr absl::Duration kBound = absl::Milliseconds(4500);
  constexpr int kWorkers = 3;
  TempDir dir;
  const std::vector<std::string> flags = {"--throttle=work max_n=50 per=1"};
  auto server = StartServer(dir, 0, flags);
  ASSERT_TRUE(server.ok()) << server.status();
  Fleet fleet(dir, server->address(), "work", kWorkers);
  ASSERT_EQ(fleet.size(), static_cast<size_t>(kWorkers));
  {
    Controller controller(server->address());
    ASSERT_TRUE(AwaitWaiting(controller, "work", kWorkers));
    ASSERT_TRUE(controller.Start("work").ok());
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < kWorkers; ++i) {
          if (fleet.Grants(i) == 0) return false;
        }
        return true;
      },
      kGenerous));
  server->process.Signal(SIGTERM);
  ASSERT_EQ(server->process.Wait(kGenerous).value_or(-1), 0);
  std::vector<int64_t> before;
  for (int i = 0; i < kWorkers; ++i) before.push_back(fleet.Grants(i));

  // The outage itself: time has to pass, there is nothing to wait for.
  absl::SleepFor(outage);
  auto restarted = StartServer(dir, server->port, flags);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  const absl::Time restart = absl::Now();
  Controller controller(restarted->address());  // a channel of its own
  ASSERT_TRUE(controller.Start("work").ok());
  std::vector<absl::Duration> delays(kWorkers, absl::InfiniteDuration());
  EXPECT_TRUE(WaitFor(
      [&] {
        bool all = true;
        for (int i = 0; i < kWorkers; ++i) {
          if (delays[i] == absl::InfiniteDuration() &&
              fleet.Grants(i) > before[static_cast<size_t>(i)]) {
            delays[i] = absl::Now() - restart;
          }
          all = all && delays[i] != absl::InfiniteDuration();
        }
        return all;
      },
      kGenerous));
  for (int i = 0; i < kWorkers; ++i) {
    std::printf("worker %d: first fuel %s after the restart\n", i,
                absl::FormatDuration(delays[i]).c_str());
    EXPECT_LT(delays[i], kBound) << "worker " << i;
  }
  ASSERT_TRUE(controller.Stop("work").ok());
  for (int i = 0; i < kWorkers; ++i) {
    EXPECT_EQ(fleet.worker(i).Wait(kGenerous).value_or(-1), 0);
  }
  restarted->process.Signal(SIGTERM);
  EXPECT_EQ(restarted->process.Wait(kGenerous).value_or(-1), 0);
}

TEST(Integration, ThrottlesComeFromFlagAndConfigFile) {
  TempDir dir;
  const std::string config = dir.File("throttles.conf");
  {
    std::ofstream out(config);
    out << "# throttles of the fleet\n"
           "crawl max_n=4 per=1   # the seed's example\n"
           "\n"
           "api max_n=100 per=60 mode=bucket burst=20\n";
  }
  auto server = StartServer(
      dir, 0,
      {"--config=" + config, "--throttle=flagged max_n=7 per=2 mode=window"});
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  auto list = controller.ListThrottles();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->throttles_size(), 3);
  const auto& api = list->throttles(0);  // sorted by name
  EXPECT_EQ(api.name(), "api");
  EXPECT_EQ(api.config().max_n(), 100);
  EXPECT_EQ(api.config().per_seconds(), 60);
  EXPECT_EQ(api.config().mode(), v1::MODE_BUCKET);
  EXPECT_EQ(api.config().burst(), 20);
  EXPECT_EQ(list->throttles(1).name(), "crawl");
  EXPECT_EQ(list->throttles(1).config().mode(), v1::MODE_SMOOTH);
  EXPECT_EQ(list->throttles(1).state(), v1::STATE_CREATED);
  EXPECT_EQ(list->throttles(2).name(), "flagged");
  EXPECT_EQ(list->throttles(2).config().mode(), v1::MODE_WINDOW);
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(kGenerous).value_or(-1), 0);
}

// The ways a wait ends through the client library against the real server:
// a passed wait limit is "timed out", Stop is "stopped", and Close() ends a
// waiting call at once and fails every later call (docs/clients.md, "After
// close"), as in the Python and Node clients' suites.
TEST(Integration, AwaitFuelTellsTimedOutFromStoppedAndCloseEndsAWait) {
  TempDir dir;
  // One grant, then none for a minute.
  auto server = StartServer(dir, 0, {"--throttle=slow max_n=1 per=60"});
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  Tank tank(server->address(), "slow");

  // Not started yet: the wait limit passes.
  const absl::Time begin = absl::Now();
  const FuelResult timed_out = tank.AwaitFuel(absl::Milliseconds(300));
  EXPECT_EQ(timed_out.outcome, FuelOutcome::kTimedOut) << timed_out.status;
  EXPECT_GE(absl::Now() - begin, absl::Milliseconds(250));
  EXPECT_FALSE(tank.killed());

  ASSERT_TRUE(controller.Start("slow").ok());
  EXPECT_EQ(tank.AwaitFuel(kGenerous).outcome, FuelOutcome::kFuel);
  // The next grant is a minute away: Stop ends the wait with "stopped".
  FuelResult stopped;
  std::thread waiter([&] { stopped = tank.AwaitFuel(kGenerous); });
  ASSERT_TRUE(AwaitWaiting(controller, "slow", 1));
  ASSERT_TRUE(controller.Stop("slow").ok());
  waiter.join();
  EXPECT_EQ(stopped.outcome, FuelOutcome::kStopped) << stopped.status;
  EXPECT_TRUE(tank.killed());

  // Close() from another thread ends a waiting call with CANCELLED.
  ASSERT_TRUE(controller.Start("slow").ok());
  FuelResult closed;
  std::thread closed_waiter([&] { closed = tank.AwaitFuel(); });
  ASSERT_TRUE(AwaitWaiting(controller, "slow", 1));
  tank.Close();
  closed_waiter.join();
  EXPECT_EQ(closed.outcome, FuelOutcome::kError);
  EXPECT_EQ(closed.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(closed.status.message(), "throttle::Tank is closed");
  EXPECT_EQ(tank.AwaitFuel().status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(tank.HasFuel().status().code(), absl::StatusCode::kCancelled);
  // The server saw the stream go.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto list = controller.ListThrottles();
        return list.ok() && list->throttles_size() == 1 &&
               list->throttles(0).waiting_streams() == 0;
      },
      kGenerous));

  controller.Close();
  EXPECT_EQ(controller.ListThrottles().status().code(),
            absl::StatusCode::kCancelled);
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(kGenerous).value_or(-1), 0);
}

TEST(Integration, BadConfigurationAtStartUpIsOneLineAndNonZeroExit) {
  TempDir dir;
  auto process =
      Subprocess::Spawn({THROTTLE_SERVER_BINARY, "--listen=127.0.0.1:0",
                         "--throttle=work max_n=0 per=1"},
                        dir.File("out"));
  ASSERT_TRUE(process.ok());
  auto code = process->Wait(kGenerous);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 1);
}

}  // namespace
}  // namespace throttle::testing
