// throttlectl: command-line controller of a throttle server. Parses the
// arguments, makes one call and prints the result (or runs the watch view);
// see cli/throttlectl.h and cli/watch.h.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/throttlectl.h"
#include "cli/watch.h"
#include "grpc/support/log.h"
#include "grpcpp/channel.h"
#include "server/usage.h"
#include "throttle/channel.h"
#include "throttle/controller.h"

namespace {

// gRPC's own log lines (a failed handshake is also logged as "E1201 ...
// Handshake failed ...") would make an error more than the one line
// throttlectl prints; the status it prints carries the same reason. Set
// GRPC_VERBOSITY (or GRPC_TRACE) to see them.
void DiscardGrpcLog(gpr_log_func_args* /*args*/) {}

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("GRPC_VERBOSITY") == nullptr &&
      std::getenv("GRPC_TRACE") == nullptr) {
    gpr_set_log_function(DiscardGrpcLog);
  }
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
    std::cout << throttle::cli::Usage(invocation->help_command);
    return 0;
  }
  if (invocation->command == throttle::cli::Command::kVersion) {
    std::cout << throttle::VersionLine("throttlectl");
    return 0;
  }
  if (invocation->command == throttle::cli::Command::kWatch) {
    throttle::cli::BlockStopSignals();  // before gRPC starts its threads
  }
  const absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      throttle::CreateChannel(
          invocation->address,
          throttle::ChannelSecurityFromEnvironment(invocation->security));
  if (!channel.ok()) {
    std::cerr << "throttlectl: " << channel.status().message()
              << " (see throttlectl --help)\n";
    return 2;
  }
  const std::unique_ptr<throttle::v1::Throttle::Stub> stub =
      throttle::v1::Throttle::NewStub(*channel);
  if (invocation->command == throttle::cli::Command::kWatch) {
    return throttle::cli::RunWatch(*invocation, *stub);
  }
  const throttle::Controller controller(*channel);
  const absl::Status status =
      throttle::cli::Execute(*invocation, controller, *stub, std::cout);
  if (!status.ok()) {
    std::cerr << "throttlectl: " << throttle::cli::ErrorLine(status) << "\n";
    return 1;
  }
  std::cout.flush();
  return std::cout ? 0 : 1;
}
