#include "server/service/grpc_metrics.h"

#include <array>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"

namespace throttle::server {
namespace {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

constexpr int kCodes = 17;  // OK .. UNAUTHENTICATED

// One method's series; the handled counters are added at first use.
struct MethodSeries {
  prometheus::Counter* started = nullptr;
  prometheus::Histogram* handling = nullptr;
  std::map<std::string, std::string> labels;  // without grpc_code
  std::array<prometheus::Counter*, kCodes> handled{};
};

const char* TypeName(ServerRpcInfo::Type type) {
  switch (type) {
    case ServerRpcInfo::Type::UNARY:
      return "unary";
    case ServerRpcInfo::Type::CLIENT_STREAMING:
      return "client_stream";
    case ServerRpcInfo::Type::SERVER_STREAMING:
      return "server_stream";
    case ServerRpcInfo::Type::BIDI_STREAMING:
      return "bidi_stream";
    default:
      return "unknown";
  }
}

class GrpcMetrics {
 public:
  GrpcMetrics(std::shared_ptr<prometheus::Registry> registry,
              const Clock* clock)
      : registry_(std::move(registry)),
        clock_(clock),
        started_(&prometheus::BuildCounter()
                      .Name("grpc_server_started_total")
                      .Help("Total number of RPCs started on the server.")
                      .Register(*registry_)),
        handled_(&prometheus::BuildCounter()
                      .Name("grpc_server_handled_total")
                      .Help("Total number of RPCs completed on the server, "
                            "regardless of success or failure.")
                      .Register(*registry_)),
        handling_(&prometheus::BuildHistogram()
                       .Name("grpc_server_handling_seconds")
                       .Help("Histogram of response latency (seconds) of gRPC "
                             "that had been application-level handled by the "
                             "server.")
                       .Register(*registry_)) {}

  const Clock* clock() const { return clock_; }

  // The series of `method` ("/pkg.Service/Method"); counts it started.
  MethodSeries* Start(const char* method, ServerRpcInfo::Type type)
      ABSL_LOCKS_EXCLUDED(mu_) {
    MethodSeries* series;
    {
      absl::MutexLock lock(&mu_);
      std::unique_ptr<MethodSeries>& slot = methods_[method];
      if (slot == nullptr) slot = NewSeries(method, type);
      series = slot.get();
    }
    series->started->Increment();
    return series;
  }

  void Handled(MethodSeries* series, grpc::StatusCode code,
               absl::Duration elapsed) ABSL_LOCKS_EXCLUDED(mu_) {
    const int index = code >= 0 && code < kCodes ? code : grpc::UNKNOWN;
    prometheus::Counter* handled;
    {
      absl::MutexLock lock(&mu_);
      if (series->handled[index] == nullptr) {
        std::map<std::string, std::string> labels = series->labels;
        labels["grpc_code"] =
            GoStatusCodeName(static_cast<grpc::StatusCode>(index));
        series->handled[index] = &handled_->Add(labels);
      }
      handled = series->handled[index];
    }
    handled->Increment();
    series->handling->Observe(absl::ToDoubleSeconds(elapsed));
  }

 private:
  std::unique_ptr<MethodSeries> NewSeries(absl::string_view method,
                                          ServerRpcInfo::Type type)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // "/throttle.v1.Throttle/AwaitFuel" -> service and method.
    absl::string_view path = absl::StripPrefix(method, "/");
    const size_t slash = path.rfind('/');
    auto series = std::make_unique<MethodSeries>();
    series->labels = {
        {"grpc_service",
         std::string(slash == absl::string_view::npos ? "unknown"
                                                      : path.substr(0, slash))},
        {"grpc_method", std::string(slash == absl::string_view::npos
                                        ? path
                                        : path.substr(slash + 1))},
        {"grpc_type", TypeName(type)}};
    series->started = &started_->Add(series->labels);
    // go-grpc-prometheus's default buckets (Prometheus's DefBuckets), with
    // longer ones for streams that stay open for minutes.
    series->handling = &handling_->Add(
        series->labels, prometheus::Histogram::BucketBoundaries{
                            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                            10, 30, 60, 300, 900, 3600});
    return series;
  }

  const std::shared_ptr<prometheus::Registry> registry_;
  const Clock* const clock_;
  prometheus::Family<prometheus::Counter>* const started_;
  prometheus::Family<prometheus::Counter>* const handled_;
  prometheus::Family<prometheus::Histogram>* const handling_;
  absl::Mutex mu_;
  // Full method path -> its series, added at a method's first call.
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> methods_
      ABSL_GUARDED_BY(mu_);
};

class GrpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  GrpcMetricsInterceptor(GrpcMetrics* metrics, MethodSeries* series)
      : metrics_(metrics), series_(series), start_(metrics->clock()->Now()) {}

  // A call that ended without sending a status: its client went away.
  ~GrpcMetricsInterceptor() override {
    if (!handled_) Handle(grpc::StatusCode::CANCELLED);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* batch) override {
    if (!handled_ && batch->QueryInterceptionHookPoint(
                         InterceptionHookPoints::PRE_SEND_STATUS)) {
      Handle(batch->GetSendStatus().error_code());
    }
    batch->Proceed();
  }

 private:
  void Handle(grpc::StatusCode code) {
    handled_ = true;
    metrics_->Handled(series_, code, metrics_->clock()->Now() - start_);
  }

  GrpcMetrics* const metrics_;
  MethodSeries* const series_;
  const absl::Time start_;
  bool handled_ = false;  // hooks of one call never run concurrently
};

class GrpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  GrpcMetricsInterceptorFactory(std::shared_ptr<prometheus::Registry> registry,
                                const Clock* clock)
      : metrics_(std::move(registry), clock) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      ServerRpcInfo* info) override {
    if (info->method() == nullptr) return nullptr;
    return new GrpcMetricsInterceptor(
        &metrics_, metrics_.Start(info->method(), info->type()));
  }

 private:
  GrpcMetrics metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewGrpcMetricsInterceptorFactory(std::shared_ptr<prometheus::Registry> registry,
                                 const Clock* clock) {
  return std::make_unique<GrpcMetricsInterceptorFactory>(std::move(registry),
                                                         clock);
}

const char* GoStatusCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[kCodes] = {"OK",
                                                 "Canceled",
                                                 "Unknown",
                                                 "InvalidArgument",
                                                 "DeadlineExceeded",
                                                 "NotFound",
                                                 "AlreadyExists",
                                                 "PermissionDenied",
                                                 "ResourceExhausted",
                                                 "FailedPrecondition",
                                                 "Aborted",
                                                 "OutOfRange",
                                                 "Unimplemented",
                                                 "Internal",
                                                 "Unavailable",
                                                 "DataLoss",
                                                 "Unauthenticated"};
  return code >= 0 && code < kCodes ? kNames[code] : "Unknown";
}

}  // namespace throttle::server
