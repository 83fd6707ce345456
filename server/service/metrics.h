// Prometheus metrics of the service.
//
// Part of the service glue. Counters and histograms recorded as things
// happen live in a prometheus::Registry; per-throttle gauges (waiting and
// open streams, configured and achieved rate) are read from the service at
// scrape time through a ThrottleStatsSource, so a scrape is always current
// and costs nothing between scrapes.
//
// Series recorded as things happen and labelled by throttle (lateness,
// grants per worker) are keyed by the throttle's name and kept for the
// life of the process: a throttle deleted and created again continues
// them, and the grant path holds plain pointers to them (no lookup by
// name per grant). The scrape-time counters (throttle_grants_total, ...)
// belong to the throttle itself and start from zero when it is created
// again, which Prometheus reads as a counter reset (docs/DECISIONS.md).
#ifndef THROTTLE_SERVER_SERVICE_METRICS_H_
#define THROTTLE_SERVER_SERVICE_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace throttle::server {

// One throttle's numbers at scrape time.
struct ThrottleSnapshot {
  std::string name;
  std::string mode;
  std::string state;
  int64_t grants = 0;      // handed out (after give-backs), ever
  int64_t given_back = 0;  // grants that came back undelivered
  int64_t emissions = 0;   // counted by the monitor since first Start
  int64_t waiting_streams = 0;
  int64_t open_streams = 0;
  int64_t stalled_streams = 0;  // held: their write did not drain in time
  int64_t stalls = 0;           // times a stream was stalled, ever
  double configured_rate = 0;   // max_n / per, grants per second
  // The adaptive ceiling's rate (else configured_rate), ramped during a
  // warm-up.
  double current_rate = 0;
  double achieved_rate = 0;  // emissions per second over the last second
  double mean_rate = 0;      // emissions per second since the first Start
  int64_t starts = 0;
  int64_t stops = 0;
};

// Where scrape-time numbers come from (the service). Thread-safe.
class ThrottleStatsSource {
 public:
  virtual ~ThrottleStatsSource() = default;
  virtual std::vector<ThrottleSnapshot> Snapshot() const = 0;
};

struct MetricsOptions {
  // throttle_worker_grants_total has a series of its own for at most this
  // many worker ids per throttle (the first seen); the others count under
  // worker="other". 0: every worker counts under "other".
  int64_t max_workers_per_throttle = 20;
};

// Thread-safe.
class Metrics {
 public:
  explicit Metrics(const MetricsOptions& options = {});

  // The registry to expose; also collects from a source set later.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // What to expose besides the registry: the per-throttle gauges. Lives as
  // long as the Metrics.
  std::shared_ptr<prometheus::Collectable> throttles() const;

  // Sets the source of per-throttle numbers; `source` is not owned and
  // must outlive scrapes (set to nullptr before it dies).
  void SetSource(const ThrottleStatsSource* source);

  // The series of throttle_grant_lateness_seconds (how late a grant reached
  // its stream's queue after it fell due) of the throttle `throttle`.
  // Never null; lives as long as the Metrics. Costs a lookup by name: call
  // once per throttle, not per grant.
  prometheus::Histogram* Lateness(absl::string_view throttle);
  // The series of throttle_worker_grants_total that counts the grants of
  // `worker_id`'s streams on `throttle`: its own for the first
  // max_workers_per_throttle worker ids of the throttle, else the
  // throttle's worker="other" (an empty id counts as "unknown"). Never
  // null; lives as long as the Metrics. Call once per stream.
  prometheus::Counter* WorkerGrants(absl::string_view throttle,
                                    absl::string_view worker_id)
      ABSL_LOCKS_EXCLUDED(workers_mu_);
  // The refill loop woke and advanced `throttles_advanced` throttles.
  void CountRefillWakeup(int64_t throttles_advanced);
  // A call finished with a non-OK status.
  void CountError(absl::string_view method, grpc::StatusCode code);
  // A call was refused because the limit named by its flag was reached.
  void CountLimitReached(absl::string_view limit);
  // A write of `records` throttle records to the state store took
  // `latency` and succeeded or not.
  void ObserveStateWrite(absl::Duration latency, int64_t records, bool ok);

 private:
  class ThrottleCollector;
  const MetricsOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Histogram>* lateness_;
  prometheus::Family<prometheus::Counter>* worker_grants_;
  absl::Mutex workers_mu_;
  // Throttle name -> the worker ids with a series of their own.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> workers_
      ABSL_GUARDED_BY(workers_mu_);
  prometheus::Counter* wakeups_;
  prometheus::Counter* advances_;
  prometheus::Family<prometheus::Counter>* errors_;
  prometheus::Family<prometheus::Counter>* limits_reached_;
  prometheus::Histogram* state_write_latency_;
  prometheus::Counter* state_writes_ok_;
  prometheus::Counter* state_writes_failed_;
  prometheus::Counter* state_records_;
  std::shared_ptr<ThrottleCollector> throttles_;
};

// Counts a call of `method` that ended with a non-OK status (in `metrics`,
// which may be null) and logs it at debug level. Does nothing for OK.
void CountCallError(Metrics* metrics, absl::string_view method,
                    const grpc::Status& status);

// The name of a gRPC status code ("NOT_FOUND").
const char* StatusCodeName(grpc::StatusCode code);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_METRICS_H_
