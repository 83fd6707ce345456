// throttlectl: command-line controller of a throttle server. Parses the
// arguments, makes one call and prints the result; see cli/throttlectl.h.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/throttlectl.h"
#include "server/usage.h"
#include "throttle/controller.h"

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const char* env_address = std::getenv("THROTTLE_ADDRESS");
  const absl::StatusOr<throttle::cli::Invocation> invocation =
      throttle::cli::ParseArgs(args, env_address == nullptr ? "" : env_address);
  if (!invocation.ok()) {
    std::cerr << "throttlectl: " << invocation.status().message()
              << " (see throttlectl --help)\n";
    return 2;
  }
  if (invocation->command == throttle::cli::Command::kHelp) {
    std::cout << throttle::cli::Usage();
    return 0;
  }
  if (invocation->command == throttle::cli::Command::kVersion) {
    std::cout << throttle::VersionLine("throttlectl");
    return 0;
  }
  const throttle::Controller controller(invocation->address);
  const absl::Status status =
      throttle::cli::Execute(*invocation, controller, std::cout);
  if (!status.ok()) {
    std::cerr << "throttlectl: " << status.ToString() << "\n";
    return 1;
  }
  std::cout.flush();
  return std::cout ? 0 : 1;
}
