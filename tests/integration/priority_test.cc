// Priorities with real processes: the real server binary, two real
// test_worker processes of different priority classes (the client
// library's Tank with TankOptions::priority) on one throttle, the client
// library's Controller. Generous bounds only (the exact order is
// tests/core/priority_test.cc's job): while both wait, the higher class
// gets the fuel; when it is gone, the lower class gets it.
#include <signal.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "throttle/controller.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);

TEST(PriorityIntegration, TheHigherClassGetsTheFuelWhileBothWait) {
  TempDir dir;
  auto server = StartServer(dir, 0, {"--throttle=prio max_n=10 per=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  const std::string low_out = dir.File("low.out");
  const std::string high_out = dir.File("high.out");
  auto low =
      StartWorker(server->address(), "prio", "low", low_out, {"--priority=0"});
  ASSERT_TRUE(low.ok()) << low.status();
  auto high = StartWorker(server->address(), "prio", "high", high_out,
                          {"--priority=7"});
  ASSERT_TRUE(high.ok()) << high.status();
  // Both wait before the throttle starts.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto list = controller.ListThrottles();
        return list.ok() && list->throttles(0).waiting_streams() == 2;
      },
      kGenerous));
  ASSERT_TRUE(controller.Start("prio").ok());
  ASSERT_TRUE(
      WaitFor([&] { return CountLines(high_out, "fuel") >= 20; }, kGenerous));
  // The lower class got at most what fell due in the moments the higher
  // worker was between two calls (none on an idle machine).
  const int64_t low_grants = CountLines(low_out, "fuel");
  EXPECT_LE(low_grants, 5) << "high " << CountLines(high_out, "fuel");

  // The higher worker gone, the lower one gets the fuel.
  high->Signal(SIGKILL);
  EXPECT_TRUE(high->Wait(kGenerous).ok());
  ASSERT_TRUE(
      WaitFor([&] { return CountLines(low_out, "fuel") >= low_grants + 5; },
              kGenerous));

  low->Signal(SIGKILL);
  EXPECT_TRUE(low->Wait(kGenerous).ok());
  server->process.Signal(SIGTERM);
  EXPECT_EQ(server->process.Wait(kGenerous).value_or(-1), 0);
}

}  // namespace
}  // namespace throttle::testing
