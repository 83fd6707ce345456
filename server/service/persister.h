// Keeps the durable record of every throttle up to date in a state store
// (local disk or etcd), from one thread of its own, so stores happen in
// order and never on a gRPC or refill thread.
//
// Part of the service glue. It writes a throttle's record:
// - when a controller call changed it, before the call is answered
//   (Persist);
// - when the throttle's reserved grants run low (ReservationLow, from the
//   table): the new reservation holds only once it is durable;
// - at least every `stats_interval` while its emissions change, and at
//   the next such write after an adaptive step moved its rate;
// - once more at Stop, with nothing reserved (no grant follows it).
// See docs/DECISIONS.md, "Durable state".
#ifndef THROTTLE_SERVER_SERVICE_PERSISTER_H_
#define THROTTLE_SERVER_SERVICE_PERSISTER_H_

#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/metrics.h"
#include "server/service/throttle_table.h"
#include "server/state/state_store.h"

namespace throttle::server {

struct PersisterOptions {
  absl::Duration stats_interval = absl::Seconds(1);
  // After a failed write, renewals are tried again this much later.
  absl::Duration retry_after = absl::Milliseconds(100);
  std::string writer;  // stored in each record, for operators
};

// Thread-safe.
class Persister final : public ReservationListener {
 public:
  // `table`, `store` and `metrics` are not owned and must outlive it;
  // `metrics` may be null. `on_refused` runs (from the persister's
  // thread) when the store answers FAILED_PRECONDITION: this server may no
  // longer write.
  Persister(ThrottleTable* table, StateStore* store, Metrics* metrics,
            const PersisterOptions& options,
            std::function<void(const absl::Status&)> on_refused);
  ~Persister();  // Stop() if not done
  Persister(const Persister&) = delete;
  Persister& operator=(const Persister&) = delete;

  // Writes the record of throttle `name` (or removes it if there is no such
  // throttle any more), then runs `done` with the write's status from the
  // persister's thread.
  void Persist(const std::string& name, std::function<void(absl::Status)> done)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Writes every throttle now and waits for it (start-up, tests).
  absl::Status PersistAll() ABSL_LOCKS_EXCLUDED(mu_);

  // ReservationListener: called under the table's mutex; never blocks.
  void ReservationLow(uint64_t uid) override ABSL_LOCKS_EXCLUDED(mu_);

  // Writes every throttle with nothing reserved, runs the callbacks still
  // pending, and joins the thread. Call once no grant can follow: the
  // refill loop is stopped and no call is served. Idempotent; returns the
  // last write's status.
  absl::Status Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Pending {
    std::string name;
    std::function<void(absl::Status)> done;
  };
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // One store of `batch`, with its metrics and its failure handling.
  absl::Status Write(const ThrottleTable::StoreBatch& batch);

  ThrottleTable* const table_;
  StateStore* const store_;
  Metrics* const metrics_;
  const PersisterOptions options_;
  const std::function<void(const absl::Status&)> on_refused_;

  absl::Mutex mu_;
  std::vector<Pending> pending_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> renew_ ABSL_GUARDED_BY(mu_);
  absl::Time retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_PERSISTER_H_
