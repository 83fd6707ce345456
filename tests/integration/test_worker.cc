// A worker process for the integration tests: runs the seed's loop through
// the client library and writes one line per grant ("fuel"), then one line
// saying how it ended ("stopped" or "error <status>"). Flushes every line,
// so a test can count grants of a worker it kills.
//
// With --await_fuel=N it makes one raw AwaitFuel call for N grants instead
// (the server-streaming RPC the client library no longer uses), writing
// "fuel" per grant and then "stopped" or "error <status>".
//
// --priority=P gives the worker (either way) priority class P.
// With --report=success or --report=rejection (the client library's loop
// only) it stands for a worker whose downstream accepts or rejects all of
// its work: after each grant it reports that one outcome to the
// throttle's adaptive ceiling (Tank::Report); a failed report is
// "error <status>", exit 1.
// With --grant_times=PATH it also appends the time of each grant to PATH,
// one line of CLOCK_MONOTONIC nanoseconds (std::chrono::steady_clock, the
// clock of every process on the host), for bench/degrade.sh.
//
// With --unless_late_ms=T each wait of the loop is
// Tank::AwaitFuelUnlessLate(1, T ms) (the Tank's AwaitFuel calls, not its
// stream); a wait that times out or would be late is simply made again.
//
// With --tls_ca, --tls_cert, --tls_key, --token, --token_file,
// --tls_server_name (or their THROTTLE_* environment variables) it connects
// over TLS, mTLS or with a token (throttle/channel.h); a bad security
// option is "error <status>" before "ready", exit 1.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "throttle/channel.h"
#include "throttle/tank.h"

ABSL_FLAG(std::string, address, "", "host:port of the server");
ABSL_FLAG(std::string, throttle, "", "throttle name");
ABSL_FLAG(std::string, worker_id, "", "worker id");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA of the server (TLS)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate (mTLS)");
ABSL_FLAG(std::string, tls_key, "", "private key of --tls_cert");
ABSL_FLAG(std::string, token, "", "bearer token (TLS only)");
ABSL_FLAG(std::string, token_file, "", "file holding the bearer token");
ABSL_FLAG(std::string, tls_server_name, "",
          "name the server's certificate must hold (TLS only)");
ABSL_FLAG(int64_t, priority, 0, "priority class (TankOptions::priority)");
ABSL_FLAG(std::string, grant_times, "",
          "if set: append each grant's CLOCK_MONOTONIC ns to this file");
ABSL_FLAG(std::string, report, "",
          "success or rejection: after each grant, report the work it "
          "stood for as that outcome (Tank::Report); empty: no reports");
ABSL_FLAG(int64_t, unless_late_ms, 0,
          "if > 0: each wait is AwaitFuelUnlessLate(1, this many ms)");
ABSL_FLAG(int64_t, await_fuel, 0,
          "if > 0: one raw AwaitFuel call for this many grants instead of "
          "the client library's loop");

namespace {

// One AwaitFuel call for `count` grants; prints as main does.
int RunAwaitFuel(const std::shared_ptr<grpc::Channel>& channel, int64_t count) {
  auto stub = throttle::v1::Throttle::NewStub(channel);
  throttle::v1::AwaitFuelRequest request;
  request.set_throttle(absl::GetFlag(FLAGS_throttle));
  request.set_worker_id(absl::GetFlag(FLAGS_worker_id));
  request.set_count(count);
  request.set_priority(absl::GetFlag(FLAGS_priority));
  grpc::ClientContext context;
  auto reader = stub->AwaitFuel(&context, request);
  std::printf("ready\n");
  std::fflush(stdout);
  throttle::v1::AwaitFuelResponse response;
  while (reader->Read(&response)) {
    for (int64_t i = 0; i < response.grants(); ++i) std::printf("fuel\n");
    std::fflush(stdout);
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) {
    std::printf("error %s\n", status.error_message().c_str());
    return 1;
  }
  std::printf("stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  throttle::TankOptions options;
  options.worker_id = absl::GetFlag(FLAGS_worker_id);
  options.priority = absl::GetFlag(FLAGS_priority);
  throttle::ChannelSecurity flags;
  flags.ca_file = absl::GetFlag(FLAGS_tls_ca);
  flags.cert_file = absl::GetFlag(FLAGS_tls_cert);
  flags.key_file = absl::GetFlag(FLAGS_tls_key);
  flags.token = absl::GetFlag(FLAGS_token);
  flags.token_file = absl::GetFlag(FLAGS_token_file);
  flags.server_name = absl::GetFlag(FLAGS_tls_server_name);
  const absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      throttle::CreateChannel(absl::GetFlag(FLAGS_address),
                              throttle::ChannelSecurityFromEnvironment(flags),
                              options.backoff_initial, options.backoff_max);
  if (!channel.ok()) {
    std::printf("error %s\n", channel.status().ToString().c_str());
    return 1;
  }
  if (const int64_t count = absl::GetFlag(FLAGS_await_fuel); count > 0) {
    return RunAwaitFuel(*channel, count);
  }
  const std::string report = absl::GetFlag(FLAGS_report);
  if (report != "" && report != "success" && report != "rejection") {
    std::printf("error --report must be success or rejection, got \"%s\"\n",
                report.c_str());
    return 1;
  }
  throttle::Tank tank(*channel, absl::GetFlag(FLAGS_throttle), options);
  const int64_t unless_late_ms = absl::GetFlag(FLAGS_unless_late_ms);
  std::FILE* times = nullptr;
  if (const std::string path = absl::GetFlag(FLAGS_grant_times);
      !path.empty()) {
    times = std::fopen(path.c_str(), "a");
    if (times == nullptr) {
      std::printf("error cannot open %s\n", path.c_str());
      return 1;
    }
  }
  std::printf("ready\n");
  std::fflush(stdout);
  while (!tank.killed()) {
    const throttle::FuelResult fuel =
        unless_late_ms > 0
            ? tank.AwaitFuelUnlessLate(1, absl::Milliseconds(unless_late_ms))
            : tank.AwaitFuel();
    if (fuel.outcome == throttle::FuelOutcome::kError) {
      std::printf("error %s\n", fuel.status.ToString().c_str());
      return 1;
    }
    if (fuel.ok()) {
      if (times != nullptr) {
        std::fprintf(
            times, "%lld\n",
            static_cast<long long>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count()));
        std::fflush(times);
      }
      std::printf("fuel\n");
      std::fflush(stdout);
      if (!report.empty()) {
        const bool accepted = report == "success";
        const absl::StatusOr<int64_t> rate =
            tank.Report(accepted ? 1 : 0, accepted ? 0 : 1);
        if (!rate.ok() && !tank.killed()) {
          std::printf("error %s\n", rate.status().ToString().c_str());
          return 1;
        }
      }
    }
  }
  std::printf("stopped\n");
  return 0;
}
