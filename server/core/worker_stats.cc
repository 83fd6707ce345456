#include "server/core/worker_stats.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace throttle::server {
namespace {

// The bucket index of `t`, floored (also before the epoch).
int64_t BucketIndex(absl::Time t) {
  absl::Duration rem;
  int64_t index =
      absl::IDivDuration(t - absl::UnixEpoch(), kWorkerStatsResolution, &rem);
  if (rem < absl::ZeroDuration()) --index;
  return index;
}

// Buckets a window of kMaxLatestWindow can overlap, beyond the current.
const int64_t kBucketsKept = [] {
  absl::Duration rem;
  return absl::IDivDuration(kMaxLatestWindow, kWorkerStatsResolution, &rem);
}();

}  // namespace

WorkerStats::WorkerStats(int64_t max_workers) : max_workers_(max_workers) {}

WorkerStats::Key WorkerStats::Track(absl::string_view worker_id,
                                    bool asks_fuel) {
  int index;
  if (auto it = tracked_.find(worker_id); it != tracked_.end()) {
    index = it->second;
  } else if (static_cast<int64_t>(tracked_.size()) < max_workers_) {
    index = static_cast<int>(entries_.size());
    entries_.emplace_back();
    entries_.back().worker_id = std::string(worker_id);
    tracked_.emplace(std::string(worker_id), index);
  } else {
    if (others_ < 0) {
      others_ = static_cast<int>(entries_.size());
      entries_.emplace_back();
      entries_.back().others = true;
    }
    index = others_;
  }
  if (asks_fuel) entries_[static_cast<size_t>(index)].asks_fuel = true;
  return Key(index);
}

WorkerStats::Bucket& WorkerStats::BucketAt(Entry& entry, absl::Time at) {
  const int64_t index = BucketIndex(at);
  while (!entry.recent.empty() &&
         entry.recent.front().index < index - kBucketsKept) {
    entry.recent.pop_front();
  }
  // Times come in order; one from before the last bucket (never expected
  // from a monotonic clock) joins the last bucket.
  if (entry.recent.empty() || entry.recent.back().index < index) {
    entry.recent.push_back(Bucket{index, 0, 0});
  }
  return entry.recent.back();
}

WorkerStats::Entry* WorkerStats::Find(Key key) {
  if (key.index_ < 0 || key.index_ >= static_cast<int>(entries_.size())) {
    return nullptr;
  }
  return &entries_[static_cast<size_t>(key.index_)];
}

void WorkerStats::RecordGrants(Key key, int64_t grants, int64_t weight,
                               absl::Time at) {
  Entry* entry = Find(key);
  if (entry == nullptr || grants <= 0) return;
  entry->grants = SaturatingAdd(entry->grants, grants);
  entry->grants_per_weight += static_cast<double>(grants) /
                              static_cast<double>(std::max<int64_t>(weight, 1));
  Bucket& bucket = BucketAt(*entry, at);
  bucket.grants = SaturatingAdd(bucket.grants, grants);
}

void WorkerStats::RemoveGrants(Key key, int64_t grants, int64_t weight) {
  Entry* entry = Find(key);
  if (entry == nullptr || grants <= 0) return;
  const int64_t removed = std::min(grants, entry->grants);
  entry->grants -= removed;
  entry->grants_per_weight =
      std::max(0.0, entry->grants_per_weight -
                        static_cast<double>(removed) /
                            static_cast<double>(std::max<int64_t>(weight, 1)));
  int64_t left = removed;
  for (auto it = entry->recent.rbegin(); it != entry->recent.rend() && left > 0;
       ++it) {
    const int64_t here = std::min(left, it->grants);
    it->grants -= here;
    left -= here;
  }
}

void WorkerStats::RecordEmissions(Key key, int64_t count, absl::Time at) {
  Entry* entry = Find(key);
  if (entry == nullptr || count <= 0) return;
  entry->emissions = SaturatingAdd(entry->emissions, count);
  Bucket& bucket = BucketAt(*entry, at);
  bucket.emissions = SaturatingAdd(bucket.emissions, count);
}

std::vector<WorkerCounts> WorkerStats::Latest(absl::Duration window,
                                              absl::Time now) const {
  const int64_t first = BucketIndex(now - window);
  const int64_t last = BucketIndex(now);
  std::vector<WorkerCounts> counts;
  for (const Entry& entry : entries_) {
    WorkerCounts c{entry.worker_id, entry.others, 0, 0};
    // Newest first: the window is a suffix of the history.
    for (auto it = entry.recent.rbegin();
         it != entry.recent.rend() && it->index >= first; ++it) {
      if (it->index > last) continue;
      c.grants = SaturatingAdd(c.grants, it->grants);
      c.emissions = SaturatingAdd(c.emissions, it->emissions);
    }
    if (c.grants > 0 || c.emissions > 0) counts.push_back(std::move(c));
  }
  Order(&counts);
  return counts;
}

std::vector<WorkerCounts> WorkerStats::Totals() const {
  std::vector<WorkerCounts> counts;
  for (const Entry& entry : entries_) {
    if (entry.grants == 0 && entry.emissions == 0) continue;
    counts.push_back(
        {entry.worker_id, entry.others, entry.grants, entry.emissions});
  }
  Order(&counts);
  return counts;
}

double WorkerStats::FairnessIndex() const {
  double sum = 0;
  double sum_of_squares = 0;
  int64_t n = 0;
  for (const Entry& entry : entries_) {
    if (entry.others || !entry.asks_fuel) continue;
    ++n;
    sum += entry.grants_per_weight;
    sum_of_squares += entry.grants_per_weight * entry.grants_per_weight;
  }
  if (sum_of_squares == 0) return 0;
  return sum * sum / (static_cast<double>(n) * sum_of_squares);
}

int64_t WorkerStats::buckets_held() const {
  int64_t held = 0;
  for (const Entry& entry : entries_) {
    held += static_cast<int64_t>(entry.recent.size());
  }
  return held;
}

void WorkerStats::Order(std::vector<WorkerCounts>* counts) {
  std::sort(counts->begin(), counts->end(),
            [](const WorkerCounts& a, const WorkerCounts& b) {
              return std::make_tuple(-a.grants, a.others, a.worker_id) <
                     std::make_tuple(-b.grants, b.others, b.worker_id);
            });
}

}  // namespace throttle::server
