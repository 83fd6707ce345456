// A Tank whose server was killed comes back to the restarted server by
// itself, against the real throttle_server binary on 127.0.0.1 -- with
// gRPC's backup poller off.
//
// gRPC's C-core sees a connection attempt succeed (or be refused) only
// while a thread polls a completion queue that the channel knows of, and
// otherwise only at its backup poller's tick, every 5 s by default. Under a
// degradation policy no call is in flight between the Tank's attempts
// (each fails at once, without wait_for_ready): a Tank that slept there
// came back only at such a tick, 0 to 10 s after the server
// (bench/degrade.sh --check failed when a worker missed the final stop).
// With the backup poller off (main, below) such a Tank never comes back,
// so these tests fail without the Tank's own watching of its channel
// between attempts (client-lib/src/channel_watch.h), whatever the luck of
// the tick. Waits are on conditions with generous deadlines.
#include <signal.h>
#include <stdlib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "tests/support/subprocess.h"
#include "tests/support/tank_loop.h"
#include "throttle/channel.h"
#include "throttle/controller.h"
#include "throttle/tank.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);
// How long a Tank may take to come back: many times its reconnect backoff
// cap (0.5 s), far less than the 30 s backoff of ReconnectsAtOnce...
constexpr absl::Duration kBack = absl::Seconds(15);

int64_t TotalEmissions(const Controller& controller, const std::string& name) {
  absl::StatusOr<v1::MeanResponse> mean = controller.Mean(name);
  return mean.ok() ? mean->total_emissions() : -1;
}

TankOptions Options() {
  TankOptions options;
  options.worker_id = "reconnect-test";
  options.backoff_initial = absl::Milliseconds(20);
  options.backoff_max = absl::Milliseconds(500);
  return options;
}

class ReconnectTest : public ::testing::Test {
 protected:
  // The server of this test, with its --state_dir: restarted, the throttle
  // comes back running.
  absl::StatusOr<ServerProcess> Serve(int port) {
    return StartServer(
        dir_, port,
        {"--throttle=back max_n=20 per=1 degradation=local_share "
         "local_share_for=60s",
         "--state_dir=" + dir_.File("state")});
  }
  static void Kill(ServerProcess& server) {
    server.process.Signal(SIGKILL);
    server.process.Wait(kGenerous).IgnoreError();
  }
  void WorkerIsBackSoonAfterARestart(const std::vector<std::string>& flags);
  // The server restarted at `restart` counts 5 more grants of "back" than
  // it had stored within kBack of it: the worker is back.
  static void ExpectGrantsSoon(const ServerProcess& server,
                               absl::Time restart) {
    // Closed on return, before the server stops, which then need not wait
    // out its shutdown grace.
    Controller controller(server.address());
    const int64_t stored = TotalEmissions(controller, "back");
    ASSERT_GE(stored, 0);
    EXPECT_TRUE(WaitFor(
        [&] { return TotalEmissions(controller, "back") >= stored + 5; },
        kBack))
        << "the server granted " << TotalEmissions(controller, "back") - stored
        << " in " << absl::Now() - restart;
  }
  static void Stop(ServerProcess& server) {
    server.process.Signal(SIGTERM);
    EXPECT_EQ(server.process.Wait(kGenerous).value_or(-1), 0);
  }

  TempDir dir_;
};

// A real worker (test_worker) through a kill and a restart: back on the
// server, whose count grows, within kBack of the restart. The worker is a
// process of its own: any gRPC polling in its process (such as this
// test's Controller calls) would drive its channel too.
void ReconnectTest::WorkerIsBackSoonAfterARestart(
    const std::vector<std::string>& flags) {
  absl::StatusOr<ServerProcess> first = Serve(0);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = first->port;
  ASSERT_TRUE(Controller(first->address()).Start("back").ok());
  const std::string out = dir_.File("worker.out");
  absl::StatusOr<Subprocess> worker =
      StartWorker(first->address(), "back", "w", out, flags);
  ASSERT_TRUE(worker.ok()) << worker.status();
  auto grants = [&] { return CountLines(out, "fuel"); };
  ASSERT_TRUE(WaitFor([&] { return grants() >= 3; }, kGenerous));
  Kill(*first);
  // A second of local grants (its share is the whole 20/s): the channel's
  // reconnect backoff reached its cap.
  const int64_t at_kill = grants();
  ASSERT_TRUE(WaitFor([&] { return grants() >= at_kill + 20; }, kGenerous));

  absl::StatusOr<ServerProcess> restarted = Serve(port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  const absl::Time restart = absl::Now();
  ExpectGrantsSoon(*restarted, restart);
  // Still running: no wait failed.
  EXPECT_FALSE(worker->Wait(absl::ZeroDuration()).ok());
  worker->Signal(SIGKILL);
  worker->Wait(kGenerous).IgnoreError();
  Stop(*restarted);
}

// The Acquire stream's waiters, granting locally between attempts.
TEST_F(ReconnectTest, AStreamUnderLocalShareIsBackSoonAfterARestart) {
  WorkerIsBackSoonAfterARestart({});
}

// The Tank's AwaitFuel calls (AwaitFuelUnlessLate), which sleep between
// local grants and attempts.
TEST_F(ReconnectTest, AwaitFuelCallsUnderLocalShareAreBackSoonAfterARestart) {
  WorkerIsBackSoonAfterARestart({"--unless_late_ms=1000"});
}

// A call that never reached a server (the channel was not connected) does
// not hold the next one back for its backoff: once the channel connects,
// the stream opens again at once -- here 30 s early.
TEST_F(ReconnectTest, AStreamReconnectsAtOnceWhenItsChannelConnects) {
  absl::StatusOr<ServerProcess> first = Serve(0);
  ASSERT_TRUE(first.ok()) << first.status();
  const int port = first->port;
  ASSERT_TRUE(Controller(first->address()).Start("back").ok());
  TankOptions options = Options();
  options.backoff_initial = absl::Seconds(30);
  options.backoff_max = absl::Seconds(30);
  // The channel itself retries often.
  std::optional<Tank> tank(
      std::in_place,
      CreateInsecureChannel(first->address(), absl::Milliseconds(20),
                            absl::Milliseconds(100)),
      "back", options);
  std::optional<TankLoop> loop(std::in_place, &*tank, kGenerous);
  ASSERT_TRUE(WaitFor([&] { return loop->grants() >= 3; }, kGenerous));
  Kill(*first);
  const int64_t at_kill = loop->grants();
  ASSERT_TRUE(
      WaitFor([&] { return loop->grants() >= at_kill + 5; }, kGenerous));

  absl::StatusOr<ServerProcess> restarted = Serve(port);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  const absl::Time restart = absl::Now();
  ExpectGrantsSoon(*restarted, restart);
  EXPECT_FALSE(loop->failed());
  // The Tank gone too (its channel with it): the server need not wait
  // out its shutdown grace.
  loop.reset();
  tank.reset();
  Stop(*restarted);
}

}  // namespace
}  // namespace throttle::testing

int main(int argc, char** argv) {
  // Read by gRPC as it initialises, at the first channel: 0 turns the
  // backup poller off (see the top of this file).
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "0", 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
