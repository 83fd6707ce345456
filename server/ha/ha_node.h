// A high-available throttle server node on etcd: it campaigns in the
// cluster's election on a lease of its own; while it leads it serves
// throttle.v1.Throttle on the serving port, with its state in etcd; when
// it loses the lead it stops serving (the port is closed: a standby never
// accepts throttle calls) and campaigns again.
//
// The leader grants nothing at or after its local deadline: the send time
// of its last keepalive that etcd answered, plus the TTL. It steps down
// when that passes, when etcd says the lease is gone, or when a fenced
// write is refused. A new leader starts from the stored records, assuming
// the old leader's reservations used. See docs/DECISIONS.md, "High
// availability".
#ifndef THROTTLE_SERVER_HA_HA_NODE_H_
#define THROTTLE_SERVER_HA_HA_NODE_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/security/credentials.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "server/etcd/etcd_client.h"
#include "server/service/throttle_server.h"

namespace throttle::server {

struct HaOptions {
  std::vector<std::string> etcd_endpoints;  // host:port
  std::string cluster = "default";  // servers of one cluster share state
  // TLS to etcd; null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> etcd_credentials;
  // The lease's TTL: a dead leader is replaced after about this long;
  // etcd may raise it (to 2 s with its default timings).
  absl::Duration lease_ttl = absl::Seconds(2);
  // How long calls may drain when the node stops leading or shuts down.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // What each term serves with (listen_address, throttles, ...); store,
  // grant_deadline and on_store_refused are filled in per term.
  ServerOptions server;
  // Runs (from the node's thread) each time the node starts leading, with
  // the port it serves on.
  std::function<void(int port)> on_leading;
};

// Thread-safe.
class HaNode {
 public:
  // Connects to etcd and starts campaigning (as soon as etcd answers).
  // INVALID_ARGUMENT for bad endpoints.
  static absl::StatusOr<std::unique_ptr<HaNode>> Start(
      const HaOptions& options);
  ~HaNode();  // Shutdown() if not done
  HaNode(const HaNode&) = delete;
  HaNode& operator=(const HaNode&) = delete;

  bool leading() const ABSL_LOCKS_EXCLUDED(mu_);
  // Gauges and counters of the election, for the always-on metrics port.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // A throttle the config file declares (a reload): the leader creates or
  // configures it at once (ThrottleServer::DeclareThrottle); a standby
  // remembers it and creates it, when it leads, if none of its name is
  // stored. Returns whether it was created.
  absl::StatusOr<bool> DeclareThrottle(const std::string& name,
                                       const ThrottleConfig& config)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Hands over: a leader stops granting, stores every throttle, resigns
  // and revokes its lease (the next leader follows within a few hundred
  // ms); a standby stops campaigning. Blocks until done. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit HaNode(const HaOptions& options,
                  std::unique_ptr<etcd::Client> client);
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // One term: lease, campaign, serve while leading. Returns when the term
  // ended (lost, or shutdown).
  void Term() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the current term's lead (from any thread): the server stops
  // granting at once.
  void LoseLead(const absl::Status& why) ABSL_LOCKS_EXCLUDED(mu_);

  const HaOptions options_;
  std::unique_ptr<etcd::Client> client_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge* leader_gauge_;
  prometheus::Counter* terms_;
  prometheus::Counter* step_downs_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool lost_ ABSL_GUARDED_BY(mu_) = false;  // of the current term
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
  ThrottleServer* server_ ABSL_GUARDED_BY(mu_) = nullptr;  // while leading
  // What each term creates (if not stored): options_.server.throttles as
  // changed by reloads.
  std::vector<std::pair<std::string, ThrottleConfig>> declared_
      ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_HA_HA_NODE_H_
