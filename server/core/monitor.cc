#include "server/core/monitor.h"

#include <algorithm>

#include "server/core/limits.h"

namespace throttle::server {

int64_t Monitor::BucketOf(absl::Time t) {
  return absl::ToInt64Milliseconds(t - absl::UnixEpoch());
}

void Monitor::BeginRun() { run_has_emission_ = false; }

void Monitor::RestoreTotals(const MonitorTotals& totals) {
  total_ = totals.total;
  pruned_cumulative_ = totals.total;
  has_gap_ = totals.has_gap;
  lowest_gap_ = totals.lowest_gap;
  highest_gap_ = totals.highest_gap;
  run_has_emission_ = false;
}

void Monitor::NoteGap(absl::Duration gap) {
  gap = std::max(gap, absl::ZeroDuration());
  if (!has_gap_) {
    has_gap_ = true;
    lowest_gap_ = highest_gap_ = gap;
    return;
  }
  lowest_gap_ = std::min(lowest_gap_, gap);
  highest_gap_ = std::max(highest_gap_, gap);
}

void Monitor::Record(absl::Time at, int64_t n, absl::Duration spacing) {
  if (n <= 0) return;
  if (run_has_emission_) NoteGap(at - last_emission_);
  if (n > 1) NoteGap(spacing);
  run_has_emission_ = true;
  last_emission_ = std::max(last_emission_, at + spacing * (n - 1));

  total_ = SaturatingAdd(total_, n);  // held at INT64_MAX, never negative
  const int64_t bucket = BucketOf(at);
  if (!history_.empty() && history_.back().bucket >= bucket) {
    // Same bucket, or a late record (a re-grant at an earlier nominal
    // time): fold it into the newest bucket.
    history_.back().cumulative = total_;
  } else {
    history_.push_back({bucket, total_});
  }
  const int64_t oldest_kept =
      bucket - kMaxLatestWindow / kMonitorResolution - 1;
  while (!history_.empty() && history_.front().bucket <= oldest_kept) {
    pruned_cumulative_ = history_.front().cumulative;
    history_.pop_front();
  }
}

void Monitor::Remove(absl::Time at, int64_t n) {
  if (n <= 0) return;
  n = std::min(n, total_);
  total_ -= n;
  const int64_t bucket = BucketOf(at);
  for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
    if (it->bucket < bucket) return;
    it->cumulative -= n;
  }
  if (history_.empty() || bucket < history_.front().bucket) {
    // Older than everything kept.
    pruned_cumulative_ -= std::min(n, pruned_cumulative_);
  }
}

int64_t Monitor::CumulativeAt(int64_t bucket) const {
  // The last entry with entry.bucket <= bucket; before the oldest kept
  // entry, the count of everything pruned.
  auto it =
      std::upper_bound(history_.begin(), history_.end(), bucket,
                       [](int64_t b, const Entry& e) { return b < e.bucket; });
  if (it == history_.begin()) return pruned_cumulative_;
  return std::prev(it)->cumulative;
}

int64_t Monitor::CountInWindow(absl::Time now, absl::Duration window) const {
  return CumulativeAt(BucketOf(now)) - CumulativeAt(BucketOf(now - window));
}

}  // namespace throttle::server
