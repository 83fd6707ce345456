// A test fixture with the real server in-process on 127.0.0.1:0, its
// durable state in a fresh directory (a file store, as --state_dir) and a
// fake clock, and the controller calls on a stub to it. The server can be
// stopped and started again on the same state, as a restarted process
// would be; the directory is removed after each test.
#ifndef THROTTLE_TESTS_SUPPORT_STATE_DIR_SERVER_H_
#define THROTTLE_TESTS_SUPPORT_STATE_DIR_SERVER_H_

#include <stdlib.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/throttle_server.h"
#include "server/state/file_store.h"
#include "tests/support/controller_calls.h"
#include "tests/support/fake_clock.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::testing {

class StateDirServerTest : public ::testing::Test, public ControllerCalls {
 public:
  // `dir_template` is the state directory's mkdtemp template (it ends in
  // XXXXXX).
  explicit StateDirServerTest(std::string dir_template)
      : dir_template_(std::move(dir_template)) {}

  // Subclasses may change options_ before calling this; it sets the
  // address, the clock and the store.
  void SetUp() override {
    std::string dir = dir_template_;
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    auto store = server::OpenFileStore(dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    options_.listen_address = "127.0.0.1:0";
    options_.clock = &clock_;
    options_.store = store_.get();
    StartServer();
  }
  void TearDown() override {
    StopServer();
    std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }

  // Starts a server on options_ (the same state) and points stub_ at it.
  void StartServer() {
    auto started = server::ThrottleServer::Start(options_);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    stub_ = v1::Throttle::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                            grpc::InsecureChannelCredentials()));
  }
  // Shuts the server down (a 5 s deadline); a no-op when none runs.
  void StopServer() {
    if (server_) server_->Shutdown(absl::Seconds(5));
    server_.reset();
  }

 protected:
  const std::string dir_template_;
  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<server::StateStore> store_;
  server::ServerOptions options_;
  std::unique_ptr<server::ThrottleServer> server_;
};

}  // namespace throttle::testing

#endif  // THROTTLE_TESTS_SUPPORT_STATE_DIR_SERVER_H_
