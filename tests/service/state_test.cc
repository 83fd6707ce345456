// Durable state on local disk (--state_dir) through real gRPC on
// 127.0.0.1:0: what a restarted server brings back, what a declared
// throttle does against a stored one, and that a controller call is
// answered only once it is stored. A fake clock; no sleeping.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/throttle_server.h"
#include "server/state/file_store.h"
#include "tests/support/state_dir_server.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {
namespace {

class StateTest : public testing::StateDirServerTest {
 public:
  StateTest() : StateDirServerTest("/tmp/throttle-state-test-XXXXXX") {}

  void Restart() {
    StopServer();
    StartServer();
  }

  grpc::Status Create(const std::string& name, v1::Mode mode, int64_t max_n) {
    return CreateThrottle(name, Rate(max_n, 1, mode));
  }
  v1::ThrottleInfo Info(const std::string& name) {
    v1::ListThrottlesResponse response;
    EXPECT_TRUE(stub_
                    ->ListThrottles(Context().get(), v1::ListThrottlesRequest(),
                                    &response)
                    .ok());
    for (const v1::ThrottleInfo& info : response.throttles()) {
      if (info.name() == name) return info;
    }
    return {};
  }
  // Takes `n` grants on one AwaitFuel call; returns how many came.
  int64_t Take(const std::string& name, int64_t n) {
    v1::AwaitFuelRequest request;
    request.set_throttle(name);
    request.set_count(n);
    auto context = Context();
    auto reader = stub_->AwaitFuel(context.get(), request);
    int64_t got = 0;
    v1::AwaitFuelResponse response;
    while (reader->Read(&response)) got += response.grants();
    EXPECT_TRUE(reader->Finish().ok());
    return got;
  }
  std::vector<ThrottleRecord> Stored() {
    auto other = OpenFileStore(dir_);  // what a new process would read
    EXPECT_TRUE(other.ok());
    auto records = (*other)->LoadAll();
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? *records : std::vector<ThrottleRecord>{};
  }
};

TEST_F(StateTest, ARunningThrottleComesBackRunningWithItsStatistics) {
  ASSERT_TRUE(Create("t", v1::MODE_BUCKET, 10).ok());  // a full bucket of 10
  ASSERT_TRUE(Start("t").ok());
  EXPECT_EQ(Take("t", 5), 5);
  clock_.Advance(absl::Seconds(2));
  const v1::MeanResponse before = Mean("t");

  Restart();
  const v1::ThrottleInfo info = Info("t");
  EXPECT_EQ(info.state(), v1::STATE_RUNNING);
  EXPECT_EQ(info.config().mode(), v1::MODE_BUCKET);
  EXPECT_EQ(info.config().max_n(), 10);
  const v1::MeanResponse after = Mean("t");
  EXPECT_EQ(after.total_emissions(), 5);
  EXPECT_DOUBLE_EQ(after.runtime_seconds(), before.runtime_seconds());
  // Workers get fuel again without a Start.
  EXPECT_EQ(Take("t", 3), 3);
  EXPECT_EQ(Mean("t").total_emissions(), 8);
}

TEST_F(StateTest, PerWorkerCountsAreNotStoredAndStartAgainAfterARestart) {
  ASSERT_TRUE(Create("t", v1::MODE_BUCKET, 10).ok());
  ASSERT_TRUE(Start("t").ok());
  auto take = [&](const std::string& worker_id, int64_t n) {
    v1::AwaitFuelRequest request;
    request.set_throttle("t");
    request.set_count(n);
    request.set_worker_id(worker_id);
    auto context = Context();
    auto reader = stub_->AwaitFuel(context.get(), request);
    v1::AwaitFuelResponse response;
    while (reader->Read(&response)) {
    }
    EXPECT_TRUE(reader->Finish().ok());
  };
  auto workers = [&] {
    v1::MeanRequest request;
    request.set_throttle("t");
    request.set_include_workers(true);
    v1::MeanResponse response;
    EXPECT_TRUE(stub_->Mean(Context().get(), request, &response).ok());
    std::string out;
    for (const v1::WorkerStats& w : response.workers()) {
      absl::StrAppend(&out, w.worker_id(), ":", w.grants(), " ");
    }
    return out;
  };
  take("a", 5);
  take("b", 2);
  EXPECT_EQ(workers(), "a:5 b:2 ");

  Restart();
  // The throttle's totals come back; what each worker got does not.
  EXPECT_EQ(Mean("t").total_emissions(), 7);
  EXPECT_EQ(workers(), "");
  EXPECT_EQ(Mean("t").fairness_index(), 0);
  take("a", 1);
  EXPECT_EQ(workers(), "a:1 ");
  EXPECT_EQ(Mean("t").total_emissions(), 8);
}

TEST_F(StateTest, TheStoredThrottleWinsOverTheDeclaredOne) {
  StopServer();
  ThrottleConfig declared;
  declared.max_n = 4;
  options_.throttles = {{"d", declared}};
  StartServer();
  ASSERT_TRUE(Start("d").ok());
  v1::ConfigureThrottleRequest request;
  request.set_name("d");
  request.mutable_config()->set_max_n(50);
  request.mutable_config()->set_per_seconds(1);
  v1::ConfigureThrottleResponse response;
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), request, &response).ok());

  Restart();  // still declares max_n=4
  const v1::ThrottleInfo info = Info("d");
  EXPECT_EQ(info.config().max_n(), 50);
  EXPECT_EQ(info.state(), v1::STATE_RUNNING);
}

TEST_F(StateTest, ADeletedThrottleStaysDeleted) {
  ASSERT_TRUE(Create("gone", v1::MODE_SMOOTH, 5).ok());
  v1::DeleteThrottleRequest request;
  request.set_name("gone");
  v1::DeleteThrottleResponse response;
  ASSERT_TRUE(stub_->DeleteThrottle(Context().get(), request, &response).ok());
  Restart();
  v1::MeanRequest mean;
  mean.set_throttle("gone");
  v1::MeanResponse ignored;
  EXPECT_EQ(stub_->Mean(Context().get(), mean, &ignored).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(StateTest, AControllerCallIsAnsweredOnlyOnceItIsStored) {
  ASSERT_TRUE(Create("a", v1::MODE_WINDOW, 7).ok());
  std::vector<ThrottleRecord> stored = Stored();  // read at once, no waiting
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].name(), "a");
  EXPECT_EQ(stored[0].config().max_n(), 7);
  EXPECT_EQ(stored[0].state(), v1::STATE_CREATED);

  ASSERT_TRUE(Start("a").ok());
  stored = Stored();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].state(), v1::STATE_RUNNING);
}

TEST_F(StateTest, GrantsAreReservedInTheStoreBeforeTheyAreMade) {
  ASSERT_TRUE(Create("w", v1::MODE_WINDOW, 100).ok());
  ASSERT_TRUE(Start("w").ok());
  EXPECT_EQ(Take("w", 60), 60);  // a burst: 25 reserved at a time
  // Whatever a crash left on disk now covers every grant made: the stored
  // log plus what is reserved beyond it.
  const std::vector<ThrottleRecord> stored = Stored();
  ASSERT_EQ(stored.size(), 1u);
  int64_t logged = 0;
  for (const auto& run : stored[0].limiter().runs()) logged += run.n();
  EXPECT_GE(logged + stored[0].reserved(), 60);
  EXPECT_GE(server_->MetricValue("throttle_state_records_written_total"), 3);
}

TEST_F(StateTest, ANewServerOnACrashedServersStateKeepsTheWindow) {
  // Window 10 per 1 s: a server grants the whole window, then "crashes"
  // (its directory is copied as it is, with no final write). A new server
  // on the copy grants nothing more in that window.
  ASSERT_TRUE(Create("w", v1::MODE_WINDOW, 10).ok());
  ASSERT_TRUE(Start("w").ok());
  EXPECT_EQ(Take("w", 10), 10);
  const std::string copy = dir_ + "-copy";
  ASSERT_EQ(std::system(absl::StrCat("cp -r ", dir_, " ", copy).c_str()), 0);
  StopServer();
  auto copied = OpenFileStore(copy);
  ASSERT_TRUE(copied.ok());
  options_.store = copied->get();
  clock_.Advance(absl::Milliseconds(500));
  StartServer();
  v1::HasFuelRequest has;
  has.set_throttle("w");
  v1::HasFuelResponse answer;
  ASSERT_TRUE(stub_->HasFuel(Context().get(), has, &answer).ok());
  EXPECT_FALSE(answer.granted());
  clock_.Advance(absl::Milliseconds(600));  // the window has passed
  EXPECT_EQ(Take("w", 2), 2);
  StopServer();
  std::system(absl::StrCat("rm -rf ", copy).c_str());
}

TEST_F(StateTest, AChangeWhoseWriteFailedIsStoredWithTheNextWrite) {
  ASSERT_TRUE(Create("s", v1::MODE_SMOOTH, 5).ok());
  ASSERT_TRUE(Start("s").ok());
  // Break the store: its records directory becomes a plain file.
  const std::string records = dir_ + "/throttles";
  ASSERT_EQ(std::rename(records.c_str(), (records + ".away").c_str()), 0);
  { std::ofstream(records) << "not a directory"; }
  v1::StopRequest stop;
  stop.set_throttle("s");
  v1::StopResponse stopped;
  EXPECT_EQ(stub_->Stop(Context().get(), stop, &stopped).error_code(),
            grpc::StatusCode::UNAVAILABLE);  // "the change is not stored"
  // Mend it: the Stop, which changed no emissions, is stored all the same.
  ASSERT_EQ(std::remove(records.c_str()), 0);
  ASSERT_EQ(std::rename((records + ".away").c_str(), records.c_str()), 0);
  ASSERT_TRUE(server_->AwaitStored("s", absl::Seconds(30)));
  const std::vector<ThrottleRecord> stored = Stored();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].state(), v1::STATE_STOPPED);
}

TEST_F(StateTest, NoGrantAtOrAfterTheGrantDeadline) {
  ASSERT_TRUE(Create("d", v1::MODE_BUCKET, 10).ok());
  ASSERT_TRUE(Start("d").ok());
  server_->SetGrantDeadline(clock_.Now() + absl::Seconds(1));
  EXPECT_EQ(Take("d", 2), 2);
  clock_.Advance(absl::Seconds(1));
  v1::HasFuelRequest has;
  has.set_throttle("d");
  v1::HasFuelResponse answer;
  ASSERT_TRUE(stub_->HasFuel(Context().get(), has, &answer).ok());
  EXPECT_FALSE(answer.granted());  // the bucket has 8 left, but too late
  server_->SetGrantDeadline(clock_.Now() + absl::Seconds(5));
  ASSERT_TRUE(stub_->HasFuel(Context().get(), has, &answer).ok());
  EXPECT_TRUE(answer.granted());
}

TEST_F(StateTest, TheGrantDeadlineIsAWallClockTimeOnTheRealClock) {
  // A leader's lease deadline is a wall-clock time; the server's own clock
  // is monotonic. A deadline a second ago must stop every grant.
  StopServer();
  options_.clock = RealClock();
  options_.grant_deadline = absl::Now() - absl::Seconds(1);
  StartServer();
  ASSERT_TRUE(Create("r", v1::MODE_BUCKET, 10).ok());
  ASSERT_TRUE(Start("r").ok());
  v1::HasFuelRequest has;
  has.set_throttle("r");
  v1::HasFuelResponse answer;
  ASSERT_TRUE(stub_->HasFuel(Context().get(), has, &answer).ok());
  EXPECT_FALSE(answer.granted());
  server_->SetGrantDeadline(absl::Now() + absl::Seconds(60));
  ASSERT_TRUE(stub_->HasFuel(Context().get(), has, &answer).ok());
  EXPECT_TRUE(answer.granted());
}

}  // namespace
}  // namespace throttle::server
