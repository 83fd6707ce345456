// The status page's history and rendering (server/service/status_page.h)
// on a fake clock and a fake source of throttle numbers: one sample per
// second, bounded to five minutes, forgotten with its throttle; the JSON
// and the page escape names; the paths it serves.
#include "server/service/status_page.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fake_clock.h"

namespace throttle::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Throttles whose numbers the test sets.
class FakeSource final : public ThrottleStatsSource {
 public:
  void Set(std::vector<ThrottleSnapshot> throttles) {
    absl::MutexLock lock(&mu_);
    throttles_ = std::move(throttles);
  }
  std::vector<ThrottleSnapshot> Snapshot() const override {
    absl::MutexLock lock(&mu_);
    return throttles_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<ThrottleSnapshot> throttles_ ABSL_GUARDED_BY(mu_);
};

ThrottleSnapshot Throttle(const std::string& name, double achieved) {
  ThrottleSnapshot s;
  s.name = name;
  s.state = "running";
  s.mode = "smooth";
  s.configured_rate = 50;
  s.achieved_rate = achieved;
  s.mean_rate = 49.5;
  s.waiting_streams = 3;
  s.emissions = 1234;
  return s;
}

constexpr absl::Duration kWait = absl::Seconds(30);  // only a hang fails

TEST(StatusPage, KeepsOneSamplePerSecondForFiveMinutes) {
  testing::FakeClock clock;
  FakeSource source;
  source.Set({Throttle("t", 0)});
  StatusPage page(&clock, &source, "");
  ASSERT_TRUE(page.AwaitSamples("t", 1, kWait));  // the first, at once
  for (int i = 1; i < kHistorySamples + 20; ++i) {
    source.Set({Throttle("t", i)});
    clock.Advance(kHistoryStep);
    ASSERT_TRUE(page.AwaitSamples("t", i + 1, kWait)) << i;
    EXPECT_EQ(page.History("t").back(), static_cast<float>(i));
  }
  const std::vector<float> history = page.History("t");
  ASSERT_EQ(history.size(), static_cast<size_t>(kHistorySamples));
  // The oldest kept is five minutes before the newest.
  EXPECT_EQ(history.front(), 20.0f);
  // Half a step brings no sample: the next is a whole step after the last.
  source.Set({Throttle("t", 999)});
  clock.Advance(kHistoryStep / 2);
  clock.Advance(kHistoryStep / 2);
  ASSERT_TRUE(page.AwaitSamples("t", kHistorySamples + 21, kWait));
  page.Stop();
  EXPECT_EQ(page.History("t").back(), 999.0f);
  EXPECT_EQ(page.History("t")[kHistorySamples - 2],
            static_cast<float>(kHistorySamples + 19));
}

TEST(StatusPage, AThrottleThatIsGoneLosesItsHistory) {
  testing::FakeClock clock;
  FakeSource source;
  source.Set({Throttle("a", 1), Throttle("b", 2)});
  StatusPage page(&clock, &source, "");
  ASSERT_TRUE(page.AwaitSamples("b", 1, kWait));
  source.Set({Throttle("b", 3)});
  clock.Advance(kHistoryStep);
  ASSERT_TRUE(page.AwaitSamples("b", 2, kWait));
  EXPECT_TRUE(page.AwaitSamples("a", 0, kWait));
  EXPECT_THAT(page.History("b"), ElementsAre(2.0f, 3.0f));
}

TEST(StatusPage, JsonCarriesTheNumbersAndTheHistory) {
  testing::FakeClock clock;
  FakeSource source;
  source.Set({Throttle("t", 48)});
  StatusPage page(&clock, &source, "leader");
  ASSERT_TRUE(page.AwaitSamples("t", 1, kWait));
  const std::string json = page.Json();
  EXPECT_THAT(json, HasSubstr("\"role\":\"leader\""));
  EXPECT_THAT(json, HasSubstr("This server is the leader."));
  EXPECT_THAT(json,
              HasSubstr("{\"name\":\"t\",\"state\":\"running\",\"mode\":"
                        "\"smooth\",\"configured_rate\":50,\"achieved_rate\":"
                        "48,\"mean_rate\":49.5,\"waiting_streams\":3,"
                        "\"open_streams\":0,\"total_emissions\":1234,"
                        "\"history\":[48]}"));
}

TEST(StatusPage, ShowsAndKeepsTheFirstThrottlesOnlyAndSaysHowManyThereAre) {
  testing::FakeClock clock;
  FakeSource source;
  std::vector<ThrottleSnapshot> many;
  for (int i = 0; i < kMaxPageThrottles + 5; ++i) {
    many.push_back(Throttle(absl::StrCat("t", 1000 + i), i));
  }
  source.Set(many);
  StatusPage page(&clock, &source, "");
  const std::string last_shown =
      absl::StrCat("t", 1000 + kMaxPageThrottles - 1);
  const std::string first_hidden = absl::StrCat("t", 1000 + kMaxPageThrottles);
  ASSERT_TRUE(page.AwaitSamples(last_shown, 1, kWait));
  EXPECT_TRUE(page.History(first_hidden).empty());
  const std::string json = page.Json();
  EXPECT_THAT(json, HasSubstr(absl::StrCat("\"throttles_total\":",
                                           kMaxPageThrottles + 5)));
  EXPECT_THAT(json, HasSubstr("\"" + last_shown + "\""));
  EXPECT_THAT(json, Not(HasSubstr("\"" + first_hidden + "\"")));
}

TEST(StatusPage, NamesAreEscapedInTheJsonAndThePage) {
  testing::FakeClock clock;
  FakeSource source;
  const std::string name = "a<b>&\"c\\</script>";
  source.Set({Throttle(name, 1)});
  StatusPage page(&clock, &source, "");
  // After the first sample (taken at once; the fake clock takes no more),
  // so that the page below shows the same JSON.
  ASSERT_TRUE(page.AwaitSamples(name, 1, kWait));
  const std::string json = page.Json();
  EXPECT_THAT(json,
              HasSubstr(R"("a\u003cb\u003e\u0026\"c\\\u003c/script\u003e")"));
  HttpReply reply;
  ASSERT_TRUE(page.Serve("/", &reply));
  EXPECT_EQ(reply.content_type, "text/html; charset=utf-8");
  // The name never appears as markup: the only "</script>" are the page's.
  EXPECT_THAT(reply.body, Not(HasSubstr("a<b")));
  EXPECT_THAT(reply.body, HasSubstr(json));
}

TEST(StatusPage, ServesThePageAndTheJsonAndNothingElse) {
  testing::FakeClock clock;
  FakeSource source;
  StatusPage page(&clock, &source, "");
  HttpReply reply;
  ASSERT_TRUE(page.Serve("/status", &reply));
  EXPECT_THAT(reply.body, HasSubstr("<title>Throttle server status</title>"));
  ASSERT_TRUE(page.Serve("/status.json", &reply));
  EXPECT_EQ(reply.content_type, "application/json");
  EXPECT_THAT(reply.body, HasSubstr("\"throttles\":[]"));
  EXPECT_FALSE(page.Serve("/metrics", &reply));
}

TEST(StatusPage, AStandbySaysSoAndListsNoThrottle) {
  HttpReply reply;
  ASSERT_TRUE(
      ServeStandbyPage("campaigning for the lead", "/status.json", &reply));
  EXPECT_THAT(reply.body, HasSubstr("\"role\":\"standby\""));
  EXPECT_THAT(reply.body,
              HasSubstr("a standby (state: campaigning for the lead)"));
  EXPECT_THAT(reply.body, HasSubstr("\"throttles\":[]"));
  EXPECT_FALSE(ServeStandbyPage("x", "/metrics", &reply));
}

}  // namespace
}  // namespace throttle::server
