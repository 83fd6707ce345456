// The server's limits through real gRPC on 127.0.0.1:0: past a limit a
// call gets RESOURCE_EXHAUSTED naming it, and everyone else goes on.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/loopback_server.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;

class LimitsTest : public testing::LoopbackServerTest {
 public:
  void SetUp() override {
    options_.max_streams = 3;
    options_.max_message_bytes = 4096;
    LoopbackServerTest::SetUp();
    stub_ = v1::Throttle::NewStub(channel_);
    v1::CreateThrottleRequest create;
    create.set_name("t");
    create.mutable_config()->set_max_n(1);
    create.mutable_config()->set_per_seconds(3600);  // one grant, then none
    v1::CreateThrottleResponse created;
    grpc::ClientContext c1;
    ASSERT_TRUE(stub_->CreateThrottle(&c1, create, &created).ok());
    v1::StartRequest start;
    start.set_throttle("t");
    v1::StartResponse started;
    grpc::ClientContext c2;
    ASSERT_TRUE(stub_->Start(&c2, start, &started).ok());
  }

 protected:
  std::unique_ptr<v1::Throttle::Stub> stub_;
};

TEST_F(LimitsTest, StreamsBeyondMaxStreamsAreRefusedAndTheOthersGoOn) {
  // Three streams wait (the first takes the one grant and waits for more).
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::AwaitFuelResponse>>>
      readers;
  for (int i = 0; i < 3; ++i) {
    v1::AwaitFuelRequest request;
    request.set_throttle("t");
    request.set_count(0);
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    readers.push_back(stub_->AwaitFuel(contexts.back().get(), request));
  }
  ASSERT_TRUE(server_->AwaitThrottle(
      "t", [](int64_t waiting, int64_t) { return waiting == 3; },
      absl::Seconds(30)));
  v1::AwaitFuelRequest fourth;
  fourth.set_throttle("t");
  grpc::ClientContext context;
  auto reader = stub_->AwaitFuel(&context, fourth);
  v1::AwaitFuelResponse response;
  EXPECT_FALSE(reader->Read(&response));
  const grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("--max_streams"));
  EXPECT_GE(server_->MetricValue("throttle_limit_rejections_total"), 1);
  // Unary calls still answer; a stream that ends frees its place.
  v1::ListThrottlesResponse list;
  grpc::ClientContext list_context;
  EXPECT_TRUE(stub_->ListThrottles(&list_context, {}, &list).ok());
  contexts[0]->TryCancel();
  readers[0]->Finish().IgnoreError();
  ASSERT_TRUE(server_->AwaitOpenStreams(2, absl::Seconds(30)));
  v1::AwaitFuelRequest again;
  again.set_throttle("t");
  again.set_count(1);
  again.mutable_wait_limit()->set_seconds(0);  // only if free at once
  grpc::ClientContext again_context;
  auto again_reader = stub_->AwaitFuel(&again_context, again);
  while (again_reader->Read(&response)) {
  }
  EXPECT_TRUE(again_reader->Finish().ok());  // admitted: wait limit passed
  for (size_t i = 1; i < contexts.size(); ++i) {
    contexts[i]->TryCancel();
    readers[i]->Finish().IgnoreError();
  }
}

TEST_F(LimitsTest, AnOversizedRequestIsResourceExhausted) {
  v1::CreateThrottleRequest big;
  big.set_name(std::string(5000, 'x'));
  v1::CreateThrottleResponse ignored;
  grpc::ClientContext context;
  const grpc::Status status = stub_->CreateThrottle(&context, big, &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("4096"));
  v1::ListThrottlesResponse list;
  grpc::ClientContext list_context;
  EXPECT_TRUE(stub_->ListThrottles(&list_context, {}, &list).ok());
  EXPECT_EQ(list.throttles_size(), 1);
}

}  // namespace
}  // namespace throttle::server
