// throttle_server: parses flags, starts the server, waits for SIGTERM or
// SIGINT, shuts down with a deadline. Nothing else.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/convert.h"
#include "server/service/log.h"
#include "server/service/record.h"
#include "server/service/throttle_server.h"
#include "server/state/file_store.h"
#include "server/usage.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to listen on; port 0 picks a free port");
ABSL_FLAG(std::string, throttle, "",
          "throttles to create at start-up, separated by ';', each "
          "'NAME max_n=N per=SECONDS [mode=M] [burst=N] [manual_emit=B]'");
ABSL_FLAG(std::string, config, "",
          "file with one throttle per line in the --throttle syntax "
          "('#' starts a comment)");
ABSL_FLAG(std::string, port_file, "",
          "if set, the bound port is written to this file once serving");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port for Prometheus metrics over HTTP (/metrics); empty: "
          "none; port 0 picks a free port");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "how long calls may drain on SIGTERM before they are cancelled");
ABSL_FLAG(std::string, state_dir, "",
          "directory where every throttle (config, state, statistics, "
          "limiter) is kept across restarts; empty: nothing is kept");
ABSL_FLAG(absl::Duration, reservation_ahead, absl::Milliseconds(250),
          "with durable state, grants are reserved in the store this much "
          "of a throttle's rate at a time (at least 2 grants); a restart or "
          "takeover loses at most one such chunk");
ABSL_FLAG(absl::Duration, stream_stall_timeout, absl::Milliseconds(500),
          "a stream whose previous write has not drained for this long is "
          "stalled: its grants go to the other streams until it drains");

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "throttle_server: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  throttle::ParseCommandLineWithUsage(
      argc, argv, "Serves shared throttles over gRPC (throttle.v1.Throttle).",
      __FILE__);
  // Debian's Abseil is built with mutex deadlock detection on, which keeps
  // a lock graph on every acquisition (seen in perf profiles). The tests
  // keep it; the production binary does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  throttle::server::LogLevel level;
  if (!throttle::server::ParseLogLevel(absl::GetFlag(FLAGS_log_level),
                                       &level)) {
    return Fail("--log_level must be debug, info, warning or error, got " +
                absl::GetFlag(FLAGS_log_level));
  }
  throttle::server::SetLogLevel(level);

  throttle::server::ServerOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.stream_stall_timeout = absl::GetFlag(FLAGS_stream_stall_timeout);
  if (options.stream_stall_timeout <= absl::ZeroDuration()) {
    return Fail("--stream_stall_timeout must be > 0, got " +
                absl::FormatDuration(options.stream_stall_timeout));
  }
  std::vector<std::string> specs = absl::StrSplit(absl::GetFlag(FLAGS_throttle),
                                                  ';', absl::SkipWhitespace());
  if (const std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    std::ifstream file(path);
    if (!file) return Fail("cannot read --config file " + path);
    for (std::string line; std::getline(file, line);) {
      absl::string_view spec = absl::StripAsciiWhitespace(
          absl::string_view(line).substr(0, line.find('#')));
      if (!spec.empty()) specs.emplace_back(spec);
    }
  }
  for (const std::string& spec : specs) {
    auto parsed = throttle::server::ParseThrottleSpec(spec);
    if (!parsed.ok()) return Fail(std::string(parsed.status().message()));
    options.throttles.push_back(*std::move(parsed));
  }

  std::unique_ptr<throttle::server::StateStore> store;
  if (const std::string dir = absl::GetFlag(FLAGS_state_dir); !dir.empty()) {
    auto opened = throttle::server::OpenFileStore(dir);
    if (!opened.ok()) return Fail(std::string(opened.status().message()));
    store = *std::move(opened);
    options.store = store.get();
  }
  options.reservation_ahead = absl::GetFlag(FLAGS_reservation_ahead);
  if (options.reservation_ahead <= absl::ZeroDuration()) {
    return Fail("--reservation_ahead must be > 0, got " +
                absl::FormatDuration(options.reservation_ahead));
  }
  options.writer = throttle::server::WriterName();

  // Block the signals before gRPC starts its threads, then wait for them
  // here: no handler runs in a random thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = throttle::server::ThrottleServer::Start(options);
  if (!server.ok()) return Fail(std::string(server.status().message()));
  throttle::server::Log(
      throttle::server::LogLevel::kInfo, "server_serving",
      {{"address", options.listen_address},
       {"port", absl::StrCat((*server)->port())},
       {"metrics_port", absl::StrCat((*server)->metrics_port())},
       {"throttles", absl::StrCat(options.throttles.size())}});
  if (const std::string path = absl::GetFlag(FLAGS_port_file); !path.empty()) {
    const std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp);
      out << (*server)->port() << "\n";
      if (!out) return Fail("cannot write --port_file " + path);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      return Fail("cannot write --port_file " + path);
    }
  }

  int signal = 0;
  sigwait(&signals, &signal);
  throttle::server::Log(throttle::server::LogLevel::kInfo,
                        "server_shutting_down",
                        {{"signal", absl::StrCat(signal)}});
  (*server)->Shutdown(absl::GetFlag(FLAGS_shutdown_grace));
  return 0;
}
