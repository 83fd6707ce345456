// throttle_server: parses flags, starts the server, waits for SIGTERM or
// SIGINT (SIGHUP reloads the --config file), shuts down with a deadline.
// Nothing else.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "prometheus/exposer.h"
#include "server/duration_flag.h"
#include "server/ha/ha_node.h"
#include "server/security/policy.h"
#include "server/security/tokens.h"
#include "server/service/config_file.h"
#include "server/service/config_reloader.h"
#include "server/service/convert.h"
#include "server/service/http_pages.h"
#include "server/service/log.h"
#include "server/service/process_metrics.h"
#include "server/service/record.h"
#include "server/service/status_page.h"
#include "server/service/throttle_server.h"
#include "server/state/file_store.h"
#include "server/usage.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to listen on; port 0 picks a free port");
ABSL_FLAG(std::string, throttle, "",
          "throttles to create at start-up, separated by ';', each "
          "'NAME max_n=N per=DURATION [mode=M] [burst=N] [manual_emit=B] "
          "[catch_up=DURATION]'");
ABSL_FLAG(std::string, config, "",
          "YAML file of the throttles to create (README.md, \"The config "
          "file\"); read again on SIGHUP and when it changes");
ABSL_FLAG(throttle::DurationFlag, config_poll_interval,
          throttle::DurationFlag(absl::Seconds(1)),
          "how often the --config file is checked for a change; 0: only on "
          "SIGHUP");
ABSL_FLAG(std::string, check_config, "",
          "check this config file, print its throttles and exit (0 if "
          "valid)");
ABSL_FLAG(std::string, port_file, "",
          "if set, the bound port is written to this file once serving");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port for Prometheus metrics over HTTP (/metrics); empty: "
          "none; port 0 picks a free port");
ABSL_FLAG(int64_t, metrics_max_workers_per_throttle, 20,
          "throttle_worker_grants_total has a series of its own for at most "
          "this many worker ids per throttle (the first seen); the others "
          "count as worker=\"other\"; 0: all as \"other\"; the per-worker "
          "statistics of Latest and Mean track as many one by one");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error");
ABSL_FLAG(throttle::DurationFlag, shutdown_grace,
          throttle::DurationFlag(absl::Seconds(5)),
          "how long calls may drain on SIGTERM before they are cancelled");
ABSL_FLAG(std::string, state_dir, "",
          "directory where every throttle (config, state, statistics, "
          "limiter) is kept across restarts; empty: nothing is kept");
ABSL_FLAG(throttle::DurationFlag, reservation_ahead,
          throttle::DurationFlag(absl::Milliseconds(250)),
          "with durable state, grants are reserved in the store this much "
          "of a throttle's rate at a time (at least 2 grants); a restart or "
          "takeover loses at most one such chunk");
ABSL_FLAG(std::string, etcd_endpoints, "",
          "high availability: etcd client endpoints host:port,...; the "
          "servers of one --cluster elect a leader that serves (with its "
          "state in etcd) while the others stand by with the serving port "
          "closed");
ABSL_FLAG(std::string, cluster, "default",
          "with --etcd_endpoints: servers with the same name share one "
          "leader and one state");
ABSL_FLAG(throttle::DurationFlag, lease_ttl,
          throttle::DurationFlag(absl::Seconds(2)),
          "with --etcd_endpoints: the leader's lease; a dead leader is "
          "replaced after about this long (etcd may raise it)");
ABSL_FLAG(std::string, etcd_tls_ca, "",
          "with --etcd_endpoints: PEM CA of etcd's certificate: talk TLS to "
          "etcd");
ABSL_FLAG(std::string, etcd_tls_cert, "",
          "with --etcd_tls_ca: PEM client certificate for etcd's "
          "--client-cert-auth");
ABSL_FLAG(std::string, etcd_tls_key, "", "PEM private key of --etcd_tls_cert");
ABSL_FLAG(std::string, health_listen, "",
          "host:port of an always-on gRPC health endpoint (grpc.health.v1, "
          "SERVING while the process runs, leader or standby: for liveness "
          "probes); empty: none");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate (chain) of the server: serve TLS (with "
          "--tls_key); re-read when the file changes");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require client certificates signed by it (mTLS)");
ABSL_FLAG(std::string, policy, "",
          "policy file: which identity may call what on which throttles "
          "(docs/SECURITY.md); re-read when it changes; empty: everyone may "
          "call everything");
ABSL_FLAG(std::string, token_file, "",
          "bearer tokens (stored hashed) and the identities they prove; "
          "re-read when it changes");
ABSL_FLAG(std::string, check_policy, "",
          "check this policy file, print its rules and exit (0 if valid)");
ABSL_FLAG(std::string, hash_token, "",
          "print the token file line's hash of this token and exit");
ABSL_FLAG(int64_t, max_streams, 10000,
          "open AwaitFuel streams per server; beyond: RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_streams_per_client, 1000,
          "open AwaitFuel streams per client identity (or peer host when it "
          "proves none); beyond: RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_throttles, 10000,
          "throttles per server; CreateThrottle beyond: RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_message_bytes, 65536,
          "largest request message accepted; beyond: RESOURCE_EXHAUSTED");
ABSL_FLAG(bool, reflection, true,
          "serve gRPC server reflection (lists and describes the API)");
ABSL_FLAG(std::string, grant_log, "",
          "append one line per grant batch a stream took (throttle, nominal "
          "time, count, spacing, server) to this file, for audits of the "
          "bounds across restarts and failovers; empty: none");
ABSL_FLAG(throttle::DurationFlag, stream_stall_timeout,
          throttle::DurationFlag(absl::Milliseconds(500)),
          "a stream whose previous write has not drained for this long is "
          "stalled: its grants go to the other streams until it drains");

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "throttle_server: %s\n", message.c_str());
  return 1;
}

// Writes `port` to --port_file (if set) atomically.
bool WritePortFile(int port) {
  const std::string path = absl::GetFlag(FLAGS_port_file);
  if (path.empty()) return true;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Blocks until SIGTERM or SIGINT (blocked in every thread) and logs it.
// A SIGHUP in between asks `reloader` (may be null: logged) to read the
// config file again.
void AwaitSignal(const sigset_t& signals,
                 throttle::server::ConfigReloader* reloader) {
  int signal = 0;
  while (true) {
    if (sigwait(&signals, &signal) != 0) continue;
    if (signal != SIGHUP) break;
    if (reloader != nullptr) {
      reloader->RequestReload();  // logs what it did
    } else {
      throttle::server::Log(throttle::server::LogLevel::kWarning,
                            "sighup_ignored",
                            {{"reason", "no --config file to reload"}});
    }
  }
  throttle::server::Log(throttle::server::LogLevel::kInfo,
                        "server_shutting_down",
                        {{"signal", absl::StrCat(signal)}});
}

// Watches the --config file (null when there is none), applying what
// changes through `declare`.
std::unique_ptr<throttle::server::ConfigReloader> StartReloader(
    const std::optional<throttle::server::ConfigFile>& file,
    const throttle::server::ServerOptions& options,
    throttle::server::DeclareFunction declare) {
  if (!file.has_value()) return nullptr;
  throttle::server::ReloaderOptions reloader;
  reloader.path = file->path;
  reloader.poll_interval = absl::GetFlag(FLAGS_config_poll_interval).value;
  for (const auto& [name, config] : options.throttles) {
    reloader.fixed_names.insert(name);
  }
  for (const auto& declared : file->throttles) {
    reloader.fixed_names.erase(declared.name);
  }
  return std::make_unique<throttle::server::ConfigReloader>(reloader, *file,
                                                            std::move(declare));
}

// The always-on health endpoint of --health_listen (SERVING while the
// process runs); null when the flag is empty. Fails if it cannot listen.
// Its calls count in `calls`, for StopHealth.
bool StartHealth(throttle::server::CallsInFlight* calls,
                 std::unique_ptr<grpc::Server>* health) {
  const std::string listen = absl::GetFlag(FLAGS_health_listen);
  if (listen.empty()) return true;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials());
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(calls->NewInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  *health = builder.BuildAndStart();
  return *health != nullptr;
}

// Last at exit: the health endpoint says NOT_SERVING and shuts down, its
// calls drained for at most --shutdown_grace (an idle probe connection
// does not hold it).
void StopHealth(grpc::Server* health,
                const throttle::server::CallsInFlight& calls) {
  if (health == nullptr) return;
  if (auto* service = health->GetHealthCheckService()) service->Shutdown();
  throttle::server::DrainAndShutdown(
      health, calls, absl::Now() + absl::GetFlag(FLAGS_shutdown_grace).value);
}

// A high-available node: an always-on metrics port and the node that
// serves while it leads.
int RunHighAvailable(
    const throttle::server::ServerOptions& options, const sigset_t& signals,
    const std::optional<throttle::server::ConfigFile>& config) {
  throttle::server::HaOptions ha;
  ha.etcd_endpoints = absl::StrSplit(absl::GetFlag(FLAGS_etcd_endpoints), ',',
                                     absl::SkipWhitespace());
  ha.cluster = absl::GetFlag(FLAGS_cluster);
  ha.lease_ttl = absl::GetFlag(FLAGS_lease_ttl).value;
  ha.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace).value;
  if (ha.lease_ttl < absl::Seconds(1)) {
    return Fail("--lease_ttl must be at least 1s, got " +
                absl::FormatDuration(ha.lease_ttl));
  }
  if (absl::Status s = throttle::server::ValidateName("--cluster", ha.cluster);
      !s.ok()) {
    return Fail(std::string(s.message()));
  }
  if (ha.etcd_endpoints.size() > 1) {
    for (const std::string& endpoint : ha.etcd_endpoints) {
      if (endpoint.empty() || !absl::ascii_isdigit(endpoint[0])) {
        return Fail(
            "--etcd_endpoints: several endpoints must be IPv4 host:port; "
            "for names give one name that resolves to every member (a "
            "Kubernetes Service, say), got " +
            absl::GetFlag(FLAGS_etcd_endpoints));
      }
    }
  }
  if (const std::string ca = absl::GetFlag(FLAGS_etcd_tls_ca); !ca.empty()) {
    grpc::SslCredentialsOptions tls;
    for (const auto& [flag, path, out] :
         {std::tuple<const char*, std::string, std::string*>{
              "etcd_tls_ca", ca, &tls.pem_root_certs},
          {"etcd_tls_cert", absl::GetFlag(FLAGS_etcd_tls_cert),
           &tls.pem_cert_chain},
          {"etcd_tls_key", absl::GetFlag(FLAGS_etcd_tls_key),
           &tls.pem_private_key}}) {
      if (path.empty()) continue;
      std::ifstream in(path);
      std::stringstream pem;
      pem << in.rdbuf();
      if (!in) return Fail(absl::StrCat("--", flag, ": cannot read ", path));
      *out = pem.str();
    }
    if (tls.pem_cert_chain.empty() != tls.pem_private_key.empty()) {
      return Fail("--etcd_tls_cert and --etcd_tls_key go together");
    }
    ha.etcd_credentials = grpc::SslCredentials(tls);
  }
  ha.server = options;
  ha.server.metrics_listen.clear();
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!options.metrics_listen.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(
          options.metrics_listen, 2, throttle::server::PageCallbacks());
    } catch (const std::exception& e) {
      return Fail("cannot serve metrics on " + options.metrics_listen + ": " +
                  e.what());
    }
    ha.server.metrics_exposer = exposer.get();
  }
  ha.server.status_role = "leader";
  ha.on_leading = [](int port) {
    if (!WritePortFile(port)) {
      throttle::server::Log(throttle::server::LogLevel::kError,
                            "port_file_not_written",
                            {{"path", absl::GetFlag(FLAGS_port_file)}});
    }
  };
  auto node = throttle::server::HaNode::Start(ha);
  if (!node.ok()) return Fail(std::string(node.status().message()));
  // The status page while this node is a standby; the leader's server
  // puts its own above it while it leads.
  std::unique_ptr<throttle::server::PageRegistration> standby_page;
  // The process's own metrics, on the always-on port: a standby's too.
  const std::shared_ptr<prometheus::Collectable> process_metrics =
      throttle::server::NewProcessCollector(options.version);
  if (exposer != nullptr) {
    exposer->RegisterCollectable((*node)->registry());
    exposer->RegisterCollectable(process_metrics);
    standby_page = throttle::server::ServePages(
        exposer->GetListeningPorts().front(),
        [](absl::string_view path, throttle::server::HttpReply* reply) {
          return throttle::server::ServeStandbyPage("campaigning for the lead",
                                                    path, reply);
        });
  }
  throttle::server::Log(throttle::server::LogLevel::kInfo, "node_started",
                        {{"address", options.listen_address},
                         {"cluster", ha.cluster},
                         {"etcd", absl::GetFlag(FLAGS_etcd_endpoints)}});
  throttle::server::HaNode* ha_node = node->get();
  auto reloader = StartReloader(
      config, options,
      [ha_node](const std::string& name,
                const throttle::server::ThrottleConfig& throttle_config) {
        return ha_node->DeclareThrottle(name, throttle_config);
      });
  AwaitSignal(signals, reloader.get());
  reloader.reset();
  (*node)->Shutdown();
  standby_page.reset();
  if (exposer != nullptr) {
    exposer->RemoveCollectable((*node)->registry());
    exposer->RemoveCollectable(process_metrics);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  throttle::ParseCommandLineWithUsage(
      argc, argv, "Serves shared throttles over gRPC (throttle.v1.Throttle).",
      __FILE__);
  // Debian's Abseil is built with mutex deadlock detection on, which keeps
  // a lock graph on every acquisition (seen in perf profiles). The tests
  // keep it; the production binary does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  throttle::server::LogLevel level;
  if (!throttle::server::ParseLogLevel(absl::GetFlag(FLAGS_log_level),
                                       &level)) {
    return Fail("--log_level must be debug, info, warning or error, got " +
                absl::GetFlag(FLAGS_log_level));
  }
  throttle::server::SetLogLevel(level);

  if (const std::string path = absl::GetFlag(FLAGS_check_policy);
      !path.empty()) {
    auto policy = throttle::server::Policy::Load(path);
    if (!policy.ok()) return Fail(std::string(policy.status().message()));
    for (const auto& rule : policy->rules()) {
      std::printf("%s:%d: %s is %s on %s\n", path.c_str(), rule.line,
                  rule.identity.c_str(), throttle::server::RoleName(rule.role),
                  absl::StrJoin(rule.throttles, " ").c_str());
    }
    std::printf("%s: %zu rules, valid\n", path.c_str(), policy->rules().size());
    return 0;
  }
  if (const std::string token = absl::GetFlag(FLAGS_hash_token);
      !token.empty()) {
    std::printf("%s\n", throttle::server::HashToken(token).c_str());
    return 0;
  }
  if (const std::string path = absl::GetFlag(FLAGS_check_config);
      !path.empty()) {
    auto file = throttle::server::LoadConfigFile(path);
    if (!file.ok()) return Fail(std::string(file.status().message()));
    for (const auto& declared : file->throttles) {
      std::printf("%s: %s %s\n", declared.source.c_str(), declared.name.c_str(),
                  throttle::server::ToProto(declared.config)
                      .ShortDebugString()
                      .c_str());
    }
    std::printf("%s: %zu throttles, valid%s\n", path.c_str(),
                file->throttles.size(),
                file->old_format ? " (in the deprecated line format)" : "");
    return 0;
  }

  throttle::server::ServerOptions options;
  options.security.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.security.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.security.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.security.policy_file = absl::GetFlag(FLAGS_policy);
  options.security.token_file = absl::GetFlag(FLAGS_token_file);
  options.reflection = absl::GetFlag(FLAGS_reflection);
  for (const auto& [flag, value, out] :
       {std::tuple<const char*, int64_t, int64_t*>{
            "max_streams", absl::GetFlag(FLAGS_max_streams),
            &options.max_streams},
        {"max_streams_per_client", absl::GetFlag(FLAGS_max_streams_per_client),
         &options.max_streams_per_client},
        {"max_throttles", absl::GetFlag(FLAGS_max_throttles),
         &options.max_throttles}}) {
    if (value < 1) {
      return Fail(absl::StrCat("--", flag, " must be at least 1, got ", value));
    }
    *out = value;
  }
  const int64_t message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  if (message_bytes < 1024 || message_bytes > (int64_t{1} << 30)) {
    return Fail(absl::StrCat(
        "--max_message_bytes must be in [1024, 2^30], got ", message_bytes));
  }
  options.max_message_bytes = static_cast<int>(message_bytes);
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.version = throttle::ProjectVersion();
  options.metrics_max_workers_per_throttle =
      absl::GetFlag(FLAGS_metrics_max_workers_per_throttle);
  if (options.metrics_max_workers_per_throttle < 0) {
    return Fail(
        absl::StrCat("--metrics_max_workers_per_throttle must be >= 0, got ",
                     options.metrics_max_workers_per_throttle));
  }
  options.stream_stall_timeout =
      absl::GetFlag(FLAGS_stream_stall_timeout).value;
  if (options.stream_stall_timeout <= absl::ZeroDuration()) {
    return Fail("--stream_stall_timeout must be > 0, got " +
                absl::FormatDuration(options.stream_stall_timeout));
  }
  std::vector<throttle::server::DeclaredThrottle> flagged;
  for (absl::string_view spec : absl::StrSplit(absl::GetFlag(FLAGS_throttle),
                                               ';', absl::SkipWhitespace())) {
    auto parsed = throttle::server::ParseThrottleSpec(spec);
    if (!parsed.ok()) {
      return Fail("--throttle: " + std::string(parsed.status().message()));
    }
    flagged.push_back({parsed->first, parsed->second, "--throttle"});
  }
  std::optional<throttle::server::ConfigFile> config;
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    auto loaded = throttle::server::LoadConfigFile(path);
    if (!loaded.ok()) {
      return Fail("--config: " + std::string(loaded.status().message()));
    }
    if (loaded->old_format) {
      throttle::server::Log(
          throttle::server::LogLevel::kWarning, "config_format_deprecated",
          {{"file", path}, {"use", "YAML (README.md, \"The config file\")"}});
    }
    config = *std::move(loaded);
  }
  auto declared = throttle::server::MergeDeclared(
      flagged, config.value_or(throttle::server::ConfigFile{}));
  if (!declared.ok()) return Fail(std::string(declared.status().message()));
  for (const auto& throttle : *declared) {
    options.throttles.emplace_back(throttle.name, throttle.config);
  }
  if (absl::GetFlag(FLAGS_config_poll_interval).value < absl::ZeroDuration()) {
    return Fail(
        "--config_poll_interval must not be negative, got " +
        absl::FormatDuration(absl::GetFlag(FLAGS_config_poll_interval).value));
  }

  options.reservation_ahead = absl::GetFlag(FLAGS_reservation_ahead).value;
  if (options.reservation_ahead <= absl::ZeroDuration()) {
    return Fail("--reservation_ahead must be > 0, got " +
                absl::FormatDuration(options.reservation_ahead));
  }
  options.writer = throttle::server::WriterName();
  std::unique_ptr<throttle::server::GrantLog> grant_log;
  if (const std::string path = absl::GetFlag(FLAGS_grant_log); !path.empty()) {
    auto opened =
        throttle::server::GrantLog::Open(path, options.writer, *options.clock);
    if (!opened.ok()) return Fail(std::string(opened.status().message()));
    grant_log = *std::move(opened);
    options.grant_log = grant_log.get();
  }

  // Block the signals before gRPC starts its threads, then wait for them
  // here: no handler runs in a random thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  throttle::server::CallsInFlight health_calls;  // outlives health
  std::unique_ptr<grpc::Server> health;
  if (!StartHealth(&health_calls, &health)) {
    return Fail("cannot listen on --health_listen " +
                absl::GetFlag(FLAGS_health_listen));
  }
  if (!absl::GetFlag(FLAGS_etcd_endpoints).empty()) {
    if (!absl::GetFlag(FLAGS_state_dir).empty()) {
      return Fail(
          "--state_dir and --etcd_endpoints exclude each other: with etcd "
          "the state is kept in etcd");
    }
    const int rc = RunHighAvailable(options, signals, config);
    StopHealth(health.get(), health_calls);
    return rc;
  }

  std::unique_ptr<throttle::server::StateStore> store;
  if (const std::string dir = absl::GetFlag(FLAGS_state_dir); !dir.empty()) {
    auto opened = throttle::server::OpenFileStore(dir);
    if (!opened.ok()) return Fail(std::string(opened.status().message()));
    store = *std::move(opened);
    options.store = store.get();
  }
  auto server = throttle::server::ThrottleServer::Start(options);
  if (!server.ok()) return Fail(std::string(server.status().message()));
  throttle::server::Log(
      throttle::server::LogLevel::kInfo, "server_serving",
      {{"address", options.listen_address},
       {"port", absl::StrCat((*server)->port())},
       {"metrics_port", absl::StrCat((*server)->metrics_port())},
       {"throttles", absl::StrCat(options.throttles.size())}});
  if (!WritePortFile((*server)->port())) {
    return Fail("cannot write --port_file " + absl::GetFlag(FLAGS_port_file));
  }
  throttle::server::ThrottleServer* running = server->get();
  auto reloader = StartReloader(
      config, options,
      [running](const std::string& name,
                const throttle::server::ThrottleConfig& throttle_config) {
        return running->DeclareThrottle(name, throttle_config);
      });
  AwaitSignal(signals, reloader.get());
  reloader.reset();  // no reload past this point
  (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace).value);
  StopHealth(health.get(), health_calls);
  return 0;
}
