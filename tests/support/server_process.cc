#include "tests/support/server_process.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

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
    const TempDir& dir, int port, const std::vector<std::string>& extra_flags) {
  const std::string port_file =
      dir.File(absl::StrCat("port.", absl::ToUnixNanos(absl::Now())));
  std::vector<std::string> argv = {THROTTLE_SERVER_BINARY,
                                   absl::StrCat("--listen=127.0.0.1:", port),
                                   "--port_file=" + port_file};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  absl::StatusOr<Subprocess> process = Subprocess::Spawn(argv);
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

absl::StatusOr<Subprocess> StartWorker(const std::string& address,
                                       const std::string& throttle,
                                       const std::string& worker_id,
                                       const std::string& output_path) {
  return Subprocess::Spawn(
      {THROTTLE_TEST_WORKER_BINARY, "--address=" + address,
       "--throttle=" + throttle, "--worker_id=" + worker_id},
      output_path);
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

}  // namespace throttle::testing
