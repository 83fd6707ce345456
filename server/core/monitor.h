// The monitor of one throttle: counts emissions and answers the seed's
// latest() and mean() without scanning unbounded history.
//
// Part of the scheduler core (no gRPC, no threads, no clock of its own).
// History is kept as cumulative counts per 1 ms bucket over the last
// kMaxLatestWindow, so memory is bounded (at most 60,000 entries) whatever
// the rate, and Latest is a binary search.
//
// Not thread-safe: the owner serialises calls.
#ifndef THROTTLE_SERVER_CORE_MONITOR_H_
#define THROTTLE_SERVER_CORE_MONITOR_H_

#include <cstdint>
#include <deque>

#include "absl/time/time.h"
#include "server/core/limits.h"

namespace throttle::server {

inline constexpr absl::Duration kMonitorResolution = absl::Milliseconds(1);

// What a monitor keeps across a restart or a failover: the totals, not
// the history behind Latest.
struct MonitorTotals {
  int64_t total = 0;
  bool has_gap = false;
  absl::Duration lowest_gap;
  absl::Duration highest_gap;
};

class Monitor {
 public:
  // A new run begins at `now` (Start): gaps are not measured across runs.
  void BeginRun();

  // Counts `n` >= 1 emissions from time `at`, `spacing` apart (all at `at`
  // when zero). They are counted in the bucket of `at`: a span is as long
  // as one late wake-up of the refill loop.
  void Record(absl::Time at, int64_t n,
              absl::Duration spacing = absl::ZeroDuration());

  // Uncounts `n` emissions recorded at `at` (fuel given back undelivered).
  // The lowest and highest gaps are not undone.
  void Remove(absl::Time at, int64_t n);

  // Emissions since the first Start; held at INT64_MAX rather than wrap.
  int64_t total() const { return total_; }

  // Emissions in (now - window, now], at kMonitorResolution; `window` must
  // be in (0, kMaxLatestWindow].
  int64_t CountInWindow(absl::Time now, absl::Duration window) const;

  // Lowest and highest gap between consecutive emissions of one run;
  // zero when fewer than two emissions were counted.
  absl::Duration lowest_gap() const {
    return has_gap_ ? lowest_gap_ : absl::ZeroDuration();
  }
  absl::Duration highest_gap() const {
    return has_gap_ ? highest_gap_ : absl::ZeroDuration();
  }

  MonitorTotals Totals() const {
    return {total_, has_gap_, lowest_gap_, highest_gap_};
  }
  // Restores totals into a monitor that has counted nothing yet; the next
  // emission starts a new run (no gap is measured across the restore).
  void RestoreTotals(const MonitorTotals& totals);

 private:
  struct Entry {
    int64_t bucket;      // floor(time / kMonitorResolution)
    int64_t cumulative;  // total emissions up to and including this bucket
  };
  static int64_t BucketOf(absl::Time t);
  // Cumulative count of emissions in buckets <= `bucket`.
  int64_t CumulativeAt(int64_t bucket) const;
  void NoteGap(absl::Duration gap);

  int64_t total_ = 0;
  std::deque<Entry> history_;      // sorted by bucket
  int64_t pruned_cumulative_ = 0;  // cumulative count before history_
  bool run_has_emission_ = false;
  absl::Time last_emission_;
  bool has_gap_ = false;
  absl::Duration lowest_gap_;
  absl::Duration highest_gap_;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_CORE_MONITOR_H_
