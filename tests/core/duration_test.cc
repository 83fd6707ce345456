// The one duration syntax (server/core/duration.h) and the flag type that
// the server's duration flags use (server/duration_flag.h).
#include "server/core/duration.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/duration_flag.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;

TEST(ParseDuration, UnitsOrPlainSeconds) {
  EXPECT_EQ(ParseDuration("250ms").value(), absl::Milliseconds(250));
  EXPECT_EQ(ParseDuration("1.5s").value(), absl::Milliseconds(1500));
  EXPECT_EQ(ParseDuration("2m").value(), absl::Minutes(2));
  EXPECT_EQ(ParseDuration("1h30m").value(), absl::Minutes(90));
  EXPECT_EQ(ParseDuration("60").value(), absl::Seconds(60));
  EXPECT_EQ(ParseDuration("0.25").value(), absl::Milliseconds(250));
  EXPECT_EQ(ParseDuration(" 5s ").value(), absl::Seconds(5));
  EXPECT_EQ(ParseDuration("0").value(), absl::ZeroDuration());
  EXPECT_EQ(ParseDuration("-1s").value(), absl::Seconds(-1));
}

TEST(ParseDuration, RefusesWhatIsNoDurationSayingWhatIs) {
  for (const char* text : {"", "s", "1 s", "soon", "inf", "nan", "1e999",
                           "0x10", "5 sec", "1.5.1s"}) {
    auto parsed = ParseDuration(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr("250ms")) << text;
  }
}

TEST(ParseDuration, FormatReadsBack) {
  for (absl::Duration d : {absl::Milliseconds(250), absl::Milliseconds(1500),
                           absl::Minutes(2), absl::ZeroDuration()}) {
    EXPECT_EQ(ParseDuration(server::FormatDuration(d)).value(), d);
  }
}

// What --shutdown_grace=0.5 does: Abseil's own absl::Duration flags refuse
// a plain number; DurationFlag takes it, and units too.
TEST(DurationFlag, TakesPlainSecondsAndUnits) {
  std::string error;
  throttle::DurationFlag flag;
  absl::Duration abseil;
  EXPECT_FALSE(absl::ParseFlag(absl::string_view("0.5"), &abseil, &error));
  EXPECT_TRUE(absl::ParseFlag("0.5", &flag, &error)) << error;
  EXPECT_EQ(flag.value, absl::Milliseconds(500));
  EXPECT_TRUE(absl::ParseFlag("250ms", &flag, &error)) << error;
  EXPECT_EQ(flag.value, absl::Milliseconds(250));
  EXPECT_FALSE(absl::ParseFlag("soon", &flag, &error));
  EXPECT_THAT(error, HasSubstr("soon"));
  EXPECT_EQ(absl::UnparseFlag(throttle::DurationFlag(absl::Seconds(5))), "5s");
}

}  // namespace
}  // namespace throttle::server
