// Operations endpoints as a generic tool sees them: gRPC health checking and
// server reflection, called with raw protobuf bytes through a generic stub
// (no generated code of those services is needed, as with grpcurl).
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/loopback_server.h"

namespace throttle::server {
namespace {

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// A length-delimited field of a protobuf message (length < 128).
std::string Field(int number, const std::string& value) {
  return absl::StrCat(std::string(1, static_cast<char>(number << 3 | 2)),
                      std::string(1, static_cast<char>(value.size())), value);
}

using OperationsTest = testing::LoopbackServerTest;

TEST_F(OperationsTest, HealthSaysServingForServerAndService) {
  grpc::GenericStub stub(channel_);
  for (const std::string service : {"", "throttle.v1.Throttle"}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    const grpc::ByteBuffer request =
        ToBuffer(service.empty() ? "" : Field(1, service));
    grpc::ByteBuffer response;
    grpc::Status status;
    absl::Notification done;
    stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", {}, &request,
                   &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    ASSERT_TRUE(status.ok()) << service << ": " << status.error_message();
    // HealthCheckResponse{status: SERVING (1)}.
    EXPECT_EQ(FromBuffer(response), std::string("\x08\x01", 2)) << service;
  }
}

// Sends one ServerReflectionRequest{list_services: "*"} and reads the reply.
class ListServices final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ListServices(grpc::GenericStub* stub) : request_(ToBuffer(Field(7, "*"))) {
    context_.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(30));
    stub->PrepareBidiStreamingCall(
        &context_,
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", {},
        this);
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }
  void OnWriteDone(bool /*ok*/) override { StartWritesDone(); }
  void OnReadDone(bool ok) override {
    if (ok) {
      reply_ += FromBuffer(response_);
      StartRead(&response_);
    }
  }
  void OnDone(const grpc::Status& status) override {
    status_ = status;
    done_.Notify();
  }
  std::string Await(grpc::Status* status) {
    done_.WaitForNotification();
    *status = status_;
    return reply_;
  }

 private:
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::string reply_;
  grpc::Status status_;
  absl::Notification done_;
};

TEST_F(OperationsTest, ReflectionListsTheThrottleService) {
  grpc::GenericStub stub(channel_);
  ListServices call(&stub);
  grpc::Status status;
  const std::string reply = call.Await(&status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(reply.find("throttle.v1.Throttle"), std::string::npos);
  EXPECT_NE(reply.find("grpc.health.v1.Health"), std::string::npos);
}

}  // namespace
}  // namespace throttle::server
