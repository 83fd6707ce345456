// Starting and reaping child processes, for the tutorial and the tests.
//
// Children are started with posix_spawn (fork+exec), never a bare fork():
// gRPC's threads do not survive a fork.
#ifndef THROTTLE_TESTS_SUPPORT_SUBPROCESS_H_
#define THROTTLE_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace throttle {

// A child process. Not thread-safe. Kills (SIGKILL) and reaps the child on
// destruction if it is still running.
class Subprocess {
 public:
  // Starts `argv` (argv[0] is a path). Standard output goes to
  // `stdout_path` (created or truncated) when non-empty, else it is
  // inherited. Returns INTERNAL if the process cannot be started.
  static absl::StatusOr<Subprocess> Spawn(const std::vector<std::string>& argv,
                                          const std::string& stdout_path = "");

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();

  pid_t pid() const { return pid_; }

  // Sends `signal` to the child if it is still running.
  void Signal(int signal);

  // Waits up to `timeout` for the child to exit. Returns its exit code (or
  // 128 + signal when killed by a signal); DEADLINE_EXCEEDED if it is still
  // running. Blocks, polling every few milliseconds.
  absl::StatusOr<int> Wait(absl::Duration timeout);

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
};

// The path of the running executable (/proc/self/exe).
std::string SelfExecutable();

}  // namespace throttle

#endif  // THROTTLE_TESTS_SUPPORT_SUBPROCESS_H_
