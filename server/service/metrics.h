// Prometheus metrics of the service.
//
// Part of the service glue. Counters and histograms recorded as things
// happen live in a prometheus::Registry; per-throttle gauges (waiting and
// open streams, configured and achieved rate) are read from the service at
// scrape time through a ThrottleStatsSource, so a scrape is always current
// and costs nothing between scrapes.
#ifndef THROTTLE_SERVER_SERVICE_METRICS_H_
#define THROTTLE_SERVER_SERVICE_METRICS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
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
  double achieved_rate = 0;     // emissions per second over the last second
  int64_t starts = 0;
  int64_t stops = 0;
};

// Where scrape-time numbers come from (the service). Thread-safe.
class ThrottleStatsSource {
 public:
  virtual ~ThrottleStatsSource() = default;
  virtual std::vector<ThrottleSnapshot> Snapshot() const = 0;
};

// Thread-safe.
class Metrics {
 public:
  Metrics();

  // The registry to expose; also collects from a source set later.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // What to expose besides the registry: the per-throttle gauges. Lives as
  // long as the Metrics.
  std::shared_ptr<prometheus::Collectable> throttles() const;

  // Sets the source of per-throttle numbers; `source` is not owned and
  // must outlive scrapes (set to nullptr before it dies).
  void SetSource(const ThrottleStatsSource* source);

  // How late a grant reached its stream's queue after it fell due.
  void ObserveLateness(absl::Duration lateness);
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
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Histogram* lateness_;
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
