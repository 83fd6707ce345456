// raw_ceiling_server: the transport's ceiling for throttle_bench.
//
// Implements only throttle.v1.Throttle/AwaitFuel with no scheduler at all:
// a count-1 call gets one grant at once (write and finish); a count-0
// stream gets one-grant messages as fast as the transport takes them (one
// write in flight). Everything else is UNIMPLEMENTED. Its figures bound
// what the real server can reach on the same machine in the same run.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "throttle/v1/throttle.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "host:port to listen on");
ABSL_FLAG(std::string, port_file, "", "the bound port is written here");

namespace {

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

class RawService final : public throttle::v1::Throttle::CallbackService {
  grpc::ServerWriteReactor<AwaitFuelResponse>* AwaitFuel(
      grpc::CallbackServerContext* /*context*/,
      const AwaitFuelRequest* request) override {
    return new Flood(!request->has_count() || request->count() != 0);
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  RawService service;
  grpc::ServerBuilder builder;
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
