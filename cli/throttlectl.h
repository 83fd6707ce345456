// throttlectl, the command-line controller of a throttle server: argument
// parsing, execution over throttle::Controller (client-lib/) and output
// formatting. cli/main.cc is the thin main; this part is unit-tested.
#ifndef THROTTLE_CLI_THROTTLECTL_H_
#define THROTTLE_CLI_THROTTLECTL_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/field_mask.pb.h"
#include "throttle/channel.h"
#include "throttle/controller.h"
#include "throttle/v1/throttle.grpc.pb.h"
#include "throttle/v1/throttle.pb.h"

namespace throttle::cli {

// The server address used when neither --address nor THROTTLE_ADDRESS is set.
inline constexpr char kDefaultAddress[] = "127.0.0.1:50051";

enum class Command {
  kHelp,
  kVersion,
  kCreate,
  kConfigure,
  kDelete,
  kGet,
  kList,
  kStart,
  kStop,
  kLatest,
  kMean,
  kWatch,
};

// A parsed command line.
struct Invocation {
  // --address, else THROTTLE_ADDRESS, else kDefaultAddress.
  std::string address = kDefaultAddress;
  // --json: print the response message as JSON.
  bool json = false;
  Command command = Command::kHelp;
  // kHelp: the command whose help was asked for ("stop --help", "help
  // stop"); empty for the overview.
  std::string help_command;
  // The throttle's name; empty for list and help.
  std::string name;
  // create and configure: --max_n, --per, --mode, --burst, --manual_emit,
  // --catch_up, --warm_up, --warm_up_from (each unset unless given, so that
  // the server's default applies).
  v1::ThrottleConfig config;
  // configure: the config fields given as flags (--per is per_seconds), so
  // that only they change; never empty for configure.
  google::protobuf::FieldMask update_mask;
  // latest: --window (1 s unless given).
  absl::Duration window = absl::Seconds(1);
  // latest and mean: --workers (the answer lists each worker's statistics).
  bool include_workers = false;
  // watch: --interval between snapshots (1 s unless given).
  absl::Duration interval = absl::Seconds(1);
  // --tls_ca, --tls_cert, --tls_key, --token, --token_file,
  // --tls_server_name as given: the caller completes them from the
  // environment (ChannelSecurityFromEnvironment) and makes the channel
  // (CreateChannel).
  ChannelSecurity security;
};

// Parses the arguments after the program name:
//   [--address=HOST:PORT] [--json] [security flags] COMMAND [NAME]
//   [command flags]
// --help (or -h, or the command help) gives kHelp and --version kVersion,
// whatever else is there.
// Flags may appear anywhere, as --flag=value or --flag value (also spelled
// with dashes: --max-n); "--" ends flags. Durations (--per, --catch_up,
// --warm_up, --window, --interval) take the project's one syntax: 250ms,
// 1.5s, 2m or plain seconds. Parsed with CLI11. `env_address` is the value
// of THROTTLE_ADDRESS (empty if unset).
// Returns INVALID_ARGUMENT with a one-line message for a usage error (unknown
// command or flag, a missing or malformed value, a flag that does not apply
// to the command). Range checks of values are left to the server.
absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args,
                                     absl::string_view env_address);

// The help text printed by --help.
std::string Usage();

// The help text of `command` (a command's name, as in "throttlectl stop
// --help"): its arguments and flags. The overview, Usage(), when `command`
// is empty or not a command.
std::string Usage(absl::string_view command);

// `status` as the one line throttlectl prints for it: "CODE: message",
// any line breaks of the message folded into spaces. The server's
// messages (UNAUTHENTICATED, PERMISSION_DENIED, ...) are kept as they are.
std::string ErrorLine(const absl::Status& status);

// The requests of latest and mean (the Controller has no include_workers:
// throttlectl calls the stub for them).
v1::LatestRequest LatestRequestOf(const Invocation& invocation);
v1::MeanRequest MeanRequestOf(const Invocation& invocation);
// The WatchThrottle request of `invocation` (its name and --interval).
v1::WatchThrottleRequest WatchRequestOf(const Invocation& invocation);

// Runs `invocation` (any command but kHelp, kVersion and kWatch) with
// `controller` (latest and mean with `stub`, the generated stub on the same
// channel) and writes the result to `out`: readable text, or one line of
// JSON if invocation.json. Returns the call's error (nothing is written
// then). Blocks for one call.
absl::Status Execute(const Invocation& invocation, const Controller& controller,
                     v1::Throttle::StubInterface& stub, std::ostream& out);

// Formats `value` as Python's repr() of a float does (the seed's output):
// the shortest form that reads back to the same double, with ".0" on whole
// numbers ("5.0", "0.2", "1e-07", "inf").
std::string FormatDouble(double value);

// The readable output of each command (each line ends in '\n').
std::string ToText(const v1::ThrottleInfo& info);
std::string ToText(const v1::ListThrottlesResponse& response);
std::string ToText(const v1::StartResponse& response);
std::string ToText(const v1::StopResponse& response);
std::string ToText(const v1::LatestResponse& response);
std::string ToText(const v1::MeanResponse& response);

}  // namespace throttle::cli

#endif  // THROTTLE_CLI_THROTTLECTL_H_
