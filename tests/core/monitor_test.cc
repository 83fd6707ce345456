// The monitor's window counts and gaps, checked against hand-computed values.
#include "server/core/monitor.h"

#include "gtest/gtest.h"

namespace throttle::server {
namespace {

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1);

TEST(Monitor, CountsEmissionsInHalfOpenWindow) {
  Monitor monitor;
  monitor.BeginRun();
  for (int i = 0; i <= 10; ++i)
    monitor.Record(kT0 + absl::Milliseconds(100 * i), 1);
  EXPECT_EQ(monitor.total(), 11);
  // (0.5, 1.0]: 0.6 0.7 0.8 0.9 1.0
  EXPECT_EQ(
      monitor.CountInWindow(kT0 + absl::Seconds(1), absl::Milliseconds(500)),
      5);
  EXPECT_EQ(monitor.CountInWindow(kT0 + absl::Seconds(1), absl::Seconds(60)),
            11);
  EXPECT_EQ(monitor.CountInWindow(kT0 + absl::Seconds(30), absl::Seconds(1)),
            0);
}

TEST(Monitor, PrunesHistoryButKeepsTotals) {
  Monitor monitor;
  monitor.BeginRun();
  for (int i = 0; i < 200; ++i) monitor.Record(kT0 + absl::Seconds(i), 2);
  EXPECT_EQ(monitor.total(), 400);
  const absl::Time now = kT0 + absl::Seconds(199);
  EXPECT_EQ(monitor.CountInWindow(now, absl::Seconds(60)), 120);
  EXPECT_EQ(monitor.CountInWindow(now, absl::Milliseconds(1500)), 4);
}

TEST(Monitor, GapsWithinRunsOnly) {
  Monitor monitor;
  monitor.BeginRun();
  monitor.Record(kT0, 1);
  monitor.Record(kT0 + absl::Milliseconds(300), 1);
  monitor.Record(kT0 + absl::Milliseconds(400), 1);
  monitor.BeginRun();
  monitor.Record(kT0 + absl::Seconds(100), 1);
  EXPECT_EQ(monitor.lowest_gap(), absl::Milliseconds(100));
  EXPECT_EQ(monitor.highest_gap(), absl::Milliseconds(300));
}

TEST(Monitor, RemoveUncountsEverywhere) {
  Monitor monitor;
  monitor.BeginRun();
  monitor.Record(kT0, 3);
  monitor.Record(kT0 + absl::Milliseconds(10), 1);
  monitor.Remove(kT0, 1);
  EXPECT_EQ(monitor.total(), 3);
  EXPECT_EQ(
      monitor.CountInWindow(kT0 + absl::Milliseconds(10), absl::Seconds(1)), 3);
  EXPECT_EQ(monitor.CountInWindow(kT0 + absl::Milliseconds(10),
                                  absl::Milliseconds(5)),
            1);
}

}  // namespace
}  // namespace throttle::server
