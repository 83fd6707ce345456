// The service through real gRPC on 127.0.0.1:0 with raw generated stubs,
// as a client in another language would see it: the bad-input table, how
// AwaitFuel streams end, and shutdown.
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/throttle_server.h"
#include "tests/support/controller_calls.h"
#include "tests/support/fake_clock.h"
#include "tests/support/loopback_server.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;
using v1::AwaitFuelRequest;
using v1::AwaitFuelResponse;

class ServiceTest : public testing::LoopbackServerTest,
                    public testing::ControllerCalls {
 public:
  void SetUp() override {
    LoopbackServerTest::SetUp();
    stub_ = v1::Throttle::NewStub(channel_);
  }

  grpc::Status Create(const std::string& name, int64_t max_n, double per,
                      v1::Mode mode = v1::MODE_SMOOTH, int64_t burst = 0) {
    return CreateThrottle(name, Rate(max_n, per, mode, burst));
  }

  // Reads a whole AwaitFuel stream.
  struct StreamResult {
    std::vector<AwaitFuelResponse> messages;
    grpc::Status status;
    int64_t grants() const {
      int64_t n = 0;
      for (const auto& m : messages) n += m.grants();
      return n;
    }
  };
  StreamResult Await(const AwaitFuelRequest& request) {
    auto context = Context();
    auto reader = stub_->AwaitFuel(context.get(), request);
    StreamResult result;
    AwaitFuelResponse response;
    while (reader->Read(&response)) result.messages.push_back(response);
    result.status = reader->Finish();
    return result;
  }

  // Waits until `n` streams wait on the throttle `name`.
  void AwaitWaiting(int64_t n, const std::string& name = "t") {
    ASSERT_TRUE(server_->AwaitThrottle(
        name, [n](int64_t waiting, int64_t) { return waiting == n; },
        absl::Seconds(30)))
        << "streams did not start waiting";
  }
};

// --- The bad-input table --------------------------------------------------

struct BadCase {
  std::string label;
  std::function<grpc::Status(ServiceTest*, v1::Throttle::Stub*)> call;
  grpc::StatusCode code;
  std::string field;  // the message must name it
};

grpc::Status CreateWith(v1::Throttle::Stub* stub, const std::string& name,
                        int64_t max_n, double per, int mode = 1,
                        int64_t burst = 0) {
  grpc::ClientContext context;
  v1::CreateThrottleRequest request;
  request.set_name(name);
  request.mutable_config()->set_max_n(max_n);
  request.mutable_config()->set_per_seconds(per);
  request.mutable_config()->set_mode(static_cast<v1::Mode>(mode));
  request.mutable_config()->set_burst(burst);
  v1::CreateThrottleResponse response;
  return stub->CreateThrottle(&context, request, &response);
}

grpc::Status AwaitWith(v1::Throttle::Stub* stub,
                       const std::function<void(AwaitFuelRequest*)>& edit) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  AwaitFuelRequest request;
  request.set_throttle("good");
  edit(&request);
  auto reader = stub->AwaitFuel(&context, request);
  AwaitFuelResponse response;
  while (reader->Read(&response)) {
  }
  return reader->Finish();
}

TEST_F(ServiceTest, BadInputGetsTheRightCodeNamingTheFieldAndHarmsNothing) {
  ASSERT_TRUE(Create("good", 1000, 1).ok());
  ASSERT_TRUE(Create("other", 5, 1).ok());
  ASSERT_TRUE(Start("good").ok());
  // A healthy stream on "good" runs through the whole table.
  AwaitFuelRequest first;
  first.set_throttle("good");
  first.set_count(3);
  ASSERT_EQ(Await(first).grants(), 3);

  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  using C = grpc::StatusCode;
  const std::vector<BadCase> cases = {
      {"max_n 0", [](auto*, auto* s) { return CreateWith(s, "a", 0, 1); },
       C::INVALID_ARGUMENT, "max_n"},
      {"max_n negative",
       [](auto*, auto* s) { return CreateWith(s, "a", -4, 1); },
       C::INVALID_ARGUMENT, "max_n"},
      {"per 0", [](auto*, auto* s) { return CreateWith(s, "a", 4, 0); },
       C::INVALID_ARGUMENT, "per_seconds"},
      {"per negative", [](auto*, auto* s) { return CreateWith(s, "a", 4, -1); },
       C::INVALID_ARGUMENT, "per_seconds"},
      {"per NaN", [nan](auto*, auto* s) { return CreateWith(s, "a", 4, nan); },
       C::INVALID_ARGUMENT, "per_seconds"},
      {"per infinite",
       [inf](auto*, auto* s) { return CreateWith(s, "a", 4, inf); },
       C::INVALID_ARGUMENT, "per_seconds"},
      {"per huge", [](auto*, auto* s) { return CreateWith(s, "a", 4, 1e300); },
       C::INVALID_ARGUMENT, "per_seconds"},
      {"rate too high",
       [](auto*, auto* s) { return CreateWith(s, "a", 1000000000, 1e-3); },
       C::INVALID_ARGUMENT, "max_n"},
      // Numbers in messages read back as the values sent.
      {"per just over the limit",
       [](auto*, auto* s) { return CreateWith(s, "a", 4, 2592001); },
       C::INVALID_ARGUMENT,
       "per_seconds must be finite and in (0, 2592000], "
       "got 2592001"},
      {"per below any rate",
       [](auto*, auto* s) { return CreateWith(s, "a", 1, 1e-12); },
       C::INVALID_ARGUMENT, "per_seconds must be at least 1e-07"},
      {"per below any rate, value",
       [](auto*, auto* s) { return CreateWith(s, "a", 1, 1e-12); },
       C::INVALID_ARGUMENT, "got 1e-12"},
      {"rate just over the limit",
       [](auto*, auto* s) { return CreateWith(s, "a", 20000001, 2); },
       C::INVALID_ARGUMENT,
       "at most 10000000 per second, got 20000001 / 2 = "
       "10000000.5"},
      {"unknown mode",
       [](auto*, auto* s) { return CreateWith(s, "a", 4, 1, 99); },
       C::INVALID_ARGUMENT, "mode"},
      {"burst outside bucket",
       [](auto*, auto* s) { return CreateWith(s, "a", 4, 1, 1, 3); },
       C::INVALID_ARGUMENT, "burst"},
      {"burst negative",
       [](auto*, auto* s) { return CreateWith(s, "a", 4, 1, 3, -1); },
       C::INVALID_ARGUMENT, "burst"},
      {"empty name", [](auto*, auto* s) { return CreateWith(s, "", 4, 1); },
       C::INVALID_ARGUMENT, "name"},
      {"overlong name",
       [](auto*, auto* s) {
         return CreateWith(s, std::string(129, 'x'), 4, 1);
       },
       C::INVALID_ARGUMENT, "name"},
      {"name with space",
       [](auto*, auto* s) { return CreateWith(s, "a b", 4, 1); },
       C::INVALID_ARGUMENT, "name"},
      {"control character in name",
       [](auto*, auto* s) { return CreateWith(s, "a\x01b", 4, 1); },
       C::INVALID_ARGUMENT, "name"},
      // Valid UTF-8 but not ASCII. (Invalid UTF-8 never reaches the service:
      // protobuf refuses to parse a proto3 string holding it.)
      {"non-ASCII name",
       [](auto*, auto* s) { return CreateWith(s, "caf\xc3\xa9", 4, 1); },
       C::INVALID_ARGUMENT, "name"},
      {"duplicate create",
       [](auto*, auto* s) { return CreateWith(s, "good", 4, 1); },
       C::ALREADY_EXISTS, "name"},
      {"unknown throttle",
       [](auto*, auto* s) {
         return AwaitWith(s,
                          [](AwaitFuelRequest* r) { r->set_throttle("nope"); });
       },
       C::NOT_FOUND, "throttle"},
      {"empty throttle",
       [](auto*, auto* s) {
         return AwaitWith(s, [](AwaitFuelRequest* r) { r->set_throttle(""); });
       },
       C::INVALID_ARGUMENT, "throttle"},
      {"negative count",
       [](auto*, auto* s) {
         return AwaitWith(s, [](AwaitFuelRequest* r) { r->set_count(-1); });
       },
       C::INVALID_ARGUMENT, "count"},
      {"weight 0",
       [](auto*, auto* s) {
         return AwaitWith(s, [](AwaitFuelRequest* r) { r->set_weight(0); });
       },
       C::INVALID_ARGUMENT, "weight"},
      {"negative wait limit",
       [](auto*, auto* s) {
         return AwaitWith(s, [](AwaitFuelRequest* r) {
           r->mutable_wait_limit()->set_seconds(-1);
         });
       },
       C::INVALID_ARGUMENT, "wait_limit"},
      {"overlong worker id",
       [](auto*, auto* s) {
         return AwaitWith(s, [](AwaitFuelRequest* r) {
           r->set_worker_id(std::string(500, 'w'));
         });
       },
       C::INVALID_ARGUMENT, "worker_id"},
      {"start of running",
       [](ServiceTest* t, auto*) { return t->Start("good"); },
       C::FAILED_PRECONDITION, "running"},
      {"stop of never started",
       [](ServiceTest* t, auto*) { return t->Stop("other"); },
       C::FAILED_PRECONDITION, "not running"},
      {"stop of unknown", [](ServiceTest* t, auto*) { return t->Stop("nope"); },
       C::NOT_FOUND, "throttle"},
      {"latest window 0",
       [](auto*, auto* s) {
         grpc::ClientContext context;
         v1::LatestRequest request;
         request.set_throttle("good");
         request.mutable_window()->set_nanos(0);
         request.mutable_window()->set_seconds(0);
         v1::LatestResponse response;
         return s->Latest(&context, request, &response);
       },
       C::INVALID_ARGUMENT, "window"},
      {"emit on auto-emit throttle",
       [](auto*, auto* s) {
         grpc::ClientContext context;
         v1::EmitRequest request;
         request.set_throttle("good");
         v1::EmitResponse response;
         return s->Emit(&context, request, &response);
       },
       C::FAILED_PRECONDITION, "manual_emit"},
      {"emit count 0",
       [](auto*, auto* s) {
         grpc::ClientContext context;
         v1::EmitRequest request;
         request.set_throttle("good");
         request.set_count(0);
         v1::EmitResponse response;
         return s->Emit(&context, request, &response);
       },
       C::INVALID_ARGUMENT, "count"},
  };
  for (const BadCase& c : cases) {
    const grpc::Status status = c.call(this, stub_.get());
    EXPECT_EQ(status.error_code(), c.code)
        << c.label << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.field)) << c.label;
  }
  // A second stop of a stopped throttle.
  ASSERT_TRUE(Stop("good").ok());
  EXPECT_EQ(Stop("good").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ASSERT_TRUE(Start("good").ok());

  // The server still serves, and the throttles' state is intact.
  v1::ListThrottlesResponse list;
  ASSERT_TRUE(stub_->ListThrottles(Context().get(), {}, &list).ok());
  ASSERT_EQ(list.throttles_size(), 2);
  EXPECT_EQ(list.throttles(0).name(), "good");
  EXPECT_EQ(list.throttles(0).config().max_n(), 1000);
  EXPECT_EQ(list.throttles(0).state(), v1::STATE_RUNNING);
  EXPECT_EQ(list.throttles(0).total_emissions(), 3);
  EXPECT_EQ(list.throttles(1).name(), "other");
  EXPECT_EQ(list.throttles(1).state(), v1::STATE_CREATED);
  EXPECT_EQ(Await(first).grants(), 3);
  EXPECT_EQ(Mean("good").total_emissions(), 6);
}

// --- How streams end --------------------------------------------------------

TEST_F(ServiceTest, CountGrantsThenOkWithoutEndReason) {
  ASSERT_TRUE(Create("t", 10000, 1, v1::MODE_MONITOR_ONLY).ok());
  ASSERT_TRUE(Start("t").ok());
  AwaitFuelRequest request;
  request.set_throttle("t");
  request.set_count(7);
  StreamResult result = Await(request);
  EXPECT_TRUE(result.status.ok());
  EXPECT_EQ(result.grants(), 7);
  ASSERT_FALSE(result.messages.empty());
  EXPECT_EQ(result.messages.back().end(), v1::END_REASON_UNSPECIFIED);
  // Monitor-only gives them at once: one message carries all seven.
  EXPECT_EQ(result.messages.size(), 1u);
}

TEST_F(ServiceTest, UnsetCountMeansOne) {
  ASSERT_TRUE(Create("t", 100, 1, v1::MODE_WINDOW).ok());
  ASSERT_TRUE(Start("t").ok());
  AwaitFuelRequest request;
  request.set_throttle("t");
  EXPECT_EQ(Await(request).grants(), 1);
}

TEST_F(ServiceTest, StoppedThrottleAnswersStoppedAtOnce) {
  ASSERT_TRUE(Create("t", 4, 1).ok());
  ASSERT_TRUE(Start("t").ok());
  ASSERT_TRUE(Stop("t").ok());
  AwaitFuelRequest request;
  request.set_throttle("t");
  StreamResult result = Await(request);
  EXPECT_TRUE(result.status.ok());
  ASSERT_EQ(result.messages.size(), 1u);
  EXPECT_EQ(result.messages[0].end(), v1::END_REASON_STOPPED);
  EXPECT_EQ(result.messages[0].grants(), 0);
}

TEST_F(ServiceTest, WaitLimitPassedIsToldInTheLastMessage) {
  ASSERT_TRUE(Create("t", 1, 3600).ok());  // before Start: nobody gets fuel
  AwaitFuelRequest request;
  request.set_throttle("t");
  request.mutable_wait_limit()->set_nanos(50'000'000);
  StreamResult result = Await(request);
  EXPECT_TRUE(result.status.ok());
  ASSERT_EQ(result.messages.size(), 1u);
  EXPECT_EQ(result.messages[0].end(), v1::END_REASON_WAIT_LIMIT_PASSED);
}

TEST_F(ServiceTest, StopEndsOpenStreamsWithStopped) {
  ASSERT_TRUE(Create("t", 1, 3600).ok());
  std::vector<std::thread> threads;
  std::vector<StreamResult> results(3);
  AwaitFuelRequest request;
  request.set_throttle("t");
  request.set_count(0);
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back(
        [&, i] { results[static_cast<size_t>(i)] = Await(request); });
  }
  // Wait until all three wait.
  AwaitWaiting(3);
  ASSERT_TRUE(Start("t").ok());
  v1::StopResponse stopped;
  ASSERT_TRUE(Stop("t", &stopped).ok());
  for (auto& t : threads) t.join();
  int64_t grants = 0;
  for (const auto& r : results) {
    EXPECT_TRUE(r.status.ok());
    ASSERT_FALSE(r.messages.empty());
    EXPECT_EQ(r.messages.back().end(), v1::END_REASON_STOPPED);
    grants += r.grants();
  }
  EXPECT_EQ(grants, 1);  // 1 per hour: the first arrival got it
  EXPECT_EQ(stopped.total_emissions(), 1);
}

TEST_F(ServiceTest, DeleteEndsOpenStreamsWithNotFound) {
  ASSERT_TRUE(Create("t", 1, 3600).ok());
  StreamResult result;
  AwaitFuelRequest request;
  request.set_throttle("t");
  std::thread waiter([&] { result = Await(request); });
  AwaitWaiting(1);
  v1::DeleteThrottleRequest del;
  del.set_name("t");
  v1::DeleteThrottleResponse deleted;
  ASSERT_TRUE(stub_->DeleteThrottle(Context().get(), del, &deleted).ok());
  waiter.join();
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(result.status.error_message(), HasSubstr("deleted"));
}

TEST_F(ServiceTest, ShutdownTellsOpenStreamsUnavailableWithinItsDeadline) {
  ASSERT_TRUE(Create("t", 1, 3600).ok());
  StreamResult result;
  AwaitFuelRequest request;
  request.set_throttle("t");
  std::thread waiter([&] { result = Await(request); });
  AwaitWaiting(1);
  const absl::Time begin = absl::Now();
  server_->Shutdown(absl::Seconds(2));
  // Generous bound: the deadline is 2 s; only a hang would pass 20 s.
  EXPECT_LT(absl::Now() - begin, absl::Seconds(20));
  waiter.join();
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(result.status.error_message(), HasSubstr("shutting down"));
}

TEST_F(ServiceTest, ManualEmitCountsOnlyReportedEmissions) {
  v1::CreateThrottleRequest create;
  create.set_name("m");
  create.mutable_config()->set_max_n(100);
  create.mutable_config()->set_per_seconds(1);
  create.mutable_config()->set_manual_emit(true);
  v1::CreateThrottleResponse created;
  ASSERT_TRUE(stub_->CreateThrottle(Context().get(), create, &created).ok());
  ASSERT_TRUE(Start("m").ok());
  AwaitFuelRequest request;
  request.set_throttle("m");
  request.set_count(2);
  EXPECT_EQ(Await(request).grants(), 2);
  v1::EmitRequest emit;
  emit.set_throttle("m");
  emit.set_count(5);
  v1::EmitResponse emitted;
  ASSERT_TRUE(stub_->Emit(Context().get(), emit, &emitted).ok());
  EXPECT_EQ(emitted.total_emissions(), 5);
  EXPECT_EQ(Mean("m").total_emissions(), 5);
}

TEST_F(ServiceTest, ConfigureKeepsOpenStreams) {
  ASSERT_TRUE(Create("t", 1, 3600).ok());
  ASSERT_TRUE(Start("t").ok());
  AwaitFuelRequest request;
  request.set_throttle("t");
  request.set_count(3);
  StreamResult result;
  std::thread waiter([&] { result = Await(request); });
  // The first grant comes at once; the other two would take two hours.
  ASSERT_TRUE(server_->AwaitThrottle(
      "t", [](int64_t, int64_t total) { return total >= 1; },
      absl::Seconds(30)));
  v1::ConfigureThrottleRequest configure;
  configure.set_name("t");
  configure.mutable_config()->set_max_n(1000);
  configure.mutable_config()->set_per_seconds(1);
  v1::ConfigureThrottleResponse configured;
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), configure, &configured).ok());
  waiter.join();
  EXPECT_TRUE(result.status.ok());
  std::string messages;  // what the stream got, if it was not all
  for (const auto& m : result.messages) messages += m.ShortDebugString() + "; ";
  EXPECT_EQ(result.grants(), 3) << messages;
}

// issue 13: a mask of max_n keeps a bucket's mode and burst; a bad path
// changes nothing and names update_mask.
TEST_F(ServiceTest, ConfigureWithAMaskChangesOnlyTheNamedFields) {
  ASSERT_TRUE(Create("api", 100, 60, v1::MODE_BUCKET, 20).ok());
  v1::ConfigureThrottleRequest configure;
  configure.set_name("api");
  configure.mutable_config()->set_max_n(200);
  configure.mutable_update_mask()->add_paths("max_n");
  v1::ConfigureThrottleResponse configured;
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), configure, &configured).ok());
  EXPECT_EQ(configured.throttle().config().max_n(), 200);
  EXPECT_EQ(configured.throttle().config().per_seconds(), 60);
  EXPECT_EQ(configured.throttle().config().mode(), v1::MODE_BUCKET);
  EXPECT_EQ(configured.throttle().config().burst(), 20);

  configure.mutable_update_mask()->add_paths("max_nn");
  configure.mutable_config()->set_max_n(300);
  const grpc::Status bad =
      stub_->ConfigureThrottle(Context().get(), configure, &configured);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("update_mask"));
  EXPECT_THAT(bad.error_message(), HasSubstr("max_nn"));
  v1::ListThrottlesResponse listed;
  ASSERT_TRUE(
      stub_->ListThrottles(Context().get(), v1::ListThrottlesRequest(), &listed)
          .ok());
  ASSERT_EQ(listed.throttles_size(), 1);
  EXPECT_EQ(listed.throttles(0).config().max_n(), 200);  // unchanged
}

// --- Robustness: what a hostile or unlucky client does ---------------------

// A call that fails validation, or names no throttle, and is cancelled at
// once used to be finished twice (SIGABRT in gRPC's callback_common.h).
TEST_F(ServiceTest, CancelledFailingAwaitFuelCallsDoNotCrashTheServer) {
  ASSERT_TRUE(Create("good", 1, 1).ok());
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        AwaitFuelRequest request;
        request.set_throttle("no-such-throttle");
        if (i % 3 == 1) request.set_count(-1);         // fails validation
        if (i % 3 == 2) request.set_throttle("good");  // waits: not started
        grpc::ClientContext context;
        if ((i + t) % 2 == 0) {
          context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::microseconds(500));
        }
        auto reader = stub_->AwaitFuel(&context, request);
        context.TryCancel();
        AwaitFuelResponse response;
        while (reader->Read(&response)) {
        }
        reader->Finish();
      }
    });
  }
  for (auto& c : clients) c.join();
  // The server learns of each cancellation asynchronously, a little after
  // the client's Finish returns (tens of ms under TSan): wait for it.
  AwaitWaiting(0, "good");
  EXPECT_EQ(Mean("good").state(), v1::STATE_CREATED);  // still serving
}

// Streams that are cancelled while a write is in flight must still be
// finished, or the server's shutdown waits for them for ever.
TEST_F(ServiceTest, ShutdownCompletesAfterClientsCancelledBusyStreams) {
  ASSERT_TRUE(Create("busy", 1, 1, v1::MODE_MONITOR_ONLY).ok());
  ASSERT_TRUE(Start("busy").ok());
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 75; ++i) {
        grpc::ClientContext context;
        AwaitFuelRequest request;
        request.set_throttle("busy");
        request.set_count(0);
        auto reader = stub_->AwaitFuel(&context, request);
        AwaitFuelResponse response;
        for (int k = 0; k < 3 && reader->Read(&response); ++k) {
        }
        context.TryCancel();
        while (reader->Read(&response)) {
        }
        reader->Finish();
      }
    });
  }
  for (auto& c : clients) c.join();
  absl::Notification done;
  std::thread shutdown([&] {
    server_->Shutdown(absl::Seconds(2));
    done.Notify();
  });
  // Generous: the deadline is 2 s; only a hang passes 60 s.
  const bool finished = done.WaitForNotificationWithTimeout(absl::Seconds(60));
  if (!finished) {
    ADD_FAILURE() << "Shutdown did not complete within 60 s";
    std::_Exit(1);  // the hung shutdown thread cannot be joined
  }
  shutdown.join();
}

// A stream that stops reading must not keep its share of the rate: once
// its transport is full, what it would get goes to streams that read.
TEST_F(ServiceTest, StreamThatStopsReadingLosesItsShare) {
  ASSERT_TRUE(Create("t", 2000, 1).ok());
  ASSERT_TRUE(Start("t").ok());
  // The stuck client has a small receive window, so its transport fills
  // after a few hundred messages (a real one fills later, the same way).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  auto stuck_channel =
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                grpc::InsecureChannelCredentials(), args);
  auto stuck_stub = v1::Throttle::NewStub(stuck_channel);
  grpc::ClientContext stuck_context;
  AwaitFuelRequest request;
  request.set_throttle("t");
  request.set_count(0);
  auto stuck = stuck_stub->AwaitFuel(&stuck_context, request);  // never read

  grpc::ClientContext context;
  auto reader = stub_->AwaitFuel(&context, request);
  AwaitFuelResponse response;
  int64_t read = 0;
  while (read < 4000 && reader->Read(&response)) read += response.grants();
  ASSERT_GE(read, 4000);
  const int64_t total = Mean("t").total_emissions();
  // Sharing equally, the stuck stream would have taken about as many as
  // the reader; what it may keep is its full transport and the grants of
  // the stall bound.
  EXPECT_LT(total - read, read / 4)
      << "total " << total << ", read by the live stream " << read;
  // It was stalled, and the metrics say so.
  EXPECT_GE(server_->MetricValue("throttle_stream_stalls_total"), 1);
  EXPECT_EQ(server_->MetricValue("throttle_stalled_streams"), 1);
  // Once it reads again, its write drains and it is back in line.
  context.TryCancel();
  while (reader->Read(&response)) {
  }
  reader->Finish();
  const int64_t before = Mean("t").total_emissions();
  int64_t stuck_read = 0;
  while (Mean("t").total_emissions() < before + 200 && stuck->Read(&response)) {
    stuck_read += response.grants();
  }
  EXPECT_EQ(server_->MetricValue("throttle_stalled_streams"), 0);
  EXPECT_GT(stuck_read, 0);
  stuck_context.TryCancel();
  while (stuck->Read(&response)) {
  }
  stuck->Finish();
}

// The refill loop visits only the throttles that are due: 2,000 idle
// throttles beside a busy one cost nothing per wake-up.
TEST_F(ServiceTest, IdleThrottlesCostTheRefillLoopNothing) {
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(Create(absl::StrCat("idle", i), 10, 1).ok());
  }
  ASSERT_TRUE(Create("busy", 1000, 1).ok());
  ASSERT_TRUE(Start("busy").ok());
  const double wakeups0 = server_->MetricValue("throttle_refill_wakeups_total");
  const double advances0 =
      server_->MetricValue("throttle_refill_advances_total");
  AwaitFuelRequest request;
  request.set_throttle("busy");
  request.set_count(200);
  EXPECT_EQ(Await(request).grants(), 200);
  const double wakeups =
      server_->MetricValue("throttle_refill_wakeups_total") - wakeups0;
  const double advances =
      server_->MetricValue("throttle_refill_advances_total") - advances0;
  EXPECT_GT(wakeups, 0);
  EXPECT_LE(advances, 2 * wakeups) << advances << " in " << wakeups;
}

// Two huge counts on a monitor-only throttle used to overflow its total.
TEST_F(ServiceTest, CountsBeyondTheLimitAreRefusedAndTotalsStayPositive) {
  ASSERT_TRUE(Create("m", 1, 1, v1::MODE_MONITOR_ONLY).ok());
  ASSERT_TRUE(Start("m").ok());
  AwaitFuelRequest request;
  request.set_throttle("m");
  request.set_count(std::numeric_limits<int64_t>::max());
  for (int i = 0; i < 2; ++i) {
    StreamResult result = Await(request);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(result.status.error_message(), HasSubstr("count"));
    EXPECT_THAT(result.status.error_message(),
                HasSubstr("9223372036854775807"));
  }
  request.set_count(kMaxStreamCount);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Await(request).grants(), kMaxStreamCount);
  }
  EXPECT_EQ(Mean("m").total_emissions(), 2 * kMaxStreamCount);
}

// --- On a fake clock: the refill loop waits through the injected clock ----

class FakeClockServiceTest : public ServiceTest {
 public:
  void SetUp() override {
    options_.clock = &clock_;
    ServiceTest::SetUp();
  }

 protected:
  testing::FakeClock clock_;
};

TEST_F(FakeClockServiceTest, GrantsFallDueAsTheFakeClockAdvances) {
  ASSERT_TRUE(Create("t", 10, 1).ok());  // one grant every 100 ms
  ASSERT_TRUE(Start("t").ok());
  AwaitFuelRequest request;
  request.set_throttle("t");
  request.set_count(12);
  grpc::ClientContext context;
  auto reader = stub_->AwaitFuel(&context, request);
  AwaitFuelResponse response;
  ASSERT_TRUE(reader->Read(&response));  // the first is free at once
  EXPECT_EQ(response.grants(), 1);
  // Each 100 ms of fake time wakes the refill loop for one more grant.
  for (int64_t total = 2; total <= 3; ++total) {
    clock_.Advance(absl::Milliseconds(100));
    ASSERT_TRUE(server_->AwaitThrottle(
        "t", [total](int64_t, int64_t t) { return t == total; },
        absl::Seconds(30)))
        << total;
    ASSERT_TRUE(reader->Read(&response));
    EXPECT_EQ(response.grants(), 1);
  }
  // A loop that wakes a second late hands out only what fell due within
  // the catch-up (by default one spacing here: 100 ms), 2 grants; the
  // schedule goes on from there, and at 12 the stream ends.
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(server_->AwaitThrottle(
      "t", [](int64_t, int64_t t) { return t == 5; }, absl::Seconds(30)));
  for (int64_t total = 6; total <= 12; ++total) {
    clock_.Advance(absl::Milliseconds(100));
    ASSERT_TRUE(server_->AwaitThrottle(
        "t", [total](int64_t, int64_t t) { return t == total; },
        absl::Seconds(30)))
        << total;
  }
  int64_t grants = 0;
  while (reader->Read(&response)) grants += response.grants();
  const grpc::Status finished = reader->Finish();
  EXPECT_TRUE(finished.ok()) << finished.error_message();
  EXPECT_EQ(grants, 9) << response.ShortDebugString();
  EXPECT_EQ(Mean("t").total_emissions(), 12);
}

// Deadline-aware admission: with one grant per 10 s, stream A takes the
// first at once and waits for its second (at 10 s); a stream that joins
// now comes after A's turn, at 20 s.
TEST_F(FakeClockServiceTest, FailIfLateEndsAtOnceWithTheExpectedWait) {
  ASSERT_TRUE(Create("t", 1, 10).ok());
  ASSERT_TRUE(Start("t").ok());
  AwaitFuelRequest first;
  first.set_throttle("t");
  first.set_count(2);
  grpc::ClientContext a_context;
  auto a = stub_->AwaitFuel(&a_context, first);
  AwaitFuelResponse response;
  ASSERT_TRUE(a->Read(&response));
  EXPECT_EQ(response.grants(), 1);

  AwaitFuelRequest late;
  late.set_throttle("t");
  late.mutable_wait_limit()->set_seconds(19);
  late.set_fail_if_late(true);
  StreamResult result = Await(late);
  EXPECT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.messages.size(), 1u);
  EXPECT_EQ(result.messages[0].grants(), 0);
  EXPECT_EQ(result.messages[0].end(), v1::END_REASON_TOO_LATE);
  EXPECT_EQ(result.messages[0].expected_wait().seconds(), 20);
  EXPECT_EQ(result.messages[0].expected_wait().nanos(), 0);

  // Within its limit it is admitted and waits; so does one that did not
  // ask, whatever its limit.
  late.mutable_wait_limit()->set_seconds(20);
  grpc::ClientContext b_context;
  auto b = stub_->AwaitFuel(&b_context, late);
  AwaitWaiting(2);
  clock_.Advance(absl::Seconds(10));  // A's second grant: A is done
  EXPECT_TRUE(a->Read(&response));
  EXPECT_EQ(response.grants(), 1);
  clock_.Advance(absl::Seconds(10));  // B's, within its limit
  ASSERT_TRUE(b->Read(&response));
  EXPECT_EQ(response.grants(), 1);
  EXPECT_EQ(response.end(), v1::END_REASON_UNSPECIFIED);
  while (b->Read(&response)) {
  }
  EXPECT_TRUE(b->Finish().ok());
  while (a->Read(&response)) {
  }
  EXPECT_TRUE(a->Finish().ok());
}

TEST_F(FakeClockServiceTest, FailIfLateIsIgnoredBeforeStart) {
  ASSERT_TRUE(Create("t", 1, 10).ok());
  AwaitFuelRequest request;
  request.set_throttle("t");
  request.mutable_wait_limit()->set_seconds(1);
  request.set_fail_if_late(true);
  grpc::ClientContext context;
  auto reader = stub_->AwaitFuel(&context, request);
  AwaitWaiting(1);  // it waits as without fail_if_late
  clock_.Advance(absl::Seconds(1));
  AwaitFuelResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.end(), v1::END_REASON_WAIT_LIMIT_PASSED);
  EXPECT_FALSE(response.has_expected_wait());
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(FakeClockServiceTest, HasFuelTellsWhenToRetry) {
  ASSERT_TRUE(Create("t", 1, 10).ok());
  auto has_fuel = [this] {
    v1::HasFuelRequest request;
    request.set_throttle("t");
    v1::HasFuelResponse response;
    EXPECT_TRUE(stub_->HasFuel(Context().get(), request, &response).ok());
    return response;
  };
  EXPECT_FALSE(has_fuel().has_retry_after());  // not started
  ASSERT_TRUE(Start("t").ok());
  const v1::HasFuelResponse granted = has_fuel();
  EXPECT_TRUE(granted.granted());
  EXPECT_FALSE(granted.has_retry_after());
  clock_.Advance(absl::Milliseconds(2500));
  v1::HasFuelResponse refused = has_fuel();
  EXPECT_FALSE(refused.granted());
  ASSERT_TRUE(refused.has_retry_after());
  EXPECT_EQ(refused.retry_after().seconds(), 7);
  EXPECT_EQ(refused.retry_after().nanos(), 500'000'000);
  clock_.Advance(absl::Milliseconds(7500));
  EXPECT_TRUE(has_fuel().granted());  // when it said
  ASSERT_TRUE(Stop("t").ok());
  const v1::HasFuelResponse stopped = has_fuel();
  EXPECT_TRUE(stopped.stopped());
  EXPECT_FALSE(stopped.has_retry_after());
}

}  // namespace
}  // namespace throttle::server
