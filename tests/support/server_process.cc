#include "tests/support/server_process.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace throttle::testing {

TempDir::TempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "throttle_test.XXXXXX")
          .string();
  path_ = mkdtemp(pattern.data()) == nullptr ? "" : pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

std::string ServerProcess::address() const {
  return absl::StrCat("127.0.0.1:", port);
}

absl::StatusOr<ServerProcess> StartServer(
    const TempDir& dir, int port, const std::vector<std::string>& extra_flags,
    const std::string& log_path) {
  const std::string port_file =
      dir.File(absl::StrCat("port.", absl::ToUnixNanos(absl::Now())));
  std::vector<std::string> flags = {absl::StrCat("--listen=127.0.0.1:", port),
                                    "--port_file=" + port_file};
  flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
  std::vector<std::string> argv = {THROTTLE_SERVER_BINARY};
  argv.insert(argv.end(), flags.begin(), flags.end());
  absl::StatusOr<Subprocess> process =
      log_path.empty() ? Subprocess::Spawn(argv) : SpawnServer(flags, log_path);
  if (!process.ok()) return process.status();
  int bound = 0;
  const bool up = WaitFor(
      [&] {
        const std::vector<std::string> lines = ReadLines(port_file);
        return !lines.empty() && absl::SimpleAtoi(lines[0], &bound) &&
               bound > 0;
      },
      absl::Seconds(30));
  if (!up) {
    return absl::DeadlineExceededError("throttle_server did not report a port");
  }
  return ServerProcess{*std::move(process), bound};
}

int StopServer(ServerProcess& server, absl::Duration timeout) {
  server.process.Signal(SIGTERM);
  return server.process.Wait(timeout).value_or(-1);
}

absl::StatusOr<Subprocess> StartWorker(const std::string& address,
                                       const std::string& throttle,
                                       const std::string& worker_id,
                                       const std::string& output_path,
                                       const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {
      THROTTLE_TEST_WORKER_BINARY, "--address=" + address,
      "--throttle=" + throttle, "--worker_id=" + worker_id};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return Subprocess::Spawn(argv, output_path);
}

void WriteFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::FILE* out = std::fopen(tmp.c_str(), "w");
  ASSERT_NE(out, nullptr) << tmp;
  std::fputs(text.c_str(), out);
  std::fclose(out);
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0) << path;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

int64_t CountLines(const std::string& path, const std::string& line) {
  int64_t n = 0;
  for (const std::string& l : ReadLines(path)) n += (l == line);
  return n;
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

absl::StatusOr<std::vector<int>> PickFreePorts(int n) {
  std::vector<int> fds;
  std::vector<int> ports;
  absl::Status status;
  for (int i = 0; i < n && status.ok(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0) fds.push_back(fd);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fd < 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      status = absl::InternalError(
          absl::StrCat("picking a free port: ", std::strerror(errno)));
    } else {
      ports.push_back(ntohs(address.sin_port));
    }
  }
  for (int fd : fds) close(fd);
  if (!status.ok()) return status;
  return ports;
}

absl::StatusOr<Subprocess> SpawnServer(const std::vector<std::string>& flags,
                                       const std::string& log_path) {
  // The shell only redirects and then becomes the server (exec): the pid
  // stays the server's, so signals reach it directly.
  std::vector<std::string> argv = {
      "/bin/sh", "-c",     "log=$1; shift; exec \"$@\" >>\"$log\" 2>&1",
      "sh",      log_path, THROTTLE_SERVER_BINARY};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return Subprocess::Spawn(argv);
}

WorkerFleet::WorkerFleet(const TempDir& dir, const std::string& address,
                         const std::string& throttle, int n) {
  for (int i = 0; i < n; ++i) {
    std::string output = dir.File(absl::StrCat("worker", i, ".out"));
    absl::StatusOr<Subprocess> worker =
        StartWorker(address, throttle, absl::StrCat("w", i), output);
    EXPECT_TRUE(worker.ok()) << worker.status();
    if (!worker.ok()) continue;
    outputs_.push_back(std::move(output));
    workers_.push_back(*std::move(worker));
  }
}

int64_t WorkerFleet::Grants(size_t i) const {
  return CountLines(outputs_[i], "fuel");
}

std::vector<int64_t> WorkerFleet::GrantCounts() const {
  std::vector<int64_t> counts;
  for (size_t i = 0; i < outputs_.size(); ++i) counts.push_back(Grants(i));
  return counts;
}

int64_t WorkerFleet::TotalGrants() const {
  int64_t total = 0;
  for (int64_t grants : GrantCounts()) total += grants;
  return total;
}

bool WorkerFleet::EachGrewPast(const std::vector<int64_t>& before) const {
  for (size_t i = 0; i < outputs_.size(); ++i) {
    if (i >= before.size() || Grants(i) <= before[i]) return false;
  }
  return true;
}

bool WorkerFleet::AllRunning() {
  for (Subprocess& worker : workers_) {
    if (worker.Wait(absl::ZeroDuration()).ok()) return false;
  }
  return true;
}

std::string WorkerFleet::LastLine(size_t i) const {
  const std::vector<std::string> lines = ReadLines(outputs_[i]);
  return lines.empty() ? "" : lines.back();
}

}  // namespace throttle::testing
