#include "cli/watch.h"

#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cli/watch_view.h"
#include "grpcpp/client_context.h"
#include "throttle/status.h"

namespace throttle::cli {
namespace {

// The signals that end a watch, and the one that wakes the signal thread
// when the watch ends by itself.
sigset_t WatchSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  return set;
}

// Whether the watch was interrupted, and the call to cancel then.
// Thread-safe.
class Interrupt {
 public:
  // Makes `context` the call Stop() cancels; false if Stop() came first.
  bool Begin(grpc::ClientContext* context) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    context_ = context;
    return !stopped_;
  }
  void End() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
  }
  // Cancels the call in flight and ends any Sleep.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  bool stopped() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return stopped_;
  }
  // Waits `duration` or until Stop(); true if stopped.
  bool Sleep(absl::Duration duration) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&stopped_), duration);
  }

 private:
  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Where the view goes: redrawn on a terminal, else line by line.
class Screen {
 public:
  Screen() : tty_(isatty(STDOUT_FILENO) == 1) {
    if (tty_) std::cout << "\x1b[?25l" << std::flush;  // hide the cursor
  }
  ~Screen() {
    if (tty_) std::cout << "\x1b[?25h" << std::flush;
  }

  // Shows `history` with `status`; a line per new snapshot (or status)
  // when not a terminal. False when stdout cannot be written (a closed
  // pipe: `throttlectl watch X | head`).
  bool Show(const WatchHistory& history, const std::string& status,
            bool new_snapshot) {
    if (tty_) {
      std::cout << Redraw(RenderView(history, status, Columns())) << std::flush;
    } else if (new_snapshot) {
      std::cout << RenderLine(history.latest()) << "\n" << std::flush;
    } else if (!status.empty()) {
      std::cout << status << "\n" << std::flush;
    }
    return static_cast<bool>(std::cout);
  }

 private:
  static int Columns() {
    winsize size{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
      return size.ws_col;
    }
    return 80;
  }

  const bool tty_;
};

}  // namespace

void BlockStopSignals() {
  const sigset_t set = WatchSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int RunWatch(const Invocation& invocation, v1::Throttle::StubInterface& stub) {
  Interrupt interrupt;
  std::thread signals([&interrupt] {
    const sigset_t set = WatchSignals();
    int signal = 0;
    sigwait(&set, &signal);
    interrupt.Stop();  // SIGUSR1 too: the watch is over either way
  });
  const v1::WatchThrottleRequest request = WatchRequestOf(invocation);
  WatchHistory history(invocation.interval);
  int exit_status = 0;
  {
    Screen screen;
    constexpr absl::Duration kFirstBackoff = absl::Milliseconds(500);
    constexpr absl::Duration kMaxBackoff = absl::Seconds(8);
    absl::Duration backoff = kFirstBackoff;
    while (true) {
      grpc::ClientContext context;
      if (!interrupt.Begin(&context)) break;
      std::unique_ptr<grpc::ClientReaderInterface<v1::WatchThrottleResponse>>
          reader = stub.WatchThrottle(&context, request);
      v1::WatchThrottleResponse snapshot;
      bool output_failed = false;
      while (reader->Read(&snapshot)) {
        history.Add(snapshot);
        backoff = kFirstBackoff;
        if (!screen.Show(history, "", /*new_snapshot=*/true)) {
          output_failed = true;
          context.TryCancel();
        }
      }
      const absl::Status status = FromGrpcStatus(reader->Finish());
      interrupt.End();
      if (output_failed) {
        exit_status = 1;
        break;
      }
      if (interrupt.stopped()) break;
      // UNAVAILABLE: the server is out of reach or shutting down. A
      // CANCELLED that this watch did not ask for (it cancels only when
      // interrupted) comes from the server too: at shutdown it cancels the
      // calls still open (seen in 1 run in 3 of watch_tui_test.sh).
      if (absl::IsUnavailable(status) || absl::IsCancelled(status)) {
        screen.Show(
            history,
            absl::StrCat("server unreachable (", ErrorLine(status),
                         "): retrying in ", absl::FormatDuration(backoff)),
            /*new_snapshot=*/false);
        if (interrupt.Sleep(backoff)) break;
        backoff = std::min(2 * backoff, kMaxBackoff);
        continue;
      }
      const std::string message =
          absl::IsNotFound(status) && !history.empty()
              ? absl::StrCat("throttle \"", invocation.name, "\" was deleted (",
                             ErrorLine(status), ")")
              : ErrorLine(status);
      screen.Show(history, message, /*new_snapshot=*/false);
      std::cerr << "throttlectl: " << message << "\n";
      exit_status = 1;
      break;
    }
  }
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  return exit_status;
}

}  // namespace throttle::cli
