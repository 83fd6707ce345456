// A test fixture with the real server in-process on 127.0.0.1:0 and a
// channel to it; the server is shut down after each test.
#ifndef THROTTLE_TESTS_SUPPORT_LOOPBACK_SERVER_H_
#define THROTTLE_TESTS_SUPPORT_LOOPBACK_SERVER_H_

#include <memory>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/throttle_server.h"

namespace throttle::testing {

class LoopbackServerTest : public ::testing::Test {
 public:
  // Subclasses may change options_ (a fake clock, say) before SetUp.
  void SetUp() override {
    options_.listen_address = "127.0.0.1:0";
    auto started = server::ThrottleServer::Start(options_);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(5));
  }

 protected:
  server::ServerOptions options_;
  std::unique_ptr<server::ThrottleServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace throttle::testing

#endif  // THROTTLE_TESTS_SUPPORT_LOOPBACK_SERVER_H_
