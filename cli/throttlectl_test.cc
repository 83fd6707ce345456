// Unit tests of throttlectl's argument parsing and output formatting
// (cli/throttlectl.h). No server needed.
#include "cli/throttlectl.h"

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "throttle/names.h"

namespace throttle::cli {
namespace {

absl::StatusOr<Invocation> Parse(const std::vector<std::string>& args,
                                 const std::string& env_address = "") {
  return ParseArgs(args, env_address);
}

TEST(ParseArgsTest, CreateWithAllFlags) {
  const absl::StatusOr<Invocation> invocation =
      Parse({"create", "crawl", "--max_n=4", "--per", "1.5", "--mode=bucket",
             "--burst=8", "--manual_emit"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->command, Command::kCreate);
  EXPECT_EQ(invocation->name, "crawl");
  EXPECT_EQ(invocation->config.max_n(), 4);
  EXPECT_EQ(invocation->config.per_seconds(), 1.5);
  EXPECT_EQ(invocation->config.mode(), v1::MODE_BUCKET);
  EXPECT_EQ(invocation->config.burst(), 8);
  EXPECT_TRUE(invocation->config.manual_emit());
  EXPECT_EQ(invocation->address, kDefaultAddress);
  EXPECT_FALSE(invocation->json);
}

TEST(ParseArgsTest, ConfigureLeavesUnsetFieldsAtDefaults) {
  const absl::StatusOr<Invocation> invocation =
      Parse({"configure", "crawl", "--max-n=10", "--per=60"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->command, Command::kConfigure);
  EXPECT_EQ(invocation->config.max_n(), 10);
  EXPECT_EQ(invocation->config.mode(), v1::MODE_UNSPECIFIED);
  EXPECT_EQ(invocation->config.burst(), 0);
  EXPECT_FALSE(invocation->config.manual_emit());
}

std::vector<std::string> Paths(const Invocation& invocation) {
  return {invocation.update_mask.paths().begin(),
          invocation.update_mask.paths().end()};
}

// The case: `configure api --max_n=200` replaced a bucket config
// with burst 20 by a smooth one. Only the flags given are in the mask, so
// the server keeps mode and burst (tests/integration/throttlectl_test.sh
// checks it against a real server).
TEST(ParseArgsTest, ConfigureSendsOnlyTheGivenFlagsInTheMask) {
  absl::StatusOr<Invocation> invocation =
      Parse({"configure", "api", "--max_n=200"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(Paths(*invocation), std::vector<std::string>{"max_n"});
  EXPECT_EQ(invocation->config.max_n(), 200);
  invocation = Parse({"configure", "api", "--burst=5", "--per=2"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(Paths(*invocation),
            (std::vector<std::string>{"per_seconds", "burst"}));
  invocation =
      Parse({"configure", "api", "--catch_up=0.5", "--mode=window",
             "--manual_emit=false", "--max_n=1", "--per=1", "--burst=0"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(Paths(*invocation),
            (std::vector<std::string>{"max_n", "per_seconds", "mode", "burst",
                                      "manual_emit", "catch_up"}));
  // create sends a whole config: no mask.
  invocation = Parse({"create", "api", "--max_n=1", "--per=1"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_TRUE(Paths(*invocation).empty());
}

TEST(ParseArgsTest, StarvationBoundInSecondsOnCreateAndConfigure) {
  absl::StatusOr<Invocation> invocation = Parse(
      {"create", "crawl", "--max_n=4", "--per=1", "--starvation_bound=2.5"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->config.starvation_bound().seconds(), 2);
  EXPECT_EQ(invocation->config.starvation_bound().nanos(), 500000000);
  invocation = Parse({"configure", "crawl", "--starvation_bound=0"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(Paths(*invocation), std::vector<std::string>{"starvation_bound"});
  EXPECT_TRUE(invocation->config.has_starvation_bound());
  invocation = Parse({"configure", "crawl", "--starvation_bound=soon"});
  ASSERT_FALSE(invocation.ok());
  EXPECT_NE(invocation.status().message().find("starvation_bound"),
            std::string::npos)
      << invocation.status();
}

TEST(ParseArgsTest, ConfigureWithoutASettingIsAUsageError) {
  const absl::StatusOr<Invocation> invocation = Parse({"configure", "api"});
  ASSERT_FALSE(invocation.ok());
  EXPECT_EQ(invocation.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(invocation.status().message().find("--max_n"), std::string::npos)
      << invocation.status();
}

TEST(ParseArgsTest, CatchUpInSecondsOnlyWhenGiven) {
  absl::StatusOr<Invocation> invocation =
      Parse({"create", "crawl", "--max_n=4", "--per=1", "--catch_up=0.25"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  ASSERT_TRUE(invocation->config.has_catch_up());
  EXPECT_EQ(invocation->config.catch_up().seconds(), 0);
  EXPECT_EQ(invocation->config.catch_up().nanos(), 250000000);
  invocation =
      Parse({"configure", "crawl", "--max_n=4", "--per=60", "--catch-up", "2"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->config.catch_up().seconds(), 2);
  // Zero is sent (no catch-up); absent leaves the server's default.
  invocation =
      Parse({"create", "crawl", "--max_n=4", "--per=1", "--catch_up=0"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_TRUE(invocation->config.has_catch_up());
  invocation = Parse({"create", "crawl", "--max_n=4", "--per=1"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_FALSE(invocation->config.has_catch_up());
  for (const std::string value : {"soon", "1e-12", "inf"}) {
    invocation = Parse(
        {"create", "crawl", "--max_n=4", "--per=1", "--catch_up=" + value});
    ASSERT_FALSE(invocation.ok()) << value;
    EXPECT_NE(invocation.status().message().find("--catch_up: \"" + value),
              std::string::npos)
        << invocation.status().message();
  }
  EXPECT_FALSE(Parse({"start", "crawl", "--catch_up=1"}).ok());
}

TEST(ParseArgsTest, AcceptsEveryModeName) {
  const std::vector<std::pair<std::string, v1::Mode>> modes = {
      {"smooth", v1::MODE_SMOOTH},
      {"window", v1::MODE_WINDOW},
      {"bucket", v1::MODE_BUCKET},
      {"unbounded", v1::MODE_UNBOUNDED},
      {"monitor-only", v1::MODE_MONITOR_ONLY},
      {"monitor_only", v1::MODE_MONITOR_ONLY}};
  for (const auto& [name, mode] : modes) {
    const absl::StatusOr<Invocation> invocation =
        Parse({"create", "t", "--max_n=1", "--per=1", "--mode=" + name});
    ASSERT_TRUE(invocation.ok()) << name << ": " << invocation.status();
    EXPECT_EQ(invocation->config.mode(), mode) << name;
  }
}

// One spelling of each mode everywhere (issue 13): the proto's enum value
// MODE_MONITOR_ONLY is "monitor-only". throttlectl takes that spelling,
// prints it (ModeName, which get, list and watch use) and lists it in its
// help. tests/integration/mode_names_test.sh checks the clients and docs.
TEST(ParseArgsTest, ModeNamesFollowTheProtoEverywhereInThrottlectl) {
  const google::protobuf::EnumDescriptor* modes = v1::Mode_descriptor();
  for (int i = 0; i < modes->value_count(); ++i) {
    const auto mode = static_cast<v1::Mode>(modes->value(i)->number());
    if (mode == v1::MODE_UNSPECIFIED) continue;
    const std::string name =
        absl::StrReplaceAll(absl::AsciiStrToLower(absl::StripPrefix(
                                modes->value(i)->name(), "MODE_")),
                            {{"_", "-"}});
    const absl::StatusOr<Invocation> invocation =
        Parse({"create", "t", "--max_n=1", "--per=1", "--mode=" + name});
    ASSERT_TRUE(invocation.ok()) << name << ": " << invocation.status();
    EXPECT_EQ(invocation->config.mode(), mode) << name;
    EXPECT_EQ(ModeName(mode), name);
    EXPECT_NE(Usage().find(name), std::string::npos) << name;
    EXPECT_NE(Usage("create").find(name), std::string::npos) << name;
    v1::ThrottleInfo info;
    info.mutable_config()->set_mode(mode);
    EXPECT_NE(ToText(info).find("\nMode: " + name + "\n"), std::string::npos)
        << ToText(info);
  }
}

TEST(ParseArgsTest, GlobalFlagsBeforeCommandAndAddressFromEnvironment) {
  const absl::StatusOr<Invocation> invocation =
      Parse({"--json", "list"}, "throttle.example:7000");
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->command, Command::kList);
  EXPECT_TRUE(invocation->json);
  EXPECT_EQ(invocation->address, "throttle.example:7000");
}

TEST(ParseArgsTest, AddressFlagBeatsEnvironment) {
  const absl::StatusOr<Invocation> invocation =
      Parse({"stop", "crawl", "--address", "10.0.0.1:1"}, "env:2");
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->command, Command::kStop);
  EXPECT_EQ(invocation->address, "10.0.0.1:1");
}

TEST(ParseArgsTest, LatestWindow) {
  absl::StatusOr<Invocation> invocation =
      Parse({"latest", "crawl", "--window=0.5"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->window, absl::Milliseconds(500));
  invocation = Parse({"latest", "crawl"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->window, absl::Seconds(1));
}

TEST(ParseArgsTest, SimpleCommandsTakeOneName) {
  const std::vector<std::pair<std::string, Command>> commands = {
      {"delete", Command::kDelete},
      {"get", Command::kGet},
      {"start", Command::kStart},
      {"stop", Command::kStop},
      {"mean", Command::kMean}};
  for (const auto& [word, command] : commands) {
    const absl::StatusOr<Invocation> invocation = Parse({word, "crawl"});
    ASSERT_TRUE(invocation.ok()) << word << ": " << invocation.status();
    EXPECT_EQ(invocation->command, command);
    EXPECT_EQ(invocation->name, "crawl");
  }
}

TEST(ParseArgsTest, DoubleDashEndsFlags) {
  const absl::StatusOr<Invocation> invocation =
      Parse({"delete", "--", "--odd-name"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->name, "--odd-name");
}

TEST(ParseArgsTest, HelpWins) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"--help"}, {"-h"}, {"help"}, {"stop", "--help"}, {"bogus", "-h"}}) {
    const absl::StatusOr<Invocation> invocation = Parse(args);
    ASSERT_TRUE(invocation.ok()) << args[0] << ": " << invocation.status();
    EXPECT_EQ(invocation->command, Command::kHelp) << args[0];
  }
}

TEST(ParseArgsTest, VersionFlag) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"--version"}, {"list", "--version"}, {"bogus", "--version"}}) {
    const absl::StatusOr<Invocation> invocation = Parse(args);
    ASSERT_TRUE(invocation.ok()) << args[0] << ": " << invocation.status();
    EXPECT_EQ(invocation->command, Command::kVersion) << args[0];
  }
  EXPECT_EQ(Parse({"--version", "--help"})->command, Command::kHelp);
}

TEST(ParseArgsTest, UsageErrorsAreInvalidArgumentWithOneLine) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"stop"},
      {"stop", "a", "b"},
      {"list", "extra"},
      {"create", "x", "--per=1"},
      {"create", "x", "--max_n=1"},
      {"create", "x", "--max_n=1.5", "--per=1"},
      {"create", "x", "--max_n=1", "--per=soon"},
      {"create", "x", "--max_n=1", "--per=inf"},
      {"create", "x", "--max_n=1", "--per=1", "--mode=fast"},
      {"create", "x", "--max_n=1", "--per=1", "--manual_emit=maybe"},
      {"configure", "x"},
      {"configure", "x", "--max_n=many"},
      {"get"},
      {"get", "x", "--max_n=3"},
      {"--window=1", "stop", "x"},
      {"start", "x", "--max_n=3"},
      {"latest", "x", "--window"},
      {"list", "--bogus"},
      {"list", "-x"},
      {"list", "--address="},
      {"stop", "x", "start", "y"},
      {"watch", "x", "--interval=often"},
      {"mean", "x", "--workers=maybe"},
  };
  for (const std::vector<std::string>& args : bad) {
    const absl::StatusOr<Invocation> invocation = Parse(args);
    std::string joined;
    for (const std::string& arg : args) joined += arg + " ";
    ASSERT_FALSE(invocation.ok()) << joined;
    EXPECT_EQ(invocation.status().code(), absl::StatusCode::kInvalidArgument)
        << joined;
    EXPECT_FALSE(invocation.status().message().empty()) << joined;
    EXPECT_EQ(invocation.status().message().find('\n'), std::string::npos)
        << joined;
  }
}

TEST(ParseArgsTest, ErrorNamesTheFlagAndValue) {
  const absl::StatusOr<Invocation> invocation =
      Parse({"create", "x", "--max_n=many", "--per=1"});
  ASSERT_FALSE(invocation.ok());
  EXPECT_EQ(invocation.status().message(),
            "--max_n: \"many\" is not an integer");
}

TEST(ParseArgsTest, WindowTheServerCannotBeSentNamesTheValueTyped) {
  for (const std::string value : {"1e-12", "-1e-10", "1e300"}) {
    const absl::StatusOr<Invocation> invocation =
        Parse({"latest", "x", "--window=" + value});
    ASSERT_FALSE(invocation.ok()) << value;
    EXPECT_EQ(invocation.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(invocation.status().message().find("\"" + value + "\""),
              std::string::npos)
        << invocation.status().message();
  }
  // Out of the server's range but sendable: the server names it.
  for (const std::string value : {"0", "-1", "61", "1e-9"}) {
    EXPECT_TRUE(Parse({"latest", "x", "--window=" + value}).ok()) << value;
  }
}

TEST(FormatDoubleTest, ReadsLikePython) {
  EXPECT_EQ(FormatDouble(5.0), "5.0");
  EXPECT_EQ(FormatDouble(0.0), "0.0");
  EXPECT_EQ(FormatDouble(0.2), "0.2");
  EXPECT_EQ(FormatDouble(5.0189573764801025), "5.0189573764801025");
  EXPECT_EQ(FormatDouble(4.993107772645828), "4.993107772645828");
  EXPECT_EQ(FormatDouble(1e-07), "1e-07");
  // Python's choice of notation, not the shorter text: repr(100000.0).
  EXPECT_EQ(FormatDouble(100000.0), "100000.0");
  EXPECT_EQ(FormatDouble(1e7), "10000000.0");
  EXPECT_EQ(FormatDouble(1e-5), "1e-05");
  EXPECT_EQ(FormatDouble(1e16), "1e+16");
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::infinity()), "inf");
}

TEST(ToTextTest, StopPrintsTheSeedsFourLines) {
  v1::StopResponse response;
  response.set_runtime_seconds(5.0189573764801025);
  response.set_total_emissions(25);
  response.set_mean_seconds_between_emissions(0.2002760696411133);
  response.set_mean_emissions_per_second(4.993107772645828);
  EXPECT_EQ(ToText(response),
            "Runtime: 5.0189573764801025\n"
            "Total: 25\n"
            "Time between processes: 0.2002760696411133\n"
            "Processes per second: 4.993107772645828\n");
}

TEST(ToTextTest, ListAlignsColumns) {
  v1::ListThrottlesResponse response;
  v1::ThrottleInfo* info = response.add_throttles();
  info->set_name("a-long-name");
  info->set_state(v1::STATE_RUNNING);
  info->mutable_config()->set_max_n(4);
  info->mutable_config()->set_per_seconds(1);
  info->mutable_config()->set_mode(v1::MODE_MONITOR_ONLY);
  info->mutable_config()->set_burst(4);
  info->set_total_emissions(12);
  info->mutable_config()->mutable_catch_up()->set_nanos(250000000);
  EXPECT_EQ(ToText(response),
            "NAME         STATE    MODE          MAX_N  CURRENT  PER_SECONDS  "
            "BURST  CATCH_UP  MANUAL_EMIT  WAITING  TOTAL  WARM_UP  "
            "DEGRADATION\n"
            "a-long-name  running  monitor-only  4      4        1.0          "
            "4      0.25      false        0        12     none     wait\n");
}

TEST(ToTextTest, CurrentIsTheAdaptiveRateOrMaxN) {
  v1::ThrottleInfo info;
  info.set_name("crawl");
  info.mutable_config()->set_max_n(300);
  info.mutable_config()->set_per_seconds(1);
  // A server that sends no current_max_n: max_n.
  EXPECT_NE(ToText(info).find("\nCurrent max n: 300\n"), std::string::npos)
      << ToText(info);
  info.set_current_max_n(147);
  EXPECT_NE(ToText(info).find("\nCurrent max n: 147\n"), std::string::npos)
      << ToText(info);
  v1::ListThrottlesResponse response;
  *response.add_throttles() = info;
  EXPECT_NE(ToText(response).find("  300    147      1.0  "), std::string::npos)
      << ToText(response);
}

TEST(ParseArgsTest, AdaptiveFlagsSetTheAdaptiveMessage) {
  absl::StatusOr<Invocation> invocation =
      Parse({"create", "crawl", "--max_n=300", "--per=1",
             "--adaptive_floor_n=10", "--adaptive_target=0.05",
             "--adaptive_window=500ms", "--adaptive_increase_n=5",
             "--adaptive_decrease=0.7", "--adaptive_min_outcomes=20"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  const v1::AdaptiveConfig& a = invocation->config.adaptive();
  EXPECT_EQ(a.floor_n(), 10);
  EXPECT_DOUBLE_EQ(a.target_rejection_ratio(), 0.05);
  EXPECT_EQ(a.window().nanos(), 500000000);
  EXPECT_EQ(a.increase_n(), 5);
  EXPECT_DOUBLE_EQ(a.decrease_factor(), 0.7);
  EXPECT_EQ(a.min_outcomes(), 20);
  invocation = Parse({"create", "crawl", "--max_n=300", "--per=1"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_FALSE(invocation->config.has_adaptive());
  // configure: the one path `adaptive`, however many flags.
  invocation = Parse({"configure", "crawl", "--adaptive_floor_n=10",
                      "--adaptive_decrease=0.5"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(Paths(*invocation), std::vector<std::string>{"adaptive"});
  invocation = Parse(
      {"create", "crawl", "--max_n=300", "--per=1", "--adaptive_floor_n=ten"});
  ASSERT_FALSE(invocation.ok());
  EXPECT_EQ(invocation.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ToTextTest, ThrottleShowsCatchUpOrDefault) {
  v1::ThrottleInfo info;
  info.set_name("crawl");
  info.mutable_config()->set_max_n(4);
  info.mutable_config()->set_per_seconds(1);
  EXPECT_NE(ToText(info).find("\nCatch up: default\n"), std::string::npos)
      << ToText(info);
  info.mutable_config()->mutable_catch_up()->set_seconds(2);
  EXPECT_NE(ToText(info).find("\nCatch up: 2.0\n"), std::string::npos)
      << ToText(info);
  info.mutable_config()->mutable_catch_up()->set_seconds(0);
  EXPECT_NE(ToText(info).find("\nCatch up: 0.0\n"), std::string::npos)
      << ToText(info);
}

TEST(ToTextTest, StartPrintsState) {
  v1::StartResponse response;
  response.set_state(v1::STATE_RUNNING);
  EXPECT_EQ(ToText(response), "State: running\n");
}

TEST(ParseArgsTest, SecurityFlagsAnywhere) {
  const absl::StatusOr<Invocation> invocation =
      Parse({"--tls_ca=ca.pem", "list", "--tls-cert", "c.pem", "--tls_key=k",
             "--token_file=/run/t"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->security.ca_file, "ca.pem");
  EXPECT_EQ(invocation->security.cert_file, "c.pem");
  EXPECT_EQ(invocation->security.key_file, "k");
  EXPECT_EQ(invocation->security.token, "");
  EXPECT_EQ(invocation->security.token_file, "/run/t");
  const absl::StatusOr<Invocation> token =
      Parse({"stop", "crawl", "--token", "abc"});
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->security.token, "abc");
  const absl::StatusOr<Invocation> named =
      Parse({"--address=ipv4:10.0.0.1:50051,10.0.0.2:50051", "list",
             "--tls_server_name", "throttle.example"});
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->address, "ipv4:10.0.0.1:50051,10.0.0.2:50051");
  EXPECT_EQ(named->security.server_name, "throttle.example");
  EXPECT_EQ(Parse({"list", "--tls_server_name="}).status().message(),
            "--tls_server_name is empty");
}

TEST(ParseArgsTest, AFlagGivenTwiceTakesTheLastValue) {
  const absl::StatusOr<Invocation> invocation = Parse(
      {"--tls_ca=a.pem", "create", "x", "--max_n=1", "--per=1", "--tls_ca",
       "b.pem", "--max_n=7", "--manual_emit", "--manual_emit=false"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->security.ca_file, "b.pem");
  EXPECT_EQ(invocation->config.max_n(), 7);
  EXPECT_FALSE(invocation->config.manual_emit());
}

TEST(ParseArgsTest, EmptySecurityFlagIsAUsageError) {
  const absl::StatusOr<Invocation> invocation = Parse({"list", "--tls_ca="});
  EXPECT_EQ(invocation.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(invocation.status().message(), "--tls_ca is empty");
}

// Issue 13: one duration syntax everywhere (the CLI rejected
// --window=1.5s); plain numbers are still seconds.
TEST(ParseArgsTest, DurationsTakeTheProjectsOneSyntax) {
  absl::StatusOr<Invocation> invocation =
      Parse({"create", "crawl", "--max_n=4", "--per=2m", "--catch_up=250ms"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->config.per_seconds(), 120);
  EXPECT_EQ(invocation->config.catch_up().nanos(), 250000000);
  invocation = Parse({"create", "crawl", "--max_n=4", "--per=1.5s"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->config.per_seconds(), 1.5);
  invocation = Parse({"latest", "crawl", "--window=1.5s"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->window, absl::Milliseconds(1500));
  invocation = Parse({"watch", "crawl", "--interval", "250ms"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->interval, absl::Milliseconds(250));
  invocation = Parse({"create", "crawl", "--max_n=4", "--per=1h30m"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->config.per_seconds(), 5400);
  invocation = Parse({"create", "crawl", "--max_n=4", "--per=5 parsecs"});
  ASSERT_FALSE(invocation.ok());
  EXPECT_EQ(invocation.status().message(),
            "--per: \"5 parsecs\" is not a duration (give 250ms, 1.5s, 2m or "
            "plain seconds)");
}

TEST(ParseArgsTest, WarmUpFlagsSetTheConfigAndTheMask) {
  absl::StatusOr<Invocation> invocation =
      Parse({"create", "crawl", "--max_n=4", "--per=1", "--warm_up=30s",
             "--warm_up_from=0.25"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->config.warm_up().seconds(), 30);
  EXPECT_EQ(invocation->config.warm_up_from(), 0.25);
  EXPECT_TRUE(Paths(*invocation).empty());
  // Unset unless given: the server's default (no warm-up).
  invocation = Parse({"create", "crawl", "--max_n=4", "--per=1"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_FALSE(invocation->config.has_warm_up());
  EXPECT_EQ(invocation->config.warm_up_from(), 0);
  invocation = Parse({"configure", "crawl", "--warm-up", "1.5s"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(Paths(*invocation), std::vector<std::string>{"warm_up"});
  EXPECT_EQ(invocation->config.warm_up().seconds(), 1);
  EXPECT_EQ(invocation->config.warm_up().nanos(), 500000000);
  invocation = Parse({"configure", "crawl", "--warm_up_from=0.5", "--max_n=3"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(Paths(*invocation),
            (std::vector<std::string>{"max_n", "warm_up_from"}));
  invocation = Parse({"configure", "crawl", "--warm_up_from=half"});
  ASSERT_FALSE(invocation.ok());
  EXPECT_EQ(invocation.status().message(),
            "--warm_up_from: \"half\" is not a number");
  invocation = Parse({"configure", "crawl", "--warm_up=soon"});
  ASSERT_FALSE(invocation.ok());
  EXPECT_NE(invocation.status().message().find("--warm_up: \"soon\""),
            std::string::npos)
      << invocation.status();
  EXPECT_FALSE(Parse({"start", "crawl", "--warm_up=1s"}).ok());
}

TEST(ParseArgsTest, WorkersFlagAsksForWorkersInLatestAndMean) {
  absl::StatusOr<Invocation> invocation =
      Parse({"latest", "crawl", "--workers", "--window=2s"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  v1::LatestRequest latest = LatestRequestOf(*invocation);
  EXPECT_EQ(latest.throttle(), "crawl");
  EXPECT_TRUE(latest.include_workers());
  EXPECT_EQ(latest.window().seconds(), 2);
  invocation = Parse({"latest", "crawl"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  latest = LatestRequestOf(*invocation);
  EXPECT_FALSE(latest.include_workers());
  EXPECT_EQ(latest.window().seconds(), 1);
  invocation = Parse({"mean", "crawl", "--workers"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  const v1::MeanRequest mean = MeanRequestOf(*invocation);
  EXPECT_EQ(mean.throttle(), "crawl");
  EXPECT_TRUE(mean.include_workers());
  EXPECT_FALSE(MeanRequestOf(*Parse({"mean", "crawl"})).include_workers());
  invocation = Parse({"get", "crawl", "--workers"});
  ASSERT_FALSE(invocation.ok());
  EXPECT_EQ(invocation.status().message(), "--workers does not apply to 'get'");
}

TEST(ParseArgsTest, WatchTakesANameAndAnInterval) {
  absl::StatusOr<Invocation> invocation = Parse({"watch", "crawl"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->command, Command::kWatch);
  EXPECT_EQ(invocation->name, "crawl");
  EXPECT_EQ(invocation->interval, absl::Seconds(1));
  EXPECT_FALSE(Parse({"watch"}).ok());
  EXPECT_FALSE(Parse({"watch", "crawl", "--window=1"}).ok());
  EXPECT_EQ(WatchRequestOf(*invocation).throttle(), "crawl");
  EXPECT_EQ(WatchRequestOf(*invocation).interval().seconds(), 1);
  invocation = Parse({"watch", "crawl", "--interval=0.1"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->interval, absl::Milliseconds(100));
  const v1::WatchThrottleRequest request = WatchRequestOf(*invocation);
  EXPECT_EQ(request.interval().seconds(), 0);
  EXPECT_EQ(request.interval().nanos(), 100000000);
  EXPECT_FALSE(request.has_window());  // the server's default: the interval
}

TEST(ParseArgsTest, HelpOfOneCommand) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"create", "--help"},
                                             {"help", "create"},
                                             {"--json", "create", "x", "-h"}}) {
    const absl::StatusOr<Invocation> invocation = Parse(args);
    ASSERT_TRUE(invocation.ok()) << args[0] << ": " << invocation.status();
    EXPECT_EQ(invocation->command, Command::kHelp);
    EXPECT_EQ(invocation->help_command, "create") << args[0];
  }
  EXPECT_EQ(Parse({"--help"})->help_command, "");
  EXPECT_EQ(Parse({"help"})->help_command, "");
  EXPECT_FALSE(Parse({"help", "frobnicate"}).ok());
  const std::string create = Usage("create");
  for (const char* flag :
       {"--max_n", "--per", "--mode", "--burst", "--manual_emit", "--catch_up",
        "--warm_up", "--warm_up_from", "--degradation", "--local_share_for",
        "NAME"}) {
    EXPECT_NE(create.find(flag), std::string::npos) << flag << "\n" << create;
  }
  const std::string stop = Usage("stop");
  EXPECT_NE(stop.find("NAME"), std::string::npos) << stop;
  EXPECT_EQ(stop.find("--max_n"), std::string::npos) << stop;
  EXPECT_NE(Usage("watch").find("--interval"), std::string::npos);
  EXPECT_NE(Usage("latest").find("--workers"), std::string::npos);
  EXPECT_EQ(Usage(""), Usage());
}

v1::WorkerStats Worker(const std::string& id, int64_t grants, double per_second,
                       int64_t emissions) {
  v1::WorkerStats worker;
  worker.set_worker_id(id);
  worker.set_grants(grants);
  worker.set_grants_per_second(per_second);
  worker.set_emissions(emissions);
  return worker;
}

TEST(ToTextTest, LatestWithWorkersPrintsATable) {
  v1::LatestResponse response;
  response.set_seconds_between_emissions(0.25);
  response.set_emissions_per_second(4);
  response.set_emissions(4);
  response.set_window_seconds(1);
  const std::string without = ToText(response);
  EXPECT_EQ(without.find("WORKER"), std::string::npos) << without;
  *response.add_workers() = Worker("host-a", 3, 3, 0);
  *response.add_workers() = Worker("", 1, 1, 2);
  v1::WorkerStats others = Worker("", 7, 0.5, 0);
  others.set_others(true);
  *response.add_workers() = others;
  EXPECT_EQ(ToText(response), without +
                                  "\n"
                                  "WORKER    GRANTS  GRANTS/S  EMISSIONS\n"
                                  "host-a    3       3.0       0\n"
                                  "(none)    1       1.0       2\n"
                                  "(others)  7       0.5       0\n");
}

TEST(ToTextTest, MeanAlwaysPrintsTheFairnessIndex) {
  v1::MeanResponse response;
  response.set_fairness_index(0.75);
  response.set_state(v1::STATE_RUNNING);
  EXPECT_NE(ToText(response).find("\nFairness index: 0.75\n"),
            std::string::npos)
      << ToText(response);
  *response.add_workers() = Worker("w1", 10, 2.5, 0);
  EXPECT_NE(ToText(response).find("\nWORKER  GRANTS  GRANTS/S  EMISSIONS\n"
                                  "w1      10      2.5       0\n"),
            std::string::npos)
      << ToText(response);
}

TEST(ToTextTest, ThrottleShowsWarmUp) {
  v1::ThrottleInfo info;
  info.set_name("crawl");
  EXPECT_NE(ToText(info).find("\nWarm up: none\n"), std::string::npos)
      << ToText(info);
  info.mutable_config()->mutable_warm_up()->set_seconds(30);
  info.mutable_config()->set_warm_up_from(0.5);
  EXPECT_NE(ToText(info).find("\nWarm up: 30.0 s from 0.5\n"),
            std::string::npos)
      << ToText(info);
  v1::ListThrottlesResponse list;
  *list.add_throttles() = info;
  EXPECT_NE(ToText(list).find("  30.0 s from 0.5  wait\n"), std::string::npos)
      << ToText(list);
}

TEST(ParseArgsTest, DegradationFlagsSetTheConfigAndTheMask) {
  absl::StatusOr<Invocation> invocation =
      Parse({"create", "crawl", "--max_n=4", "--per=1",
             "--degradation=local_share", "--local_share_for=1m30s"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->config.degradation(), v1::DEGRADATION_LOCAL_SHARE);
  EXPECT_EQ(invocation->config.local_share_for().seconds(), 90);
  EXPECT_TRUE(Paths(*invocation).empty());
  invocation = Parse({"create", "crawl", "--max_n=4", "--per=1"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->config.degradation(), v1::DEGRADATION_UNSPECIFIED);
  EXPECT_FALSE(invocation->config.has_local_share_for());

  // configure: only the flags given.
  invocation = Parse({"configure", "crawl", "--local_share_for=250ms"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(Paths(*invocation), std::vector<std::string>{"local_share_for"});
  EXPECT_EQ(invocation->config.local_share_for().nanos(), 250000000);
  EXPECT_EQ(invocation->config.degradation(), v1::DEGRADATION_UNSPECIFIED);
  invocation = Parse({"configure", "crawl", "--degradation=local_share",
                      "--local_share_for=10s", "--max_n=2"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(
      Paths(*invocation),
      (std::vector<std::string>{"max_n", "degradation", "local_share_for"}));
  // local_share alone keeps the stored local_share_for.
  invocation = Parse({"configure", "crawl", "--degradation=local_share"});
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(Paths(*invocation), std::vector<std::string>{"degradation"});
  // Away from local_share the stored local_share_for is cleared (the
  // server requires it unset then), as a mode switch drops the burst.
  for (const auto& [name, value] : {std::pair<const char*, v1::Degradation>{
                                        "fail_fast", v1::DEGRADATION_FAIL_FAST},
                                    {"wait", v1::DEGRADATION_WAIT}}) {
    invocation =
        Parse({"configure", "crawl", absl::StrCat("--degradation=", name)});
    ASSERT_TRUE(invocation.ok()) << invocation.status();
    EXPECT_EQ(invocation->config.degradation(), value) << name;
    EXPECT_EQ(Paths(*invocation),
              (std::vector<std::string>{"degradation", "local_share_for"}))
        << name;
    EXPECT_FALSE(invocation->config.has_local_share_for()) << name;
  }

  // Bad values name the flag and the value (and the choices).
  invocation = Parse({"configure", "crawl", "--degradation=retry"});
  ASSERT_FALSE(invocation.ok());
  EXPECT_EQ(invocation.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(invocation.status().message(),
            "--degradation \"retry\" is not one of wait, fail_fast, "
            "local_share");
  invocation = Parse({"create", "crawl", "--max_n=1", "--per=1",
                      "--degradation=local_share", "--local_share_for=soon"});
  ASSERT_FALSE(invocation.ok());
  EXPECT_NE(invocation.status().message().find("--local_share_for: \"soon\""),
            std::string::npos)
      << invocation.status();
  EXPECT_FALSE(Parse({"start", "crawl", "--degradation=wait"}).ok());
}

TEST(ParseArgsTest, DegradationNamesFollowTheProto) {
  // Every Degradation but UNSPECIFIED has a name that parses back, and
  // each name is the enum's suffix in lower case.
  const google::protobuf::EnumDescriptor* degradations =
      v1::Degradation_descriptor();
  for (int i = 0; i < degradations->value_count(); ++i) {
    const auto value =
        static_cast<v1::Degradation>(degradations->value(i)->number());
    if (value == v1::DEGRADATION_UNSPECIFIED) continue;
    const std::string name = DegradationName(value);
    EXPECT_EQ(name, absl::AsciiStrToLower(absl::StripPrefix(
                        degradations->value(i)->name(), "DEGRADATION_")));
    const absl::StatusOr<Invocation> invocation =
        Parse({"configure", "crawl", "--degradation=" + name});
    ASSERT_TRUE(invocation.ok()) << name << ": " << invocation.status();
    EXPECT_EQ(invocation->config.degradation(), value);
  }
}

TEST(ToTextTest, ThrottleShowsDegradation) {
  v1::ThrottleInfo info;
  info.set_name("crawl");
  // Unset is wait (the proto's default); no local share line then.
  EXPECT_NE(ToText(info).find("\nDegradation: wait\n"), std::string::npos)
      << ToText(info);
  EXPECT_EQ(ToText(info).find("Local share for"), std::string::npos)
      << ToText(info);
  info.mutable_config()->set_degradation(v1::DEGRADATION_FAIL_FAST);
  EXPECT_NE(ToText(info).find("\nDegradation: fail_fast\n"), std::string::npos)
      << ToText(info);
  EXPECT_EQ(ToText(info).find("Local share for"), std::string::npos)
      << ToText(info);
  info.mutable_config()->set_degradation(v1::DEGRADATION_LOCAL_SHARE);
  info.mutable_config()->mutable_local_share_for()->set_seconds(90);
  EXPECT_NE(ToText(info).find("\nDegradation: local_share\n"
                              "Local share for: 90.0\n"),
            std::string::npos)
      << ToText(info);
  v1::ListThrottlesResponse list;
  *list.add_throttles() = info;
  EXPECT_NE(ToText(list).find("  local_share\n"), std::string::npos)
      << ToText(list);
}

TEST(ErrorLineTest, KeepsTheServersMessageOnOneLine) {
  EXPECT_EQ(ErrorLine(absl::PermissionDeniedError(
                "Stop on throttle \"t\" is not allowed")),
            "PERMISSION_DENIED: Stop on throttle \"t\" is not allowed");
  EXPECT_EQ(ErrorLine(absl::UnavailableError("failed\nto connect\r\nat all")),
            "UNAVAILABLE: failed to connect at all");
}

}  // namespace
}  // namespace throttle::cli
