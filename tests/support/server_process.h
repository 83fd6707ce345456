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
// (0 = any free port), and waits until it reports its port. With a
// `log_path`, its standard output and error (the logfmt log) are appended
// there (see SpawnServer).
absl::StatusOr<ServerProcess> StartServer(
    const TempDir& dir, int port, const std::vector<std::string>& extra_flags,
    const std::string& log_path = "");

// Stops a server the way an operator does (SIGTERM) and waits up to
// `timeout` for it: its exit code, or -1 if it did not exit in time.
int StopServer(ServerProcess& server, absl::Duration timeout);

// Starts a test_worker writing to `output_path`, with `flags` added (e.g.
// "--priority=3").
absl::StatusOr<Subprocess> StartWorker(
    const std::string& address, const std::string& throttle,
    const std::string& worker_id, const std::string& output_path,
    const std::vector<std::string>& flags = {});

// Replaces `path` with `text` in one rename, as editors and kubelet do:
// a server reading it never sees half a file. Fails the current test if it
// cannot.
void WriteFile(const std::string& path, const std::string& text);

// Lines of a file; empty if it does not exist.
std::vector<std::string> ReadLines(const std::string& path);
// How many lines equal `line`.
int64_t CountLines(const std::string& path, const std::string& line);

// Polls `condition` every 10 ms until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout);

// `n` distinct ports of 127.0.0.1 that were free when picked (each bound to
// port 0, all held together, then closed). INTERNAL if a socket fails.
absl::StatusOr<std::vector<int>> PickFreePorts(int n);

// Starts throttle_server with `flags` as they are (no --listen or
// --port_file added) and returns at once, without waiting for a port: a
// high-available standby does not serve until it leads. Its standard
// output and error (the logfmt log) are appended to `log_path`; the
// process is the server itself (its pid is the one in its grant log).
absl::StatusOr<Subprocess> SpawnServer(const std::vector<std::string>& flags,
                                       const std::string& log_path);

// A few test_worker processes on one throttle, each writing to a file of
// its own in a TempDir. Kills (SIGKILL) and reaps the workers still running
// on destruction. Not thread-safe.
class WorkerFleet {
 public:
  // Starts `n` workers "w0".."w<n-1>" on `address` (any target the client
  // library takes, e.g. "ipv4:127.0.0.1:P1,127.0.0.1:P2") and `throttle`,
  // writing to dir/worker<i>.out. A worker that cannot be started fails
  // the current test (size() is then smaller).
  WorkerFleet(const TempDir& dir, const std::string& address,
              const std::string& throttle, int n);

  size_t size() const { return workers_.size(); }
  Subprocess& worker(size_t i) { return workers_[i]; }
  // The "fuel" lines worker `i` wrote so far.
  int64_t Grants(size_t i) const;
  // Grants(i) of every worker, in order, and their sum.
  std::vector<int64_t> GrantCounts() const;
  int64_t TotalGrants() const;
  // Whether every worker wrote more "fuel" lines than `before[i]`.
  bool EachGrewPast(const std::vector<int64_t>& before) const;
  // Whether every worker is still running (none exited or was killed).
  bool AllRunning();
  // The last line worker `i` wrote ("" if none).
  std::string LastLine(size_t i) const;

 private:
  std::vector<std::string> outputs_;
  std::vector<Subprocess> workers_;
};

}  // namespace throttle::testing

#endif  // THROTTLE_TESTS_SUPPORT_SERVER_PROCESS_H_
