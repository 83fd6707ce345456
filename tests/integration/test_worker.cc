// A worker process for the integration tests: runs the seed's loop through
// the client library and writes one line per grant ("fuel"), then one line
// saying how it ended ("stopped" or "error <status>"). Flushes every line,
// so a test can count grants of a worker it kills.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "throttle/tank.h"

ABSL_FLAG(std::string, address, "", "host:port of the server");
ABSL_FLAG(std::string, throttle, "", "throttle name");
ABSL_FLAG(std::string, worker_id, "", "worker id");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  throttle::TankOptions options;
  options.worker_id = absl::GetFlag(FLAGS_worker_id);
  throttle::Tank tank(absl::GetFlag(FLAGS_address),
                      absl::GetFlag(FLAGS_throttle), options);
  std::printf("ready\n");
  std::fflush(stdout);
  while (!tank.killed()) {
    const throttle::FuelResult fuel = tank.AwaitFuel();
    if (fuel.outcome == throttle::FuelOutcome::kError) {
      std::printf("error %s\n", fuel.status.ToString().c_str());
      return 1;
    }
    if (fuel.ok()) {
      std::printf("fuel\n");
      std::fflush(stdout);
    }
  }
  std::printf("stopped\n");
  return 0;
}
