// Warm-up with real processes: the real server binary with a warm-up
// throttle from its --throttle spec, a real worker process, the client
// library's Controller. Generous bounds only (the exact curve is
// tests/core/warm_up_test.cc's job): early in the ramp the fuel comes
// clearly slower than the full rate, and after the ramp at about it.
#include <signal.h>

#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "throttle/controller.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);

int64_t TotalEmissions(const Controller& controller, const std::string& name) {
  auto mean = controller.Mean(name);
  return mean.ok() ? mean->total_emissions() : -1;
}

TEST(WarmUpIntegration, FuelRampsUpToTheFullRate) {
  // 100 per second from 10% over 5 s: the first 20 grants take about 1 s
  // on the ramp (0.2 s at the full rate), and the rate passes 80/s only
  // some 3.9 s in.
  TempDir dir;
  auto server = StartServer(
      dir, 0, {"--throttle=warm max_n=100 per=1 warm_up=5s warm_up_from=0.1"});
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  auto listed = controller.ListThrottles();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->throttles_size(), 1);
  EXPECT_EQ(listed->throttles(0).config().warm_up().seconds(), 5);
  EXPECT_DOUBLE_EQ(listed->throttles(0).config().warm_up_from(), 0.1);

  WorkerFleet fleet(dir, server->address(), "warm", 1);
  ASSERT_EQ(fleet.size(), 1u);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto list = controller.ListThrottles();
        return list.ok() && list->throttles(0).waiting_streams() >= 1;
      },
      kGenerous));
  // The ramp starts after this moment, so the times below are upper bounds
  // of the ramp's age: a loaded machine only makes them longer, and the
  // lower bounds asserted on them hold all the same.
  const absl::Time before_start = absl::Now();
  ASSERT_TRUE(controller.Start("warm").ok());
  ASSERT_TRUE(WaitFor([&] { return TotalEmissions(controller, "warm") >= 20; },
                      kGenerous));
  EXPECT_GE(absl::Now() - before_start, absl::Milliseconds(600))
      << "20 grants came at about the full rate: no warm-up";

  // After the ramp the rate reaches the full rate (80/s over the last
  // second: the monitor's count of what was granted), and not before the
  // ramp had mostly passed.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto latest = controller.Latest("warm", absl::Seconds(1));
        return latest.ok() && latest->emissions() >= 80;
      },
      kGenerous))
      << "the rate never reached 80/s";
  EXPECT_GE(absl::Now() - before_start, absl::Seconds(3));
  // Never above the full rate.
  auto latest = controller.Latest("warm", absl::Seconds(2));
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_LE(latest->emissions(), 2 * 100 + 2);
  EXPECT_GT(fleet.TotalGrants(), 0);

  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(kGenerous).value_or(-1), 0);
}

}  // namespace
}  // namespace throttle::testing
