// Per-worker statistics under a fake clock: counts per worker, the window's
// edges at 100 ms resolution, the bound on tracked workers, and Jain's
// fairness index, against hand-computed values.
#include "server/core/worker_stats.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace throttle::server {
namespace {

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1);

// "id:grants:emissions[:others]" per entry, in the order given.
std::string Show(const std::vector<WorkerCounts>& counts) {
  std::string out;
  for (const WorkerCounts& c : counts) {
    absl::StrAppend(&out, out.empty() ? "" : " ", c.worker_id, ":", c.grants,
                    ":", c.emissions, c.others ? ":others" : "");
  }
  return out;
}

TEST(WorkerStats, CountsGrantsAndEmissionsPerWorker) {
  WorkerStats stats(10);
  WorkerStats::Key a = stats.Track("a", /*asks_fuel=*/true);
  WorkerStats::Key b = stats.Track("b", /*asks_fuel=*/true);
  WorkerStats::Key c = stats.Track("c", /*asks_fuel=*/false);
  stats.RecordGrants(a, 3, 1, kT0);
  stats.RecordGrants(b, 5, 1, kT0 + absl::Milliseconds(10));
  stats.RecordGrants(a, 4, 1, kT0 + absl::Seconds(2));
  stats.RecordEmissions(c, 9, kT0 + absl::Seconds(2));
  // The same id tracked again is the same entry.
  stats.RecordEmissions(stats.Track("a", false), 2, kT0 + absl::Seconds(2));
  EXPECT_EQ(Show(stats.Totals()), "a:7:2 b:5:0 c:0:9");
  EXPECT_EQ(Show(stats.Latest(absl::Seconds(1), kT0 + absl::Seconds(2))),
            "a:4:2 c:0:9");
}

TEST(WorkerStats, OrdersByGrantsThenWorkerIdAndListsNoIdleWorker) {
  WorkerStats stats(10);
  stats.RecordGrants(stats.Track("zed", true), 2, 1, kT0);
  stats.RecordGrants(stats.Track("amy", true), 2, 1, kT0);
  stats.RecordGrants(stats.Track("bob", true), 5, 1, kT0);
  stats.Track("idle", true);
  stats.RecordGrants(stats.Track("", true), 1, 1, kT0);
  EXPECT_EQ(Show(stats.Totals()), "bob:5:0 amy:2:0 zed:2:0 :1:0");
}

TEST(WorkerStats, LatestCountsTheBucketsThatOverlapTheWindow) {
  WorkerStats stats(10);
  WorkerStats::Key a = stats.Track("a", true);
  // One grant at 0.05, 0.15, ..., 0.95 s: one per 100 ms bucket.
  for (int i = 0; i < 10; ++i) {
    stats.RecordGrants(a, 1, 1, kT0 + absl::Milliseconds(50 + 100 * i));
  }
  const absl::Time now = kT0 + absl::Milliseconds(1000);
  // (0.5, 1.0] overlaps the buckets [0.5, 0.6) .. [0.9, 1.0) and [1.0,..).
  EXPECT_EQ(Show(stats.Latest(absl::Milliseconds(500), now)), "a:5:0");
  // (0.55, 1.0] still starts in the bucket [0.5, 0.6): rounded out.
  EXPECT_EQ(Show(stats.Latest(absl::Milliseconds(450), now)), "a:5:0");
  // (0.6, 1.0] starts at that bucket's end.
  EXPECT_EQ(Show(stats.Latest(absl::Milliseconds(400), now)), "a:4:0");
  // A grant after `now` (a reader behind the writer) is not counted.
  stats.RecordGrants(a, 7, 1, kT0 + absl::Milliseconds(1150));
  EXPECT_EQ(Show(stats.Latest(absl::Milliseconds(400), now)), "a:4:0");
  EXPECT_EQ(Show(stats.Latest(absl::Seconds(60), now)), "a:10:0");
  EXPECT_EQ(Show(stats.Totals()), "a:17:0");
}

TEST(WorkerStats, WindowOfSixtySecondsAndOlderHistoryIsDropped) {
  WorkerStats stats(10);
  WorkerStats::Key a = stats.Track("a", true);
  for (int i = 0; i < 200; ++i) {
    stats.RecordGrants(a, 2, 1, kT0 + absl::Seconds(i));
  }
  const absl::Time now = kT0 + absl::Seconds(199);
  // (139, 199] overlaps the bucket [139, 139.1): the grants at 139 .. 199
  // s, 61 of them.
  EXPECT_EQ(Show(stats.Latest(absl::Seconds(60), now)), "a:122:0");
  EXPECT_EQ(Show(stats.Latest(absl::Milliseconds(1500), now)), "a:4:0");
  // A minute later the window is empty and the worker is not listed.
  EXPECT_EQ(Show(stats.Latest(absl::Seconds(60), now + absl::Seconds(61))), "");
  EXPECT_EQ(Show(stats.Totals()), "a:400:0");
}

TEST(WorkerStats, WorkersBeyondTheBoundAreSummedIntoOthers) {
  WorkerStats stats(2);
  stats.RecordGrants(stats.Track("w1", true), 1, 1, kT0);
  stats.RecordGrants(stats.Track("w2", true), 2, 1, kT0);
  // w3 .. w1000 all go to one entry: memory does not grow with them.
  for (int i = 3; i <= 1000; ++i) {
    stats.RecordGrants(stats.Track(absl::StrCat("w", i), true), 1, 1, kT0);
  }
  EXPECT_EQ(stats.entries(), 3);
  EXPECT_EQ(Show(stats.Totals()), ":998:0:others w2:2:0 w1:1:0");
  // A tracked worker keeps its own entry after the bound is reached.
  stats.RecordGrants(stats.Track("w1", true), 5, 1, kT0);
  EXPECT_EQ(Show(stats.Latest(absl::Seconds(1), kT0)),
            ":998:0:others w1:6:0 w2:2:0");
}

TEST(WorkerStats, ZeroBoundSumsEveryWorkerIntoOthers) {
  WorkerStats stats(0);
  stats.RecordGrants(stats.Track("w1", true), 4, 1, kT0);
  stats.RecordEmissions(stats.Track("w2", false), 3, kT0);
  EXPECT_EQ(Show(stats.Totals()), ":4:3:others");
  EXPECT_EQ(stats.FairnessIndex(), 0);
}

TEST(WorkerStats, HistoryPerWorkerStaysBoundedWhateverTheRate) {
  WorkerStats stats(1);
  WorkerStats::Key a = stats.Track("a", true);
  // Ten minutes at one grant per millisecond.
  for (int i = 0; i < 600'000; ++i) {
    stats.RecordGrants(a, 1, 1, kT0 + absl::Milliseconds(i));
  }
  const absl::Time now = kT0 + absl::Milliseconds(599'999);
  // At most the 601 buckets a 60 s window can overlap.
  EXPECT_LE(stats.buckets_held(), 601);
  // (539.999, 599.999] overlaps the buckets from [539.9, 540).
  EXPECT_EQ(Show(stats.Latest(absl::Seconds(60), now)), "a:60100:0");
  EXPECT_EQ(Show(stats.Totals()), "a:600000:0");
}

TEST(WorkerStats, FairnessIndexIsOneForEqualShares) {
  WorkerStats stats(10);
  for (const char* id : {"a", "b", "c"}) {
    stats.RecordGrants(stats.Track(id, true), 10, 1, kT0);
  }
  EXPECT_DOUBLE_EQ(stats.FairnessIndex(), 1.0);
}

TEST(WorkerStats, FairnessIndexOfUnequalShares) {
  WorkerStats stats(10);
  stats.RecordGrants(stats.Track("a", true), 10, 1, kT0);
  stats.RecordGrants(stats.Track("b", true), 30, 1, kT0);
  // (10 + 30)^2 / (2 * (100 + 900)) = 1600 / 2000.
  EXPECT_DOUBLE_EQ(stats.FairnessIndex(), 0.8);
}

TEST(WorkerStats, FairnessIndexDividesByTheWeightAsked) {
  WorkerStats stats(10);
  // Weight 3 getting three times the grants is its fair share.
  stats.RecordGrants(stats.Track("a", true), 10, 1, kT0);
  stats.RecordGrants(stats.Track("b", true), 30, 3, kT0);
  EXPECT_DOUBLE_EQ(stats.FairnessIndex(), 1.0);
  // Weight 3 getting the same as weight 1 is not: x = 10, 10/3 + 10/3.
  WorkerStats same(10);
  same.RecordGrants(same.Track("a", true), 10, 1, kT0);
  same.RecordGrants(same.Track("b", true), 20, 3, kT0);
  const double x1 = 10;
  const double x2 = 20.0 / 3;
  EXPECT_DOUBLE_EQ(same.FairnessIndex(),
                   (x1 + x2) * (x1 + x2) / (2 * (x1 * x1 + x2 * x2)));
}

TEST(WorkerStats, FairnessIndexSpansOneOverNToOne) {
  // One of n askers gets everything: 1/n, the lowest; a starving worker
  // that asked counts, one seen only through Emit and the others entry
  // do not.
  WorkerStats stats(4);
  stats.RecordGrants(stats.Track("a", true), 50, 1, kT0);
  stats.Track("b", true);
  stats.Track("c", true);
  stats.RecordEmissions(stats.Track("emitter", false), 5, kT0);
  stats.RecordGrants(stats.Track("beyond", true), 50, 1, kT0);  // others
  EXPECT_EQ(stats.entries(), 5);
  EXPECT_DOUBLE_EQ(stats.FairnessIndex(), 1.0 / 3);
  // As the others catch up it rises to 1.
  stats.RecordGrants(stats.Track("b", true), 50, 1, kT0);
  stats.RecordGrants(stats.Track("c", true), 50, 1, kT0);
  EXPECT_DOUBLE_EQ(stats.FairnessIndex(), 1.0);
}

TEST(WorkerStats, FairnessIndexIsZeroWithoutGrants) {
  WorkerStats stats(10);
  EXPECT_EQ(stats.FairnessIndex(), 0);
  stats.Track("a", true);
  stats.RecordEmissions(stats.Track("b", false), 3, kT0);
  EXPECT_EQ(stats.FairnessIndex(), 0);
}

TEST(WorkerStats, GrantsGivenBackAreUncounted) {
  WorkerStats stats(10);
  WorkerStats::Key a = stats.Track("a", true);
  WorkerStats::Key b = stats.Track("b", true);
  stats.RecordGrants(a, 5, 1, kT0);
  stats.RecordGrants(a, 3, 1, kT0 + absl::Seconds(2));
  stats.RecordGrants(b, 4, 2, kT0 + absl::Seconds(2));
  // Four of a's never reached it: the newest three, then one before.
  stats.RemoveGrants(a, 4, 1);
  EXPECT_EQ(Show(stats.Totals()), "a:4:0 b:4:0");
  EXPECT_EQ(Show(stats.Latest(absl::Seconds(1), kT0 + absl::Seconds(2))),
            "b:4:0");
  EXPECT_EQ(Show(stats.Latest(absl::Seconds(3), kT0 + absl::Seconds(2))),
            "a:4:0 b:4:0");
  // Per weight a has 4, b 4 / 2: (4 + 2)^2 / (2 * (16 + 4)).
  EXPECT_DOUBLE_EQ(stats.FairnessIndex(), 36.0 / 40);
  // Never below zero, even for more than was counted.
  stats.RemoveGrants(b, 10, 2);
  EXPECT_EQ(Show(stats.Totals()), "a:4:0");
}

TEST(WorkerStats, DefaultKeyCountsNothing) {
  WorkerStats stats(10);
  stats.RecordGrants(WorkerStats::Key(), 5, 1, kT0);
  stats.RecordEmissions(WorkerStats::Key(), 5, kT0);
  stats.RemoveGrants(WorkerStats::Key(), 5, 1);
  EXPECT_EQ(Show(stats.Totals()), "");
  EXPECT_EQ(stats.entries(), 0);
}

}  // namespace
}  // namespace throttle::server
