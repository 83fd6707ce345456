// The config file through the real throttle_server binary on 127.0.0.1:0:
// live reload on SIGHUP and on a change of the file, an open AwaitFuel
// stream kept across a reload that changes its rate, a bad new file
// rejected with one log line while the old config stays, SIGHUP never
// stopping the server, and the shipped deploy/throttles.yaml. Every wait
// is on a condition with a generous deadline; every server is stopped by
// its test.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "throttle/controller.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);

// The log lines of `path` that contain `event=EVENT`.
std::vector<std::string> Events(const std::string& path,
                                const std::string& event) {
  std::vector<std::string> found;
  for (const std::string& line : ReadLines(path)) {
    if (absl::StrContains(line, absl::StrCat(" event=", event, " "))) {
      found.push_back(line);
    }
  }
  return found;
}

// Waits until the log has `n` lines of `event` (60 s at most).
bool AwaitEvents(const std::string& log, const std::string& event, size_t n) {
  return WaitFor([&] { return Events(log, event).size() >= n; }, kGenerous);
}

// The throttle `name` as ListThrottles shows it; nullopt-like false if
// there is none.
bool FindThrottle(const Controller& controller, const std::string& name,
                  v1::ThrottleInfo* info) {
  auto list = controller.ListThrottles();
  if (!list.ok()) return false;
  for (const v1::ThrottleInfo& throttle : list->throttles()) {
    if (throttle.name() == name) {
      *info = throttle;
      return true;
    }
  }
  return false;
}

int64_t MaxN(const Controller& controller, const std::string& name) {
  v1::ThrottleInfo info;
  return FindThrottle(controller, name, &info) ? info.config().max_n() : -1;
}

bool Running(ServerProcess& server) {
  return !server.process.Wait(absl::ZeroDuration()).ok();
}

TEST(ConfigReload, SighupChangesTheRateOfAnOpenStreamWithoutEndingIt) {
  TempDir dir;
  const std::string config = dir.File("throttles.yaml");
  const std::string log = dir.File("server.log");
  // One grant, then none for an hour.
  WriteFile(config,
            "throttles:\n"
            "  live: {max_n: 1, per: 1h}\n");
  // No polling: only the SIGHUP can make the change.
  auto server = StartServer(
      dir, 0, {"--config=" + config, "--config_poll_interval=0"}, log);
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  ASSERT_TRUE(controller.Start("live").ok());

  auto stub = v1::Throttle::NewStub(grpc::CreateChannel(
      server->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(120));
  v1::AwaitFuelRequest request;
  request.set_throttle("live");
  request.set_count(0);  // until the throttle stops
  request.set_worker_id("reload-test");
  std::unique_ptr<grpc::ClientReader<v1::AwaitFuelResponse>> reader =
      stub->AwaitFuel(&context, request);
  v1::AwaitFuelResponse response;
  ASSERT_TRUE(reader->Read(&response));
  int64_t grants = response.grants();
  ASSERT_GE(grants, 1);

  WriteFile(config,
            "throttles:\n"
            "  live: {max_n: 50, per: 1s}\n");
  server->process.Signal(SIGHUP);
  // At the old rate the next grant is an hour away: ten more on the same
  // stream within the call's deadline are the new rate.
  while (grants < 11) {
    ASSERT_TRUE(reader->Read(&response))
        << "the stream ended after " << grants
        << " grants: " << reader->Finish().error_message();
    EXPECT_EQ(response.end(), v1::END_REASON_UNSPECIFIED);
    grants += response.grants();
  }
  EXPECT_TRUE(Running(*server));
  EXPECT_EQ(MaxN(controller, "live"), 50);
  ASSERT_TRUE(AwaitEvents(log, "config_reloaded", 1));
  EXPECT_EQ(Events(log, "throttle_configured").size(), 1u);
  const std::vector<std::string> configured =
      Events(log, "throttle_configured");
  ASSERT_FALSE(configured.empty());
  EXPECT_TRUE(absl::StrContains(configured[0], "open_streams=1"))
      << configured[0];

  context.TryCancel();
  reader->Finish().IgnoreError();
  EXPECT_EQ(StopServer(*server, kGenerous), 0);
}

TEST(ConfigReload, ChangedFileIsAppliedWithoutASignal) {
  TempDir dir;
  const std::string config = dir.File("throttles.yaml");
  const std::string log = dir.File("server.log");
  WriteFile(config,
            "throttles:\n"
            "  crawl: {max_n: 4, per: 1s}\n"
            "  old: {max_n: 1, per: 1s}\n");
  auto server = StartServer(
      dir, 0, {"--config=" + config, "--config_poll_interval=100ms"}, log);
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  ASSERT_EQ(MaxN(controller, "crawl"), 4);

  WriteFile(config,
            "throttles:\n"
            "  crawl: {max_n: 8, per: 1s}\n"
            "  added: {max_n: 2, per: 1m}\n");
  EXPECT_TRUE(WaitFor(
      [&] {
        return MaxN(controller, "crawl") == 8 && MaxN(controller, "added") == 2;
      },
      kGenerous));
  v1::ThrottleInfo added;
  ASSERT_TRUE(FindThrottle(controller, "added", &added));
  EXPECT_EQ(added.state(), v1::STATE_CREATED);
  // A throttle the file no longer declares stays, and the log says so.
  ASSERT_TRUE(AwaitEvents(log, "config_throttles_undeclared", 1));
  EXPECT_EQ(MaxN(controller, "old"), 1);
  EXPECT_TRUE(
      absl::StrContains(Events(log, "config_throttles_undeclared")[0], "old"));
  EXPECT_EQ(StopServer(*server, kGenerous), 0);
}

TEST(ConfigReload, BadNewFileIsRejectedWithOneLogLineAndTheOldConfigStays) {
  TempDir dir;
  const std::string config = dir.File("throttles.yaml");
  const std::string log = dir.File("server.log");
  WriteFile(config,
            "throttles:\n"
            "  crawl: {max_n: 4, per: 1s}\n");
  auto server = StartServer(
      dir, 0, {"--config=" + config, "--config_poll_interval=0"}, log);
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());

  WriteFile(config,
            "throttles:\n"
            "  crawl:\n"
            "    max_n: 40\n"
            "    per: 1s\n"
            "    max_n: 400\n"
            "  added: {max_n: 2, per: 1m}\n");
  server->process.Signal(SIGHUP);
  ASSERT_TRUE(AwaitEvents(log, "config_rejected", 1));
  const std::vector<std::string> rejected = Events(log, "config_rejected");
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_TRUE(absl::StrContains(
      rejected[0], config + ":5: throttles.crawl.max_n: given twice"))
      << rejected[0];
  EXPECT_TRUE(Running(*server));
  EXPECT_EQ(MaxN(controller, "crawl"), 4);
  v1::ThrottleInfo info;
  EXPECT_FALSE(FindThrottle(controller, "added", &info));
  EXPECT_TRUE(Events(log, "config_reloaded").empty());

  // Fixed, it is taken.
  WriteFile(config,
            "throttles:\n"
            "  crawl: {max_n: 40, per: 1s}\n");
  server->process.Signal(SIGHUP);
  ASSERT_TRUE(AwaitEvents(log, "config_reloaded", 1));
  EXPECT_EQ(MaxN(controller, "crawl"), 40);
  EXPECT_EQ(Events(log, "config_rejected").size(), 1u);
  EXPECT_EQ(StopServer(*server, kGenerous), 0);
}

TEST(ConfigReload, SighupWithoutConfigFileDoesNotStopTheServer) {
  TempDir dir;
  const std::string log = dir.File("server.log");
  auto server = StartServer(dir, 0, {"--throttle=crawl max_n=4 per=1s"}, log);
  ASSERT_TRUE(server.ok()) << server.status();
  server->process.Signal(SIGHUP);
  ASSERT_TRUE(AwaitEvents(log, "sighup_ignored", 1));
  EXPECT_TRUE(Running(*server));
  Controller controller(server->address());
  EXPECT_EQ(MaxN(controller, "crawl"), 4);
  EXPECT_EQ(StopServer(*server, kGenerous), 0);
}

// The README's server command with the shipped config file: it used to
// declare a name in --throttle that the file declares too, and failed.
TEST(ConfigFile, ShippedDeployConfigServesItsThrottles) {
  TempDir dir;
  auto server = StartServer(
      dir, 0, {"--config=" THROTTLE_SOURCE_DIR "/deploy/throttles.yaml"});
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  EXPECT_EQ(MaxN(controller, "crawl"), 4);
  EXPECT_EQ(MaxN(controller, "api"), 100);
  EXPECT_EQ(MaxN(controller, "batch"), 600);
  EXPECT_EQ(StopServer(*server, kGenerous), 0);
}

TEST(ConfigFile, BadLineAtStartUpIsOneLineNamingFileLineAndField) {
  TempDir dir;
  const std::string config = dir.File("throttles.yaml");
  const std::string log = dir.File("server.log");
  WriteFile(config,
            "throttles:\n"
            "  crawl:\n"
            "    max_n: 4\n"
            "    per: 1 sec\n");
  auto process =
      SpawnServer({"--listen=127.0.0.1:0", "--config=" + config}, log);
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ(process->Wait(kGenerous).value_or(-1), 1);
  const std::vector<std::string> lines = ReadLines(log);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(absl::StrContains(lines[0],
                                "throttle_server: --config: " + config +
                                    ":4: throttles.crawl.per: not a duration"))
      << lines[0];
}

TEST(ConfigFile, NameInFlagAndFileFailsNamingBoth) {
  TempDir dir;
  const std::string config = dir.File("throttles.yaml");
  const std::string log = dir.File("server.log");
  WriteFile(config,
            "throttles:\n"
            "  crawl: {max_n: 4, per: 1s}\n");
  auto process = SpawnServer({"--listen=127.0.0.1:0", "--config=" + config,
                              "--throttle=crawl max_n=8 per=1s"},
                             log);
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ(process->Wait(kGenerous).value_or(-1), 1);
  const std::vector<std::string> lines = ReadLines(log);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(absl::StrContains(
      lines[0], "throttle crawl is declared twice: in --throttle and in " +
                    config + ":2"))
      << lines[0];
}

}  // namespace
}  // namespace throttle::testing
