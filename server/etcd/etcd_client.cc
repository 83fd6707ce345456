#include "server/etcd/etcd_client.h"

#include <arpa/inet.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "etcd/etcdserver/api/v3election/v3electionpb/v3election.grpc.pb.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "server/etcd/keepalive_stream.h"

namespace throttle::etcd {

struct Stubs {
  explicit Stubs(const std::shared_ptr<grpc::Channel>& channel)
      : kv(etcdserverpb::KV::NewStub(channel)),
        lease(etcdserverpb::Lease::NewStub(channel)),
        election(v3electionpb::Election::NewStub(channel)) {}
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<v3electionpb::Election::Stub> election;
};

namespace {

// Quoted and escaped: keys are bytes.
std::string Quote(const std::string& bytes) {
  return absl::StrCat("\"", absl::CHexEscape(bytes), "\"");
}

std::string LeaseName(int64_t lease) {
  return absl::StrCat("lease ", absl::Hex(lease));
}

// "etcd <what> on <target>: <message>", with the code of `status`.
absl::Status Error(absl::StatusCode code, absl::string_view what,
                   absl::string_view target, absl::string_view message) {
  return absl::Status(
      code, absl::StrCat("etcd ", what, " on ", target, ": ", message));
}

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what,
                      absl::string_view target) {
  // gRPC's codes and Abseil's are the same numbers.
  auto code = static_cast<absl::StatusCode>(status.error_code());
  // etcd's v3election service passes on the errors of its own embedded
  // client as UNKNOWN: the two a caller acts on get their proper codes.
  if (code == absl::StatusCode::kUnknown &&
      (absl::EndsWith(status.error_message(), "election: no leader") ||
       absl::EndsWith(status.error_message(), "requested lease not found"))) {
    code = absl::StatusCode::kNotFound;
  }
  return Error(code, what, target, status.error_message());
}

// Splits "host:port" (host may be "[v6]"); false if it is not one (e.g. a
// URL: "http://h:p").
bool SplitHostPort(const std::string& endpoint, std::string* host) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0 ||
      endpoint.find('/') != std::string::npos) {
    return false;
  }
  int port = 0;
  if (!absl::SimpleAtoi(endpoint.substr(colon + 1), &port) || port <= 0 ||
      port > 65535) {
    return false;
  }
  *host = endpoint.substr(0, colon);
  return true;
}

bool IsIpv4Endpoint(const std::string& endpoint) {
  std::string host;
  in_addr address;
  return SplitHostPort(endpoint, &host) &&
         inet_pton(AF_INET, host.c_str(), &address) == 1;
}

// The end of the range of keys starting with `prefix`: the prefix with its
// last byte below 0xff incremented (and what follows it dropped); "\0"
// (no end) when there is no such byte, as etcd reads it.
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    const unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last < 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

KeyValue FromProto(const mvccpb::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.lease = kv.lease();
  return out;
}

// A unary call with the client's deadline. wait_for_ready: while the
// channel reconnects (etcd restarting) the call waits for it, up to the
// deadline, instead of failing at once.
template <typename Stub, typename Request, typename Response>
absl::Status Unary(Stub* stub,
                   grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                const Request&, Response*),
                   const Request& request, Response* response,
                   absl::Duration timeout, absl::string_view what,
                   absl::string_view target) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context.set_wait_for_ready(true);
  const grpc::Status status = (stub->*method)(&context, request, response);
  if (!status.ok()) return FromGrpc(status, what, target);
  return absl::OkStatus();
}

absl::Status CheckOptions(const ClientOptions& options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("etcd endpoints: none given");
  }
  for (const std::string& endpoint : options.endpoints) {
    std::string host;
    if (!SplitHostPort(endpoint, &host)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "etcd endpoint ", Quote(endpoint), ": not host:port (no scheme)"));
    }
  }
  if (options.rpc_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd rpc_timeout ", absl::FormatDuration(options.rpc_timeout),
        ": must be positive"));
  }
  if (options.page_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd page_size ", options.page_size, ": must be positive"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ChannelTarget(const std::vector<std::string>& endpoints) {
  if (endpoints.empty()) return "";
  if (endpoints.size() == 1) return endpoints[0];
  for (const std::string& endpoint : endpoints) {
    if (!IsIpv4Endpoint(endpoint)) return endpoints[0];
  }
  return absl::StrCat("ipv4:", absl::StrJoin(endpoints, ","));
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    const ClientOptions& options) {
  if (absl::Status status = CheckOptions(options); !status.ok()) {
    return status;
  }
  std::string target = ChannelTarget(options.endpoints);
  grpc::ChannelArguments args;
  // Reconnect within 100 ms to 1 s after etcd comes back (gRPC's default
  // backoff grows to 120 s), so that leases survive an etcd restart.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // A blocked Campaign sends nothing for as long as it waits: pings find a
  // dead connection (10 s is above etcd's --grpc-keepalive-min-time, 5 s).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      target,
      options.credentials != nullptr ? options.credentials
                                     : grpc::InsecureChannelCredentials(),
      args);
  return std::unique_ptr<Client>(
      new Client(options, std::move(target), std::move(channel)));
}

Client::Client(const ClientOptions& options, std::string target,
               std::shared_ptr<grpc::Channel> channel)
    : options_(options),
      target_(std::move(target)),
      channel_(std::move(channel)),
      stubs_(std::make_unique<Stubs>(channel_)) {}

Client::~Client() = default;

absl::Status Client::CheckHealth() {
  etcdserverpb::RangeRequest request;
  request.set_key("health");
  request.set_count_only(true);
  etcdserverpb::RangeResponse response;
  return Unary(stubs_->kv.get(), &etcdserverpb::KV::Stub::Range, request,
               &response, options_.rpc_timeout, "health check (Range)",
               target_);
}

// --- Leases.

absl::StatusOr<int64_t> Client::GrantLease(absl::Duration ttl,
                                           absl::Duration* granted_ttl) {
  const std::string what =
      absl::StrCat("LeaseGrant of ", absl::FormatDuration(ttl));
  if (ttl <= absl::ZeroDuration()) {
    return Error(absl::StatusCode::kInvalidArgument, what, target_,
                 "the ttl must be positive");
  }
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1))));
  etcdserverpb::LeaseGrantResponse response;
  if (absl::Status status =
          Unary(stubs_->lease.get(), &etcdserverpb::Lease::Stub::LeaseGrant,
                request, &response, options_.rpc_timeout, what, target_);
      !status.ok()) {
    return status;
  }
  if (!response.error().empty() || response.id() == 0 || response.ttl() <= 0) {
    return Error(absl::StatusCode::kInternal, what, target_,
                 absl::StrCat("answered ", LeaseName(response.id()), " ttl ",
                              response.ttl(), " ", response.error()));
  }
  if (granted_ttl != nullptr) *granted_ttl = absl::Seconds(response.ttl());
  return response.id();
}

absl::Status Client::RevokeLease(int64_t lease) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease);
  etcdserverpb::LeaseRevokeResponse response;
  return Unary(stubs_->lease.get(), &etcdserverpb::Lease::Stub::LeaseRevoke,
               request, &response, options_.rpc_timeout,
               absl::StrCat("LeaseRevoke of ", LeaseName(lease)), target_);
}

absl::StatusOr<absl::Duration> Client::KeepAliveOnce(int64_t lease) {
  return KeepAliveOnce(lease, absl::Now() + options_.rpc_timeout);
}

absl::StatusOr<absl::Duration> Client::KeepAliveOnce(int64_t lease,
                                                     absl::Time deadline) {
  const std::string what = absl::StrCat("LeaseKeepAlive of ", LeaseName(lease));
  // Not even a try: a timed-out exchange would cost the stream.
  if (deadline <= absl::Now()) {
    return Error(absl::StatusCode::kDeadlineExceeded, what, target_,
                 "the deadline has passed");
  }
  std::unique_ptr<KeepAliveStream> stream;
  {
    // Take the stream (or the right to open one).
    absl::MutexLock lock(&keepalive_mu_);
    const auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(keepalive_mu_) {
      return !keepalive_busy_;
    };
    if (!keepalive_mu_.AwaitWithDeadline(absl::Condition(&idle), deadline)) {
      return Error(absl::StatusCode::kDeadlineExceeded, what, target_,
                   "another keepalive held the stream until the deadline");
    }
    keepalive_busy_ = true;
    stream = std::move(keepalive_stream_);
  }
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> response;
  for (int attempt = 0;; ++attempt) {
    if (stream == nullptr) {
      stream = std::make_unique<KeepAliveStream>(stubs_->lease.get());
    }
    const bool was_used = stream->used();
    response = stream->Exchange(lease, deadline);
    if (!stream->alive()) stream.reset();
    // A stream that worked before may have gone stale: one fresh try.
    if (response.ok() || !was_used || attempt > 0 ||
        absl::IsDeadlineExceeded(response.status())) {
      break;
    }
  }
  {
    absl::MutexLock lock(&keepalive_mu_);
    keepalive_stream_ = std::move(stream);
    keepalive_busy_ = false;
  }
  if (!response.ok()) {
    return Error(response.status().code(), what, target_,
                 response.status().message());
  }
  if (response->ttl() <= 0) {
    return Error(absl::StatusCode::kNotFound, what, target_,
                 "the lease is gone (expired or revoked)");
  }
  return absl::Seconds(response->ttl());
}

// --- Election.

absl::StatusOr<LeaderKey> Client::Campaign(const std::string& election,
                                           int64_t lease,
                                           const std::string& value) {
  const std::string what =
      absl::StrCat("Campaign in ", Quote(election), " with ", LeaseName(lease));
  if (election.empty() || lease <= 0) {
    // etcd would campaign with a lease of its own for lease 0.
    return Error(absl::StatusCode::kInvalidArgument, what, target_,
                 "needs an election name and a lease");
  }
  // No deadline, and fail-fast (no wait_for_ready): with no deadline to
  // bound it, waiting for an unreachable etcd would never end.
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&campaigns_mu_);
    if (campaigns_stopped_) {
      return Error(absl::StatusCode::kCancelled, what, target_,
                   "campaigns stopped (StopCampaigns)");
    }
    campaigns_.insert(&context);
  }
  v3electionpb::CampaignRequest request;
  request.set_name(election);
  request.set_lease(lease);
  request.set_value(value);
  v3electionpb::CampaignResponse response;
  const grpc::Status status =
      stubs_->election->Campaign(&context, request, &response);
  {
    absl::MutexLock lock(&campaigns_mu_);
    campaigns_.erase(&context);
  }
  if (status.error_code() == grpc::StatusCode::CANCELLED) {
    return Error(absl::StatusCode::kCancelled, what, target_,
                 "cancelled (CancelCampaigns or StopCampaigns)");
  }
  if (!status.ok()) return FromGrpc(status, what, target_);
  LeaderKey leader;
  leader.name = response.leader().name();
  leader.key = response.leader().key();
  leader.rev = response.leader().rev();
  leader.lease = response.leader().lease();
  return leader;
}

void Client::CancelCampaigns() {
  absl::MutexLock lock(&campaigns_mu_);
  CancelCampaignsLocked(/*stop=*/false);
}

void Client::StopCampaigns() {
  absl::MutexLock lock(&campaigns_mu_);
  CancelCampaignsLocked(/*stop=*/true);
}

void Client::CancelCampaignsLocked(bool stop) {
  if (stop) campaigns_stopped_ = true;
  // A context cancelled before its call starts cancels the call at start.
  for (grpc::ClientContext* context : campaigns_) context->TryCancel();
}

absl::Status Client::Resign(const LeaderKey& leader) {
  v3electionpb::ResignRequest request;
  v3electionpb::LeaderKey* key = request.mutable_leader();
  key->set_name(leader.name);
  key->set_key(leader.key);
  key->set_rev(leader.rev);
  key->set_lease(leader.lease);
  v3electionpb::ResignResponse response;
  return Unary(stubs_->election.get(), &v3electionpb::Election::Stub::Resign,
               request, &response, options_.rpc_timeout,
               absl::StrCat("Resign of ", Quote(leader.key)), target_);
}

absl::StatusOr<std::string> Client::Leader(const std::string& election) {
  v3electionpb::LeaderRequest request;
  request.set_name(election);
  v3electionpb::LeaderResponse response;
  if (absl::Status status =
          Unary(stubs_->election.get(), &v3electionpb::Election::Stub::Leader,
                request, &response, options_.rpc_timeout,
                absl::StrCat("Leader of ", Quote(election)), target_);
      !status.ok()) {
    return status;  // NOT_FOUND: no leader (FromGrpc)
  }
  return response.kv().value();
}

// --- Keys.

absl::StatusOr<std::vector<KeyValue>> Client::GetPrefix(
    const std::string& prefix) {
  const std::string what = absl::StrCat("Range of prefix ", Quote(prefix));
  etcdserverpb::RangeRequest request;
  // The empty key is not a key to etcd: "\0" to "\0" is every key.
  request.set_key(prefix.empty() ? std::string(1, '\0') : prefix);
  request.set_range_end(PrefixEnd(prefix));
  request.set_limit(options_.page_size);
  std::vector<KeyValue> out;
  while (true) {
    etcdserverpb::RangeResponse response;
    if (absl::Status status =
            Unary(stubs_->kv.get(), &etcdserverpb::KV::Stub::Range, request,
                  &response, options_.rpc_timeout, what, target_);
        !status.ok()) {
      return status;
    }
    // etcd answers in key order.
    for (const mvccpb::KeyValue& kv : response.kvs()) {
      out.push_back(FromProto(kv));
    }
    if (!response.more() || response.kvs().empty()) return out;
    // The next page: after the last key, at the first page's revision.
    request.set_key(response.kvs().rbegin()->key() + std::string(1, '\0'));
    if (request.revision() == 0) {
      request.set_revision(response.header().revision());
    }
  }
}

absl::StatusOr<KeyValue> Client::Get(const std::string& key) {
  const std::string what = absl::StrCat("Range of ", Quote(key));
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  etcdserverpb::RangeResponse response;
  if (absl::Status status =
          Unary(stubs_->kv.get(), &etcdserverpb::KV::Stub::Range, request,
                &response, options_.rpc_timeout, what, target_);
      !status.ok()) {
    return status;
  }
  if (response.kvs().empty()) {
    return Error(absl::StatusCode::kNotFound, what, target_, "no such key");
  }
  return FromProto(response.kvs(0));
}

absl::Status Client::Put(const std::string& key, const std::string& value) {
  return Put(key, value, /*lease=*/0);
}

absl::Status Client::Put(const std::string& key, const std::string& value,
                         int64_t lease) {
  etcdserverpb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  request.set_lease(lease);
  etcdserverpb::PutResponse response;
  return Unary(stubs_->kv.get(), &etcdserverpb::KV::Stub::Put, request,
               &response, options_.rpc_timeout,
               absl::StrCat("Put ", Quote(key)), target_);
}

absl::Status Client::FencedTxn(const LeaderKey& fence,
                               const std::vector<TxnOp>& ops) {
  const std::string what =
      absl::StrCat("Txn of ", ops.size(), " ops fenced on ", Quote(fence.key),
                   " rev ", fence.rev);
  if (fence.key.empty() || fence.rev <= 0) {
    return Error(absl::StatusCode::kInvalidArgument, what, target_,
                 "the fence has no key or revision");
  }
  if (ops.size() > static_cast<size_t>(kMaxTxnOps)) {
    return Error(
        absl::StatusCode::kInvalidArgument, what, target_,
        absl::StrCat("more than ", kMaxTxnOps, " ops (etcd's --max-txn-ops)"));
  }
  etcdserverpb::TxnRequest request;
  etcdserverpb::Compare* compare = request.add_compare();
  compare->set_key(fence.key);
  compare->set_target(etcdserverpb::Compare::CREATE);
  compare->set_result(etcdserverpb::Compare::EQUAL);
  compare->set_create_revision(fence.rev);
  for (const TxnOp& op : ops) {
    if (op.key.empty()) {
      return Error(absl::StatusCode::kInvalidArgument, what, target_,
                   "an op has an empty key");
    }
    etcdserverpb::RequestOp* request_op = request.add_success();
    if (op.kind == TxnOp::kPut) {
      request_op->mutable_request_put()->set_key(op.key);
      request_op->mutable_request_put()->set_value(op.value);
    } else {
      request_op->mutable_request_delete_range()->set_key(op.key);
    }
  }
  etcdserverpb::TxnResponse response;
  if (absl::Status status =
          Unary(stubs_->kv.get(), &etcdserverpb::KV::Stub::Txn, request,
                &response, options_.rpc_timeout, what, target_);
      !status.ok()) {
    return status;
  }
  if (!response.succeeded()) {
    return Error(absl::StatusCode::kFailedPrecondition, what, target_,
                 "fenced write refused: not the leader any more");
  }
  return absl::OkStatus();
}

}  // namespace throttle::etcd
