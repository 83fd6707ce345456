// The adaptive ceiling with real processes: the real server binary with an
// adaptive throttle from its YAML config file, three real worker processes
// (test_worker --report) reporting how their downstream took each grant's
// work through the client library's Tank::Report, and the client
// library's Controller watching the rate in effect. Workers whose work is
// all rejected bring it down to the floor; workers whose work all succeeds
// bring it back up to max_n. Also: --check_config takes the adaptive
// mapping, and a change of it in the file is applied by the live reload.
// Every wait is on a condition with a generous deadline (the exact steps
// are tests/core/adaptive_test.cc's job); every server listens on
// 127.0.0.1 and is stopped by its test.
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "throttle/controller.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(90);

// 60 per second, adaptive between 6 and 60: above 10% rejections in a
// window of 1 s with at least 3 outcomes it halves, else it adds 10.
constexpr char kConfig[] =
    "throttles:\n"
    "  pool:\n"
    "    max_n: 60\n"
    "    per: 1s\n"
    "    adaptive:\n"
    "      floor_n: 6\n"
    "      target_rejection_ratio: 0.1\n"
    "      window: 1s\n"
    "      increase_n: 10\n"
    "      decrease_factor: 0.5\n"
    "      min_outcomes: 3\n";

// The throttle "pool" as ListThrottles shows it (false if it cannot).
bool ListedPool(const Controller& controller, v1::ThrottleInfo* info) {
  auto list = controller.ListThrottles();
  if (!list.ok() || list->throttles_size() != 1) return false;
  *info = list->throttles(0);
  return true;
}

// The rate in effect by ListThrottles, checked against Latest (-1 if
// either call fails or they disagree).
int64_t CurrentMaxN(const Controller& controller) {
  v1::ThrottleInfo info;
  auto latest = controller.Latest("pool");
  if (!ListedPool(controller, &info) || !latest.ok()) return -1;
  // A step between the two calls makes them differ: the next poll asks
  // again.
  return info.current_max_n() == latest->current_max_n() ? info.current_max_n()
                                                         : -1;
}

// Grants in the last second.
int64_t LastSecond(const Controller& controller) {
  auto latest = controller.Latest("pool", absl::Seconds(1));
  return latest.ok() ? latest->emissions() : -1;
}

// `n` test_workers on "pool" reporting `outcome`, writing to
// dir/NAME<i>.out; ones that cannot be started fail the test.
std::vector<Subprocess> StartReporters(const TempDir& dir,
                                       const ServerProcess& server,
                                       const std::string& name,
                                       const std::string& outcome, int n) {
  std::vector<Subprocess> workers;
  for (int i = 0; i < n; ++i) {
    const std::string id = absl::StrCat(name, i);
    auto worker = StartWorker(server.address(), "pool", id,
                              dir.File(id + ".out"), {"--report=" + outcome});
    EXPECT_TRUE(worker.ok()) << worker.status();
    if (worker.ok()) workers.push_back(*std::move(worker));
  }
  return workers;
}

TEST(AdaptiveIntegration, RejectionsBringTheRateToTheFloorSuccessesBackUp) {
  TempDir dir;
  const std::string config = dir.File("throttles.yaml");
  WriteFile(config, kConfig);
  auto server = StartServer(dir, 0, {"--config=" + config});
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  v1::ThrottleInfo info;
  ASSERT_TRUE(ListedPool(controller, &info));
  ASSERT_TRUE(info.config().has_adaptive());
  EXPECT_EQ(info.config().adaptive().floor_n(), 6);
  EXPECT_EQ(info.config().adaptive().min_outcomes(), 3);
  EXPECT_EQ(info.current_max_n(), 60);

  std::vector<Subprocess> rejected =
      StartReporters(dir, *server, "rejected", "rejection", 3);
  ASSERT_EQ(rejected.size(), 3u);
  ASSERT_TRUE(controller.Start("pool").ok());
  // 60, 30, 15, 7, then the floor: a window each.
  ASSERT_TRUE(WaitFor([&] { return CurrentMaxN(controller) == 6; }, kGenerous))
      << "the rate in effect is " << CurrentMaxN(controller);
  // The grants follow: once a whole second went at the floor, far fewer
  // than max_n a second.
  EXPECT_TRUE(
      WaitFor([&] { return LastSecond(controller) <= 2 * 6; }, kGenerous))
      << LastSecond(controller) << " grants in the last second";
  EXPECT_EQ(CurrentMaxN(controller), 6) << "the floor is the lowest rate";
  for (Subprocess& worker : rejected) {
    worker.Signal(SIGKILL);
    worker.Wait(kGenerous).IgnoreError();
  }
  // They did report until they were killed (no "error" line).
  for (int i = 0; i < 3; ++i) {
    const std::vector<std::string> lines =
        ReadLines(dir.File(absl::StrCat("rejected", i, ".out")));
    ASSERT_FALSE(lines.empty());
    EXPECT_FALSE(absl::StartsWith(lines.back(), "error")) << lines.back();
  }

  std::vector<Subprocess> accepted =
      StartReporters(dir, *server, "accepted", "success", 3);
  ASSERT_EQ(accepted.size(), 3u);
  // 6, 16, ..., 56, then the ceiling.
  ASSERT_TRUE(WaitFor([&] { return CurrentMaxN(controller) == 60; }, kGenerous))
      << "the rate in effect is " << CurrentMaxN(controller);
  EXPECT_TRUE(
      WaitFor([&] { return LastSecond(controller) > 2 * 6; }, kGenerous))
      << LastSecond(controller) << " grants in the last second";
  EXPECT_EQ(StopServer(*server, kGenerous), 0);
}

TEST(AdaptiveIntegration, CheckConfigTakesTheAdaptiveMapping) {
  TempDir dir;
  const std::string config = dir.File("throttles.yaml");
  const std::string out = dir.File("check.out");
  WriteFile(config, kConfig);
  auto check = SpawnServer({"--check_config=" + config}, out);
  ASSERT_TRUE(check.ok()) << check.status();
  EXPECT_EQ(check->Wait(kGenerous).value_or(-1), 0);
  // One line per throttle, then the verdict.
  const std::vector<std::string> lines = ReadLines(out);
  ASSERT_GE(lines.size(), 2u);
  const std::string& pool = lines[lines.size() - 2];
  EXPECT_TRUE(absl::StrContains(pool, config + ":2: pool "));
  EXPECT_TRUE(absl::StrContains(pool, "adaptive { floor_n: 6")) << pool;
  EXPECT_TRUE(absl::StrContains(lines.back(), "1 throttles, valid"))
      << lines.back();
}

TEST(AdaptiveIntegration, AChangeOfTheAdaptiveMappingIsReloaded) {
  TempDir dir;
  const std::string config = dir.File("throttles.yaml");
  WriteFile(config, kConfig);
  auto server = StartServer(
      dir, 0, {"--config=" + config, "--config_poll_interval=100ms"});
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  const auto floor_n = [&]() -> int64_t {
    v1::ThrottleInfo info;
    if (!ListedPool(controller, &info)) return -2;
    return info.config().has_adaptive() ? info.config().adaptive().floor_n()
                                        : -1;
  };
  ASSERT_EQ(floor_n(), 6);
  std::string changed = kConfig;
  changed.replace(changed.find("floor_n: 6"), 10, "floor_n: 9");
  WriteFile(config, changed);
  EXPECT_TRUE(WaitFor([&] { return floor_n() == 9; }, kGenerous)) << floor_n();
  // Without the mapping the throttle is no longer adaptive.
  WriteFile(config,
            "throttles:\n"
            "  pool: {max_n: 60, per: 1s}\n");
  EXPECT_TRUE(WaitFor([&] { return floor_n() == -1; }, kGenerous)) << floor_n();
  EXPECT_EQ(StopServer(*server, kGenerous), 0);
}

}  // namespace
}  // namespace throttle::testing
