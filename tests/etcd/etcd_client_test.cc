// server/etcd/: the etcd client and LeaseKeeper against a real etcd
// (tests/support/etcd_process.h), on 127.0.0.1. No fixed sleeps: waits are
// on conditions, polled, with generous deadlines.
#include "server/etcd/etcd_client.h"

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/etcd_process.h"

namespace throttle::etcd {
namespace {

using ::throttle::testing::EtcdProcess;

// How long any condition may take to come true.
constexpr absl::Duration kWait = absl::Seconds(20);

// Polls `condition` every 20 ms until it holds (true) or `timeout` passes.
bool Eventually(const std::function<bool()>& condition,
                absl::Duration timeout = kWait) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

std::unique_ptr<Client> ConnectTo(const std::string& endpoint) {
  ClientOptions options;
  options.endpoints = {endpoint};
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? *std::move(client) : nullptr;
}

// A Campaign blocking on a thread of its own.
class CampaignThread {
 public:
  CampaignThread(Client* client, const std::string& election, int64_t lease,
                 const std::string& value)
      : client_(client), thread_([this, election, lease, value] {
          result_ = client_->Campaign(election, lease, value);
          done_.Notify();
        }) {}
  // Cancels the campaign if it still blocks (a failed test), and joins.
  ~CampaignThread() {
    if (!done_.HasBeenNotified()) client_->CancelCampaigns();
    thread_.join();
  }

  bool done() const { return done_.HasBeenNotified(); }
  // Waits until Campaign returned (false after kWait), then its result.
  bool Wait() { return done_.WaitForNotificationWithTimeout(kWait); }
  const absl::StatusOr<LeaderKey>& result() const { return result_; }

 private:
  Client* const client_;
  absl::Notification done_;
  absl::StatusOr<LeaderKey> result_ = absl::UnknownError("not returned");
  std::thread thread_;  // last: starts once the rest is set
};

// One etcd per test suite (each suite's keys under a prefix of each test's
// own); each test gets a fresh client.
class EtcdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start("");
    if (etcd.ok()) {
      etcd_ = *std::move(etcd);
    } else {
      start_error_ = etcd.status().ToString();
    }
  }
  static void TearDownTestSuite() { etcd_.reset(); }

  void SetUp() override {
    // A missing etcd fails every test, never skips it.
    ASSERT_NE(etcd_, nullptr) << "etcd did not start: " << start_error_;
    client_ = ConnectTo(etcd_->endpoint());
    ASSERT_NE(client_, nullptr);
  }

  // Keys and elections of this test only.
  static std::string Name(const std::string& suffix) {
    return absl::StrCat(
        "/", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "/", suffix);
  }

  // A lease of `ttl`; the time it was asked for and the TTL granted.
  int64_t Grant(absl::Duration ttl, absl::Time* sent = nullptr,
                absl::Duration* granted = nullptr) {
    absl::Duration granted_ttl;
    const absl::Time now = absl::Now();
    absl::StatusOr<int64_t> lease = client_->GrantLease(ttl, &granted_ttl);
    EXPECT_TRUE(lease.ok()) << lease.status();
    if (sent != nullptr) *sent = now;
    if (granted != nullptr) *granted = granted_ttl;
    return lease.ok() ? *lease : 0;
  }

  size_t CountKeys(const std::string& prefix) {
    absl::StatusOr<std::vector<KeyValue>> keys = client_->GetPrefix(prefix);
    EXPECT_TRUE(keys.ok()) << keys.status();
    return keys.ok() ? keys->size() : 0;
  }

  // The suite's etcd (gtest keeps suite-level state in statics).
  inline static std::unique_ptr<EtcdProcess> etcd_;
  inline static std::string start_error_;
  std::unique_ptr<Client> client_;
};

// --- Options and the channel target (no etcd).

TEST(ChannelTargetTest, OneEndpointIsTheTarget) {
  EXPECT_EQ(ChannelTarget({"127.0.0.1:2379"}), "127.0.0.1:2379");
  EXPECT_EQ(ChannelTarget({"etcd.local:2379"}), "etcd.local:2379");
}

TEST(ChannelTargetTest, SeveralIpv4EndpointsMakeAnIpv4List) {
  EXPECT_EQ(ChannelTarget({"127.0.0.1:1", "10.0.0.2:2379"}),
            "ipv4:127.0.0.1:1,10.0.0.2:2379");
}

TEST(ChannelTargetTest, SeveralWithANameTakeOnlyTheFirst) {
  EXPECT_EQ(ChannelTarget({"etcd-0:2379", "127.0.0.1:2379"}), "etcd-0:2379");
  EXPECT_EQ(ChannelTarget({"127.0.0.1:2379", "[::1]:2379"}), "127.0.0.1:2379");
}

TEST(ClientOptionsTest, ConnectRejectsBadOptions) {
  ClientOptions none;
  EXPECT_TRUE(absl::IsInvalidArgument(Client::Connect(none).status()));
  ClientOptions scheme;
  scheme.endpoints = {"http://127.0.0.1:2379"};
  absl::Status status = Client::Connect(scheme).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(status.message().find("http://127.0.0.1:2379"),
            absl::string_view::npos)
      << status;
  ClientOptions timeout;
  timeout.endpoints = {"127.0.0.1:2379"};
  timeout.rpc_timeout = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(Client::Connect(timeout).status()));
}

// --- Keys.

using ClientTest = EtcdTest;

TEST_F(ClientTest, PutThenGetReturnsTheValueAndRevisions) {
  ASSERT_TRUE(client_->Put(Name("k"), "v1").ok());
  absl::StatusOr<KeyValue> first = client_->Get(Name("k"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->key, Name("k"));
  EXPECT_EQ(first->value, "v1");
  EXPECT_GT(first->create_revision, 0);
  EXPECT_EQ(first->lease, 0);

  ASSERT_TRUE(client_->Put(Name("k"), "v2").ok());
  absl::StatusOr<KeyValue> second = client_->Get(Name("k"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->value, "v2");
  EXPECT_EQ(second->create_revision, first->create_revision);
  EXPECT_GT(second->mod_revision, first->mod_revision);
}

TEST_F(ClientTest, GetOfAMissingKeyIsNotFound) {
  absl::StatusOr<KeyValue> missing = client_->Get(Name("missing"));
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  // The message names the operation and the endpoint.
  EXPECT_NE(missing.status().message().find(etcd_->endpoint()),
            absl::string_view::npos)
      << missing.status();
}

TEST_F(ClientTest, GetPrefixReturnsEveryKeySortedAcrossPages) {
  for (const std::string key : {"d", "a", "e", "c", "b"}) {
    ASSERT_TRUE(client_->Put(Name("p/") + key, key).ok());
  }
  // Just outside the prefix on both sides.
  ASSERT_TRUE(client_->Put(Name("p"), "x").ok());
  ASSERT_TRUE(client_->Put(Name("q"), "x").ok());
  ClientOptions options;
  options.endpoints = {etcd_->endpoint()};
  options.page_size = 2;
  absl::StatusOr<std::unique_ptr<Client>> paging = Client::Connect(options);
  ASSERT_TRUE(paging.ok()) << paging.status();

  absl::StatusOr<std::vector<KeyValue>> keys = (*paging)->GetPrefix(Name("p/"));
  ASSERT_TRUE(keys.ok()) << keys.status();
  std::vector<std::string> values;
  for (const KeyValue& kv : *keys) values.push_back(kv.value);
  EXPECT_EQ(values, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ((*keys)[0].key, Name("p/a"));
  EXPECT_EQ(CountKeys(Name("nothing/")), 0u);
}

TEST_F(ClientTest, SeveralEndpointsUseOneThatAnswers) {
  ClientOptions options;
  // Nothing listens on port 1.
  options.endpoints = {"127.0.0.1:1", etcd_->endpoint()};
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->target(),
            absl::StrCat("ipv4:127.0.0.1:1,", etcd_->endpoint()));
  EXPECT_TRUE(Eventually([&] { return (*client)->CheckHealth().ok(); }));
}

// --- Leases.

TEST_F(ClientTest, GrantLeaseReportsTheTtlGranted) {
  absl::Duration granted;
  absl::StatusOr<int64_t> lease =
      client_->GrantLease(absl::Milliseconds(300), &granted);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_NE(*lease, 0);
  // Rounded up to a second, or raised to etcd's floor.
  EXPECT_GE(granted, absl::Seconds(1));
  EXPECT_TRUE(absl::IsInvalidArgument(
      client_->GrantLease(absl::ZeroDuration(), nullptr).status()));
}

TEST_F(ClientTest, KeepAliveKeepsALeasePastItsTtl) {
  absl::Time sent;
  absl::Duration ttl;
  const int64_t lease = Grant(absl::Seconds(1), &sent, &ttl);
  ASSERT_TRUE(client_->Put(Name("leased"), "v", lease).ok());
  // Keepalives every quarter TTL, until well past the first TTL.
  while (absl::Now() < sent + ttl + absl::Milliseconds(1500)) {
    absl::StatusOr<absl::Duration> answered = client_->KeepAliveOnce(lease);
    ASSERT_TRUE(answered.ok()) << answered.status();
    EXPECT_EQ(*answered, ttl);
    absl::SleepFor(ttl / 4);
  }
  absl::StatusOr<KeyValue> kv = client_->Get(Name("leased"));
  ASSERT_TRUE(kv.ok()) << kv.status();
  EXPECT_EQ(kv->lease, lease);
}

TEST_F(ClientTest, RevokeLeaseDeletesItsKeys) {
  const int64_t lease = Grant(absl::Seconds(30));
  ASSERT_TRUE(client_->Put(Name("leased"), "v", lease).ok());
  ASSERT_TRUE(client_->Get(Name("leased")).ok());
  ASSERT_TRUE(client_->RevokeLease(lease).ok());
  EXPECT_TRUE(absl::IsNotFound(client_->Get(Name("leased")).status()));
  EXPECT_TRUE(absl::IsNotFound(client_->RevokeLease(lease)));
}

TEST_F(ClientTest, KeepAliveOnceOfARevokedLeaseIsNotFound) {
  const int64_t lease = Grant(absl::Seconds(30));
  ASSERT_TRUE(client_->KeepAliveOnce(lease).ok());
  ASSERT_TRUE(client_->RevokeLease(lease).ok());
  absl::StatusOr<absl::Duration> answered = client_->KeepAliveOnce(lease);
  EXPECT_TRUE(absl::IsNotFound(answered.status())) << answered.status();
  // The stream is still good for other leases.
  const int64_t other = Grant(absl::Seconds(30));
  EXPECT_TRUE(client_->KeepAliveOnce(other).ok());
}

TEST_F(ClientTest, KeepAliveOnceFromManyThreadsTakesTurns) {
  const int64_t lease = Grant(absl::Seconds(30));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        if (!client_->KeepAliveOnce(lease).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

// --- Election.

TEST_F(ClientTest, FirstCampaignLeadsAndTheSecondWaitsUntilItResigns) {
  std::unique_ptr<Client> other = ConnectTo(etcd_->endpoint());
  const std::string election = Name("election");
  const int64_t lease_a = Grant(absl::Seconds(30));
  const int64_t lease_b = Grant(absl::Seconds(30));
  absl::StatusOr<LeaderKey> a = client_->Campaign(election, lease_a, "a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->name, election);
  EXPECT_EQ(a->lease, lease_a);
  EXPECT_GT(a->rev, 0);
  EXPECT_EQ(client_->Leader(election).value_or(""), "a");

  CampaignThread b(other.get(), election, lease_b, "b");
  // Once b's key is there, b waits for a.
  ASSERT_TRUE(Eventually([&] { return CountKeys(election + "/") == 2; }));
  EXPECT_FALSE(b.done());
  EXPECT_EQ(client_->Leader(election).value_or(""), "a");

  ASSERT_TRUE(client_->Resign(*a).ok());
  ASSERT_TRUE(b.Wait());
  ASSERT_TRUE(b.result().ok()) << b.result().status();
  EXPECT_EQ(b.result()->lease, lease_b);
  EXPECT_GT(b.result()->rev, a->rev);
  EXPECT_EQ(client_->Leader(election).value_or(""), "b");
}

TEST_F(ClientTest, CampaignReturnsWhenTheLeadersLeaseIsRevoked) {
  const std::string election = Name("election");
  const int64_t lease_a = Grant(absl::Seconds(30));
  const int64_t lease_b = Grant(absl::Seconds(30));
  ASSERT_TRUE(client_->Campaign(election, lease_a, "a").ok());
  std::unique_ptr<Client> other = ConnectTo(etcd_->endpoint());
  CampaignThread b(other.get(), election, lease_b, "b");
  ASSERT_TRUE(Eventually([&] { return CountKeys(election + "/") == 2; }));
  EXPECT_FALSE(b.done());

  ASSERT_TRUE(client_->RevokeLease(lease_a).ok());
  ASSERT_TRUE(b.Wait());
  EXPECT_TRUE(b.result().ok()) << b.result().status();
  EXPECT_EQ(client_->Leader(election).value_or(""), "b");
}

TEST_F(ClientTest, LeaderOfAnElectionWithoutCandidatesIsNotFound) {
  absl::StatusOr<std::string> leader = client_->Leader(Name("election"));
  EXPECT_TRUE(absl::IsNotFound(leader.status())) << leader.status();
}

TEST_F(ClientTest, CampaignWithAnUnknownLeaseIsNotFound) {
  const int64_t lease = Grant(absl::Seconds(30));
  ASSERT_TRUE(client_->RevokeLease(lease).ok());
  absl::StatusOr<LeaderKey> leader =
      client_->Campaign(Name("election"), lease, "a");
  EXPECT_TRUE(absl::IsNotFound(leader.status())) << leader.status();
}

TEST_F(ClientTest, CancelCampaignsUnblocksABlockedCampaign) {
  const std::string election = Name("election");
  ASSERT_TRUE(client_->Campaign(election, Grant(absl::Seconds(30)), "a").ok());
  std::unique_ptr<Client> other = ConnectTo(etcd_->endpoint());
  CampaignThread b(other.get(), election, Grant(absl::Seconds(30)), "b");
  ASSERT_TRUE(Eventually([&] { return CountKeys(election + "/") == 2; }));

  other->CancelCampaigns();
  ASSERT_TRUE(b.Wait());
  EXPECT_TRUE(absl::IsCancelled(b.result().status())) << b.result().status();
  // etcd deletes the key of a cancelled candidate; a still leads.
  EXPECT_TRUE(Eventually([&] { return CountKeys(election + "/") == 1; }));
  EXPECT_EQ(client_->Leader(election).value_or(""), "a");

  // Not sticky: a later Campaign runs (and waits).
  CampaignThread c(other.get(), election, Grant(absl::Seconds(30)), "c");
  ASSERT_TRUE(Eventually([&] { return CountKeys(election + "/") == 2; }));
  EXPECT_FALSE(c.done());
  // StopCampaigns is: it cancels c, and every later Campaign.
  other->StopCampaigns();
  ASSERT_TRUE(c.Wait());
  EXPECT_TRUE(absl::IsCancelled(c.result().status())) << c.result().status();
  EXPECT_TRUE(absl::IsCancelled(
      other->Campaign(election, Grant(absl::Seconds(30)), "d").status()));
}

// --- Fenced writes.

TEST_F(ClientTest, FencedTxnFromTheLeaderApplies) {
  absl::StatusOr<LeaderKey> leader =
      client_->Campaign(Name("election"), Grant(absl::Seconds(30)), "a");
  ASSERT_TRUE(leader.ok()) << leader.status();
  ASSERT_TRUE(client_->Put(Name("state/gone"), "x").ok());
  absl::Status status =
      client_->FencedTxn(*leader, {{TxnOp::kPut, Name("state/a"), "1"},
                                   {TxnOp::kPut, Name("state/b"), "2"},
                                   {TxnOp::kDelete, Name("state/gone"), ""}});
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(client_->Get(Name("state/a")).value_or(KeyValue{}).value, "1");
  EXPECT_EQ(client_->Get(Name("state/b")).value_or(KeyValue{}).value, "2");
  EXPECT_TRUE(absl::IsNotFound(client_->Get(Name("state/gone")).status()));
  // Fenced state is not attached to the leader's lease.
  EXPECT_EQ(client_->Get(Name("state/a")).value_or(KeyValue{}).lease, 0);
}

TEST_F(ClientTest, FencedTxnAfterResignIsRefusedAndWritesNothing) {
  const std::string election = Name("election");
  absl::StatusOr<LeaderKey> leader =
      client_->Campaign(election, Grant(absl::Seconds(30)), "a");
  ASSERT_TRUE(leader.ok()) << leader.status();
  ASSERT_TRUE(client_->Resign(*leader).ok());
  // Another campaign with the same lease gets a key of a new revision: the
  // old fence stays refused.
  absl::StatusOr<LeaderKey> again =
      client_->Campaign(election, leader->lease, "a");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_GT(again->rev, leader->rev);

  absl::Status status =
      client_->FencedTxn(*leader, {{TxnOp::kPut, Name("state/a"), "1"}});
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(status.message().find("not the leader any more"),
            absl::string_view::npos)
      << status;
  EXPECT_TRUE(absl::IsNotFound(client_->Get(Name("state/a")).status()));
  // Resigning twice is fine.
  EXPECT_TRUE(client_->Resign(*leader).ok());
}

TEST_F(ClientTest, FencedTxnAfterTheLeaseExpiredIsRefusedAndWritesNothing) {
  absl::Duration ttl;
  absl::StatusOr<LeaderKey> leader = client_->Campaign(
      Name("election"), Grant(absl::Seconds(1), nullptr, &ttl), "a");
  ASSERT_TRUE(leader.ok()) << leader.status();
  // No keepalives: etcd deletes the key when the lease expires.
  ASSERT_TRUE(Eventually(
      [&] { return absl::IsNotFound(client_->Get(leader->key).status()); },
      ttl + absl::Seconds(3)));
  absl::Status status =
      client_->FencedTxn(*leader, {{TxnOp::kPut, Name("state/a"), "1"}});
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_TRUE(absl::IsNotFound(client_->Get(Name("state/a")).status()));
}

TEST_F(ClientTest, FencedTxnTakesAtMost128Ops) {
  absl::StatusOr<LeaderKey> leader =
      client_->Campaign(Name("election"), Grant(absl::Seconds(30)), "a");
  ASSERT_TRUE(leader.ok()) << leader.status();
  std::vector<TxnOp> ops;
  for (int i = 0; i < kMaxTxnOps; ++i) {
    ops.push_back({TxnOp::kPut, Name(absl::StrCat("state/", i)), "v"});
  }
  absl::Status status = client_->FencedTxn(*leader, ops);
  EXPECT_TRUE(status.ok()) << status;
  ops.push_back({TxnOp::kPut, Name("state/one-too-many"), "v"});
  status = client_->FencedTxn(*leader, ops);
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_TRUE(
      absl::IsNotFound(client_->Get(Name("state/one-too-many")).status()));
}

// --- LeaseKeeper.

// What a LeaseKeeper reported: its on_lost calls and deadline moves.
struct KeeperEvents {
  absl::Mutex mu;
  std::vector<absl::Status> lost ABSL_GUARDED_BY(mu);
  std::vector<absl::Time> lost_at ABSL_GUARDED_BY(mu);
  std::vector<absl::Time> deadlines ABSL_GUARDED_BY(mu);

  std::function<void(absl::Status)> OnLost() {
    return [this](absl::Status why) {
      absl::MutexLock lock(&mu);
      lost.push_back(why);
      lost_at.push_back(absl::Now());
    };
  }
  std::function<void(absl::Time)> Listener() {
    return [this](absl::Time deadline) {
      absl::MutexLock lock(&mu);
      deadlines.push_back(deadline);
    };
  }
  bool AwaitLost() {
    absl::MutexLock lock(&mu);
    const auto any = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return !lost.empty();
    };
    return mu.AwaitWithTimeout(absl::Condition(&any), kWait);
  }
};

using LeaseKeeperTest = EtcdTest;

TEST_F(LeaseKeeperTest, DeadlineMovesForwardWhileTheLeaseIsAlive) {
  absl::Time sent;
  absl::Duration ttl;
  const int64_t lease = Grant(absl::Seconds(1), &sent, &ttl);
  ASSERT_TRUE(client_->Put(Name("leased"), "v", lease).ok());
  KeeperEvents events;
  {
    LeaseKeeper keeper(client_.get(), lease, sent + ttl,
                       absl::Milliseconds(100), events.OnLost());
    keeper.SetDeadlineListener(events.Listener());
    // Alive past its first TTL, its deadline moving forward.
    ASSERT_TRUE(Eventually([&] {
      absl::MutexLock lock(&events.mu);
      return events.deadlines.size() >= 3 &&
             events.deadlines.back() > sent + ttl + absl::Milliseconds(500);
    }));
    absl::MutexLock lock(&events.mu);
    for (size_t i = 1; i < events.deadlines.size(); ++i) {
      EXPECT_GT(events.deadlines[i], events.deadlines[i - 1]);
    }
    EXPECT_GE(keeper.deadline(), events.deadlines.back());
    EXPECT_TRUE(events.lost.empty());
  }
  EXPECT_TRUE(client_->Get(Name("leased")).ok());
  absl::MutexLock lock(&events.mu);
  EXPECT_TRUE(events.lost.empty()) << "on_lost called after the destructor";
}

TEST_F(LeaseKeeperTest, CallsOnLostOnceWhenTheLeaseIsRevokedBehindItsBack) {
  absl::Time sent;
  absl::Duration ttl;
  const int64_t lease = Grant(absl::Seconds(30), &sent, &ttl);
  KeeperEvents events;
  {
    LeaseKeeper keeper(client_.get(), lease, sent + ttl, absl::Milliseconds(50),
                       events.OnLost());
    ASSERT_TRUE(client_->RevokeLease(lease).ok());
    ASSERT_TRUE(events.AwaitLost());
  }
  absl::MutexLock lock(&events.mu);
  ASSERT_EQ(events.lost.size(), 1u);
  EXPECT_TRUE(absl::IsNotFound(events.lost[0])) << events.lost[0];
}

TEST_F(LeaseKeeperTest, DestructorStopsItWithoutCallingOnLost) {
  absl::Time sent;
  absl::Duration ttl;
  const int64_t lease = Grant(absl::Seconds(30), &sent, &ttl);
  KeeperEvents events;
  // The default period (ttl / 3) is far away: destruction does not wait
  // for it.
  const absl::Time start = absl::Now();
  {
    LeaseKeeper keeper(client_.get(), lease, sent + ttl, absl::ZeroDuration(),
                       events.OnLost());
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  absl::MutexLock lock(&events.mu);
  EXPECT_TRUE(events.lost.empty());
}

// --- With an etcd of the test's own, which it kills.

TEST(EtcdDownTest, LeaseKeeperCallsOnLostAtTheDeadlineWhenEtcdIsGone) {
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start("");
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  std::unique_ptr<Client> client = ConnectTo((*etcd)->endpoint());
  ASSERT_NE(client, nullptr);
  absl::Duration ttl;
  const absl::Time sent = absl::Now();
  absl::StatusOr<int64_t> lease = client->GrantLease(absl::Seconds(1), &ttl);
  ASSERT_TRUE(lease.ok()) << lease.status();
  KeeperEvents events;
  LeaseKeeper keeper(client.get(), *lease, sent + ttl, absl::Milliseconds(100),
                     events.OnLost());
  ASSERT_TRUE(Eventually([&] { return keeper.deadline() > sent + ttl; }));
  (*etcd)->Kill();

  ASSERT_TRUE(events.AwaitLost());
  absl::MutexLock lock(&events.mu);
  ASSERT_EQ(events.lost.size(), 1u);
  EXPECT_TRUE(absl::IsDeadlineExceeded(events.lost[0])) << events.lost[0];
  // Not before the deadline, and without waiting out a whole rpc_timeout
  // past it.
  EXPECT_GE(events.lost_at[0], keeper.deadline());
  EXPECT_LT(events.lost_at[0], keeper.deadline() + absl::Seconds(2));
}

TEST(EtcdDownTest, CallsFailWhileEtcdIsDownAndWorkAfterItRestarts) {
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start("");
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  std::unique_ptr<Client> client = ConnectTo((*etcd)->endpoint());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Put("/restart/k", "v").ok());
  absl::StatusOr<int64_t> lease =
      client->GrantLease(absl::Seconds(30), nullptr);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(client->KeepAliveOnce(*lease).ok());  // opens the stream

  (*etcd)->Kill();
  absl::Status down = client->Get("/restart/k").status();
  EXPECT_TRUE(absl::IsUnavailable(down) || absl::IsDeadlineExceeded(down))
      << down;
  EXPECT_NE(down.message().find((*etcd)->endpoint()), absl::string_view::npos)
      << down;
  absl::Status keepalive = client->KeepAliveOnce(*lease).status();
  EXPECT_TRUE(absl::IsUnavailable(keepalive) ||
              absl::IsDeadlineExceeded(keepalive))
      << keepalive;
  absl::Status campaign = client->Campaign("/restart/e", *lease, "a").status();
  EXPECT_TRUE(absl::IsUnavailable(campaign)) << campaign;

  ASSERT_TRUE((*etcd)->Restart().ok());
  // Same endpoint, same data; the keepalive stream is reopened.
  EXPECT_EQ(client->Get("/restart/k").value_or(KeyValue{}).value, "v");
  absl::StatusOr<absl::Duration> answered = client->KeepAliveOnce(*lease);
  EXPECT_TRUE(answered.ok()) << answered.status();
}

TEST(EtcdDownTest, KeepAliveOnceReopensAStreamThatWentStale) {
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start("");
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  std::unique_ptr<Client> client = ConnectTo((*etcd)->endpoint());
  ASSERT_NE(client, nullptr);
  absl::StatusOr<int64_t> lease =
      client->GrantLease(absl::Seconds(30), nullptr);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(client->KeepAliveOnce(*lease).ok());  // opens the stream
  // The stream breaks with no call in flight to notice.
  (*etcd)->Kill();
  ASSERT_TRUE((*etcd)->Restart().ok());
  // One call: the stale stream fails, a fresh one answers.
  absl::StatusOr<absl::Duration> answered = client->KeepAliveOnce(*lease);
  EXPECT_TRUE(answered.ok()) << answered.status();
}

}  // namespace
}  // namespace throttle::etcd
