// A small etcd v3 client: leases, elections (etcd's v3election API), reads
// and writes, and a write fenced on an election key. What the server's high
// availability (leader election, fenced state storage) is built on.
//
// It sits in server/etcd/ and talks to etcd through stubs generated at build
// time from etcd's own protos (third_party/etcd, library etcd_proto). Time
// is absl::Now() (the deadlines gRPC takes are wall-clock points too); no
// thread of its own except LeaseKeeper's.
//
// Errors are absl::Status with the gRPC code etcd (or gRPC) gave and a
// message naming the operation and the endpoint, e.g.
//   etcd Put "k" on 127.0.0.1:2379: failed to connect to all addresses
// UNAVAILABLE or DEADLINE_EXCEEDED: etcd could not be reached in time (for
// a write: it may or may not have been applied); retry.
#ifndef THROTTLE_SERVER_ETCD_ETCD_CLIENT_H_
#define THROTTLE_SERVER_ETCD_ETCD_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace grpc {
class Channel;
class ChannelCredentials;
class ClientContext;
}  // namespace grpc

namespace throttle::etcd {

class KeepAliveStream;  // keepalive_stream.h
struct Stubs;           // etcd_client.cc

struct ClientOptions {
  // etcd's client endpoints, "host:port" (no scheme); tests use one. One
  // endpoint: the channel target is that endpoint. Several: all IPv4
  // literals give `ipv4:a:p,b:p` (gRPC picks the first that connects, and
  // fails over); otherwise only the first one is used (see ChannelTarget).
  std::vector<std::string> endpoints;
  // Deadline of every RPC, except Campaign (which has none).
  absl::Duration rpc_timeout = absl::Seconds(2);
  // Keys per Range call when GetPrefix pages through a prefix.
  int64_t page_size = 1000;
  // TLS to etcd (--cert-file, --client-cert-auth): grpc::SslCredentials
  // with etcd's CA and a client certificate. Null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// A key as etcd stores it. Revisions are etcd's (cluster-wide, increasing);
// `lease` is 0 when the key has none.
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

// The key a Campaign won: its fencing token. `name` is the election, `key`
// the candidate's key in it (election + "/" + lease in hex), `rev` that
// key's create revision, `lease` the lease it is attached to.
struct LeaderKey {
  std::string name;
  std::string key;
  int64_t rev = 0;
  int64_t lease = 0;
};

// One write of a FencedTxn: put `key` = `value`, or delete `key` (value
// unused). The keys get no lease: fenced state outlives the leader.
struct TxnOp {
  enum Kind { kPut, kDelete } kind = kPut;
  std::string key;
  std::string value;
};

// etcd's default --max-txn-ops: a transaction with more operations is
// refused.
inline constexpr int kMaxTxnOps = 128;

// The gRPC channel target for `endpoints`: the endpoint itself when there is
// one; `ipv4:a:p,b:p` when there are several and all are IPv4 literals;
// otherwise the first endpoint only (gRPC's DNS resolver takes one name).
std::string ChannelTarget(const std::vector<std::string>& endpoints);

// A connection to etcd. Thread-safe: every method may be called from any
// thread at the same time. Blocking: every method blocks for at most
// options.rpc_timeout (Campaign: until it wins or is cancelled).
class Client {
 public:
  // Checks `options` and creates the channel. Does not contact etcd (the
  // connection is made by the first call), so it succeeds while etcd is
  // down. INVALID_ARGUMENT for bad options (the message names the field).
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const ClientOptions& options);

  // Closes the keepalive stream. No call may be running: stop blocked
  // Campaigns first (StopCampaigns) and wait for them to return.
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return options_; }
  // The channel target (see ChannelTarget), as error messages name it.
  const std::string& target() const { return target_; }

  // Answers OK when etcd serves a linearizable read (a Range of the key
  // "health", as `etcdctl endpoint health` does): etcd is up and has a raft
  // leader. UNAVAILABLE / DEADLINE_EXCEEDED otherwise.
  absl::Status CheckHealth();

  // --- Leases.

  // Grants a lease of `ttl` (rounded up to whole seconds; INVALID_ARGUMENT
  // if not positive). etcd may raise the TTL (its floor is 2 s with default
  // timings, 1 s with --election-timeout=500 --heartbeat-interval=50): the
  // TTL granted goes to `*granted_ttl` when it is not null. Returns the
  // lease's ID (never 0).
  absl::StatusOr<int64_t> GrantLease(absl::Duration ttl,
                                     absl::Duration* granted_ttl);

  // Revokes `lease`: etcd deletes every key attached to it. NOT_FOUND if
  // etcd has no such lease (expired or revoked already).
  absl::Status RevokeLease(int64_t lease);

  // One LeaseKeepAlive exchange (one request, one answer) on a long-lived
  // stream owned by the client; the stream is opened on first use and
  // reopened after it breaks or times out (a broken stream costs one retry
  // on a fresh one within the same deadline). Returns the TTL etcd answered:
  // the lease now expires that long after etcd received the request.
  // NOT_FOUND when etcd answers that the lease is gone. Exchanges from
  // several threads take turns on the stream.
  //
  // Timeout: the stream itself has no deadline (a stream's deadline covers
  // its whole life); each exchange waits on the stream's completion queue
  // until its own deadline, and on a timeout cancels the stream, which the
  // next exchange reopens. DEADLINE_EXCEEDED after options.rpc_timeout.
  absl::StatusOr<absl::Duration> KeepAliveOnce(int64_t lease);
  // The same, answered by `deadline` (DEADLINE_EXCEEDED after it, at once if
  // it has passed); LeaseKeeper uses it to give up exactly at the lease's
  // deadline.
  absl::StatusOr<absl::Duration> KeepAliveOnce(int64_t lease,
                                               absl::Time deadline);

  // --- Election (etcd's v3election API).

  // Campaigns in `election` with a key attached to `lease` (> 0), holding
  // `value`. Blocks until this lease leads the election: every key of an
  // earlier candidate is gone. No deadline. Returns CANCELLED when
  // CancelCampaigns or StopCampaigns cancels it (etcd then deletes the
  // candidate's key), NOT_FOUND if etcd has no such lease, UNAVAILABLE when
  // etcd cannot be reached or the connection breaks while waiting (it does
  // not wait for etcd to come up, having no deadline to bound that).
  //
  // Winning says the key was the oldest when etcd answered; the lease can
  // expire just after. Writes that need leadership go through FencedTxn.
  // Calling it again with the same lease and election returns the same key
  // (etcd proclaims the new value).
  absl::StatusOr<LeaderKey> Campaign(const std::string& election, int64_t lease,
                                     const std::string& value)
      ABSL_LOCKS_EXCLUDED(campaigns_mu_);

  // Makes every Campaign blocked now return CANCELLED (Campaigns started
  // later run as usual). For giving up a campaign, e.g. when its lease is
  // lost.
  void CancelCampaigns() ABSL_LOCKS_EXCLUDED(campaigns_mu_);

  // Like CancelCampaigns, and every later Campaign returns CANCELLED at once:
  // for shutdown, where a Campaign may start just after a CancelCampaigns.
  // Permanent.
  void StopCampaigns() ABSL_LOCKS_EXCLUDED(campaigns_mu_);

  // Gives up leadership: deletes the leader's key if it is still that
  // campaign's key (same create revision). OK when the key is gone already.
  absl::Status Resign(const LeaderKey& leader);

  // The value of the current leader of `election`; NOT_FOUND if it has none.
  absl::StatusOr<std::string> Leader(const std::string& election);

  // --- Keys.

  // Every key starting with `prefix` (all keys when empty), sorted by key,
  // read at one revision: pages of options.page_size keys, each with its
  // own rpc_timeout.
  absl::StatusOr<std::vector<KeyValue>> GetPrefix(const std::string& prefix);

  // The key `key`; NOT_FOUND if absent.
  absl::StatusOr<KeyValue> Get(const std::string& key);

  // Sets `key` to `value` (without a lease / attached to `lease`).
  absl::Status Put(const std::string& key, const std::string& value);
  absl::Status Put(const std::string& key, const std::string& value,
                   int64_t lease);

  // A transaction fenced on `fence`: applies all `ops`, in order and
  // atomically, only if the fence key still exists with create_revision ==
  // fence.rev (the campaign that won is still the leader). OK if applied;
  // FAILED_PRECONDITION ("fenced write refused: not the leader any more")
  // if the compare failed, and then nothing is written. INVALID_ARGUMENT
  // for more than kMaxTxnOps ops, an empty key, or an empty fence (etcd
  // also refuses two ops on one key). Empty `ops`: only checks the fence.
  absl::Status FencedTxn(const LeaderKey& fence, const std::vector<TxnOp>& ops);

 private:
  Client(const ClientOptions& options, std::string target,
         std::shared_ptr<grpc::Channel> channel);

  // Cancels every registered Campaign; with `stop`, for good.
  void CancelCampaignsLocked(bool stop)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(campaigns_mu_);

  const ClientOptions options_;
  const std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stubs> stubs_;

  absl::Mutex campaigns_mu_;
  // The contexts of the Campaign calls in flight, to cancel them.
  absl::flat_hash_set<grpc::ClientContext*> campaigns_
      ABSL_GUARDED_BY(campaigns_mu_);
  bool campaigns_stopped_ ABSL_GUARDED_BY(campaigns_mu_) = false;

  // The keepalive stream. One exchange at a time: the caller takes the
  // stream out (keepalive_busy_), uses it without the lock, and puts it back
  // (or drops it if it broke).
  absl::Mutex keepalive_mu_;
  bool keepalive_busy_ ABSL_GUARDED_BY(keepalive_mu_) = false;
  std::unique_ptr<KeepAliveStream> keepalive_stream_
      ABSL_GUARDED_BY(keepalive_mu_);
};

// Keeps a lease alive from a thread of its own: one KeepAliveOnce every
// `period`, and again 50 ms after one failed. It knows the local deadline:
// the send time (absl::Now() just before the request) of the last keepalive
// etcd answered with a TTL > 0, plus that TTL; initially
// `initial_deadline` (the time GrantLease was sent + the granted TTL). Until
// the deadline the lease is certainly alive in etcd (etcd counts the TTL
// from when it received the request, which is later); after it, it may be
// gone.
//
// Calls `on_lost` exactly once, from its thread, when etcd answers that the
// lease is gone (NOT_FOUND) or when the deadline passes without an answered
// keepalive (DEADLINE_EXCEEDED, with the last error); then the thread stops.
// It does not revoke the lease. `on_lost` and the listener must not destroy
// the keeper (the destructor joins their thread).
//
// `period` <= 0 means a third of the TTL: of the last answer, initially of
// initial_deadline - now. `client` must outlive the keeper. Thread-safe.
class LeaseKeeper {
 public:
  LeaseKeeper(Client* client, int64_t lease, absl::Time initial_deadline,
              absl::Duration period,
              std::function<void(absl::Status why)> on_lost);
  // Stops and joins the thread; on_lost is never called after it returns.
  // Blocks until a keepalive in flight ends (at most the client's
  // rpc_timeout).
  ~LeaseKeeper();

  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  int64_t lease() const { return lease_; }

  // The local deadline (see the class comment). Never blocks.
  absl::Time deadline() const ABSL_LOCKS_EXCLUDED(mu_);

  // `listener` is called (from the keeper's thread, without its lock) with
  // the new deadline each time the deadline moves. Set it before the
  // deadline matters: it is not called for moves before it was set.
  void SetDeadlineListener(std::function<void(absl::Time deadline)> listener)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // The time between keepalives.
  absl::Duration Period() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Client* const client_;
  const int64_t lease_;
  const absl::Duration period_;
  const std::function<void(absl::Status)> on_lost_;

  mutable absl::Mutex mu_;
  absl::Time deadline_ ABSL_GUARDED_BY(mu_);
  // The TTL etcd last answered (for period_ <= 0).
  absl::Duration ttl_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void(absl::Time)> listener_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;  // last: starts once the rest is set
};

}  // namespace throttle::etcd

#endif  // THROTTLE_SERVER_ETCD_ETCD_CLIENT_H_
