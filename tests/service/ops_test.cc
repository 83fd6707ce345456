// The server as a generic tool sees it: gRPC health checking and server
// reflection, and requests that do not parse, called with raw protobuf
// bytes through a generic stub (no generated code of those services is
// needed, as with grpcurl).
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/log.h"
#include "tests/support/loopback_server.h"

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

// One unary call of `method` with `request` as its raw bytes; the reply's
// bytes go to `*response` if given.
grpc::Status RawUnaryCall(grpc::GenericStub* stub, const std::string& method,
                          const std::string& request,
                          std::string* response = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  const grpc::ByteBuffer request_buffer = ToBuffer(request);
  grpc::ByteBuffer response_buffer;
  grpc::Status status;
  absl::Notification done;
  stub->UnaryCall(&context, method, {}, &request_buffer, &response_buffer,
                  [&](grpc::Status s) {
                    status = std::move(s);
                    done.Notify();
                  });
  done.WaitForNotification();
  if (response != nullptr) *response = FromBuffer(response_buffer);
  return status;
}

using OperationsTest = testing::LoopbackServerTest;

TEST_F(OperationsTest, HealthSaysServingForServerAndService) {
  grpc::GenericStub stub(channel_);
  for (const std::string service : {"", "throttle.v1.Throttle"}) {
    std::string response;
    const grpc::Status status =
        RawUnaryCall(&stub, "/grpc.health.v1.Health/Check",
                     service.empty() ? "" : Field(1, service), &response);
    ASSERT_TRUE(status.ok()) << service << ": " << status.error_message();
    // HealthCheckResponse{status: SERVING (1)}.
    EXPECT_EQ(response, std::string("\x08\x01", 2)) << service;
  }
}

// Sends one request of raw bytes to a streaming `method`, half-closes, and
// reads every reply (a server-streaming method is called so too).
class RawStreamingCall final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RawStreamingCall(grpc::GenericStub* stub, const std::string& method,
                   const std::string& request)
      : request_(ToBuffer(request)) {
    context_.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(30));
    stub->PrepareBidiStreamingCall(&context_, method, {}, this);
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
  // ServerReflectionRequest{list_services: "*"}.
  RawStreamingCall call(
      &stub, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      Field(7, "*"));
  grpc::Status status;
  const std::string reply = call.Await(&status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(reply.find("throttle.v1.Throttle"), std::string::npos);
  EXPECT_NE(reply.find("grpc.health.v1.Health"), std::string::npos);
}

// --- Requests that do not parse ------------------------------------------
// gRPC itself would answer them UNIMPLEMENTED with no message.

using ::testing::HasSubstr;

TEST_F(OperationsTest, InvalidUtf8NameIsInvalidArgumentNamingTheField) {
  grpc::GenericStub stub(channel_);
  // CreateThrottleRequest{name: "\xff\xfe"}: a proto3 string must be UTF-8.
  const grpc::Status status = RawUnaryCall(
      &stub, "/throttle.v1.Throttle/CreateThrottle", Field(1, "\xff\xfe"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("throttle.v1.CreateThrottleRequest.name"));
  EXPECT_THAT(status.error_message(), HasSubstr("UTF-8"));
}

TEST_F(OperationsTest, TruncatedRequestIsInvalidArgumentNamingTheType) {
  grpc::GenericStub stub(channel_);
  // StartRequest{throttle: ...} whose field says 10 bytes and carries 3.
  const grpc::Status status = RawUnaryCall(&stub, "/throttle.v1.Throttle/Start",
                                           std::string("\x0a\x0a", 2) + "abc");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("does not parse as throttle.v1.StartRequest"));
}

TEST_F(OperationsTest, UnparsableAwaitFuelIsInvalidArgument) {
  grpc::GenericStub stub(channel_);
  for (const std::string& request :
       {Field(1, "\xc3"), std::string("\x0a\x05", 2) + "ab"}) {
    RawStreamingCall call(&stub, "/throttle.v1.Throttle/AwaitFuel", request);
    grpc::Status status;
    EXPECT_EQ(call.Await(&status), "");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(),
                HasSubstr("throttle.v1.AwaitFuelRequest"));
  }
}

TEST_F(OperationsTest, UnknownMethodIsStillUnimplemented) {
  grpc::GenericStub stub(channel_);
  EXPECT_EQ(RawUnaryCall(&stub, "/throttle.v1.Throttle/NoSuchMethod", "")
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(OperationsTest, ProtobufComplaintsFollowTheLogLevel) {
  grpc::GenericStub stub(channel_);
  const std::string bad_name = Field(1, "\xff");
  ::testing::internal::CaptureStderr();
  RawUnaryCall(&stub, "/throttle.v1.Throttle/CreateThrottle", bad_name);
  const std::string at_info = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(at_info, ::testing::Not(HasSubstr("libprotobuf")));
  EXPECT_THAT(at_info, ::testing::Not(HasSubstr("UTF-8")));

  SetLogLevel(LogLevel::kDebug);
  ::testing::internal::CaptureStderr();
  RawUnaryCall(&stub, "/throttle.v1.Throttle/CreateThrottle", bad_name);
  const std::string at_debug = ::testing::internal::GetCapturedStderr();
  SetLogLevel(LogLevel::kInfo);
  EXPECT_THAT(at_debug, ::testing::Not(HasSubstr("libprotobuf")));
  EXPECT_THAT(at_debug, HasSubstr("level=debug event=protobuf_log"));
  EXPECT_THAT(at_debug, HasSubstr("event=call_failed method=CreateThrottle "
                                  "code=INVALID_ARGUMENT"));
}

}  // namespace
}  // namespace throttle::server
