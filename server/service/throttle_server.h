// The throttle gRPC server as a library: what main.cc, the tutorial and the
// integration tests start.
//
// Sits on top of the service glue (service.h), which sits on the scheduler
// core (scheduler.h). Owns the gRPC server, the service and its refill loop.
#ifndef THROTTLE_SERVER_SERVICE_THROTTLE_SERVER_H_
#define THROTTLE_SERVER_SERVICE_THROTTLE_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_interceptor.h"
#include "server/core/throttle_config.h"
#include "server/security/security.h"
#include "server/service/clock.h"
#include "server/service/grant_log.h"
#include "server/state/state_store.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace throttle::server {

class Service;

// The calls a gRPC server has in flight, counted by an interceptor each
// call holds from its start until it is done. Thread-safe; must outlive
// the server.
class CallsInFlight {
 public:
  // The interceptor factory to add to the server's builder.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  NewInterceptorFactory();
  // Blocks until no call is in flight or `deadline` passes; returns
  // whether none is.
  bool AwaitNone(absl::Time deadline) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class Counted;  // the interceptor (throttle_server.cc)
  void Add(int64_t delta) ABSL_LOCKS_EXCLUDED(mu_);
  mutable absl::Mutex mu_;
  int64_t n_ ABSL_GUARDED_BY(mu_) = 0;
};

// Shuts `server` down: new calls and connections are refused at once, the
// calls in flight (as `calls` counts them) may finish until `deadline`,
// then what is left is cancelled and every connection closed, idle ones
// included. Blocks until done (Server::Wait has returned).
void DrainAndShutdown(grpc::Server* server, const CallsInFlight& calls,
                      absl::Time deadline);

struct ServerOptions {
  // host:port to listen on; port 0 picks a free port (see port()).
  std::string listen_address = "127.0.0.1:50051";
  // Throttles created (in state CREATED) before the server accepts calls.
  std::vector<std::pair<std::string, ThrottleConfig>> throttles;
  // host:port of the Prometheus metrics endpoint (HTTP, /metrics); empty
  // means none. Port 0 picks a free port (see metrics_port()).
  std::string metrics_listen;
  // The project's version, exposed as throttle_build_info{version}.
  std::string version;
  // throttle_worker_grants_total has a series of its own for at most this
  // many worker ids per throttle; the others count as worker="other". The
  // per-worker statistics of Latest and Mean track as many one by one.
  int64_t metrics_max_workers_per_throttle = 20;
  // A stream whose previous write has not drained for this long is
  // stalled (its grants go to the others until it drains).
  absl::Duration stream_stall_timeout = absl::Milliseconds(500);
  // Every grant a stream took is logged here (grant_log.h); not owned,
  // may be null.
  GrantLog* grant_log = nullptr;
  // Time source; not owned, must outlive the server. Tests may pass a fake.
  const Clock* clock = RealClock();

  // Durable state (docs/DECISIONS.md, "Durable state"): where throttles
  // are stored, or null for none. Not owned; must outlive the server. The
  // stored throttles are restored at start; one declared in `throttles`
  // is created only if none of its name is stored.
  StateStore* store = nullptr;
  // With a store, grants are reserved in chunks of this much of a
  // throttle's rate (at least 2 grants); a takeover loses at most one.
  absl::Duration reservation_ahead = absl::Milliseconds(250);
  // Written into each stored record (host:pid), for operators.
  std::string writer;
  // Runs when the store refuses a write (FAILED_PRECONDITION: a deposed
  // leader), from the persister's thread.
  std::function<void(const absl::Status&)> on_store_refused;
  // No grant at or after this wall-clock time until SetGrantDeadline moves
  // it (a leader's lease deadline); set before the first call is served.
  absl::Time grant_deadline = absl::InfiniteFuture();
  // Transport security and who may call what (security.h); plaintext and
  // everyone by default.
  SecurityOptions security;
  // Limits (RESOURCE_EXHAUSTED beyond them, naming the flag).
  int64_t max_streams = 10'000;
  int64_t max_streams_per_client = 1'000;
  int64_t max_throttles = 10'000;
  int max_message_bytes = 64 * 1024;
  // gRPC server reflection (lists and describes the API).
  bool reflection = true;
  // An exposer that outlives the server (the always-on metrics port of a
  // high-available node), instead of metrics_listen: the server's metrics
  // are exposed there while it runs; the process and build metrics
  // (process_metrics.h) are its owner's to expose. Not owned.
  prometheus::Exposer* metrics_exposer = nullptr;
  // What the status page on the HTTP port says this server is ("" for a
  // single server; "leader" under HA). See status_page.h.
  std::string status_role;
};

// A running throttle server. Thread-safe.
class ThrottleServer {
 public:
  // Builds and starts a server. Returns INVALID_ARGUMENT for a bad throttle
  // in options.throttles (the message names it), UNAVAILABLE if the address
  // cannot be bound. Does not block beyond start-up.
  static absl::StatusOr<std::unique_ptr<ThrottleServer>> Start(
      const ServerOptions& options);

  ~ThrottleServer();  // Shuts down with a 5 s deadline if not done yet.
  ThrottleServer(const ThrottleServer&) = delete;
  ThrottleServer& operator=(const ThrottleServer&) = delete;

  // The port actually bound.
  int port() const { return port_; }
  // The metrics endpoint's port; 0 if there is none.
  int metrics_port() const;
  // The value of the counter or gauge `name` without labels (or summed
  // over its labels), as a scrape would show it; -1 if there is none.
  double MetricValue(const std::string& name) const;

  // Blocks until exactly `n` AwaitFuel streams count against the stream
  // limits or `timeout` passes; returns whether they do. For tests.
  bool AwaitOpenStreams(int64_t n, absl::Duration timeout) const;

  // With a store: blocks until the throttle `name`'s state as last changed
  // is stored (no failed write of it pending) or `timeout` passes; returns
  // whether it is. For tests.
  bool AwaitStored(const std::string& name, absl::Duration timeout) const;

  // Blocks until `condition` holds for the throttle `name` (its waiting
  // streams and total emissions) or `timeout` passes; returns whether it
  // holds. For tests and tools that must wait for the server's state
  // without polling.
  bool AwaitThrottle(
      const std::string& name,
      absl::FunctionRef<bool(int64_t waiting_streams, int64_t total_emissions)>
          condition,
      absl::Duration timeout) const;

  // A throttle a config file declares (a reload, config_reloader.h):
  // configures the throttle `name` to `config` if it exists, its open
  // streams kept (as ConfigureThrottle), else creates it in state CREATED.
  // Returns whether it was created; INVALID_ARGUMENT for a bad name or
  // config, RESOURCE_EXHAUSTED beyond max_throttles. With a store, the
  // change is stored in the background (a failure is logged). Does not
  // block beyond the table's mutex.
  absl::StatusOr<bool> DeclareThrottle(const std::string& name,
                                       const ThrottleConfig& config);

  // No grant at or after the wall-clock time `deadline` (the end of a
  // leader's lease) until a later one is set. Thread-safe.
  void SetGrantDeadline(absl::Time deadline);

  // Before a leader resigns: grants stop, every open AwaitFuel stream ends
  // with UNAVAILABLE, and every throttle is stored with nothing reserved
  // (so whoever takes over loses no capacity). Shutdown must follow.
  absl::Status Handover();

  // Shuts down in order: every open AwaitFuel, Acquire and WatchThrottle
  // stream ends with UNAVAILABLE ("server shutting down") and is done, new
  // calls are refused (DrainAndShutdown), calls still running after
  // `deadline` are cancelled and every connection is closed (idle ones do
  // not hold it), then the refill loop is joined and, with a store, every
  // throttle is stored with nothing reserved. Blocks until done.
  // Idempotent.
  void Shutdown(absl::Duration deadline);

  // Blocks until Shutdown has completed (from another thread).
  void Wait();

 private:
  struct Impl;
  explicit ThrottleServer(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_THROTTLE_SERVER_H_
