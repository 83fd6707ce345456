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

}  // namespace
}  // namespace throttle::server
