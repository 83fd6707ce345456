// Uses the installed client library against an address where no server
// listens: every call must fail fast with UNAVAILABLE or DEADLINE_EXCEEDED
// (AwaitFuel: kTimedOut). Exits 0 if so, 1 otherwise.
//
// Usage: consumer UNREACHABLE_ADDRESS
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "throttle/controller.h"
#include "throttle/tank.h"
#include "throttle/v1/throttle.pb.h"

namespace {

bool FailedFast(const char* what, const absl::Status& status,
                absl::Duration elapsed) {
  const bool expected_code =
      status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kDeadlineExceeded;
  const bool fast = elapsed < absl::Seconds(5);
  std::fprintf(stderr, "%s: %s in %s\n", what, status.ToString().c_str(),
               absl::FormatDuration(elapsed).c_str());
  return expected_code && fast;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer UNREACHABLE_ADDRESS\n");
    return 2;
  }
  const std::string address = argv[1];
  bool ok = true;

  throttle::ControllerOptions controller_options;
  controller_options.deadline = absl::Seconds(2);
  const throttle::Controller controller(address, controller_options);
  absl::Time start = absl::Now();
  const absl::Status list = controller.ListThrottles().status();
  ok &= FailedFast("Controller::ListThrottles", list, absl::Now() - start);

  throttle::v1::ThrottleConfig config;
  config.set_max_n(4);
  config.set_per_seconds(1);
  start = absl::Now();
  const absl::Status create =
      controller.CreateThrottle("demo", config).status();
  ok &= FailedFast("Controller::CreateThrottle", create, absl::Now() - start);

  throttle::TankOptions tank_options;
  tank_options.worker_id = "install-consumer";
  throttle::Tank tank(address, "demo", tank_options);
  start = absl::Now();
  const throttle::FuelResult fuel = tank.AwaitFuel(absl::Milliseconds(200));
  const absl::Duration fuel_elapsed = absl::Now() - start;
  std::fprintf(stderr, "Tank::AwaitFuel: outcome %d in %s\n",
               static_cast<int>(fuel.outcome),
               absl::FormatDuration(fuel_elapsed).c_str());
  ok &= fuel.outcome == throttle::FuelOutcome::kTimedOut &&
        fuel_elapsed < absl::Seconds(5);

  start = absl::Now();
  const absl::Status has_fuel = tank.HasFuel().status();
  ok &= FailedFast("Tank::HasFuel", has_fuel, absl::Now() - start);

  std::fprintf(stderr, "%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
