// Unit tests of throttlectl watch's view (cli/watch_view.h) with canned
// WatchThrottleResponse snapshots. No server, no terminal.
#include "cli/watch_view.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace throttle::cli {
namespace {

// A snapshot of throttle "crawl" of 4 per second (smooth, running) whose
// latest window saw `rate` grants per second.
v1::WatchThrottleResponse Snapshot(double rate, bool changed = false) {
  v1::WatchThrottleResponse snapshot;
  snapshot.mutable_time()->set_seconds(1'800'000'000);
  v1::ThrottleInfo* info = snapshot.mutable_throttle();
  info->set_name("crawl");
  info->set_state(v1::STATE_RUNNING);
  info->mutable_config()->set_max_n(4);
  info->mutable_config()->set_per_seconds(1);
  info->mutable_config()->set_mode(v1::MODE_SMOOTH);
  info->set_waiting_streams(2);
  info->set_total_emissions(120);
  snapshot.mutable_latest()->set_emissions_per_second(rate);
  snapshot.mutable_mean()->set_mean_emissions_per_second(3.95);
  snapshot.set_changed(changed);
  return snapshot;
}

// The number of code points of `line` (one terminal cell each here).
int Cells(const std::string& line) {
  int cells = 0;
  for (const char c : line) cells += (c & 0xC0) != 0x80;
  return cells;
}

std::string Joined(const std::vector<std::string>& lines) {
  return absl::StrJoin(lines, "\n");
}

TEST(ChartScaleTest, SmallestOneTwoFiveAtOrAboveTheLargestRate) {
  EXPECT_EQ(ChartScale({1, 3, 2}, 4), 5);
  EXPECT_EQ(ChartScale({1, 3, 2}, 5), 5);
  EXPECT_EQ(ChartScale({12}, 4), 20);
  EXPECT_EQ(ChartScale({0.3}, 0.1), 0.5);
  EXPECT_EQ(ChartScale({0, 0}, 0), 1);
  EXPECT_EQ(ChartScale({}, 1000), 1000);
  EXPECT_EQ(ChartScale({1001}, 1000), 2000);
  EXPECT_EQ(ChartScale({1e9}, 1), 1e9);
}

TEST(ColumnHeightsTest, EighthsOfTheChartRoundedAndClamped) {
  // Scale 8 over 8 rows of 8 eighths: one eighth is 0.125 per second.
  EXPECT_EQ(ColumnHeights({0, 1, 4, 8, 9, 0.0625, -1}, 8),
            (std::vector<int>{0, 8, 32, 64, 64, 1, 0}));
  EXPECT_EQ(ColumnHeights({2.5}, 5), std::vector<int>{32});
}

TEST(WatchHistoryTest, KeepsSixtySecondsOfIntervalSnapshots) {
  WatchHistory history(absl::Seconds(1));
  EXPECT_TRUE(history.empty());
  for (int i = 0; i < 70; ++i) history.Add(Snapshot(i));
  ASSERT_EQ(history.rates().size(), 60u);
  EXPECT_EQ(history.rates().front(), 10);
  EXPECT_EQ(history.rates().back(), 69);
  // A snapshot for a change updates the header but adds no column.
  history.Add(Snapshot(1000, /*changed=*/true));
  EXPECT_EQ(history.rates().size(), 60u);
  EXPECT_EQ(history.rates().back(), 69);
  EXPECT_EQ(history.latest().latest().emissions_per_second(), 1000);
  WatchHistory fast(absl::Milliseconds(500));
  for (int i = 0; i < 200; ++i) fast.Add(Snapshot(1));
  EXPECT_EQ(fast.rates().size(), 120u);
}

TEST(RenderViewTest, HeaderNamesStateModeRatesWaitingAndTotal) {
  WatchHistory history(absl::Seconds(1));
  history.Add(Snapshot(3.9));
  const std::vector<std::string> lines = RenderView(history, "", 80);
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "throttle crawl   state running   mode smooth");
  EXPECT_EQ(lines[1],
            "configured 4/s   achieved 3.9/s (latest)  3.95/s (mean)");
  EXPECT_EQ(lines[2], "waiting streams 2   total 120");
  // A status gets its own line under the header.
  const std::vector<std::string> with_status =
      RenderView(history, "server unavailable: retrying in 1s", 80);
  EXPECT_EQ(with_status[3], "server unavailable: retrying in 1s");
}

// A known series: rates 0, 1, 2, 3, 4, 5 of a throttle of 4/s. The scale
// is 5/s; 5/s fills all 8 rows, 2.5/s four of them.
TEST(RenderViewTest, ChartColumnsScaleLabelAndConfiguredRateMarked) {
  WatchHistory history(absl::Seconds(1));
  for (const double rate : {0.0, 1.0, 2.0, 3.0, 4.0, 5.0}) {
    history.Add(Snapshot(rate));
  }
  EXPECT_EQ(ColumnHeights({0, 1, 2, 3, 4, 5}, 5),
            (std::vector<int>{0, 13, 26, 38, 51, 64}));
  const int columns = 20;
  const std::vector<std::string> lines = RenderView(history, "", columns);
  // Header (3 lines), a blank line, 8 chart rows, the axis, the legend.
  ASSERT_EQ(lines.size(), 14u) << Joined(lines);
  const std::vector<std::string> chart(lines.begin() + 4, lines.begin() + 12);
  // The labels are 3 cells ("5/s", "4/s"), the axis one, the chart 16:
  // the six columns at the right, the configured row dotted to the left.
  EXPECT_EQ(chart[0], "5/s│               █");  // top row: only 5/s
  EXPECT_EQ(chart[1], "4/s┤··············▃█");  // 4/s: in row 7 of 8
  EXPECT_EQ(chart[1].find("4/s┤"), 0u);
  EXPECT_EQ(chart[7], "   │           █████");  // bottom row
  for (const std::string& line : chart) {
    EXPECT_EQ(Cells(line), columns) << line;
  }
  EXPECT_EQ(lines[12], "  0└────────────────");
}

TEST(RenderViewTest, NarrowTerminalShowsTheNewestColumnsThatFit) {
  WatchHistory history(absl::Seconds(1));
  for (int i = 0; i < 60; ++i) history.Add(Snapshot(i < 55 ? 0 : 4));
  const int columns = 10;  // 4 for the label and axis, 6 for the chart
  const std::vector<std::string> lines = RenderView(history, "", columns);
  for (const std::string& line : lines) {
    EXPECT_LE(Cells(line), columns) << line;
  }
  const std::vector<std::string> chart(lines.begin() + 4, lines.begin() + 12);
  // The 6 newest: one 0 and five 4/s; scale 5/s.
  EXPECT_EQ(chart[7], "   │ █████") << Joined(lines);
  // Too narrow for even one column: said, not drawn.
  const std::vector<std::string> tiny = RenderView(history, "", 4);
  EXPECT_EQ(tiny.back(), "(ter");
  for (const std::string& line : tiny) EXPECT_LE(Cells(line), 4) << line;
}

TEST(RenderViewTest, BeforeTheFirstSnapshotOnlyTheStatus) {
  const WatchHistory history(absl::Seconds(1));
  EXPECT_EQ(RenderView(history, "", 80),
            std::vector<std::string>{"waiting for the first snapshot"});
  EXPECT_EQ(RenderView(history, "server unavailable", 80),
            std::vector<std::string>{"server unavailable"});
}

TEST(RenderLineTest, OneLinePerSnapshot) {
  EXPECT_EQ(RenderLine(Snapshot(3.9, /*changed=*/true)),
            "2027-01-15T08:00:00Z crawl state=running mode=smooth "
            "configured=4/s latest=3.9/s mean=3.95/s waiting=2 total=120 "
            "changed");
}

TEST(RedrawTest, HomesClearsAndWritesEveryLine) {
  EXPECT_EQ(Redraw({"a", "b"}), "\x1b[H\x1b[2Ja\r\nb\r\n");
}

}  // namespace
}  // namespace throttle::cli
