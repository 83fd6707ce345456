// The config file (server/service/config_file.h) as an operator writes
// it: every error names the file, the line and the field; unknown and
// repeated keys are errors; durations in the one syntax; the old line
// format still read, flagged as deprecated.
#include "server/service/config_file.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/core/duration.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;

constexpr char kPath[] = "/etc/throttle/throttles.yaml";

// The message of a file that must be refused.
std::string ErrorOf(const std::string& text) {
  absl::StatusOr<ConfigFile> file = ParseConfigFile(text, kPath);
  EXPECT_FALSE(file.ok()) << text;
  if (file.ok()) return "";
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(file.status().message());
}

TEST(ConfigFile, ReadsThrottlesInOrderWithTheirLines) {
  absl::StatusOr<ConfigFile> file = ParseConfigFile(
      "# the fleet's throttles\n"
      "throttles:\n"
      "  crawl:\n"
      "    max_n: 4\n"
      "    per: 1s\n"
      "  api: {max_n: 100, per: 1, mode: bucket, burst: 20}\n"
      "  batch:\n"
      "    max_n: 600\n"
      "    per: 1m\n"
      "    mode: window\n"
      "    manual_emit: true\n"
      "    catch_up: 250ms\n",
      kPath);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_FALSE(file->old_format);
  ASSERT_EQ(file->throttles.size(), 3u);
  EXPECT_EQ(file->throttles[0].name, "crawl");
  EXPECT_EQ(file->throttles[0].source, std::string(kPath) + ":3");
  EXPECT_EQ(file->throttles[0].config.max_n, 4);
  EXPECT_EQ(file->throttles[0].config.per, absl::Seconds(1));
  EXPECT_EQ(file->throttles[1].name, "api");
  EXPECT_EQ(file->throttles[1].config.mode, Mode::kBucket);
  EXPECT_EQ(file->throttles[1].config.burst, 20);
  EXPECT_EQ(file->throttles[1].config.per, absl::Seconds(1));
  const ThrottleConfig& batch = file->throttles[2].config;
  EXPECT_EQ(batch.per, absl::Minutes(1));
  EXPECT_EQ(batch.mode, Mode::kWindow);
  EXPECT_TRUE(batch.manual_emit);
  EXPECT_EQ(batch.catch_up, absl::Milliseconds(250));
}

TEST(ConfigFile, WarmUpKeysInTheOneDurationSyntax) {
  absl::StatusOr<ConfigFile> file = ParseConfigFile(
      "throttles:\n"
      "  crawl: {max_n: 4, per: 1s, warm_up: 2m, warm_up_from: 0.25}\n"
      "  api: {max_n: 4, per: 1, warm_up: 90}\n",
      kPath);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->throttles.size(), 2u);
  EXPECT_EQ(file->throttles[0].config.warm_up, absl::Minutes(2));
  EXPECT_EQ(file->throttles[0].config.warm_up_from, 0.25);
  EXPECT_EQ(file->throttles[1].config.warm_up, absl::Seconds(90));
  EXPECT_EQ(file->throttles[1].config.warm_up_from, 0);  // 1/3
}

TEST(ConfigFile, StarvationBoundKeyInTheOneDurationSyntax) {
  absl::StatusOr<ConfigFile> file = ParseConfigFile(
      "throttles:\n"
      "  crawl: {max_n: 4, per: 1s, starvation_bound: 3s}\n",
      kPath);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->throttles.size(), 1u);
  EXPECT_EQ(file->throttles[0].config.starvation_bound, absl::Seconds(3));
}

TEST(ConfigFile, DegradationKeys) {
  absl::StatusOr<ConfigFile> file = ParseConfigFile(
      "throttles:\n"
      "  crawl: {max_n: 4, per: 1s, degradation: local_share, "
      "local_share_for: 10s}\n"
      "  api: {max_n: 4, per: 1, degradation: fail_fast}\n",
      kPath);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->throttles.size(), 2u);
  EXPECT_EQ(file->throttles[0].config.degradation, Degradation::kLocalShare);
  EXPECT_EQ(file->throttles[0].config.local_share_for, absl::Seconds(10));
  EXPECT_EQ(file->throttles[1].config.degradation, Degradation::kFailFast);
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl: {max_n: 4, per: 1s, degradation: panic}\n"),
            std::string(kPath) +
                ":2: throttles.crawl.degradation: degradation \"panic\" is "
                "not one of wait, fail_fast, local_share");
}

TEST(ConfigFile, BadWarmUpNamesLineFieldAndValue) {
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl:\n"
                    "    max_n: 4\n"
                    "    per: 1s\n"
                    "    warm_up: 31d\n"),
            std::string(kPath) + ":5: throttles.crawl.warm_up: " +
                std::string(ParseDuration("31d").status().message()));
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl:\n"
                    "    max_n: 4\n"
                    "    per: 1s\n"
                    "    warm_up: 800h\n"),
            std::string(kPath) +
                ":5: throttles.crawl.warm_up: warm_up must be in [0, 30 days], "
                "got 800h");
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl:\n"
                    "    max_n: 4\n"
                    "    per: 1s\n"
                    "    warm_up: 1m\n"
                    "    warm_up_from: 2\n"),
            std::string(kPath) +
                ":6: throttles.crawl.warm_up_from: warm_up_from must be in "
                "(0, 1] (0 = 1/3), got 2");
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl: {max_n: 4, per: 1s, warm_up_from: half}\n"),
            std::string(kPath) +
                ":2: throttles.crawl.warm_up_from: must be a number in (0, 1], "
                "got \"half\"");
}

TEST(ConfigFile, AdaptiveMappingWithItsDefaultsFilledIn) {
  absl::StatusOr<ConfigFile> file = ParseConfigFile(
      "throttles:\n"
      "  pool:\n"
      "    max_n: 100\n"
      "    per: 1s\n"
      "    adaptive:\n"
      "      floor_n: 10\n"
      "      target_rejection_ratio: 0.2\n"
      "      window: 1500ms\n"
      "      increase_n: 5\n"
      "      decrease_factor: 0.75\n"
      "      min_outcomes: 3\n"
      "  api: {max_n: 4, per: 1, adaptive: {window: 2}}\n"
      "  plain: {max_n: 4, per: 1}\n",
      kPath);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->throttles.size(), 3u);
  ASSERT_TRUE(file->throttles[0].config.adaptive.has_value());
  const AdaptiveConfig& pool = *file->throttles[0].config.adaptive;
  EXPECT_EQ(pool.floor_n, 10);
  EXPECT_DOUBLE_EQ(pool.target_rejection_ratio, 0.2);
  EXPECT_EQ(pool.window, absl::Milliseconds(1500));
  EXPECT_EQ(pool.increase_n, 5);
  EXPECT_DOUBLE_EQ(pool.decrease_factor, 0.75);
  EXPECT_EQ(pool.min_outcomes, 3);
  // What the mapping omits keeps the defaults, as an RPC's AdaptiveConfig.
  ASSERT_TRUE(file->throttles[1].config.adaptive.has_value());
  const AdaptiveConfig& api = *file->throttles[1].config.adaptive;
  const AdaptiveConfig defaults;
  EXPECT_EQ(api.window, absl::Seconds(2));
  EXPECT_EQ(api.floor_n, defaults.floor_n);
  EXPECT_DOUBLE_EQ(api.target_rejection_ratio, defaults.target_rejection_ratio);
  EXPECT_EQ(api.increase_n, defaults.increase_n);
  EXPECT_DOUBLE_EQ(api.decrease_factor, defaults.decrease_factor);
  EXPECT_EQ(api.min_outcomes, defaults.min_outcomes);
  EXPECT_FALSE(file->throttles[2].config.adaptive.has_value());
  // An empty mapping: adaptive, every default.
  file = ParseConfigFile(
      "throttles:\n"
      "  pool: {max_n: 4, per: 1s, adaptive: {}}\n",
      kPath);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE(file->throttles[0].config.adaptive.has_value());
  EXPECT_EQ(file->throttles[0].config.adaptive->window, defaults.window);
}

// A throttle "pool" (max_n 10) with `adaptive` on line 3 and the given
// setting alone under it on line 4.
std::string AdaptiveWith(const std::string& setting) {
  return "throttles:\n"
         "  pool:\n"
         "    adaptive:\n"
         "      " +
         setting +
         "\n"
         "    max_n: 10\n"
         "    per: 1s\n";
}

TEST(ConfigFile, BadAdaptiveValueNamesLineFieldAndValue) {
  const std::string at = std::string(kPath) + ":4: throttles.pool.adaptive.";
  // Not a value of the kind.
  EXPECT_EQ(ErrorOf(AdaptiveWith("floor_n: ten")),
            at + "floor_n: must be an integer, got \"ten\"");
  EXPECT_EQ(ErrorOf(AdaptiveWith("target_rejection_ratio: low")),
            at + "target_rejection_ratio: must be a number in (0, 1), got "
                 "\"low\"");
  EXPECT_EQ(
      ErrorOf(AdaptiveWith("window: 1 sec")),
      at + "window: " + std::string(ParseDuration("1 sec").status().message()));
  EXPECT_EQ(ErrorOf(AdaptiveWith("increase_n: 1.5")),
            at + "increase_n: must be an integer, got \"1.5\"");
  EXPECT_EQ(ErrorOf(AdaptiveWith("decrease_factor: half")),
            at + "decrease_factor: must be a number in (0, 1), got \"half\"");
  EXPECT_EQ(ErrorOf(AdaptiveWith("min_outcomes: [3]")),
            at + "min_outcomes: must be a value, got a list");
  // Out of range: the check of the RPC path (ValidateAdaptiveConfig), at
  // the line of the field.
  EXPECT_EQ(ErrorOf(AdaptiveWith("floor_n: 11")),
            at + "floor_n: adaptive.floor_n must be in [1, max_n = 10], got "
                 "11");
  EXPECT_EQ(ErrorOf(AdaptiveWith("target_rejection_ratio: 1")),
            at + "target_rejection_ratio: adaptive.target_rejection_ratio "
                 "must be in (0, 1), got 1");
  EXPECT_EQ(ErrorOf(AdaptiveWith("window: 2h")),
            at + "window: adaptive.window must be in (0, 1h], got 2h");
  EXPECT_EQ(ErrorOf(AdaptiveWith("increase_n: 0")),
            at + "increase_n: adaptive.increase_n must be in [1, max_n = 10], "
                 "got 0");
  EXPECT_EQ(ErrorOf(AdaptiveWith("decrease_factor: 0")),
            at + "decrease_factor: adaptive.decrease_factor must be in (0, 1), "
                 "got 0");
  EXPECT_EQ(ErrorOf(AdaptiveWith("min_outcomes: 1000001")),
            at + "min_outcomes: adaptive.min_outcomes must be in [1, "
                 "1000000], got 1000001");
}

TEST(ConfigFile, AdaptiveUnknownRepeatedOrMisshapenKeysAreErrors) {
  EXPECT_EQ(ErrorOf(AdaptiveWith("flor_n: 2")),
            std::string(kPath) +
                ":4: throttles.pool.adaptive.flor_n: unknown key (known: "
                "floor_n, target_rejection_ratio, window, increase_n, "
                "decrease_factor, min_outcomes)");
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  pool:\n"
                    "    max_n: 10\n"
                    "    per: 1s\n"
                    "    adaptive:\n"
                    "      floor_n: 2\n"
                    "      floor_n: 3\n"),
            std::string(kPath) +
                ":7: throttles.pool.adaptive.floor_n: given twice (first at "
                "line 6)");
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  pool:\n"
                    "    adaptive: {}\n"
                    "    max_n: 10\n"
                    "    per: 1s\n"
                    "    adaptive: {floor_n: 2}\n"),
            std::string(kPath) +
                ":6: throttles.pool.adaptive: given twice (first at line 3)");
  // Not a mapping: `adaptive:` alone does not turn it on.
  for (const char* value : {"", " true", " [1]"}) {
    EXPECT_THAT(ErrorOf(std::string("throttles:\n"
                                    "  pool:\n"
                                    "    max_n: 10\n"
                                    "    per: 1s\n"
                                    "    adaptive:") +
                        value + "\n"),
                HasSubstr(":5: throttles.pool.adaptive: must be a mapping of "
                          "adaptive settings (floor_n, "))
        << value;
  }
  // A rule on the whole mapping points at it.
  EXPECT_THAT(
      ErrorOf("throttles:\n"
              "  pool:\n"
              "    max_n: 10\n"
              "    per: 1s\n"
              "    mode: monitor_only\n"
              "    adaptive: {}\n"),
      HasSubstr(":6: throttles.pool.adaptive: adaptive applies to limited "
                "modes"));
}

TEST(ConfigFile, FlatAdaptiveSpellingsOfTheSpecAreNotRead) {
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  pool: {max_n: 10, per: 1s, adaptive_floor_n: 2}\n"),
            std::string(kPath) +
                ":2: throttles.pool.adaptive_floor_n: unknown key (known: "
                "max_n, per, mode, burst, manual_emit, catch_up, warm_up, "
                "warm_up_from, starvation_bound, degradation, "
                "local_share_for, adaptive); the adaptive_* settings of "
                "--throttle go in the mapping adaptive: {...}");
}

TEST(ConfigFile, EmptyFileOrNoThrottlesDeclaresNone) {
  for (const char* text : {"", "# nothing yet\n", "throttles:\n"}) {
    absl::StatusOr<ConfigFile> file = ParseConfigFile(text, kPath);
    ASSERT_TRUE(file.ok()) << text << ": " << file.status();
    EXPECT_TRUE(file->throttles.empty());
  }
}

TEST(ConfigFile, BadValueNamesFileLineAndField) {
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl:\n"
                    "    max_n: four\n"
                    "    per: 1s\n"),
            std::string(kPath) +
                ":3: throttles.crawl.max_n: must be an integer, got \"four\"");
  EXPECT_THAT(ErrorOf("throttles:\n"
                      "  crawl:\n"
                      "    max_n: 4\n"
                      "    per: 1 sec\n"),
              HasSubstr(":4: throttles.crawl.per: not a duration"));
  EXPECT_THAT(ErrorOf("throttles:\n"
                      "  crawl: {max_n: 4, per: 1s, mode: turbo}\n"),
              HasSubstr(":2: throttles.crawl.mode: "));
}

TEST(ConfigFile, OutOfRangeValueNamesTheLineOfItsField) {
  // The core's check (ValidateConfig) points at the field it names.
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl:\n"
                    "    max_n: 4\n"
                    "    per: 1s\n"
                    "    burst: 3\n"),
            std::string(kPath) +
                ":5: throttles.crawl.burst: burst applies to bucket mode "
                "only; got 3 in smooth mode");
  EXPECT_THAT(ErrorOf("throttles:\n"
                      "  crawl:\n"
                      "    max_n: 0\n"
                      "    per: 1s\n"),
              HasSubstr(":3: throttles.crawl.max_n: max_n must be in [1, "));
  EXPECT_THAT(ErrorOf("throttles:\n"
                      "  crawl:\n"
                      "    max_n: 4\n"
                      "    per: -1s\n"),
              HasSubstr(":4: throttles.crawl.per: per must be in (0, "));
}

TEST(ConfigFile, DuplicateKeyIsAnErrorNamingBothLines) {
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl:\n"
                    "    max_n: 4\n"
                    "    per: 1s\n"
                    "    max_n: 5\n"),
            std::string(kPath) +
                ":5: throttles.crawl.max_n: given twice (first at line 3)");
  // A throttle declared twice is a repeated key too.
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl: {max_n: 4, per: 1s}\n"
                    "  api: {max_n: 100, per: 1s}\n"
                    "  crawl: {max_n: 8, per: 1s}\n"),
            std::string(kPath) +
                ":4: throttles.crawl: given twice (first at line 2)");
  EXPECT_THAT(ErrorOf("throttles:\n"
                      "  crawl: {max_n: 4, per: 1s}\n"
                      "throttles:\n"
                      "  api: {max_n: 4, per: 1s}\n"),
              HasSubstr(":3: throttles: given twice (first at line 1)"));
}

TEST(ConfigFile, UnknownKeyIsAnErrorListingTheKnownOnes) {
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl:\n"
                    "    max_n: 4\n"
                    "    per: 1s\n"
                    "    brust: 3\n"),
            std::string(kPath) +
                ":5: throttles.crawl.brust: unknown key (known: max_n, per, "
                "mode, burst, manual_emit, catch_up, warm_up, warm_up_from, "
                "starvation_bound, degradation, local_share_for, adaptive)");
  EXPECT_EQ(
      ErrorOf("throtles:\n"
              "  crawl: {max_n: 4, per: 1s}\n"),
      std::string(kPath) + ":1: throtles: unknown key (known: throttles)");
}

TEST(ConfigFile, MissingOrMisshapenSettingsNameTheThrottle) {
  EXPECT_EQ(ErrorOf("throttles:\n"
                    "  crawl:\n"
                    "    max_n: 4\n"),
            std::string(kPath) + ":3: throttles.crawl: per is required");
  EXPECT_THAT(ErrorOf("throttles:\n"
                      "  crawl: 4\n"),
              HasSubstr(":2: throttles.crawl: must be a mapping of settings"));
  EXPECT_THAT(ErrorOf("throttles:\n"
                      "  - crawl\n"),
              HasSubstr(":1: throttles: must be a mapping of throttle names"));
  EXPECT_THAT(ErrorOf("throttles:\n"
                      "  crawl: {max_n: [4], per: 1s}\n"),
              HasSubstr(":2: throttles.crawl.max_n: must be a value"));
  EXPECT_THAT(ErrorOf("- crawl\n"),
              HasSubstr(":1: the file must be a mapping with the key"));
}

TEST(ConfigFile, YamlSyntaxErrorNamesFileAndLine) {
  EXPECT_THAT(ErrorOf("throttles:\n"
                      "  crawl: {max_n: 4, per: 1s\n"
                      "  api: {max_n: 4, per: 1s}\n"),
              HasSubstr(std::string(kPath) + ":"));
}

TEST(ConfigFile, OldLineFormatIsReadAndFlagged) {
  absl::StatusOr<ConfigFile> file = ParseConfigFile(
      "# Throttles the server creates at start-up\n"
      "crawl max_n=4 per=1\n"
      "\n"
      "api max_n=100 per=1s mode=bucket burst=20   # a comment\n",
      kPath);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE(file->old_format);
  ASSERT_EQ(file->throttles.size(), 2u);
  EXPECT_EQ(file->throttles[1].name, "api");
  EXPECT_EQ(file->throttles[1].source, std::string(kPath) + ":4");
  EXPECT_EQ(file->throttles[1].config.burst, 20);
  // Its errors name the line too, and a repeated name is one.
  EXPECT_THAT(ErrorOf("crawl max_n=4 per=1\n"
                      "crawl max_n=5 per=1\n"),
              HasSubstr(":2: throttle crawl is declared twice (first at "
                        "line 1)"));
  EXPECT_THAT(ErrorOf("crawl max_n=4 per=1\n"
                      "api max_n=x per=1\n"),
              HasSubstr(":2: throttle api: bad value"));
}

TEST(MergeDeclared, NameInFlagAndFileIsAnErrorNamingBoth) {
  absl::StatusOr<ConfigFile> file = ParseConfigFile(
      "throttles:\n"
      "  crawl: {max_n: 4, per: 1s}\n",
      kPath);
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<DeclaredThrottle> flagged = {
      {"api", ThrottleConfig{}, "--throttle"}};
  absl::StatusOr<std::vector<DeclaredThrottle>> merged =
      MergeDeclared(flagged, *file);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->size(), 2u);
  flagged.push_back({"crawl", ThrottleConfig{}, "--throttle"});
  merged = MergeDeclared(flagged, *file);
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().message(),
            "throttle crawl is declared twice: in --throttle and in " +
                std::string(kPath) + ":2 (declare each name once)");
}

TEST(LoadConfigFile, UnreadableFileNamesIt) {
  absl::StatusOr<ConfigFile> file = LoadConfigFile("/nonexistent/t.yaml");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().message(), "cannot read /nonexistent/t.yaml");
}

}  // namespace
}  // namespace throttle::server
