#include "server/ha/ha_node.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/ha/etcd_store.h"
#include "server/service/convert.h"
#include "server/service/log.h"

namespace throttle::server {
namespace {

// Between attempts when etcd cannot be reached or a term failed to start.
constexpr absl::Duration kRetryAfter = absl::Milliseconds(500);
// How long a deposed leader lets calls drain: its streams were ended at
// once; the others go to the new leader.
constexpr absl::Duration kStepDownGrace = absl::Seconds(1);

}  // namespace

absl::StatusOr<std::unique_ptr<HaNode>> HaNode::Start(
    const HaOptions& options) {
  etcd::ClientOptions client_options;
  client_options.endpoints = options.etcd_endpoints;
  client_options.credentials = options.etcd_credentials;
  // Writes and keepalives must fail well within a lease, not hang.
  client_options.rpc_timeout =
      std::min(absl::Seconds(2),
               std::max(absl::Milliseconds(200), options.lease_ttl / 3));
  absl::StatusOr<std::unique_ptr<etcd::Client>> client =
      etcd::Client::Connect(client_options);
  if (!client.ok()) return client.status();
  // Not fatal: the node campaigns as soon as etcd answers (an etcd that
  // starts after the servers, as in a fresh deployment, is normal).
  if (absl::Status s = (*client)->CheckHealth(); !s.ok()) {
    Log(LogLevel::kWarning, "etcd_unreachable",
        {{"etcd", (*client)->target()},
         {"error", std::string(s.message())},
         {"then", "campaigning once it answers"}});
  }
  std::unique_ptr<HaNode> node(new HaNode(options, *std::move(client)));
  node->thread_ = std::thread([n = node.get()] { n->Run(); });
  return node;
}

HaNode::HaNode(const HaOptions& options, std::unique_ptr<etcd::Client> client)
    : options_(options),
      client_(std::move(client)),
      registry_(std::make_shared<prometheus::Registry>()),
      declared_(options.server.throttles) {
  leader_gauge_ = &prometheus::BuildGauge()
                       .Name("throttle_leader")
                       .Help(
                           "1 while this server leads its cluster and "
                           "serves, 0 while it stands by.")
                       .Register(*registry_)
                       .Add({{"cluster", options.cluster}});
  terms_ = &prometheus::BuildCounter()
                .Name("throttle_leader_terms_total")
                .Help("Times this server started leading.")
                .Register(*registry_)
                .Add({{"cluster", options.cluster}});
  step_downs_ = &prometheus::BuildCounter()
                     .Name("throttle_leader_step_downs_total")
                     .Help(
                         "Times this server lost the lead (lease gone or "
                         "expired, or a fenced write refused).")
                     .Register(*registry_)
                     .Add({{"cluster", options.cluster}});
}

HaNode::~HaNode() { Shutdown(); }

bool HaNode::leading() const {
  absl::MutexLock lock(&mu_);
  return leading_;
}

absl::StatusOr<bool> HaNode::DeclareThrottle(const std::string& name,
                                             const ThrottleConfig& config) {
  absl::MutexLock lock(&mu_);
  bool found = false;
  for (auto& [declared, declared_config] : declared_) {
    if (declared == name) {
      declared_config = config;
      found = true;
    }
  }
  if (!found) declared_.emplace_back(name, config);
  if (server_ != nullptr && leading_ && !lost_) {
    return server_->DeclareThrottle(name, config);
  }
  Log(LogLevel::kInfo, "throttle_declared_for_next_term",
      {{"throttle", name}, {"config", ToProto(config).ShortDebugString()}});
  return false;
}

void HaNode::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  client_->StopCampaigns();
  if (thread_.joinable()) thread_.join();
}

void HaNode::LoseLead(const absl::Status& why) {
  absl::MutexLock lock(&mu_);
  if (lost_) return;
  lost_ = true;
  if (server_ != nullptr) {
    // Not one more grant, whatever the thread that grants next.
    server_->SetGrantDeadline(absl::InfinitePast());
  }
  Log(LogLevel::kWarning, "lead_lost",
      {{"cluster", options_.cluster}, {"why", std::string(why.message())}});
}

void HaNode::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    Term();
  }
}

void HaNode::Term() {
  {
    absl::MutexLock lock(&mu_);
    lost_ = false;
  }
  auto pause = [this] {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), kRetryAfter);
  };
  const absl::Time sent = absl::Now();
  absl::Duration ttl;
  absl::StatusOr<int64_t> lease = client_->GrantLease(options_.lease_ttl, &ttl);
  if (!lease.ok()) {
    Log(LogLevel::kWarning, "etcd_unreachable",
        {{"error", std::string(lease.status().message())}});
    pause();
    return;
  }
  etcd::LeaseKeeper keeper(client_.get(), *lease, sent + ttl, ttl / 3,
                           [this](absl::Status why) { LoseLead(why); });
  Log(LogLevel::kInfo, "campaigning",
      {{"cluster", options_.cluster},
       {"lease", absl::StrCat(*lease)},
       {"ttl", absl::FormatDuration(ttl)}});
  absl::StatusOr<etcd::LeaderKey> leader = client_->Campaign(
      ElectionName(options_.cluster), *lease, options_.server.listen_address);
  auto revoke = [&] {
    if (absl::Status s = client_->RevokeLease(*lease); !s.ok()) {
      Log(LogLevel::kDebug, "lease_not_revoked",
          {{"error", std::string(s.message())}});
    }
  };
  if (!leader.ok()) {
    revoke();
    if (!absl::IsCancelled(leader.status())) {
      Log(LogLevel::kWarning, "campaign_failed",
          {{"error", std::string(leader.status().message())}});
      pause();
    }
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || lost_) {
      (void)client_->Resign(*leader);
      revoke();
      return;
    }
  }

  // Leading: serve from the stored state, within the lease.
  std::unique_ptr<StateStore> store =
      NewEtcdStore(client_.get(), options_.cluster, *leader);
  ServerOptions server_options = options_.server;
  {
    absl::MutexLock lock(&mu_);
    server_options.throttles = declared_;
  }
  server_options.store = store.get();
  server_options.grant_deadline = keeper.deadline();
  server_options.on_store_refused = [this](const absl::Status& why) {
    LoseLead(why);
  };
  absl::StatusOr<std::unique_ptr<ThrottleServer>> server =
      ThrottleServer::Start(server_options);
  if (!server.ok()) {
    Log(LogLevel::kError, "term_not_started",
        {{"error", std::string(server.status().message())}});
    (void)client_->Resign(*leader);
    revoke();
    pause();
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    server_ = server->get();
    leading_ = true;
    if (lost_) server_->SetGrantDeadline(absl::InfinitePast());
  }
  keeper.SetDeadlineListener([this](absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    if (server_ != nullptr && !lost_) server_->SetGrantDeadline(deadline);
  });
  {
    absl::MutexLock lock(&mu_);
    if (!lost_) server_->SetGrantDeadline(keeper.deadline());
  }
  leader_gauge_->Set(1);
  terms_->Increment();
  Log(LogLevel::kInfo, "leading",
      {{"cluster", options_.cluster},
       {"port", absl::StrCat((*server)->port())},
       {"lease", absl::StrCat(*lease)},
       {"key_revision", absl::StrCat(leader->rev)}});
  if (options_.on_leading) options_.on_leading((*server)->port());

  bool handover = false;
  {
    absl::MutexLock lock(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || lost_;
    };
    mu_.Await(absl::Condition(&ended));
    handover = !lost_;
    leading_ = false;
  }
  leader_gauge_->Set(0);
  if (handover) {
    // Stop granting, store everything with nothing reserved, and only then
    // resign: the next leader loses no capacity and need not wait.
    const absl::Time begun = absl::Now();
    {
      // The lease is given up on purpose: its keeper's loss is no news.
      absl::MutexLock lock(&mu_);
      lost_ = true;
    }
    if (absl::Status s = (*server)->Handover(); !s.ok()) {
      Log(LogLevel::kWarning, "handover_not_stored",
          {{"error", std::string(s.message())}});
    }
    (void)client_->Resign(*leader);
    revoke();
    Log(LogLevel::kInfo, "handed_over",
        {{"cluster", options_.cluster},
         {"took", absl::FormatDuration(absl::Now() - begun)}});
    {
      absl::MutexLock lock(&mu_);
      server_ = nullptr;
    }
    (*server)->Shutdown(options_.shutdown_grace);
    return;
  }
  step_downs_->Increment();
  {
    absl::MutexLock lock(&mu_);
    server_ = nullptr;
  }
  (*server)->Shutdown(std::min(options_.shutdown_grace, kStepDownGrace));
  revoke();
  Log(LogLevel::kInfo, "standing_by", {{"cluster", options_.cluster}});
}

}  // namespace throttle::server
