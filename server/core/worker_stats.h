// Per-worker statistics of one throttle: the grants and emissions of each
// worker_id, over a recent window (Latest) and in total (Mean), and Jain's
// fairness index of the grants per weight.
//
// Part of the scheduler core (no gRPC, no threads, no clock of its own:
// every time is passed in). Memory is bounded whatever the number of
// worker ids and the rate: the first `max_workers` ids are tracked one by
// one, every later one is summed into one "others" entry; and each entry
// keeps its recent history in kWorkerStatsResolution buckets, only the
// non-empty ones of the last kMaxLatestWindow (at most 601 per entry).
//
// Not thread-safe: the owner serialises calls.
#ifndef THROTTLE_SERVER_CORE_WORKER_STATS_H_
#define THROTTLE_SERVER_CORE_WORKER_STATS_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/limits.h"

namespace throttle::server {

// Latest counts whole buckets of this length: those that overlap the
// window, so it may count up to one bucket before the window's start.
inline constexpr absl::Duration kWorkerStatsResolution =
    absl::Milliseconds(100);

// What one worker (or the others, summed) got.
struct WorkerCounts {
  std::string worker_id;  // "" on the others entry
  bool others = false;
  int64_t grants = 0;
  int64_t emissions = 0;
};

class WorkerStats {
 public:
  // Which entry a worker's counts go to (Track); cheap to copy and keep
  // with a stream. Valid for the WorkerStats that returned it.
  class Key {
   public:
    Key() = default;

   private:
    friend class WorkerStats;
    explicit Key(int index) : index_(index) {}
    int index_ = -1;  // -1: counts nothing
  };

  // Tracks at most `max_workers` (>= 0) worker ids one by one.
  explicit WorkerStats(int64_t max_workers);

  // The entry of `worker_id`: its own while fewer than max_workers ids
  // have one, else the others entry. `asks_fuel`: the worker waits for
  // grants (a stream, HasFuel), so the fairness index counts it even while
  // it has got none; an id seen only through Emit does not count there.
  // Costs one hash lookup: call once per stream or request, not per grant.
  Key Track(absl::string_view worker_id, bool asks_fuel);

  // Counts `grants` >= 0 delivered at `at` to a stream of `weight` >= 1
  // (its share: the fairness index divides by it).
  void RecordGrants(Key key, int64_t grants, int64_t weight, absl::Time at);
  // Uncounts `grants` >= 0 that RecordGrants counted (for `weight`) but
  // that never reached the worker (given back): from its total, and from
  // its history newest first (they were counted recently) down to zero.
  void RemoveGrants(Key key, int64_t grants, int64_t weight);
  // Counts `count` >= 0 emissions reported at `at`.
  void RecordEmissions(Key key, int64_t count, absl::Time at);

  // The counts of the buckets overlapping (now - window, now], `window` in
  // (0, kMaxLatestWindow]: every entry with grants or emissions there, by
  // grants (most first), then worker_id (the others entry last of equals).
  std::vector<WorkerCounts> Latest(absl::Duration window, absl::Time now) const;
  // The totals since this object was made, ordered as Latest.
  std::vector<WorkerCounts> Totals() const;

  // Jain's fairness index (sum x)^2 / (n * sum x^2) of x = total grants
  // divided by weight, over the n workers tracked one by one that asked
  // for fuel (the others entry is not one worker): in [1/n, 1], 1 when
  // all got the same share; 0 when none got a grant.
  double FairnessIndex() const;

  // Entries that exist (tracked ids plus the others entry once used).
  int64_t entries() const { return static_cast<int64_t>(entries_.size()); }
  // Buckets of recent history held, over all entries.
  int64_t buckets_held() const;

 private:
  struct Bucket {
    int64_t index;  // time / kWorkerStatsResolution, floored
    int64_t grants = 0;
    int64_t emissions = 0;
  };
  struct Entry {
    std::string worker_id;
    bool others = false;
    bool asks_fuel = false;
    int64_t grants = 0;
    int64_t emissions = 0;
    double grants_per_weight = 0;
    std::deque<Bucket> recent;  // increasing index, the last 60 s only
  };
  // The entry of `key`, or null for a key that counts nothing.
  Entry* Find(Key key);
  // The bucket of `at` in `entry`, dropping those too old for any window.
  Bucket& BucketAt(Entry& entry, absl::Time at);
  static void Order(std::vector<WorkerCounts>* counts);

  const int64_t max_workers_;
  std::vector<Entry> entries_;
  absl::flat_hash_map<std::string, int> tracked_;  // worker_id -> entries_
  int others_ = -1;                                // index in entries_
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_CORE_WORKER_STATS_H_
