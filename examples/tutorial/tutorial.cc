// throttle_tutorial: the seed's tutorial (mp_throttle) as a runnable
// program.
//
// Starts its own throttle server on 127.0.0.1 (unless --address names one),
// creates a throttle of 4 per 1 s, starts 4 worker processes (this same
// binary with --worker) that run the seed's loop
//
//   while (!tank.killed()) { tank.AwaitFuel(); work(); }
//
// then starts the throttle, sleeps 5 s, stops it and prints the seed's four
// lines. With --stats it prints latest() and mean() every 0.5 s for 10 s
// first, as in "Get the stats".
//
// Against a server with TLS, mTLS or tokens, give --address and the
// security flags (--tls_ca, --tls_cert, --tls_key, --token, --token_file,
// --tls_server_name, or their THROTTLE_* environment variables): the
// controller and every worker connect with them (throttle/channel.h).
// --tls_server_name names the servers' certificate for a multi-address
// --address (ipv4:10.0.0.1:50051,10.0.0.2:50051).
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "server/service/throttle_server.h"
#include "server/usage.h"
#include "tests/support/subprocess.h"
#include "throttle/channel.h"
#include "throttle/controller.h"
#include "throttle/names.h"
#include "throttle/tank.h"

ABSL_FLAG(std::string, address, "",
          "host:port of a running throttle_server; empty starts one in this "
          "process on 127.0.0.1 with a free port");
ABSL_FLAG(std::string, throttle, "tutorial", "name of the throttle to use");
ABSL_FLAG(int, workers, 4, "worker processes to start");
ABSL_FLAG(int64_t, max_n, 4, "grants per --per seconds");
ABSL_FLAG(double, per, 1.0, "seconds of the rate's window");
ABSL_FLAG(std::string, mode, "smooth",
          "smooth, window, bucket, unbounded or monitor-only");
ABSL_FLAG(absl::Duration, run, absl::Seconds(5),
          "how long the throttle runs (without --stats)");
ABSL_FLAG(bool, stats, false,
          "print latest() and mean() every 0.5 s for 10 s before stopping");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA the server's certificate must chain to (turns on TLS); "
          "default $THROTTLE_TLS_CA");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate for mTLS, with --tls_key; default "
          "$THROTTLE_TLS_CERT");
ABSL_FLAG(std::string, tls_key, "",
          "private key of --tls_cert; default $THROTTLE_TLS_KEY");
ABSL_FLAG(std::string, token, "",
          "bearer token, TLS only; default $THROTTLE_TOKEN (prefer it or "
          "--token_file: a command line is visible to other users)");
ABSL_FLAG(std::string, token_file, "",
          "file whose first line is the bearer token; default "
          "$THROTTLE_TOKEN_FILE");
ABSL_FLAG(std::string, tls_server_name, "",
          "the name the server's certificate must hold (TLS only), instead "
          "of the host of --address; needed for a multi-address --address; "
          "default $THROTTLE_TLS_SERVER_NAME");
ABSL_FLAG(bool, worker, false, "internal: run as a worker process");
ABSL_FLAG(std::string, worker_id, "", "internal: the worker's id");

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "throttle_tutorial: %s\n", status.ToString().c_str());
  return 1;
}

// The security flags as given (the environment not yet read).
throttle::ChannelSecurity SecurityFlags() {
  throttle::ChannelSecurity flags;
  flags.ca_file = absl::GetFlag(FLAGS_tls_ca);
  flags.cert_file = absl::GetFlag(FLAGS_tls_cert);
  flags.key_file = absl::GetFlag(FLAGS_tls_key);
  flags.token = absl::GetFlag(FLAGS_token);
  flags.token_file = absl::GetFlag(FLAGS_token_file);
  flags.server_name = absl::GetFlag(FLAGS_tls_server_name);
  return flags;
}

// The command-line flags that give a worker process `security`. A worker
// gets the flags as given and reads the environment it inherits itself, so
// that a token from THROTTLE_TOKEN never lands on a command line.
std::vector<std::string> SecurityArgs(
    const throttle::ChannelSecurity& security) {
  std::vector<std::string> args;
  for (const auto& [flag, value] :
       {std::pair<const char*, const std::string&>{"tls_ca", security.ca_file},
        {"tls_cert", security.cert_file},
        {"tls_key", security.key_file},
        {"token", security.token},
        {"token_file", security.token_file},
        {"tls_server_name", security.server_name}}) {
    if (!value.empty()) args.push_back(absl::StrCat("--", flag, "=", value));
  }
  return args;
}

// The seed's worker: block until fuel, work, repeat until the kill flag.
int RunWorker(const std::string& address, const std::string& throttle,
              const std::string& worker_id) {
  throttle::TankOptions options;
  options.worker_id = worker_id;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      throttle::CreateChannel(
          address, throttle::ChannelSecurityFromEnvironment(SecurityFlags()),
          options.backoff_initial, options.backoff_max);
  if (!channel.ok()) return Fail(channel.status());
  throttle::Tank tank(*channel, throttle, options);
  int64_t grants = 0;
  while (!tank.killed()) {
    throttle::FuelResult fuel = tank.AwaitFuel();
    if (fuel.outcome == throttle::FuelOutcome::kError) {
      std::fprintf(stderr, "%s: %s\n", worker_id.c_str(),
                   fuel.status.ToString().c_str());
      return 1;
    }
    if (fuel.ok()) ++grants;  // work() would go here
  }
  std::fprintf(stderr, "%s got %lld grants\n", worker_id.c_str(),
               static_cast<long long>(grants));
  return 0;
}

// Waits until `n` workers wait on the throttle, so that none misses the
// first grants.
absl::Status AwaitWorkers(const throttle::Controller& controller,
                          const std::string& name, int n) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    auto list = controller.ListThrottles();
    if (!list.ok()) return list.status();
    for (const auto& info : list->throttles()) {
      if (info.name() == name && info.waiting_streams() >= n) {
        return absl::OkStatus();
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("workers did not start waiting in 60 s");
}

}  // namespace

int main(int argc, char** argv) {
  throttle::ParseCommandLineWithUsage(
      argc, argv,
      "Runs the mp_throttle tutorial against the shared throttle service.",
      __FILE__);
  const std::string name = absl::GetFlag(FLAGS_throttle);
  std::string address = absl::GetFlag(FLAGS_address);
  if (absl::GetFlag(FLAGS_worker)) {
    return RunWorker(address, name, absl::GetFlag(FLAGS_worker_id));
  }

  const throttle::ChannelSecurity security =
      throttle::ChannelSecurityFromEnvironment(SecurityFlags());
  std::unique_ptr<throttle::server::ThrottleServer> server;
  if (address.empty()) {
    if (!SecurityArgs(security).empty()) {
      return Fail(absl::InvalidArgumentError(
          "the security flags (--tls_ca, --tls_cert, --tls_key, --token, "
          "--token_file, --tls_server_name or their THROTTLE_* variables) "
          "need --address: the tutorial's own server is plaintext"));
    }
    throttle::server::ServerOptions options;
    options.listen_address = "127.0.0.1:0";
    auto started = throttle::server::ThrottleServer::Start(options);
    if (!started.ok()) return Fail(started.status());
    server = *std::move(started);
    address = absl::StrCat("127.0.0.1:", server->port());
  }

  // throttle = Throttle(4, 1)
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      throttle::CreateChannel(address, security);
  if (!channel.ok()) return Fail(channel.status());
  throttle::Controller controller(*channel);
  throttle::v1::ThrottleConfig config;
  config.set_max_n(absl::GetFlag(FLAGS_max_n));
  config.set_per_seconds(absl::GetFlag(FLAGS_per));
  absl::StatusOr<throttle::v1::Mode> mode =
      throttle::ModeFromName(absl::GetFlag(FLAGS_mode));
  if (!mode.ok()) return Fail(mode.status());
  config.set_mode(*mode);
  auto created = controller.CreateThrottle(name, config);
  if (created.status().code() == absl::StatusCode::kAlreadyExists) {
    // A shared server may keep it from an earlier run: start afresh.
    if (absl::Status s = controller.DeleteThrottle(name); !s.ok())
      return Fail(s);
    created = controller.CreateThrottle(name, config);
  }
  if (!created.ok()) return Fail(created.status());

  // workerpool = Pool(processes=4, initializer=work, initargs=(throttle,))
  std::vector<throttle::Subprocess> workers;
  for (int i = 0; i < absl::GetFlag(FLAGS_workers); ++i) {
    std::vector<std::string> argv = {
        throttle::SelfExecutable(), "--worker", "--address=" + address,
        "--throttle=" + name, absl::StrCat("--worker_id=worker-", i + 1)};
    for (std::string& arg : SecurityArgs(SecurityFlags())) {
      argv.push_back(std::move(arg));
    }
    auto worker = throttle::Subprocess::Spawn(argv);
    if (!worker.ok()) return Fail(worker.status());
    workers.push_back(*std::move(worker));
  }
  if (absl::Status s =
          AwaitWorkers(controller, name, absl::GetFlag(FLAGS_workers));
      !s.ok()) {
    return Fail(s);
  }

  // throttle.start(); time.sleep(5)
  if (auto started = controller.Start(name); !started.ok()) {
    return Fail(started.status());
  }
  if (absl::GetFlag(FLAGS_stats)) {
    for (int i = 0; i < 20; ++i) {
      auto latest = controller.Latest(name);
      auto mean = controller.Mean(name);
      if (!latest.ok()) return Fail(latest.status());
      if (!mean.ok()) return Fail(mean.status());
      std::printf("(%.17g, %.17g)\n", latest->seconds_between_emissions(),
                  latest->emissions_per_second());
      std::printf("(%.17g, %.17g)\n", mean->mean_seconds_between_emissions(),
                  mean->mean_emissions_per_second());
      std::fflush(stdout);
      absl::SleepFor(absl::Milliseconds(500));
    }
  } else {
    absl::SleepFor(absl::GetFlag(FLAGS_run));
  }

  // runtime, total, between, per_second = throttle.stop()
  auto stopped = controller.Stop(name);
  if (!stopped.ok()) return Fail(stopped.status());
  std::printf("Runtime: %.17g\n", stopped->runtime_seconds());
  std::printf("Total: %lld\n",
              static_cast<long long>(stopped->total_emissions()));
  std::printf("Time between processes: %.17g\n",
              stopped->mean_seconds_between_emissions());
  std::printf("Processes per second: %.17g\n",
              stopped->mean_emissions_per_second());
  std::fflush(stdout);

  int failed = 0;
  for (throttle::Subprocess& worker : workers) {
    absl::StatusOr<int> code = worker.Wait(absl::Seconds(30));
    if (!code.ok() || *code != 0) ++failed;
  }
  if (server != nullptr) server->Shutdown(absl::Seconds(5));
  if (failed > 0) {
    std::fprintf(stderr, "throttle_tutorial: %d worker(s) failed\n", failed);
    return 1;
  }
  return 0;
}
