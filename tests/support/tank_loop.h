// A thread awaiting fuel on a throttle::Tank in a loop and counting its
// grants, for the client library's tests against a real server.
#ifndef THROTTLE_TESTS_SUPPORT_TANK_LOOP_H_
#define THROTTLE_TESTS_SUPPORT_TANK_LOOP_H_

#include <atomic>
#include <cstdint>
#include <thread>

#include "absl/time/time.h"
#include "throttle/tank.h"

namespace throttle::testing {

// Awaits fuel on `tank` (not owned; must outlive the loop), each wait with
// timeout `wait`, until destroyed -- which closes the Tank -- or a wait
// ends otherwise than with fuel or a timeout.
class TankLoop {
 public:
  TankLoop(Tank* tank, absl::Duration wait)
      : tank_(tank), wait_(wait), thread_([this] { Run(); }) {}
  ~TankLoop() {
    done_ = true;
    tank_->Close();
    thread_.join();
  }
  TankLoop(const TankLoop&) = delete;
  TankLoop& operator=(const TankLoop&) = delete;

  int64_t grants() const { return grants_; }
  // The last wait ended otherwise than with fuel or a timeout, before the
  // loop was destroyed.
  bool failed() const { return failed_; }

 private:
  void Run() {
    while (!done_) {
      const FuelResult result = tank_->AwaitFuel(wait_);
      if (result.ok()) {
        ++grants_;
      } else if (result.outcome != FuelOutcome::kTimedOut) {
        failed_ = !done_;
        return;
      }
    }
  }

  Tank* const tank_;
  const absl::Duration wait_;
  std::atomic<bool> done_{false};
  std::atomic<int64_t> grants_{0};
  std::atomic<bool> failed_{false};
  std::thread thread_;  // last: starts once the rest is set
};

}  // namespace throttle::testing

#endif  // THROTTLE_TESTS_SUPPORT_TANK_LOOP_H_
