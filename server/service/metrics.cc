#include "server/service/metrics.h"

#include <mutex>

#include "prometheus/client_metric.h"
#include "prometheus/gauge.h"
#include "prometheus/metric_family.h"
#include "server/service/log.h"

namespace throttle::server {

class Metrics::ThrottleCollector final : public prometheus::Collectable {
 public:
  void SetSource(const ThrottleStatsSource* source) {
    std::lock_guard<std::mutex> lock(mu_);
    source_ = source;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<ThrottleSnapshot> snapshots;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (source_ != nullptr) snapshots = source_->Snapshot();
    }
    using prometheus::MetricType;
    struct Spec {
      const char* name;
      const char* help;
      MetricType type;
      double (*value)(const ThrottleSnapshot&);
    };
    static const Spec kSpecs[] = {
        {"throttle_grants_total",
         "Grants handed to streams (after give-backs).", MetricType::Counter,
         [](const ThrottleSnapshot& s) { return double(s.grants); }},
        {"throttle_given_back_total", "Grants that came back undelivered.",
         MetricType::Counter,
         [](const ThrottleSnapshot& s) { return double(s.given_back); }},
        {"throttle_emissions_total", "Emissions counted by the monitor.",
         MetricType::Counter,
         [](const ThrottleSnapshot& s) { return double(s.emissions); }},
        {"throttle_waiting_streams",
         "Streams waiting for a grant (AwaitFuel, and Acquire with demand).",
         MetricType::Gauge,
         [](const ThrottleSnapshot& s) { return double(s.waiting_streams); }},
        {"throttle_open_streams", "AwaitFuel and Acquire streams open.",
         MetricType::Gauge,
         [](const ThrottleSnapshot& s) { return double(s.open_streams); }},
        {"throttle_configured_rate", "Configured rate, grants per second.",
         MetricType::Gauge,
         [](const ThrottleSnapshot& s) { return s.configured_rate; }},
        {"throttle_current_rate",
         "The rate in effect now, grants per second: the configured rate "
         "(the adaptive ceiling's with config.adaptive), or less during a "
         "warm-up ramp.",
         MetricType::Gauge,
         [](const ThrottleSnapshot& s) { return s.current_rate; }},
        {"throttle_achieved_rate", "Emissions per second over the last second.",
         MetricType::Gauge,
         [](const ThrottleSnapshot& s) { return s.achieved_rate; }},
        {"throttle_stalled_streams",
         "Streams held out of service because their previous write did not "
         "drain within the stall timeout (a client that stopped reading).",
         MetricType::Gauge,
         [](const ThrottleSnapshot& s) { return double(s.stalled_streams); }},
        {"throttle_stream_stalls_total", "Times a stream was stalled.",
         MetricType::Counter,
         [](const ThrottleSnapshot& s) { return double(s.stalls); }},
        {"throttle_starts_total", "Start calls that started the throttle.",
         MetricType::Counter,
         [](const ThrottleSnapshot& s) { return double(s.starts); }},
        {"throttle_stops_total", "Stop calls that stopped the throttle.",
         MetricType::Counter,
         [](const ThrottleSnapshot& s) { return double(s.stops); }},
    };
    std::vector<prometheus::MetricFamily> families;
    for (const Spec& spec : kSpecs) {
      prometheus::MetricFamily family;
      family.name = spec.name;
      family.help = spec.help;
      family.type = spec.type;
      for (const ThrottleSnapshot& s : snapshots) {
        prometheus::ClientMetric metric;
        metric.label = {{"throttle", s.name}};
        if (spec.type == MetricType::Counter) {
          metric.counter.value = spec.value(s);
        } else {
          metric.gauge.value = spec.value(s);
        }
        family.metric.push_back(std::move(metric));
      }
      families.push_back(std::move(family));
    }
    // Mode and state as labels of a constant 1, the usual "info" idiom.
    prometheus::MetricFamily info;
    info.name = "throttle_info";
    info.help = "Mode and state of each throttle (value always 1).";
    info.type = MetricType::Gauge;
    for (const ThrottleSnapshot& s : snapshots) {
      prometheus::ClientMetric metric;
      metric.label = {
          {"mode", s.mode}, {"state", s.state}, {"throttle", s.name}};
      metric.gauge.value = 1;
      info.metric.push_back(std::move(metric));
    }
    families.push_back(std::move(info));
    return families;
  }

 private:
  mutable std::mutex mu_;
  const ThrottleStatsSource* source_ = nullptr;
};

Metrics::Metrics(const MetricsOptions& options)
    : options_(options),
      registry_(std::make_shared<prometheus::Registry>()),
      throttles_(std::make_shared<ThrottleCollector>()) {
  lateness_ = &prometheus::BuildHistogram()
                   .Name("throttle_grant_lateness_seconds")
                   .Help(
                       "Time from a grant's due moment to its hand-over to "
                       "the stream's queue, by throttle.")
                   .Register(*registry_);
  worker_grants_ =
      &prometheus::BuildCounter()
           .Name("throttle_worker_grants_total")
           .Help(
               "Grants that reached a worker's streams, by throttle and "
               "worker_id: the first --metrics_max_workers_per_throttle "
               "workers of a throttle each, the rest as worker=\"other\".")
           .Register(*registry_);
  auto& wakeups = prometheus::BuildCounter()
                      .Name("throttle_refill_wakeups_total")
                      .Help("Wake-ups of the refill loop.")
                      .Register(*registry_);
  wakeups_ = &wakeups.Add({});
  auto& advances =
      prometheus::BuildCounter()
          .Name("throttle_refill_advances_total")
          .Help(
              "Throttles advanced by the refill loop: only those that were "
              "due, so idle throttles cost nothing.")
          .Register(*registry_);
  advances_ = &advances.Add({});
  errors_ =
      &prometheus::BuildCounter()
           .Name("throttle_rpc_errors_total")
           .Help("Calls that ended with a non-OK status, by method and code.")
           .Register(*registry_);
  limits_reached_ = &prometheus::BuildCounter()
                         .Name("throttle_limit_rejections_total")
                         .Help(
                             "Calls refused with RESOURCE_EXHAUSTED because "
                             "a limit was reached, by the limit's flag.")
                         .Register(*registry_);
  // At zero from the start, so a rate() over them works before the first.
  for (const char* limit :
       {"max_streams", "max_streams_per_client", "max_throttles"}) {
    limits_reached_->Add({{"limit", limit}});
  }
  state_write_latency_ =
      &prometheus::BuildHistogram()
           .Name("throttle_state_write_seconds")
           .Help("Time of one write to the state store (disk or etcd).")
           .Register(*registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{
                        1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1,
                        0.25, 1, 2.5});
  auto& writes =
      prometheus::BuildCounter()
          .Name("throttle_state_writes_total")
          .Help("Writes to the state store, by result (ok or error).")
          .Register(*registry_);
  state_writes_ok_ = &writes.Add({{"result", "ok"}});
  state_writes_failed_ = &writes.Add({{"result", "error"}});
  state_records_ = &prometheus::BuildCounter()
                        .Name("throttle_state_records_written_total")
                        .Help("Throttle records written to the state store.")
                        .Register(*registry_)
                        .Add({});
}

void Metrics::CountLimitReached(absl::string_view limit) {
  limits_reached_->Add({{"limit", std::string(limit)}}).Increment();
}

void Metrics::ObserveStateWrite(absl::Duration latency, int64_t records,
                                bool ok) {
  state_write_latency_->Observe(absl::ToDoubleSeconds(latency));
  (ok ? state_writes_ok_ : state_writes_failed_)->Increment();
  if (ok) state_records_->Increment(static_cast<double>(records));
}

std::shared_ptr<prometheus::Collectable> Metrics::throttles() const {
  return throttles_;
}

void Metrics::SetSource(const ThrottleStatsSource* source) {
  throttles_->SetSource(source);
}

prometheus::Histogram* Metrics::Lateness(absl::string_view throttle) {
  // Family::Add returns the existing series for the same labels.
  return &lateness_->Add({{"throttle", std::string(throttle)}},
                         prometheus::Histogram::BucketBoundaries{
                             1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
                             1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 1});
}

prometheus::Counter* Metrics::WorkerGrants(absl::string_view throttle,
                                           absl::string_view worker_id) {
  std::string worker = worker_id.empty() ? "unknown" : std::string(worker_id);
  {
    absl::MutexLock lock(&workers_mu_);
    absl::flat_hash_set<std::string>& seen = workers_[throttle];
    if (!seen.contains(worker)) {
      if (static_cast<int64_t>(seen.size()) <
              options_.max_workers_per_throttle &&
          worker != "other") {
        seen.insert(worker);
      } else {
        worker = "other";
      }
    }
  }
  return &worker_grants_->Add(
      {{"throttle", std::string(throttle)}, {"worker", worker}});
}

void Metrics::CountRefillWakeup(int64_t throttles_advanced) {
  wakeups_->Increment();
  advances_->Increment(static_cast<double>(throttles_advanced));
}

void Metrics::CountError(absl::string_view method, grpc::StatusCode code) {
  errors_
      ->Add({{"method", std::string(method)}, {"code", StatusCodeName(code)}})
      .Increment();
}

void CountCallError(Metrics* metrics, absl::string_view method,
                    const grpc::Status& status) {
  if (status.ok()) return;
  if (metrics != nullptr) metrics->CountError(method, status.error_code());
  if (LogEnabled(LogLevel::kDebug)) {
    Log(LogLevel::kDebug, "call_failed",
        {{"method", std::string(method)},
         {"code", StatusCodeName(status.error_code())},
         {"message", status.error_message()}});
  }
}

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

}  // namespace throttle::server
