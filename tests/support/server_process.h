// Test helpers that start the real throttle_server binary and real worker
// processes on 127.0.0.1, and read what the workers wrote.
#ifndef THROTTLE_TESTS_SUPPORT_SERVER_PROCESS_H_
#define THROTTLE_TESTS_SUPPORT_SERVER_PROCESS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"

namespace throttle::testing {

// A scratch directory removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The real server binary, started with --listen=127.0.0.1:PORT.
struct ServerProcess {
  Subprocess process;
  int port;
  std::string address() const;
};

// Starts throttle_server (beside the test binary, path from the
// THROTTLE_SERVER_BINARY compile definition) with `extra_flags`, on `port`
// (0 = any free port), and waits until it reports its port.
absl::StatusOr<ServerProcess> StartServer(
    const TempDir& dir, int port, const std::vector<std::string>& extra_flags);

// Starts a test_worker writing to `output_path`.
absl::StatusOr<Subprocess> StartWorker(const std::string& address,
                                       const std::string& throttle,
                                       const std::string& worker_id,
                                       const std::string& output_path);

// Lines of a file; empty if it does not exist.
std::vector<std::string> ReadLines(const std::string& path);
// How many lines equal `line`.
int64_t CountLines(const std::string& path, const std::string& line);

// Polls `condition` every 10 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout);

}  // namespace throttle::testing

#endif  // THROTTLE_TESTS_SUPPORT_SERVER_PROCESS_H_
