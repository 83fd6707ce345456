// Conversions at the service boundary that need no server: the throttle
// spec of --throttle and --config, and mode names.
#include "server/service/convert.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;

TEST(ParseThrottleSpec, ModeNamesAreSpelledAsInThrottlectl) {
  // One parser of mode names: case-insensitive, '_' as '-'.
  for (const char* spelling :
       {"monitor-only", "monitor_only", "Monitor-Only"}) {
    auto parsed =
        ParseThrottleSpec(absl::StrCat("m max_n=1 per=1 mode=", spelling));
    ASSERT_TRUE(parsed.ok()) << spelling << ": " << parsed.status();
    EXPECT_EQ(parsed->second.mode, Mode::kMonitorOnly) << spelling;
  }
  auto bucket = ParseThrottleSpec("b max_n=10 per=2 mode=bucket burst=5");
  ASSERT_TRUE(bucket.ok()) << bucket.status();
  EXPECT_EQ(bucket->second.mode, Mode::kBucket);
  EXPECT_EQ(bucket->second.burst, 5);
}

TEST(ParseThrottleSpec, UnknownModeNamesTheValueAndTheChoices) {
  auto parsed = ParseThrottleSpec("x max_n=1 per=1 mode=turbo");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("turbo"));
  EXPECT_THAT(parsed.status().message(), HasSubstr("monitor-only"));
}

TEST(ParseThrottleSpec, DurationsInTheOneSyntaxOrPlainSeconds) {
  // The example: the config refused per=1s. Now per=1, per=1s and
  // per=1000ms are the same throttle, and catch_up reads the same way.
  for (const char* per : {"1", "1s", "1000ms", "1.0"}) {
    auto parsed = ParseThrottleSpec(absl::StrCat("t max_n=4 per=", per));
    ASSERT_TRUE(parsed.ok()) << per << ": " << parsed.status();
    EXPECT_EQ(parsed->second.per, absl::Seconds(1)) << per;
  }
  auto minute = ParseThrottleSpec("t max_n=600 per=2m catch_up=1.5s");
  ASSERT_TRUE(minute.ok()) << minute.status();
  EXPECT_EQ(minute->second.per, absl::Minutes(2));
  EXPECT_EQ(minute->second.catch_up, absl::Milliseconds(1500));
}

TEST(ParseThrottleSpec, BadDurationNamesThePartAndTheSyntax) {
  auto parsed = ParseThrottleSpec("t max_n=4 per=1 sec");
  ASSERT_FALSE(parsed.ok());
  parsed = ParseThrottleSpec("t max_n=4 per=soon");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.status().message(), HasSubstr("per=soon"));
  EXPECT_THAT(parsed.status().message(), HasSubstr("250ms"));
}

}  // namespace
}  // namespace throttle::server
