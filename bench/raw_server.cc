// raw_ceiling_server: the transport's ceiling for throttle_bench.
//
// Implements only throttle.v1.Throttle/AwaitFuel with no scheduler at all:
// a count-1 call gets one grant at once (write and finish); a count-0
// stream gets one-grant messages as fast as the transport takes them (one
// write in flight). Acquire grants what each message asks for at once
// (demand less withdraw, one message per write, one write in flight).
// Everything else is UNIMPLEMENTED. Its figures bound what the real server
// can reach on the same machine in the same run.
//
// For the memory of an open stream (bench/acquire.sh): --idle makes count-0
// AwaitFuel streams and Acquire streams send their initial metadata at once
// and nothing else until cancelled, so that RSS per stream is gRPC's own;
// --channel_args, --max_receive_message_bytes and --resource_quota_mib set
// server channel arguments to see which of them change it.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/resource_quota.h"
#include "throttle/v1/throttle.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "host:port to listen on");
ABSL_FLAG(std::string, port_file, "", "the bound port is written here");
ABSL_FLAG(bool, idle, false,
          "count-0 AwaitFuel and Acquire streams get their initial metadata "
          "and nothing else (memory per open stream)");
ABSL_FLAG(std::string, channel_args, "",
          "server channel arguments NAME=INTEGER, separated by commas (e.g. "
          "grpc.http2.lookahead_bytes=4096)");
ABSL_FLAG(int, max_receive_message_bytes, 0,
          "ServerBuilder::SetMaxReceiveMessageSize if > 0");
ABSL_FLAG(int, resource_quota_mib, 0,
          "a grpc::ResourceQuota of this many MiB for the server if > 0");

namespace {

using throttle::v1::AcquireRequest;
using throttle::v1::AcquireResponse;
using throttle::v1::AwaitFuelRequest;
using throttle::v1::AwaitFuelResponse;

class Flood final : public grpc::ServerWriteReactor<AwaitFuelResponse> {
 public:
  explicit Flood(bool once) : once_(once) {
    response_.set_grants(1);
    if (once_) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    } else {
      StartWrite(&response_);
    }
  }
  void OnWriteDone(bool ok) override {
    if (ok) {
      StartWrite(&response_);
    } else {
      Finish(grpc::Status::CANCELLED);
    }
  }
  void OnDone() override { delete this; }

 private:
  const bool once_;
  AwaitFuelResponse response_;
};

// --idle: an open stream that gets nothing but its initial metadata.
class Idle final : public grpc::ServerWriteReactor<AwaitFuelResponse> {
 public:
  Idle() { StartSendInitialMetadata(); }
  void OnCancel() override { Finish(grpc::Status::CANCELLED); }
  void OnDone() override { delete this; }
};

// Acquire: grants what was asked, at once; with --idle, nothing (reads
// until the client half-closes or cancels).
class Grants final
    : public grpc::ServerBidiReactor<AcquireRequest, AcquireResponse> {
 public:
  explicit Grants(bool idle) : idle_(idle) {
    if (idle_) StartSendInitialMetadata();
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (!ok) {
      reading_ = false;
      MaybeFinishLocked();
      return;
    }
    owed_ += request_.demand() - std::min(request_.withdraw(), owed_);
    StartRead(&request_);
    MaybeWriteLocked();
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      failed_ = true;
      MaybeFinishLocked();
      return;
    }
    MaybeWriteLocked();
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    failed_ = true;
    MaybeFinishLocked();
  }
  void OnDone() override { delete this; }

 private:
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (idle_ || writing_ || failed_ || owed_ == 0) return;
    response_.set_grants(owed_);
    owed_ = 0;
    writing_ = true;
    StartWrite(&response_);
  }
  // Once reads have ended (half-close or cancel) and no write is in
  // flight.
  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_ || (reading_ && !failed_)) return;
    finished_ = true;
    Finish(failed_ ? grpc::Status::CANCELLED : grpc::Status::OK);
  }

  const bool idle_;
  AcquireRequest request_;
  AcquireResponse response_;
  absl::Mutex mu_;
  int64_t owed_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_ ABSL_GUARDED_BY(mu_) = true;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

class RawService final : public throttle::v1::Throttle::CallbackService {
 public:
  explicit RawService(bool idle) : idle_(idle) {}

 private:
  grpc::ServerWriteReactor<AwaitFuelResponse>* AwaitFuel(
      grpc::CallbackServerContext* /*context*/,
      const AwaitFuelRequest* request) override {
    const bool once = !request->has_count() || request->count() != 0;
    if (idle_ && !once) return new Idle();
    return new Flood(once);
  }
  grpc::ServerBidiReactor<AcquireRequest, AcquireResponse>* Acquire(
      grpc::CallbackServerContext* /*context*/) override {
    return new Grants(idle_);
  }
  const bool idle_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  RawService service(absl::GetFlag(FLAGS_idle));
  grpc::ServerBuilder builder;
  for (absl::string_view arg : absl::StrSplit(absl::GetFlag(FLAGS_channel_args),
                                              ',', absl::SkipEmpty())) {
    const std::vector<std::string> kv = absl::StrSplit(arg, '=');
    int value = 0;
    if (kv.size() != 2 || !absl::SimpleAtoi(kv[1], &value)) {
      std::fprintf(stderr, "raw_ceiling_server: bad --channel_args entry %s\n",
                   std::string(arg).c_str());
      return 1;
    }
    builder.AddChannelArgument(kv[0], value);
  }
  if (const int bytes = absl::GetFlag(FLAGS_max_receive_message_bytes);
      bytes > 0) {
    builder.SetMaxReceiveMessageSize(bytes);
  }
  grpc::ResourceQuota quota("raw_ceiling_server");
  if (const int mib = absl::GetFlag(FLAGS_resource_quota_mib); mib > 0) {
    quota.Resize(static_cast<size_t>(mib) << 20);
    builder.SetResourceQuota(quota);
  }
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "raw_ceiling_server: cannot listen\n");
    return 1;
  }
  if (const std::string path = absl::GetFlag(FLAGS_port_file); !path.empty()) {
    {
      std::ofstream out(path + ".tmp");
      out << port << "\n";
    }
    std::rename((path + ".tmp").c_str(), path.c_str());
  }
  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
