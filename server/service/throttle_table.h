// The throttle table: every throttle by name and by uid, with its
// scheduler and the sinks of its open streams, under the service's one
// mutex.
//
// Part of the service glue. Every change to a throttle goes through one
// transaction (Transact, or the stream calls): apply the change, advance
// the scheduler to now, refile its wake-up (kicking the refill loop if it
// is earlier), and hand what fell due to the stream sinks after the mutex
// is released -- so no caller can forget the advance. Grants a sink cannot
// take come back here and go to the next waiting stream.
#ifndef THROTTLE_SERVER_SERVICE_THROTTLE_TABLE_H_
#define THROTTLE_SERVER_SERVICE_THROTTLE_TABLE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "server/core/scheduler.h"
#include "server/core/worker_stats.h"
#include "server/service/clock.h"
#include "server/service/grant_log.h"
#include "server/service/metrics.h"
#include "server/service/record.h"
#include "server/service/refill_loop.h"

namespace throttle::server {

class StreamSink;

// Grants allotted together, as a StreamEvent says: `grants` at
// granted_at + i * spacing under configuration `epoch`. Grants that never
// reach their stream go back whole, as they came.
struct GrantBatch {
  absl::Time granted_at;
  int64_t grants = 0;
  absl::Duration spacing;
  uint64_t epoch = 0;
  // The per-worker statistics (Entry::workers) that counted the batch when
  // it was handed to its stream, and that stream's weight: a batch given
  // back is uncounted there. Default: counted nowhere.
  WorkerStats::Key worker{};
  int64_t weight = 1;
};

// What the table hands a stream: grants and/or its end.
struct Delivery {
  StreamSink* sink;  // referenced; released after delivery
  // Counts the grants that reach the sink (its worker's series); null:
  // none. Lives as long as the Metrics.
  prometheus::Counter* worker_grants;
  uint64_t uid;  // of the throttle
  StreamId stream;
  GrantBatch batch;  // may be empty (grants == 0)
  EndReason end;
  grpc::Status closed_status;    // for EndReason::kClosed
  absl::Duration expected_wait;  // for EndReason::kTooLate
  // The throttle's fuel is not limited (monitor-only) as this is sent.
  bool unlimited = false;
  // Graceful degradation: the stream's share of the rate now (0 in
  // monitor-only mode), and the throttle's policy, for its client.
  double share_per_second = 0;
  Degradation degradation = Degradation::kWait;
  absl::Duration local_share_for;
};

// Where an open stream's grants go (the AwaitFuel and Acquire reactors).
// Thread-safe.
class StreamSink {
 public:
  // What a delivery left undone.
  struct Rejected {
    std::vector<GrantBatch> grants;  // to give back
    bool gone = false;               // the stream is gone: forget it
    bool stalled = false;            // its write did not drain: hold it
  };

  virtual void Ref() = 0;
  virtual void Unref() = 0;
  // Queues a delivery at `now`; never blocks.
  virtual Rejected Deliver(const Delivery& delivery, absl::Time now) = 0;

 protected:
  ~StreamSink() = default;
};

// Told that a throttle's reserved grants run low (durable state; see
// persister.h). Called under the table's mutex: must not block nor call
// back into the table.
class ReservationListener {
 public:
  virtual void ReservationLow(uint64_t uid) = 0;

 protected:
  ~ReservationListener() = default;
};

struct TableOptions {
  // A stream whose previous write has not drained for this long is stalled.
  absl::Duration stream_stall_timeout = absl::Milliseconds(500);
  // Every batch a stream took is logged here (not owned; null: none).
  GrantLog* grant_log = nullptr;
  // Create refuses a throttle beyond this many (RESOURCE_EXHAUSTED);
  // stored throttles are always restored.
  int64_t max_throttles = 10'000;
  // Each throttle's per-worker statistics (Entry::workers) track this many
  // worker ids one by one, the first seen; the others are summed.
  int64_t max_workers_per_throttle = 20;
};

// Thread-safe.
class ThrottleTable final : public ThrottleStatsSource {
 public:
  // One throttle, as a transaction sees it.
  struct Entry {
    Entry(std::string name, uint64_t uid, const ThrottleConfig& config,
          int64_t max_workers)
        : name(std::move(name)),
          uid(uid),
          scheduler(config),
          workers(max_workers) {}
    const std::string name;
    const uint64_t uid;  // never reused, unlike names
    Scheduler scheduler;
    // Grants and emissions per worker_id since the throttle was created or
    // restored on this server (not stored). Grants count where `grants`
    // does: when handed to a stream, uncounted when given back.
    WorkerStats workers;
    // An open stream's sink and the counter of its worker's grants (null
    // without metrics), found with the sink so counting costs no lookup.
    struct OpenSink {
      StreamSink* sink;
      prometheus::Counter* worker_grants;
      WorkerStats::Key worker;  // in `workers`
      int64_t weight;           // the stream's
    };
    absl::flat_hash_map<StreamId, OpenSink> sinks;
    absl::flat_hash_set<StreamId> stalled;  // held until their write drains
    // Streams whose write drained before their stall was recorded here.
    absl::flat_hash_set<StreamId> drained_early;
    // Where this throttle stands in wakeups_ (InfiniteFuture: not there).
    absl::Time queued_wakeup = absl::InfiniteFuture();
    // For the metrics. `lateness` is the throttle's series of
    // throttle_grant_lateness_seconds (null without metrics).
    prometheus::Histogram* lateness = nullptr;
    int64_t grants = 0;      // handed to streams, minus those given back
    int64_t given_back = 0;  // came back undelivered
    int64_t stalls = 0;      // times a stream was stalled
    int64_t starts = 0;
    int64_t stops = 0;
    // Durable state: a reservation was asked for and not yet confirmed;
    // the total emissions and the rate in effect (which an adaptive step
    // moves without any emission) last stored.
    bool reservation_asked = false;
    int64_t stored_emissions = -1;
    int64_t stored_rate_max_n = -1;
    int storing = 0;  // writes of it collected and not yet done
  };

  // What the persister stores in one write, and the grant limits it
  // confirms once the write is durable.
  struct StoreBatch {
    std::vector<StoredThrottle> throttles;
    std::vector<std::string> deleted;  // named, but no longer there
    std::vector<std::pair<uint64_t, int64_t>> limits;  // uid -> grant limit
    std::vector<uint64_t> renewed;  // uids whose reservation this renews
  };

  // What a transaction's change produced besides its status: scheduler
  // events to deliver, and the status a kClosed end finishes streams with.
  struct Changes {
    std::vector<StreamEvent> events;
    grpc::Status closed_status;
  };

  // `clock`, `metrics` and `loop` are not owned and must outlive the table;
  // `metrics` may be null.
  ThrottleTable(const Clock* clock, Metrics* metrics, RefillLoop* loop,
                const TableOptions& options);
  ThrottleTable(const ThrottleTable&) = delete;
  ThrottleTable& operator=(const ThrottleTable&) = delete;

  const Clock* clock() const { return clock_; }
  Metrics* metrics() const { return metrics_; }
  absl::Duration stream_stall_timeout() const {
    return options_.stream_stall_timeout;
  }

  // Creates a throttle in state kCreated and runs `created` on it under
  // the mutex. INVALID_ARGUMENT for a bad name or config (the message names
  // the field), ALREADY_EXISTS if taken, RESOURCE_EXHAUSTED beyond
  // max_throttles.
  absl::Status Create(
      const std::string& name, const ThrottleConfig& config,
      absl::FunctionRef<void(const Entry&)> created = [](const Entry&) {})
      ABSL_LOCKS_EXCLUDED(mu_);

  // Deletes a throttle; its open streams end with NOT_FOUND.
  // INVALID_ARGUMENT for a bad name, NOT_FOUND if there is none (`field`
  // names the request field).
  absl::Status Delete(absl::string_view field, const std::string& name)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The transaction: runs `change` on the throttle `name` under the mutex,
  // then advances it, refiles its wake-up and delivers what fell due.
  // Returns INVALID_ARGUMENT for a bad name and NOT_FOUND if there is no
  // such throttle (naming `field`), else the change's status. Does not block
  // beyond the mutex.
  absl::Status Transact(
      absl::string_view field, const std::string& name,
      absl::FunctionRef<absl::Status(Entry&, absl::Time now, Changes*)> change)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Runs `read` on the throttle `name` (or every throttle, in name order)
  // under the mutex. INVALID_ARGUMENT or NOT_FOUND naming `field` as
  // Transact.
  absl::Status Read(absl::string_view field, const std::string& name,
                    absl::FunctionRef<void(const Entry&, absl::Time now)> read)
      const ABSL_LOCKS_EXCLUDED(mu_);
  void ForEach(absl::FunctionRef<void(const Entry&)> read) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // --- Streams (for the AwaitFuel reactor) ---

  // Opens a stream of `sink` on the throttle `name` for the worker
  // `worker_id` (the request's, for the per-worker metrics); its first
  // grants are delivered before this returns. Sets *uid and *id. NOT_FOUND
  // if there is no such throttle, UNAVAILABLE once new streams are refused.
  grpc::Status OpenStream(StreamSink* sink, const std::string& name,
                          const StreamRequest& request,
                          absl::string_view worker_id, uint64_t* uid,
                          StreamId* id) ABSL_LOCKS_EXCLUDED(mu_);
  // The stream went away: forget it and give back what it did not get.
  void CloseStream(uint64_t uid, StreamId id,
                   const std::vector<GrantBatch>& undelivered)
      ABSL_LOCKS_EXCLUDED(mu_);
  // An on-demand (Acquire) stream's demand changes (Scheduler::AddDemand);
  // its new grants are delivered before this returns. INVALID_ARGUMENT if
  // the demand would pass the limit. A deleted throttle's stream: OK,
  // nothing (its end is on its way).
  absl::Status AddDemand(uint64_t uid, StreamId id, int64_t withdraw,
                         int64_t demand) ABSL_LOCKS_EXCLUDED(mu_);
  // A monitor-only count-0 stream's grant was written: it gets the next.
  void StreamDrained(uint64_t uid, StreamId id) ABSL_LOCKS_EXCLUDED(mu_);
  // A stalled stream's write drained: it is back in line.
  void StreamResumed(uint64_t uid, StreamId id) ABSL_LOCKS_EXCLUDED(mu_);

  // --- For the refill loop and shutdown ---

  // Advances every throttle that is due, delivers what fell due, and
  // returns when it must run next.
  absl::Time AdvanceDue() ABSL_LOCKS_EXCLUDED(mu_);

  // Refuses new streams and ends every open stream with `status`.
  // Idempotent: only the first call ends streams.
  void CloseAllStreams(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until `condition` holds for the throttle `name` or `timeout`
  // passes (real time: a test's generous deadline). Returns whether it
  // holds. `condition` runs under the mutex.
  bool Await(const std::string& name,
             absl::FunctionRef<bool(const Entry&)> condition,
             absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);

  std::vector<ThrottleSnapshot> Snapshot() const override
      ABSL_LOCKS_EXCLUDED(mu_);

  // --- Durable state (for the persister and the leader) ---

  // From now on a limited throttle grants only what it has reserved: its
  // grants are limited to those `listener` was asked for (ReservationLow)
  // and SetGrantLimits confirmed, `ahead` worth of its rate at a time.
  // Call before any throttle exists.
  void EnableReservations(ReservationListener* listener, absl::Duration ahead)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Brings back a stored throttle, assuming its reserved grants made now.
  // ALREADY_EXISTS if the name is taken.
  absl::Status Restore(const StoredThrottle& stored) ABSL_LOCKS_EXCLUDED(mu_);
  // Which throttles a store covers besides those named and renewed.
  enum class StoreScope {
    kNamed,    // no others
    kChanged,  // those whose emissions or rate changed since last stored
    kAll,      // every throttle
    kRelease,  // every throttle, with nothing reserved: no grant follows
  };
  // What to store: the throttles `names` (those gone as deleted), those
  // `renew` asks a new reservation for, and those of `scope`.
  StoreBatch CollectForStore(const std::vector<std::string>& names,
                             const std::vector<uint64_t>& renew,
                             StoreScope scope) ABSL_LOCKS_EXCLUDED(mu_);
  // The write of `batch` is durable: its grant limits hold (and the
  // throttles advance); or it failed: its renewals may be asked again.
  void StoreDone(const StoreBatch& batch, bool durable)
      ABSL_LOCKS_EXCLUDED(mu_);
  // No grant at or after `deadline` (the end of a leader's lease) in any
  // throttle, until a later one is set.
  void SetGrantDeadline(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Entry* FindLocked(absl::string_view name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Entry* FindByUidLocked(uint64_t uid) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The throttle a request names in `field`: INVALID_ARGUMENT for a bad
  // name, NOT_FOUND for none.
  absl::StatusOr<Entry*> LookupLocked(absl::string_view field,
                                      absl::string_view name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The transaction of the stream calls: `change` on the throttle with
  // `uid` (nothing if it was deleted), then settle and deliver.
  void TransactStream(uint64_t uid,
                      absl::FunctionRef<void(Entry&, absl::Time now)> change)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Turns events into deliveries queued in outbox_ (taking sink
  // references); grants of streams that already left go back at once.
  void CollectLocked(Entry& entry, const Changes& changes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The end of every transaction: advance to now, collect, refile.
  void SettleLocked(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Files `entry` in wakeups_ at its next wake-up; `kick` also tells the
  // refill loop (not needed from inside the loop's own pass).
  void FileWakeupLocked(Entry& entry, bool kick)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks for a new reservation when fewer than half a chunk are left.
  void CheckReservationLocked(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new entry under the table's reservations and grant deadline.
  Entry& AddLocked(const std::string& name, const ThrottleConfig& config)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  StoredThrottle StoredLocked(const Entry& entry, int64_t grant_limit) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void GiveBackLocked(Entry& entry, const GrantBatch& undelivered)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropStreamLocked(Entry& entry, StreamId id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends a delivered batch to options_.grant_log.
  void LogGrants(const Delivery& delivery) ABSL_LOCKS_EXCLUDED(mu_);
  // Hands the queued deliveries to their sinks, each sink's in the order
  // they were collected; what a sink rejects is given back (which may
  // queue more). Called after every transaction that may have queued
  // some. One thread at a time hands over to a sink: a delivery for a sink
  // another thread is handing over to joins that sink's queue, which that
  // thread hands over too.
  void DeliverQueued() ABSL_LOCKS_EXCLUDED(mu_);
  // Hands one delivery to its sink and gives back what it rejects.
  void HandOver(const Delivery& delivery, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_);

  const Clock* const clock_;
  Metrics* const metrics_;
  RefillLoop* const loop_;
  const TableOptions options_;
  mutable absl::Mutex mu_;
  absl::btree_map<std::string, std::unique_ptr<Entry>, std::less<>> throttles_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Entry*> by_uid_ ABSL_GUARDED_BY(mu_);
  // Throttles by the time their scheduler must next be advanced, so a
  // wake-up visits only the throttles that are due.
  absl::btree_set<std::pair<absl::Time, uint64_t>> wakeups_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_uid_ ABSL_GUARDED_BY(mu_) = 1;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  ReservationListener* reservations_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Duration reservation_ahead_ ABSL_GUARDED_BY(mu_);
  absl::Time grant_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Deliveries collected and not yet handed over, in the order they were
  // collected; then the queues of the sinks being handed over to (a sink
  // is there while a thread hands over to it). Handed over outside mu_:
  // two threads handing over their own deliveries could reorder a
  // stream's, and a stream that sees its end before grants collected
  // earlier refuses them -- an AwaitFuel call would end OK with fewer
  // grants than its count.
  std::vector<Delivery> outbox_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<StreamSink*, std::vector<Delivery>> handing_over_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_THROTTLE_TABLE_H_
