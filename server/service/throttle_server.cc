#include "server/service/throttle_server.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/exposer.h"
#include "prometheus/metric_family.h"
#include "server/service/convert.h"
#include "server/service/grpc_metrics.h"
#include "server/service/http_pages.h"
#include "server/service/log.h"
#include "server/service/metrics.h"
#include "server/service/persister.h"
#include "server/service/process_metrics.h"
#include "server/service/record.h"
#include "server/service/service.h"
#include "server/service/status_page.h"
#include "server/service/unparsable_request.h"

namespace throttle::server {
// Held by each call from its start until it is done (gRPC deletes a call's
// interceptors with the call).
class CallsInFlight::Counted final : public grpc::experimental::Interceptor {
 public:
  explicit Counted(CallsInFlight* calls) : calls_(calls) { calls_->Add(1); }
  ~Counted() override { calls_->Add(-1); }
  void Intercept(grpc::experimental::InterceptorBatchMethods* batch) override {
    batch->Proceed();
  }

 private:
  CallsInFlight* const calls_;
};

namespace {

class CountingFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CountingFactory(
      std::function<grpc::experimental::Interceptor*()> make)
      : make_(std::move(make)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo*) override {
    return make_();
  }

 private:
  const std::function<grpc::experimental::Interceptor*()> make_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
CallsInFlight::NewInterceptorFactory() {
  return std::make_unique<CountingFactory>(
      [this] { return new Counted(this); });
}

void CallsInFlight::Add(int64_t delta) {
  absl::MutexLock lock(&mu_);
  n_ += delta;
}

bool CallsInFlight::AwaitNone(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  const auto none = [this]()
                        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return n_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&none), deadline);
}

void DrainAndShutdown(grpc::Server* server, const CallsInFlight& calls,
                      absl::Time deadline) {
  // Server::Shutdown(deadline) alone waits, past the last call, for every
  // connection to close: gRPC 1.51's graceful GOAWAY closes an idle one
  // only when its client answers the GOAWAY's ping, and a client with no
  // call does not read its socket until its backup poller runs (every
  // 5 s), or never (a stopped process: then 20 s). So the shutdown starts
  // here (GOAWAY sent, no new call, not listening), the calls in flight
  // drain, and once none is left (or the deadline passed) the rest is
  // cancelled and every connection closed at once.
  // A core queue: the C++ one takes only its own kind of tag.
  grpc_completion_queue* shut_down =
      grpc_completion_queue_create_for_pluck(nullptr);
  int tag = 0;
  grpc_server_shutdown_and_notify(server->c_server(), shut_down, &tag);
  calls.AwaitNone(deadline);
  grpc_server_cancel_all_calls(server->c_server());
  server->Shutdown(std::chrono::system_clock::now());
  server->Wait();
  // Done by now: Server::Shutdown returns once the core's shutdown has
  // notified every tag.
  grpc_completion_queue_pluck(shut_down, &tag,
                              gpr_inf_future(GPR_CLOCK_REALTIME), nullptr);
  grpc_completion_queue_shutdown(shut_down);
  grpc_completion_queue_destroy(shut_down);
}

struct ThrottleServer::Impl {
  ~Impl() {
    // No scrape nor page may reach the service past this point.
    page.reset();
    exposer.reset();
    if (shared_exposer != nullptr) {
      shared_exposer->RemoveCollectable(metrics->registry());
      shared_exposer->RemoveCollectable(metrics->throttles());
    }
    if (metrics != nullptr) metrics->SetSource(nullptr);
  }
  std::unique_ptr<Metrics> metrics;
  // On exposer only (the exposer holds it weakly).
  std::shared_ptr<prometheus::Collectable> process_metrics;
  std::unique_ptr<Authorizer> authorizer;  // before service: it uses it
  std::unique_ptr<Service> service;
  std::unique_ptr<Persister> persister;     // after service: uses its table
  std::unique_ptr<StatusPage> status_page;  // after service: reads its table
  std::unique_ptr<PageRegistration> page;   // serves status_page
  std::unique_ptr<prometheus::Exposer> exposer;
  prometheus::Exposer* shared_exposer = nullptr;  // not owned
  CallsInFlight calls;  // before server: its calls count here
  std::unique_ptr<grpc::Server> server;
  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

absl::StatusOr<std::unique_ptr<ThrottleServer>> ThrottleServer::Start(
    const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  MetricsOptions metrics_options;
  metrics_options.max_workers_per_throttle =
      options.metrics_max_workers_per_throttle;
  impl->metrics = std::make_unique<Metrics>(metrics_options);
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.security);
  if (!credentials.ok()) return credentials.status();
  absl::StatusOr<std::unique_ptr<Authorizer>> authorizer =
      Authorizer::Start(options.security);
  if (!authorizer.ok()) return authorizer.status();
  impl->authorizer = *std::move(authorizer);
  ServiceOptions service_options;
  service_options.table.stream_stall_timeout = options.stream_stall_timeout;
  service_options.table.grant_log = options.grant_log;
  service_options.table.max_throttles = options.max_throttles;
  service_options.table.max_workers_per_throttle =
      options.metrics_max_workers_per_throttle;
  service_options.max_streams = options.max_streams;
  service_options.max_streams_per_client = options.max_streams_per_client;
  service_options.authorizer = impl->authorizer.get();
  impl->service = std::make_unique<Service>(options.clock, impl->metrics.get(),
                                            service_options);
  impl->metrics->SetSource(&impl->service->table());
  ThrottleTable& table = impl->service->table();
  table.SetGrantDeadline(options.clock->FromWall(options.grant_deadline));
  if (options.store != nullptr) {
    PersisterOptions persister_options;
    persister_options.writer = options.writer;
    impl->persister = std::make_unique<Persister>(
        &table, options.store, impl->metrics.get(), persister_options,
        options.on_store_refused);
    table.EnableReservations(impl->persister.get(), options.reservation_ahead);
    absl::StatusOr<std::vector<ThrottleRecord>> records =
        options.store->LoadAll();
    if (!records.ok()) return records.status();
    for (const ThrottleRecord& record : *records) {
      absl::StatusOr<StoredThrottle> stored =
          FromRecord(record, *options.clock);
      if (!stored.ok()) return stored.status();
      if (absl::Status s = table.Restore(*stored); !s.ok()) return s;
    }
    Log(LogLevel::kInfo, "state_restored",
        {{"store", options.store->Describe()},
         {"throttles", absl::StrCat(records->size())}});
  }
  for (const auto& [name, config] : options.throttles) {
    absl::Status status = table.Create(name, config);
    if (absl::IsAlreadyExists(status) && options.store != nullptr) {
      Log(LogLevel::kInfo, "throttle_declared_but_stored",
          {{"throttle", name},
           {"declared", ToProto(config).ShortDebugString()},
           {"kept", "the stored throttle (its config and state win)"}});
      continue;
    }
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("throttle \"", name, "\": ", status.message()));
    }
  }
  if (impl->persister != nullptr) {
    if (absl::Status s = impl->persister->PersistAll(); !s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("cannot store the throttles in ",
                       options.store->Describe(), ": ", s.message()));
    }
    impl->service->SetPersister(impl->persister.get());
  }
  if (!options.metrics_listen.empty()) {
    try {
      impl->exposer = std::make_unique<prometheus::Exposer>(
          options.metrics_listen, 2, PageCallbacks());
    } catch (const std::exception& e) {  // civetweb reports bind errors so
      return absl::UnavailableError(absl::StrCat(
          "cannot serve metrics on ", options.metrics_listen, ": ", e.what()));
    }
    impl->exposer->RegisterCollectable(impl->metrics->registry());
    impl->exposer->RegisterCollectable(impl->metrics->throttles());
    // Only on a port of its own: a shared port's owner exposes the
    // process once, whether this server runs or not.
    impl->process_metrics = NewProcessCollector(options.version);
    impl->exposer->RegisterCollectable(impl->process_metrics);
  }
  if (options.metrics_exposer != nullptr) {
    impl->shared_exposer = options.metrics_exposer;
    impl->shared_exposer->RegisterCollectable(impl->metrics->registry());
    impl->shared_exposer->RegisterCollectable(impl->metrics->throttles());
  }
  if (prometheus::Exposer* http =
          impl->exposer != nullptr ? impl->exposer.get() : impl->shared_exposer;
      http != nullptr && !http->GetListeningPorts().empty()) {
    impl->status_page = std::make_unique<StatusPage>(
        options.clock, &impl->service->table(), options.status_role);
    impl->page = ServePages(http->GetListeningPorts().front(),
                            [page = impl->status_page.get()](
                                absl::string_view path, HttpReply* reply) {
                              return page->Serve(path, reply);
                            });
  }
  grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection) {
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  }
  RouteProtobufLog();
  grpc::ServerBuilder builder;
  {
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(NewUnparsableRequestInterceptorFactory(
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            v1::Throttle::service_full_name()),
        [metrics = impl->metrics.get()](absl::string_view method,
                                        const grpc::Status& status) {
          CountCallError(metrics, method, status);
        }));
    interceptors.push_back(impl->calls.NewInterceptorFactory());
    // Last: it counts the status the others leave.
    interceptors.push_back(NewGrpcMetricsInterceptorFactory(
        impl->metrics->registry(), options.clock));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  int port = 0;
  builder.AddListeningPort(options.listen_address, *credentials, &port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address));
  }
  const SecurityOptions& security = options.security;
  Log(security.tls_cert.empty() ? LogLevel::kWarning : LogLevel::kInfo,
      "transport",
      {{"security", security.tls_cert.empty()        ? "plaintext"
                    : security.tls_client_ca.empty() ? "tls"
                                                     : "mtls"},
       {"policy", security.policy_file.empty() ? "none (everyone may call "
                                                 "everything)"
                                               : security.policy_file},
       {"tokens", security.token_file.empty() ? "none" : security.token_file}});
  // Ready once the throttles declared at start-up exist: say so per service
  // too, for probes that name it.
  if (auto* health = impl->server->GetHealthCheckService()) {
    health->SetServingStatus(v1::Throttle::service_full_name(), true);
  }
  return std::unique_ptr<ThrottleServer>(
      new ThrottleServer(std::move(impl), port));
}

ThrottleServer::ThrottleServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

ThrottleServer::~ThrottleServer() { Shutdown(absl::Seconds(5)); }

int ThrottleServer::metrics_port() const {
  if (impl_->exposer == nullptr) return 0;
  const std::vector<int> ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

double ThrottleServer::MetricValue(const std::string& name) const {
  std::vector<prometheus::MetricFamily> families =
      impl_->metrics->registry()->Collect();
  for (auto& family : impl_->metrics->throttles()->Collect()) {
    families.push_back(std::move(family));
  }
  for (const prometheus::MetricFamily& family : families) {
    if (family.name != name) continue;
    double sum = 0;
    for (const prometheus::ClientMetric& metric : family.metric) {
      sum += family.type == prometheus::MetricType::Counter
                 ? metric.counter.value
                 : metric.gauge.value;
    }
    return sum;
  }
  return -1;
}

bool ThrottleServer::AwaitThrottle(
    const std::string& name,
    absl::FunctionRef<bool(int64_t, int64_t)> condition,
    absl::Duration timeout) const {
  return impl_->service->table().Await(
      name,
      [&](const ThrottleTable::Entry& entry) {
        return condition(entry.scheduler.waiting_streams(),
                         entry.scheduler.total_emissions());
      },
      timeout);
}

bool ThrottleServer::AwaitOpenStreams(int64_t n, absl::Duration timeout) const {
  return impl_->service->stream_limits().AwaitOpen(n, timeout);
}

bool ThrottleServer::AwaitStored(const std::string& name,
                                 absl::Duration timeout) const {
  return impl_->service->table().Await(
      name,
      [](const ThrottleTable::Entry& entry) {
        return entry.storing == 0 &&
               entry.stored_emissions == entry.scheduler.total_emissions();
      },
      timeout);
}

absl::StatusOr<bool> ThrottleServer::DeclareThrottle(
    const std::string& name, const ThrottleConfig& config) {
  if (absl::Status s = ValidateConfig(config); !s.ok()) return s;
  ThrottleTable& table = impl_->service->table();
  bool created = false;
  absl::Status status =
      table.Transact("name", name,
                     [&](ThrottleTable::Entry& entry, absl::Time now,
                         ThrottleTable::Changes*) -> absl::Status {
                       entry.scheduler.Configure(config, now);
                       Log(LogLevel::kInfo, "throttle_configured",
                           {{"throttle", name},
                            {"config", ToProto(config).ShortDebugString()},
                            {"open_streams", absl::StrCat(entry.sinks.size())},
                            {"by", "config file"}});
                       return absl::OkStatus();
                     });
  if (absl::IsNotFound(status)) {
    status = table.Create(name, config);
    created = status.ok();
  }
  if (!status.ok()) return status;
  if (!created) impl_->service->NotifyWatchers(name);
  if (impl_->persister != nullptr) {
    impl_->persister->Persist(name, [name](absl::Status stored) {
      if (!stored.ok()) {
        Log(LogLevel::kWarning, "throttle_not_stored",
            {{"throttle", name}, {"error", std::string(stored.message())}});
      }
    });
  }
  return created;
}

void ThrottleServer::Shutdown(absl::Duration deadline) {
  {
    absl::MutexLock lock(&impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  // 1. Health says NOT_SERVING; 2. open streams are told (UNAVAILABLE)
  // and done; 3. gRPC's shutdown starts, the calls left drain until the
  // deadline and what is still running then is cancelled; 4. the refill
  // loop stops.
  const absl::Time drain_end = absl::Now() + deadline;
  if (auto* health = impl_->server->GetHealthCheckService()) {
    health->Shutdown();
  }
  impl_->service->BeginShutdown();
  // Every stream's UNAVAILABLE is sent before gRPC's shutdown starts, so
  // that it cannot race the GOAWAY and the connection's close (a CANCELLED
  // watch was seen at shutdown; docs/DECISIONS.md, "Shutdown drains calls,
  // not connections"). A stream counts until its reactor is deleted, after
  // OnDone, when its status has been sent.
  impl_->service->stream_limits().AwaitOpen(0, drain_end - absl::Now());
  DrainAndShutdown(impl_->server.get(), impl_->calls, drain_end);
  impl_->service->StopRefillLoop();
  if (impl_->persister != nullptr) {
    if (absl::Status s = impl_->persister->Stop(); !s.ok()) {
      Log(LogLevel::kWarning, "state_not_stored_at_shutdown",
          {{"error", std::string(s.message())}});
    }
  }
  Log(LogLevel::kInfo, "server_stopped");
}

absl::Status ThrottleServer::Handover() {
  SetGrantDeadline(absl::InfinitePast());
  impl_->service->BeginShutdown();
  if (impl_->persister == nullptr) return absl::OkStatus();
  return impl_->persister->Stop();
}

void ThrottleServer::SetGrantDeadline(absl::Time deadline) {
  ThrottleTable& table = impl_->service->table();
  table.SetGrantDeadline(table.clock()->FromWall(deadline));
}

void ThrottleServer::Wait() {
  absl::MutexLock lock(&impl_->mu);
  impl_->mu.Await(absl::Condition(&impl_->shut_down));
  // Shutdown sets the flag first; Server::Wait returns once it is done.
  impl_->server->Wait();
}

}  // namespace throttle::server
