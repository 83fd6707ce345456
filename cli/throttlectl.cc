#include "cli/throttlectl.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/util/json_util.h"
#include "server/core/format.h"
#include "throttle/names.h"

namespace throttle::cli {
namespace {

// Where a flag applies.
enum class Scope { kGlobal, kConfig, kLatest };

struct FlagSpec {
  absl::string_view name;
  bool boolean;
  Scope scope;
};

constexpr FlagSpec kFlags[] = {
    {"address", false, Scope::kGlobal},
    {"json", true, Scope::kGlobal},
    {"help", true, Scope::kGlobal},
    {"version", true, Scope::kGlobal},
    {"max_n", false, Scope::kConfig},
    {"per", false, Scope::kConfig},
    {"mode", false, Scope::kConfig},
    {"burst", false, Scope::kConfig},
    {"manual_emit", true, Scope::kConfig},
    {"catch_up", false, Scope::kConfig},
    {"window", false, Scope::kLatest},
    {"tls_ca", false, Scope::kGlobal},
    {"tls_cert", false, Scope::kGlobal},
    {"tls_key", false, Scope::kGlobal},
    {"token", false, Scope::kGlobal},
    {"token_file", false, Scope::kGlobal},
    {"tls_server_name", false, Scope::kGlobal},
};

struct CommandSpec {
  absl::string_view name;
  Command command;
};

constexpr CommandSpec kCommands[] = {
    {"help", Command::kHelp},
    {"create", Command::kCreate},
    {"configure", Command::kConfigure},
    {"delete", Command::kDelete},
    {"get", Command::kGet},
    {"list", Command::kList},
    {"start", Command::kStart},
    {"stop", Command::kStop},
    {"latest", Command::kLatest},
    {"mean", Command::kMean},
};

const FlagSpec* FindFlag(absl::string_view name) {
  for (const FlagSpec& spec : kFlags) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

absl::Status UsageError(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::StatusOr<int64_t> ParseInt(absl::string_view flag,
                                 absl::string_view value) {
  int64_t result;
  if (!absl::SimpleAtoi(value, &result)) {
    return UsageError(
        absl::StrCat("--", flag, ": \"", value, "\" is not an integer"));
  }
  return result;
}

absl::StatusOr<double> ParseDouble(absl::string_view flag,
                                   absl::string_view value) {
  double result;
  if (!absl::SimpleAtod(value, &result) || !std::isfinite(result)) {
    return UsageError(
        absl::StrCat("--", flag, ": \"", value, "\" is not a number"));
  }
  return result;
}

absl::StatusOr<bool> ParseBool(absl::string_view flag,
                               absl::string_view value) {
  bool result;
  if (!absl::SimpleAtob(value, &result)) {
    return UsageError(
        absl::StrCat("--", flag, ": \"", value, "\" is not true or false"));
  }
  return result;
}

// A duration in seconds, as --per and --window take it.
absl::StatusOr<absl::Duration> ParseSeconds(absl::string_view flag,
                                            absl::string_view value) {
  absl::StatusOr<double> seconds = ParseDouble(flag, value);
  if (!seconds.ok()) return seconds.status();
  // What a google.protobuf.Duration carries: whole nanoseconds, about
  // 10,000 years. Beyond that the server would see 0 or the clamped
  // maximum and name that, not the value typed.
  constexpr double kMaxDurationSeconds = 315'576'000'000;
  const double magnitude = std::fabs(*seconds);
  if (magnitude != 0 && (magnitude < 1e-9 || magnitude > kMaxDurationSeconds)) {
    return UsageError(
        absl::StrCat("--", flag, ": \"", value,
                     "\" is not a duration the server can be sent (1 ns to ",
                     FormatDouble(kMaxDurationSeconds), " s)"));
  }
  return absl::Seconds(*seconds);
}

// `duration` as a google.protobuf.Duration (whole nanoseconds).
void SetDuration(absl::Duration duration, google::protobuf::Duration* out) {
  absl::Duration rest;
  out->set_seconds(absl::IDivDuration(duration, absl::Seconds(1), &rest));
  out->set_nanos(static_cast<int32_t>(
      absl::IDivDuration(rest, absl::Nanoseconds(1), &rest)));
}

// A duration of the config as text: seconds, or "default" when unset.
std::string DurationText(bool set, const google::protobuf::Duration& value) {
  if (!set) return "default";
  return FormatDouble(static_cast<double>(value.seconds()) +
                      value.nanos() / 1e9);
}

absl::StatusOr<v1::Mode> ParseMode(absl::string_view value) {
  absl::StatusOr<v1::Mode> mode = ModeFromName(value);
  if (!mode.ok())
    return UsageError(absl::StrCat("--", mode.status().message()));
  return mode;
}

// The config flags and the ThrottleConfig fields they set.
struct ConfigFlag {
  absl::string_view flag;
  absl::string_view field;
};
constexpr ConfigFlag kConfigFlags[] = {
    {"max_n", "max_n"},
    {"per", "per_seconds"},
    {"mode", "mode"},
    {"burst", "burst"},
    {"manual_emit", "manual_emit"},
    {"catch_up", "catch_up"},
};

// Fills invocation->config from the create/configure flags in `flags`.
// create needs --max_n and --per; configure changes only the fields given
// (invocation->update_mask) and needs at least one.
absl::Status ParseConfig(const std::map<std::string, std::string>& flags,
                         absl::string_view command, Invocation* invocation) {
  v1::ThrottleConfig& config = invocation->config;
  if (invocation->command == Command::kConfigure) {
    for (const ConfigFlag& spec : kConfigFlags) {
      if (flags.count(std::string(spec.flag)) != 0) {
        invocation->update_mask.add_paths(std::string(spec.field));
      }
    }
    if (invocation->update_mask.paths().empty()) {
      return UsageError(
          "'configure' needs at least one of --max_n, --per, --mode, "
          "--burst, --manual_emit, --catch_up");
    }
  } else {
    for (absl::string_view required : {"max_n", "per"}) {
      if (flags.count(std::string(required)) == 0) {
        return UsageError(
            absl::StrCat("--", required, " is required for '", command, "'"));
      }
    }
  }
  if (auto it = flags.find("max_n"); it != flags.end()) {
    absl::StatusOr<int64_t> max_n = ParseInt("max_n", it->second);
    if (!max_n.ok()) return max_n.status();
    config.set_max_n(*max_n);
  }
  if (auto it = flags.find("per"); it != flags.end()) {
    absl::StatusOr<double> per = ParseDouble("per", it->second);
    if (!per.ok()) return per.status();
    config.set_per_seconds(*per);
  }
  if (auto it = flags.find("mode"); it != flags.end()) {
    absl::StatusOr<v1::Mode> mode = ParseMode(it->second);
    if (!mode.ok()) return mode.status();
    config.set_mode(*mode);
  }
  if (auto it = flags.find("burst"); it != flags.end()) {
    absl::StatusOr<int64_t> burst = ParseInt("burst", it->second);
    if (!burst.ok()) return burst.status();
    config.set_burst(*burst);
  }
  if (auto it = flags.find("manual_emit"); it != flags.end()) {
    absl::StatusOr<bool> manual = ParseBool("manual_emit", it->second);
    if (!manual.ok()) return manual.status();
    config.set_manual_emit(*manual);
  }
  if (auto it = flags.find("catch_up"); it != flags.end()) {
    absl::StatusOr<absl::Duration> catch_up =
        ParseSeconds("catch_up", it->second);
    if (!catch_up.ok()) return catch_up.status();
    SetDuration(*catch_up, config.mutable_catch_up());
  }
  return absl::OkStatus();
}

// Writes `response` to `out` as one line of JSON, or as text(response).
template <typename Response, typename TextFn>
absl::Status Print(const absl::StatusOr<Response>& response, bool json,
                   std::ostream& out, TextFn text) {
  if (!response.ok()) return response.status();
  if (!json) {
    out << text(*response);
    return absl::OkStatus();
  }
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string line;
  const auto status =
      google::protobuf::util::MessageToJsonString(*response, &line, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print the response as JSON: ", status.ToString()));
  }
  out << line << '\n';
  return absl::OkStatus();
}

// Throttle `name` as ListThrottles lists it (there is no RPC for one);
// NOT_FOUND if there is none of that name.
absl::StatusOr<v1::ThrottleInfo> GetThrottle(const Controller& controller,
                                             const std::string& name) {
  absl::StatusOr<v1::ListThrottlesResponse> list = controller.ListThrottles();
  if (!list.ok()) return list.status();
  for (const v1::ThrottleInfo& info : list->throttles()) {
    if (info.name() == name) return info;
  }
  return absl::NotFoundError(absl::StrCat("no throttle named \"", name, "\""));
}

std::string Line(absl::string_view key, absl::string_view value) {
  return absl::StrCat(key, ": ", value, "\n");
}

}  // namespace

absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args,
                                     absl::string_view env_address) {
  std::map<std::string, std::string> flags;
  std::vector<std::string> positional;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      continue;
    }
    if (arg == "-h") {
      flags["help"] = "true";
      continue;
    }
    if (!absl::StartsWith(arg, "--")) {
      return UsageError(absl::StrCat("unknown flag ", arg));
    }
    absl::string_view body = absl::string_view(arg).substr(2);
    std::optional<std::string> value;
    if (const size_t eq = body.find('='); eq != absl::string_view::npos) {
      value = std::string(body.substr(eq + 1));
      body = body.substr(0, eq);
    }
    const std::string name = absl::StrReplaceAll(body, {{"-", "_"}});
    const FlagSpec* spec = FindFlag(name);
    if (spec == nullptr) {
      return UsageError(absl::StrCat("unknown flag --", body));
    }
    if (!value.has_value()) {
      if (spec->boolean) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return UsageError(absl::StrCat("--", name, " needs a value"));
      }
    }
    flags[name] = *std::move(value);
  }

  Invocation invocation;
  if (flags.count("help") != 0) {
    absl::StatusOr<bool> help = ParseBool("help", flags["help"]);
    if (!help.ok()) return help.status();
    if (*help) return invocation;  // Command::kHelp
  }
  if (flags.count("version") != 0) {
    absl::StatusOr<bool> version = ParseBool("version", flags["version"]);
    if (!version.ok()) return version.status();
    if (*version) {
      invocation.command = Command::kVersion;
      return invocation;
    }
  }
  if (auto it = flags.find("address"); it != flags.end()) {
    invocation.address = it->second;
  } else if (!env_address.empty()) {
    invocation.address = std::string(env_address);
  }
  if (invocation.address.empty()) return UsageError("--address is empty");
  for (auto [flag, field] :
       {std::pair<const char*, std::string*>{"tls_ca",
                                             &invocation.security.ca_file},
        {"tls_cert", &invocation.security.cert_file},
        {"tls_key", &invocation.security.key_file},
        {"token", &invocation.security.token},
        {"token_file", &invocation.security.token_file},
        {"tls_server_name", &invocation.security.server_name}}) {
    if (auto it = flags.find(flag); it != flags.end()) {
      if (it->second.empty()) {
        return UsageError(absl::StrCat("--", flag, " is empty"));
      }
      *field = it->second;
    }
  }
  if (auto it = flags.find("json"); it != flags.end()) {
    absl::StatusOr<bool> json = ParseBool("json", it->second);
    if (!json.ok()) return json.status();
    invocation.json = *json;
  }

  if (positional.empty()) return UsageError("missing command");
  const CommandSpec* command = nullptr;
  for (const CommandSpec& spec : kCommands) {
    if (spec.name == positional[0]) command = &spec;
  }
  if (command == nullptr) {
    return UsageError(absl::StrCat("unknown command '", positional[0], "'"));
  }
  invocation.command = command->command;
  if (invocation.command == Command::kHelp) return invocation;

  const bool takes_name = invocation.command != Command::kList;
  const size_t operands = positional.size() - 1;
  if (takes_name && operands == 0) {
    return UsageError(
        absl::StrCat("missing throttle name for '", command->name, "'"));
  }
  if (operands > (takes_name ? 1u : 0u)) {
    return UsageError(absl::StrCat("unexpected argument '",
                                   positional[takes_name ? 2 : 1], "' to '",
                                   command->name, "'"));
  }
  if (takes_name) invocation.name = positional[1];

  const bool configures = invocation.command == Command::kCreate ||
                          invocation.command == Command::kConfigure;
  for (const auto& [name, value] : flags) {
    const Scope scope = FindFlag(name)->scope;
    if ((scope == Scope::kConfig && !configures) ||
        (scope == Scope::kLatest && invocation.command != Command::kLatest)) {
      return UsageError(
          absl::StrCat("--", name, " does not apply to '", command->name, "'"));
    }
  }
  if (configures) {
    if (absl::Status status = ParseConfig(flags, command->name, &invocation);
        !status.ok()) {
      return status;
    }
  }
  if (auto it = flags.find("window"); it != flags.end()) {
    absl::StatusOr<absl::Duration> window = ParseSeconds("window", it->second);
    if (!window.ok()) return window.status();
    invocation.window = *window;
  }
  return invocation;
}

std::string Usage() {
  return R"(Usage: throttlectl [--address=HOST:PORT] [--json] [SECURITY FLAGS]
                   COMMAND [NAME] [FLAGS]

Controls the throttles of a throttle server.

Commands:
  create NAME --max_n=N --per=SECONDS [--mode=MODE] [--burst=N] [--manual_emit]
              [--catch_up=SECONDS]
                        Create a throttle (state created) allowing N grants
                        per SECONDS.
  configure NAME [--max_n=N] [--per=SECONDS] [--mode=MODE] [--burst=N]
              [--manual_emit[=false]] [--catch_up=SECONDS]
                        Change only the given settings of a throttle (at
                        least one); the others keep their values. A --mode
                        other than bucket resets the burst unless --burst is
                        given too.
  delete NAME           Delete a throttle.
  get NAME              Print one throttle's configuration and state.
  list                  List all throttles.
  start NAME            Start (or resume) a throttle.
  stop NAME             Stop a throttle and print its final statistics.
  latest NAME [--window=SECONDS]
                        Statistics over the last window (default 1 s).
  mean NAME             Statistics since the first start.
  help                  Print this help.

Flags:
  --address=HOST:PORT   The server (a gRPC target). Default: $THROTTLE_ADDRESS,
                        else 127.0.0.1:50051.
  --json                Print the response message as one line of JSON
                        (proto field names).
  --mode=MODE           smooth (default), window, bucket, unbounded or
                        monitor-only.
  --burst=N             Bucket capacity in bucket mode (default max_n).
  --manual_emit         Count only emissions reported by workers (Emit).
  --catch_up=SECONDS    How far the grant schedule may fall behind real time
                        (a stall) and still be caught up in a burst; 0: no
                        catch-up. Default: 1% of --per, at least one grant's
                        spacing. At most --per.
  --help, -h            Print this help.
  --version             Print throttlectl's version.

Security flags (plaintext when none is given; each flag overrides its
environment variable):
  --tls_ca=FILE         PEM CA the server's certificate must chain to: turns
                        on TLS. Default: $THROTTLE_TLS_CA.
  --tls_cert=FILE       PEM client certificate, for mTLS (with --tls_key).
                        Default: $THROTTLE_TLS_CERT. Without --tls_ca the
                        server is verified against the system's CAs.
  --tls_key=FILE        Private key of --tls_cert. Default: $THROTTLE_TLS_KEY.
  --token=TOKEN         Bearer token (TLS only). Default: $THROTTLE_TOKEN.
                        Other users can see a command line: prefer
                        --token_file or the variable.
  --token_file=FILE     File whose first line is the bearer token.
                        Default: $THROTTLE_TOKEN_FILE.
  --tls_server_name=NAME
                        The name the server's certificate must hold (TLS
                        only), instead of the host of --address. Needed for
                        a multi-address --address (ipv4:A:P,B:P): the name
                        in every server's certificate. Default:
                        $THROTTLE_TLS_SERVER_NAME.

Exit status: 0 on success, 1 if the server returned an error (for example
UNAUTHENTICATED or PERMISSION_DENIED, printed as the server said it), 2 on a
usage error (including an unreadable certificate, key or token file).
)";
}

std::string ErrorLine(const absl::Status& status) {
  return absl::StrReplaceAll(status.ToString(), {{"\r\n", " "}, {"\n", " "}});
}

absl::Status Execute(const Invocation& invocation, const Controller& controller,
                     std::ostream& out) {
  const bool json = invocation.json;
  const std::string& name = invocation.name;
  switch (invocation.command) {
    case Command::kCreate:
      return Print(controller.CreateThrottle(name, invocation.config), json,
                   out, [](const v1::CreateThrottleResponse& r) {
                     return ToText(r.throttle());
                   });
    case Command::kConfigure:
      return Print(controller.ConfigureThrottle(name, invocation.config,
                                                invocation.update_mask),
                   json, out, [](const v1::ConfigureThrottleResponse& r) {
                     return ToText(r.throttle());
                   });
    case Command::kGet:
      return Print(GetThrottle(controller, name), json, out,
                   [](const v1::ThrottleInfo& r) { return ToText(r); });
    case Command::kDelete: {
      const absl::Status status = controller.DeleteThrottle(name);
      if (!status.ok()) return status;
      out << (json ? "{}\n" : absl::StrCat("Deleted ", name, "\n"));
      return absl::OkStatus();
    }
    case Command::kList:
      return Print(
          controller.ListThrottles(), json, out,
          [](const v1::ListThrottlesResponse& r) { return ToText(r); });
    case Command::kStart:
      return Print(controller.Start(name), json, out,
                   [](const v1::StartResponse& r) { return ToText(r); });
    case Command::kStop:
      return Print(controller.Stop(name), json, out,
                   [](const v1::StopResponse& r) { return ToText(r); });
    case Command::kLatest:
      return Print(controller.Latest(name, invocation.window), json, out,
                   [](const v1::LatestResponse& r) { return ToText(r); });
    case Command::kMean:
      return Print(controller.Mean(name), json, out,
                   [](const v1::MeanResponse& r) { return ToText(r); });
    case Command::kHelp:
    case Command::kVersion:
      break;
  }
  out << Usage();
  return absl::OkStatus();
}

std::string FormatDouble(double value) {
  std::string text = server::FormatDouble(value);
  if (std::isfinite(value) && text.find_first_of(".e") == std::string::npos) {
    text += ".0";
  }
  return text;
}

std::string ToText(const v1::ThrottleInfo& info) {
  const v1::ThrottleConfig& config = info.config();
  return absl::StrCat(
      Line("Name", info.name()), Line("State", StateName(info.state())),
      Line("Mode", ModeName(config.mode())),
      Line("Max n", absl::StrCat(config.max_n())),
      Line("Per seconds", FormatDouble(config.per_seconds())),
      Line("Burst", absl::StrCat(config.burst())),
      Line("Catch up", DurationText(config.has_catch_up(), config.catch_up())),
      Line("Manual emit", config.manual_emit() ? "true" : "false"),
      Line("Waiting streams", absl::StrCat(info.waiting_streams())),
      Line("Total", absl::StrCat(info.total_emissions())));
}

std::string ToText(const v1::ListThrottlesResponse& response) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "STATE", "MODE", "MAX_N", "PER_SECONDS", "BURST", "CATCH_UP",
       "MANUAL_EMIT", "WAITING", "TOTAL"}};
  for (const v1::ThrottleInfo& info : response.throttles()) {
    const v1::ThrottleConfig& config = info.config();
    rows.push_back({info.name(), StateName(info.state()),
                    ModeName(config.mode()), absl::StrCat(config.max_n()),
                    FormatDouble(config.per_seconds()),
                    absl::StrCat(config.burst()),
                    DurationText(config.has_catch_up(), config.catch_up()),
                    config.manual_emit() ? "true" : "false",
                    absl::StrCat(info.waiting_streams()),
                    absl::StrCat(info.total_emissions())});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string text;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    absl::StrAppend(&text, line, "\n");
  }
  return text;
}

std::string ToText(const v1::StartResponse& response) {
  return Line("State", StateName(response.state()));
}

std::string ToText(const v1::StopResponse& response) {
  // The seed's four lines after Throttle.stop().
  return absl::StrCat(
      Line("Runtime", FormatDouble(response.runtime_seconds())),
      Line("Total", absl::StrCat(response.total_emissions())),
      Line("Time between processes",
           FormatDouble(response.mean_seconds_between_emissions())),
      Line("Processes per second",
           FormatDouble(response.mean_emissions_per_second())));
}

std::string ToText(const v1::LatestResponse& response) {
  return absl::StrCat(
      Line("Time between processes",
           FormatDouble(response.seconds_between_emissions())),
      Line("Processes per second",
           FormatDouble(response.emissions_per_second())),
      Line("Emissions", absl::StrCat(response.emissions())),
      Line("Window seconds", FormatDouble(response.window_seconds())));
}

std::string ToText(const v1::MeanResponse& response) {
  return absl::StrCat(
      Line("Time between processes",
           FormatDouble(response.mean_seconds_between_emissions())),
      Line("Processes per second",
           FormatDouble(response.mean_emissions_per_second())),
      Line("Runtime", FormatDouble(response.runtime_seconds())),
      Line("Total", absl::StrCat(response.total_emissions())),
      Line("Lowest gap", FormatDouble(response.lowest_gap_seconds())),
      Line("Highest gap", FormatDouble(response.highest_gap_seconds())),
      Line("State", StateName(response.state())));
}

}  // namespace throttle::cli
