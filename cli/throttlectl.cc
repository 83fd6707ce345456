#include "cli/throttlectl.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/client_context.h"
#include "server/core/duration.h"
#include "server/core/format.h"
#include "throttle/names.h"
#include "throttle/status.h"

namespace throttle::cli {
namespace {

struct CommandSpec {
  const char* name;
  Command command;
  const char* description;
};

constexpr CommandSpec kCommands[] = {
    {"create", Command::kCreate,
     "Create a throttle (state created) allowing --max_n grants per --per."},
    {"configure", Command::kConfigure,
     "Change only the given settings of a throttle (at least one); the "
     "others keep their values. A --mode other than bucket resets the burst "
     "unless --burst is given too; a --degradation other than local_share "
     "clears local_share_for unless --local_share_for is given too."},
    {"delete", Command::kDelete, "Delete a throttle."},
    {"get", Command::kGet, "Print one throttle's configuration and state."},
    {"list", Command::kList, "List all throttles."},
    {"start", Command::kStart, "Start (or resume) a throttle."},
    {"stop", Command::kStop, "Stop a throttle and print its final statistics."},
    {"latest", Command::kLatest,
     "Statistics over the last --window (default 1 s)."},
    {"mean", Command::kMean,
     "Statistics since the first start, with the fairness index of the "
     "grants per worker."},
    {"watch", Command::kWatch,
     "Watch a throttle live: its state, rates and a chart of the achieved "
     "rate over the last 60 s, redrawn every --interval (one line per "
     "snapshot when stdout is not a terminal). Ctrl-C ends it."},
    {"help", Command::kHelp, "Print this help, or a command's."},
};

const CommandSpec* FindCommand(absl::string_view name) {
  for (const CommandSpec& spec : kCommands) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

// The flags as typed, before their values are checked (by the Parse*
// functions below, so that an error names the flag and the value).
struct RawFlags {
  std::string address;
  std::string json;
  std::string tls_ca, tls_cert, tls_key, token, token_file, tls_server_name;
  std::string name;
  std::string max_n, per, mode, burst, manual_emit, catch_up, warm_up,
      warm_up_from, starvation_bound, degradation, local_share_for;
  std::string adaptive_floor_n, adaptive_target, adaptive_window,
      adaptive_increase_n, adaptive_decrease, adaptive_min_outcomes;
  std::string window, interval, workers, version;
  std::string help_command;
};

// The names of flag NAME for CLI11: --NAME, also spelled with dashes
// (--max-n) when it has underscores.
std::string FlagNames(const std::string& name) {
  std::string names = "--" + name;
  if (absl::StrContains(name, '_')) {
    absl::StrAppend(&names, ",--", absl::StrReplaceAll(name, {{"_", "-"}}));
  }
  return names;
}

// Adds --NAME to `app`. Given twice, the last one counts (as before CLI11;
// scripts append a flag to override one, tls_end_to_end_test.sh too).
CLI::Option* AddOption(CLI::App* app, const std::string& name,
                       std::string* value, const std::string& description) {
  return app->add_option(FlagNames(name), *value, description)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

// A boolean flag: --NAME alone is true; --NAME=false is accepted too.
CLI::Option* AddFlag(CLI::App* app, const std::string& name, std::string* value,
                     const std::string& description) {
  return app->add_flag(FlagNames(name), *value, description)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

void AddConfigFlags(CLI::App* command, RawFlags* raw, bool create) {
  AddOption(command, "max_n", &raw->max_n, "Grants allowed per --per.")
      ->type_name("N");
  AddOption(command, "per", &raw->per,
            "The rate's window: a duration (250ms, 1.5s, 2m) or seconds.")
      ->type_name("DURATION");
  AddOption(command, "mode", &raw->mode,
            "smooth (default), window, bucket, unbounded or monitor-only.")
      ->type_name("MODE");
  AddOption(command, "burst", &raw->burst,
            "Bucket capacity in bucket mode (default max_n).")
      ->type_name("N");
  AddFlag(command, "manual_emit", &raw->manual_emit,
          "Count only emissions reported by workers (Emit).");
  AddOption(command, "catch_up", &raw->catch_up,
            "How far the grant schedule may fall behind real time (a stall) "
            "and still be caught up in a burst; 0: no catch-up. Default: 1% "
            "of --per, at least one grant's spacing. At most --per.")
      ->type_name("DURATION");
  AddOption(command, "warm_up", &raw->warm_up,
            "Ramp the rate up linearly over this long after a start (and "
            "after a resume from a stop at least this long); 0: no warm-up.")
      ->type_name("DURATION");
  AddOption(command, "warm_up_from", &raw->warm_up_from,
            "The fraction of the rate a warm-up starts from, in (0, 1]. "
            "Default: 1/3.")
      ->type_name("FRACTION");
  AddOption(command, "starvation_bound", &raw->starvation_bound,
            "Priorities: a lower class waiting that got no grant for this "
            "long gets the next one. 0 (default): none.")
      ->type_name("DURATION");
  AddOption(command, "degradation", &raw->degradation,
            "What workers do while the server cannot be reached: wait "
            "(default: wait on while reconnecting), fail_fast (waits end at "
            "once with UNAVAILABLE) or local_share (grant locally at the "
            "worker's last share for --local_share_for, then fail fast).")
      ->type_name("POLICY");
  AddOption(command, "local_share_for", &raw->local_share_for,
            "With --degradation=local_share: how long workers grant locally "
            "after losing the server, in (0, 1h].")
      ->type_name("DURATION");
  // The adaptive ceiling: any of these sets ThrottleConfig.adaptive whole
  // (the settings not given take the server's defaults).
  AddOption(command, "adaptive_floor_n", &raw->adaptive_floor_n,
            "Adaptive ceiling: the lowest rate, grants per --per (1).")
      ->type_name("N");
  AddOption(command, "adaptive_target", &raw->adaptive_target,
            "Adaptive ceiling: the rejection ratio a window may have "
            "without lowering the rate, in (0, 1) (0.05).")
      ->type_name("RATIO");
  AddOption(command, "adaptive_window", &raw->adaptive_window,
            "Adaptive ceiling: how long outcomes are collected before each "
            "decision (1s).")
      ->type_name("DURATION");
  AddOption(command, "adaptive_increase_n", &raw->adaptive_increase_n,
            "Adaptive ceiling: grants per --per added after a window at or "
            "below the target (1).")
      ->type_name("N");
  AddOption(command, "adaptive_decrease", &raw->adaptive_decrease,
            "Adaptive ceiling: the factor the rate is multiplied by after a "
            "window above the target, in (0, 1) (0.5).")
      ->type_name("FACTOR");
  AddOption(command, "adaptive_min_outcomes", &raw->adaptive_min_outcomes,
            "Adaptive ceiling: fewer outcomes in a window change nothing "
            "(10).")
      ->type_name("N");
  if (create) {
    command->get_option("--max_n")->required();
    command->get_option("--per")->required();
  }
}

// throttlectl's command line: the global flags (accepted before or after
// the command), one subcommand per command, each with its own flags.
// Writes the values typed into `raw`.
std::unique_ptr<CLI::App> BuildApp(RawFlags* raw) {
  auto app = std::make_unique<CLI::App>(
      "Controls the throttles of a throttle server.", "throttlectl");
  app->allow_extras();  // reported by ParseArgs, in its own words
  AddOption(app.get(), "address", &raw->address,
            "The server (a gRPC target). Default: $THROTTLE_ADDRESS, else "
            "127.0.0.1:50051.")
      ->type_name("HOST:PORT");
  AddFlag(app.get(), "json", &raw->json,
          "Print the response message as one line of JSON (proto field "
          "names).");
  AddFlag(app.get(), "version", &raw->version, "Print throttlectl's version.");
  AddOption(app.get(), "tls_ca", &raw->tls_ca,
            "PEM CA the server's certificate must chain to: turns on TLS.")
      ->type_name("FILE");
  AddOption(app.get(), "tls_cert", &raw->tls_cert,
            "PEM client certificate, for mTLS (with --tls_key).")
      ->type_name("FILE");
  AddOption(app.get(), "tls_key", &raw->tls_key, "Private key of --tls_cert.")
      ->type_name("FILE");
  AddOption(app.get(), "token", &raw->token, "Bearer token (TLS only).")
      ->type_name("TOKEN");
  AddOption(app.get(), "token_file", &raw->token_file,
            "File whose first line is the bearer token.")
      ->type_name("FILE");
  AddOption(app.get(), "tls_server_name", &raw->tls_server_name,
            "The name the server's certificate must hold (TLS only).")
      ->type_name("NAME");
  for (const CommandSpec& spec : kCommands) {
    CLI::App* command = app->add_subcommand(spec.name, spec.description);
    command->fallthrough();  // the global flags may come after the command
    const Command c = spec.command;
    if (c != Command::kList && c != Command::kHelp) {
      command->add_option("NAME", raw->name, "The throttle's name.")
          ->required();
    }
    if (c == Command::kCreate || c == Command::kConfigure) {
      AddConfigFlags(command, raw, c == Command::kCreate);
    }
    if (c == Command::kHelp) {
      command->add_option("COMMAND", raw->help_command,
                          "The command to print the help of.");
    }
    if (c == Command::kLatest) {
      AddOption(command, "window", &raw->window,
                "The window to look back over, in (0, 60 s]. Default: 1s.")
          ->type_name("DURATION");
    }
    if (c == Command::kLatest || c == Command::kMean) {
      AddFlag(command, "workers", &raw->workers,
              "Also print what each worker got (grants, grants/s, "
              "emissions).");
    }
    if (c == Command::kWatch) {
      AddOption(command, "interval", &raw->interval,
                "How often the server sends a snapshot, in [100ms, 60s]. "
                "Default: 1s.")
          ->type_name("DURATION");
    }
  }
  return app;
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

// A duration in the project's one syntax (server/core/duration.h): "250ms",
// "1.5s", "2m", or plain seconds.
absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag,
                                                 absl::string_view value) {
  const absl::StatusOr<absl::Duration> duration = server::ParseDuration(value);
  if (!duration.ok()) {
    return UsageError(absl::StrCat(
        "--", flag, ": \"", value,
        "\" is not a duration (give 250ms, 1.5s, 2m or plain seconds)"));
  }
  // What a google.protobuf.Duration carries: whole nanoseconds, about
  // 10,000 years. Beyond that the server would see 0 or the clamped
  // maximum and name that, not the value typed. A nonzero number that
  // rounds to zero ("1e-12") is below a nanosecond too.
  constexpr int64_t kMaxDurationSeconds = 315'576'000'000;
  const absl::Duration magnitude = absl::AbsDuration(*duration);
  const absl::string_view mantissa = value.substr(0, value.find_first_of("eE"));
  const bool typed_nonzero =
      mantissa.find_first_of("123456789") != absl::string_view::npos;
  if ((magnitude == absl::ZeroDuration() && typed_nonzero) ||
      (magnitude != absl::ZeroDuration() &&
       (magnitude < absl::Nanoseconds(1) ||
        magnitude > absl::Seconds(kMaxDurationSeconds)))) {
    return UsageError(
        absl::StrCat("--", flag, ": \"", value,
                     "\" is not a duration the server can be sent (1 ns to ",
                     kMaxDurationSeconds, " s)"));
  }
  return *duration;
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

// The config flags and the ThrottleConfig fields they set, in field order.
struct ConfigFlag {
  const char* flag;
  const char* field;
};
constexpr ConfigFlag kConfigFlags[] = {
    {"max_n", "max_n"},
    {"per", "per_seconds"},
    {"mode", "mode"},
    {"burst", "burst"},
    {"manual_emit", "manual_emit"},
    {"catch_up", "catch_up"},
    {"warm_up", "warm_up"},
    {"warm_up_from", "warm_up_from"},
    {"starvation_bound", "starvation_bound"},
    {"degradation", "degradation"},
    {"local_share_for", "local_share_for"},
    // Any --adaptive_* flag sets the whole `adaptive` message.
    {"adaptive_floor_n", "adaptive"},
    {"adaptive_target", "adaptive"},
    {"adaptive_window", "adaptive"},
    {"adaptive_increase_n", "adaptive"},
    {"adaptive_decrease", "adaptive"},
    {"adaptive_min_outcomes", "adaptive"},
};

// Sets config->adaptive from the --adaptive_* flags given, if any (the
// fields not given stay 0: the server's defaults).
absl::Status ParseAdaptive(const CLI::App& command, const RawFlags& raw,
                           v1::ThrottleConfig* config) {
  struct IntFlag {
    const char* flag;
    const std::string& value;
    void (v1::AdaptiveConfig::*set)(int64_t);
  };
  const IntFlag ints[] = {{"adaptive_floor_n", raw.adaptive_floor_n,
                           &v1::AdaptiveConfig::set_floor_n},
                          {"adaptive_increase_n", raw.adaptive_increase_n,
                           &v1::AdaptiveConfig::set_increase_n},
                          {"adaptive_min_outcomes", raw.adaptive_min_outcomes,
                           &v1::AdaptiveConfig::set_min_outcomes}};
  struct DoubleFlag {
    const char* flag;
    const std::string& value;
    void (v1::AdaptiveConfig::*set)(double);
  };
  const DoubleFlag doubles[] = {
      {"adaptive_target", raw.adaptive_target,
       &v1::AdaptiveConfig::set_target_rejection_ratio},
      {"adaptive_decrease", raw.adaptive_decrease,
       &v1::AdaptiveConfig::set_decrease_factor}};
  const auto given = [&](const char* flag) {
    return command.get_option(std::string("--") + flag)->count() > 0;
  };
  for (const IntFlag& f : ints) {
    if (!given(f.flag)) continue;
    absl::StatusOr<int64_t> n = ParseInt(f.flag, f.value);
    if (!n.ok()) return n.status();
    (config->mutable_adaptive()->*f.set)(*n);
  }
  for (const DoubleFlag& f : doubles) {
    if (!given(f.flag)) continue;
    absl::StatusOr<double> x = ParseDouble(f.flag, f.value);
    if (!x.ok()) return x.status();
    (config->mutable_adaptive()->*f.set)(*x);
  }
  if (given("adaptive_window")) {
    absl::StatusOr<absl::Duration> window =
        ParseDurationFlag("adaptive_window", raw.adaptive_window);
    if (!window.ok()) return window.status();
    SetDuration(*window, config->mutable_adaptive()->mutable_window());
  }
  return absl::OkStatus();
}

// Fills invocation->config from the create/configure flags given in
// `command`. configure changes only the fields given
// (invocation->update_mask) and needs at least one.
absl::Status ParseConfig(const CLI::App& command, const RawFlags& raw,
                         Invocation* invocation) {
  const auto given = [&](const char* flag) {
    return command.get_option(std::string("--") + flag)->count() > 0;
  };
  v1::ThrottleConfig& config = invocation->config;
  if (invocation->command == Command::kConfigure) {
    for (const ConfigFlag& spec : kConfigFlags) {
      const auto& paths = invocation->update_mask.paths();
      if (given(spec.flag) &&
          std::find(paths.begin(), paths.end(), spec.field) == paths.end()) {
        invocation->update_mask.add_paths(spec.field);
      }
    }
    if (invocation->update_mask.paths().empty()) {
      return UsageError(
          "'configure' needs at least one of --max_n, --per, --mode, "
          "--burst, --manual_emit, --catch_up, --warm_up, --warm_up_from, "
          "--starvation_bound, --degradation, --local_share_for, "
          "--adaptive_*");
    }
  }
  if (given("max_n")) {
    absl::StatusOr<int64_t> max_n = ParseInt("max_n", raw.max_n);
    if (!max_n.ok()) return max_n.status();
    config.set_max_n(*max_n);
  }
  if (given("per")) {
    absl::StatusOr<absl::Duration> per = ParseDurationFlag("per", raw.per);
    if (!per.ok()) return per.status();
    config.set_per_seconds(absl::ToDoubleSeconds(*per));
  }
  if (given("mode")) {
    absl::StatusOr<v1::Mode> mode = ModeFromName(raw.mode);
    if (!mode.ok()) {
      return UsageError(absl::StrCat("--", mode.status().message()));
    }
    config.set_mode(*mode);
  }
  if (given("burst")) {
    absl::StatusOr<int64_t> burst = ParseInt("burst", raw.burst);
    if (!burst.ok()) return burst.status();
    config.set_burst(*burst);
  }
  if (given("manual_emit")) {
    absl::StatusOr<bool> manual = ParseBool("manual_emit", raw.manual_emit);
    if (!manual.ok()) return manual.status();
    config.set_manual_emit(*manual);
  }
  if (given("catch_up")) {
    absl::StatusOr<absl::Duration> catch_up =
        ParseDurationFlag("catch_up", raw.catch_up);
    if (!catch_up.ok()) return catch_up.status();
    SetDuration(*catch_up, config.mutable_catch_up());
  }
  if (given("warm_up")) {
    absl::StatusOr<absl::Duration> warm_up =
        ParseDurationFlag("warm_up", raw.warm_up);
    if (!warm_up.ok()) return warm_up.status();
    SetDuration(*warm_up, config.mutable_warm_up());
  }
  if (given("warm_up_from")) {
    absl::StatusOr<double> from = ParseDouble("warm_up_from", raw.warm_up_from);
    if (!from.ok()) return from.status();
    config.set_warm_up_from(*from);
  }
  if (given("starvation_bound")) {
    absl::StatusOr<absl::Duration> bound =
        ParseDurationFlag("starvation_bound", raw.starvation_bound);
    if (!bound.ok()) return bound.status();
    SetDuration(*bound, config.mutable_starvation_bound());
  }
  if (given("degradation")) {
    absl::StatusOr<v1::Degradation> degradation =
        DegradationFromName(raw.degradation);
    if (!degradation.ok()) {
      return UsageError(absl::StrCat("--", degradation.status().message()));
    }
    config.set_degradation(*degradation);
    // A local_share_for kept from local_share would make the new policy
    // invalid (it must be unset otherwise), and the server does not drop
    // it: a switch away clears it unless --local_share_for is given too.
    if (invocation->command == Command::kConfigure &&
        *degradation != v1::DEGRADATION_LOCAL_SHARE &&
        !given("local_share_for")) {
      invocation->update_mask.add_paths("local_share_for");
    }
  }
  if (given("local_share_for")) {
    absl::StatusOr<absl::Duration> share_for =
        ParseDurationFlag("local_share_for", raw.local_share_for);
    if (!share_for.ok()) return share_for.status();
    SetDuration(*share_for, config.mutable_local_share_for());
  }
  return ParseAdaptive(command, raw, &config);
}

// Where --help or --version is, they win over anything else on the line
// (as before CLI11): their position before "--" is all that counts.
// Returns kHelp, kVersion or nothing; `help_command` is the command named
// before the flag, if any.
std::optional<Command> HelpOrVersion(const std::vector<std::string>& args,
                                     std::string* help_command) {
  std::optional<Command> found;
  std::string command;
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (command.empty() && FindCommand(arg) != nullptr) command = arg;
    if (arg == "--help" || arg == "-h") {
      *help_command = command == "help" ? "" : command;
      return Command::kHelp;
    }
    if (arg == "--version") found = Command::kVersion;
  }
  // "help COMMAND": CLI11 would take COMMAND for a command of its own.
  const auto help = std::find(args.begin(), args.end(), "help");
  if (!found.has_value() && command == "help" && help + 1 < args.end() &&
      FindCommand(*(help + 1)) != nullptr) {
    *help_command = *(help + 1);
    return Command::kHelp;
  }
  return found;
}

// The one line CLI11 reports an error with, or ours for the extras it left.
std::string OneLine(absl::string_view message) {
  return absl::StrReplaceAll(message, {{"\r\n", " "}, {"\n", " "}});
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

// Makes one unary call of `stub` with throttlectl's deadline (the
// Controller's default, 10 s).
template <typename Request, typename Response>
absl::StatusOr<Response> Call(
    grpc::Status (v1::Throttle::StubInterface::*method)(grpc::ClientContext*,
                                                        const Request&,
                                                        Response*),
    v1::Throttle::StubInterface& stub, const Request& request) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  Response response;
  const grpc::Status status = (stub.*method)(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

// `rows` as columns aligned by two spaces, the first row the header.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
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

// The warm-up of `config` as get and list show it: "none", or
// "SECONDS s from FRACTION".
std::string WarmUpText(const v1::ThrottleConfig& config) {
  const google::protobuf::Duration& warm_up = config.warm_up();
  if (warm_up.seconds() == 0 && warm_up.nanos() == 0) return "none";
  // Unset warm_up_from means 1/3 (the proto).
  const double from =
      config.warm_up_from() == 0 ? 1.0 / 3 : config.warm_up_from();
  return absl::StrCat(DurationText(true, warm_up), " s from ",
                      FormatDouble(from));
}

// The degradation policy of `config` as get and list show it (unset means
// wait, the proto's default).
std::string DegradationText(const v1::ThrottleConfig& config) {
  return config.degradation() == v1::DEGRADATION_UNSPECIFIED
             ? DegradationName(v1::DEGRADATION_WAIT)
             : DegradationName(config.degradation());
}

// get's Degradation line, and with local_share its Local share for line.
std::string DegradationLines(const v1::ThrottleConfig& config) {
  std::string lines = Line("Degradation", DegradationText(config));
  if (config.degradation() == v1::DEGRADATION_LOCAL_SHARE) {
    absl::StrAppend(&lines, Line("Local share for",
                                 DurationText(config.has_local_share_for(),
                                              config.local_share_for())));
  }
  return lines;
}

// A table of what each worker got; empty when there are none.
std::string WorkersText(
    const google::protobuf::RepeatedPtrField<v1::WorkerStats>& workers) {
  if (workers.empty()) return "";
  std::vector<std::vector<std::string>> rows = {
      {"WORKER", "GRANTS", "GRANTS/S", "EMISSIONS"}};
  for (const v1::WorkerStats& worker : workers) {
    rows.push_back({worker.others()              ? "(others)"
                    : worker.worker_id().empty() ? "(none)"
                                                 : worker.worker_id(),
                    absl::StrCat(worker.grants()),
                    FormatDouble(worker.grants_per_second()),
                    absl::StrCat(worker.emissions())});
  }
  return absl::StrCat("\n", Table(rows));
}

// The message for what CLI11 left unparsed (`extras`, in order) after
// `command` (nullptr: none was given).
std::string ExtrasMessage(const CLI::App& app, const CLI::App* command,
                          const std::vector<std::string>& extras) {
  const std::string& first = extras.front();
  if (command == nullptr) {
    if (!absl::StartsWith(first, "-")) {
      return absl::StrCat("unknown command '", first, "'");
    }
  } else if (!absl::StartsWith(first, "-")) {
    return absl::StrCat("unexpected argument '", first, "' to '",
                        command->get_name(), "'");
  }
  const std::string flag = first.substr(0, first.find('='));
  for (const CommandSpec& spec : kCommands) {
    if (app.get_subcommand(spec.name)->get_option_no_throw(flag) != nullptr) {
      return absl::StrCat(flag, " does not apply to '",
                          command == nullptr ? "" : command->get_name(), "'");
    }
  }
  return absl::StrCat("unknown flag ", flag);
}

// Checks the global flags of `raw` into `invocation`.
absl::Status ParseGlobal(const CLI::App& app, const RawFlags& raw,
                         absl::string_view env_address,
                         Invocation* invocation) {
  if (app.get_option("--address")->count() > 0) {
    invocation->address = raw.address;
  } else if (!env_address.empty()) {
    invocation->address = std::string(env_address);
  }
  if (invocation->address.empty()) return UsageError("--address is empty");
  for (auto [flag, value, field] :
       {std::tuple<const char*, const std::string*, std::string*>{
            "tls_ca", &raw.tls_ca, &invocation->security.ca_file},
        {"tls_cert", &raw.tls_cert, &invocation->security.cert_file},
        {"tls_key", &raw.tls_key, &invocation->security.key_file},
        {"token", &raw.token, &invocation->security.token},
        {"token_file", &raw.token_file, &invocation->security.token_file},
        {"tls_server_name", &raw.tls_server_name,
         &invocation->security.server_name}}) {
    if (app.get_option(std::string("--") + flag)->count() == 0) continue;
    if (value->empty()) {
      return UsageError(absl::StrCat("--", flag, " is empty"));
    }
    *field = *value;
  }
  if (app.get_option("--json")->count() > 0) {
    absl::StatusOr<bool> json = ParseBool("json", raw.json);
    if (!json.ok()) return json.status();
    invocation->json = *json;
  }
  return absl::OkStatus();
}

// Checks the flags of `command` (the subcommand parsed) into `invocation`.
absl::Status ParseCommandFlags(const CLI::App& command, const RawFlags& raw,
                               Invocation* invocation) {
  const auto given = [&](const char* flag) {
    const CLI::Option* option =
        command.get_option_no_throw(std::string("--") + flag);
    return option != nullptr && option->count() > 0;
  };
  if (invocation->command == Command::kCreate ||
      invocation->command == Command::kConfigure) {
    if (absl::Status status = ParseConfig(command, raw, invocation);
        !status.ok()) {
      return status;
    }
  }
  if (given("window")) {
    absl::StatusOr<absl::Duration> window =
        ParseDurationFlag("window", raw.window);
    if (!window.ok()) return window.status();
    invocation->window = *window;
  }
  if (given("interval")) {
    absl::StatusOr<absl::Duration> interval =
        ParseDurationFlag("interval", raw.interval);
    if (!interval.ok()) return interval.status();
    invocation->interval = *interval;
  }
  if (given("workers")) {
    absl::StatusOr<bool> workers = ParseBool("workers", raw.workers);
    if (!workers.ok()) return workers.status();
    invocation->include_workers = *workers;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args,
                                     absl::string_view env_address) {
  Invocation invocation;
  if (std::optional<Command> early =
          HelpOrVersion(args, &invocation.help_command)) {
    invocation.command = *early;
    return invocation;
  }
  // CLI11 takes "--tls_ca=" for a flag without its value; say what it is.
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (absl::StartsWith(arg, "--") && absl::EndsWith(arg, "=")) {
      return UsageError(absl::StrCat(
          "--",
          absl::StrReplaceAll(absl::string_view(arg).substr(2, arg.size() - 3),
                              {{"-", "_"}}),
          " is empty"));
    }
  }
  RawFlags raw;
  const std::unique_ptr<CLI::App> app = BuildApp(&raw);
  // CLI11 reports errors by exception; they stop here, as a status.
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app->parse(reversed);
  } catch (const CLI::ParseError& error) {
    return UsageError(OneLine(error.what()));
  }
  const std::vector<CLI::App*> commands = app->get_subcommands();
  const CLI::App* command = commands.empty() ? nullptr : commands.front();
  if (const std::vector<std::string> extras = app->remaining();
      !extras.empty()) {
    return UsageError(ExtrasMessage(*app, command, extras));
  }
  if (command == nullptr) return UsageError("missing command");
  if (commands.size() > 1) {
    return UsageError(absl::StrCat("unexpected argument '",
                                   commands[1]->get_name(), "' to '",
                                   command->get_name(), "'"));
  }
  invocation.command = FindCommand(command->get_name())->command;
  if (invocation.command == Command::kHelp) {
    if (!raw.help_command.empty() && FindCommand(raw.help_command) == nullptr) {
      return UsageError(
          absl::StrCat("unknown command '", raw.help_command, "'"));
    }
    invocation.help_command = raw.help_command;
    return invocation;
  }
  invocation.name = raw.name;
  if (absl::Status status = ParseGlobal(*app, raw, env_address, &invocation);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = ParseCommandFlags(*command, raw, &invocation);
      !status.ok()) {
    return status;
  }
  return invocation;
}

std::string Usage(absl::string_view command) {
  if (FindCommand(command) == nullptr) return Usage();
  RawFlags raw;
  const std::unique_ptr<CLI::App> app = BuildApp(&raw);
  const CLI::App* sub = app->get_subcommand(std::string(command));
  return absl::StrCat(sub->help("throttlectl"),
                      "Global flags (--address, --json, security flags): "
                      "see throttlectl --help.\n");
}

std::string Usage() {
  return R"(Usage: throttlectl [--address=HOST:PORT] [--json] [SECURITY FLAGS]
                   COMMAND [NAME] [FLAGS]

Controls the throttles of a throttle server.

Commands (COMMAND --help prints one command's flags):
  create NAME --max_n=N --per=DURATION [--mode=MODE] [--burst=N]
              [--manual_emit] [--catch_up=DURATION] [--warm_up=DURATION]
              [--warm_up_from=FRACTION] [--starvation_bound=DURATION]
              [--degradation=POLICY] [--local_share_for=DURATION]
                        Create a throttle (state created) allowing N grants
                        per DURATION.
  configure NAME [--max_n=N] [--per=DURATION] [--mode=MODE] [--burst=N]
              [--manual_emit[=false]] [--catch_up=DURATION]
              [--warm_up=DURATION] [--warm_up_from=FRACTION]
              [--starvation_bound=DURATION] [--degradation=POLICY]
              [--local_share_for=DURATION]
                        Change only the given settings of a throttle (at
                        least one); the others keep their values. A --mode
                        other than bucket resets the burst unless --burst is
                        given too; a --degradation other than local_share
                        clears local_share_for unless --local_share_for is
                        given too.
  delete NAME           Delete a throttle.
  get NAME              Print one throttle's configuration and state.
  list                  List all throttles.
  start NAME            Start (or resume) a throttle.
  stop NAME             Stop a throttle and print its final statistics.
  latest NAME [--window=DURATION] [--workers]
                        Statistics over the last window (default 1s);
                        --workers adds what each worker got.
  mean NAME [--workers] Statistics since the first start, with the fairness
                        index of the grants per worker.
  watch NAME [--interval=DURATION]
                        A live view, redrawn every interval (default 1s):
                        state, rates, waiting streams and a chart of the
                        achieved rate over the last 60 s. One line per
                        snapshot when stdout is not a terminal. Ctrl-C ends
                        it (status 0); a deleted throttle ends it (status 1).
  help [COMMAND]        Print this help, or a command's.

Flags:
  --address=HOST:PORT   The server (a gRPC target). Default: $THROTTLE_ADDRESS,
                        else 127.0.0.1:50051.
  --json                Print the response message as one line of JSON
                        (proto field names).
  --mode=MODE           smooth (default), window, bucket, unbounded or
                        monitor-only.
  --burst=N             Bucket capacity in bucket mode (default max_n).
  --manual_emit         Count only emissions reported by workers (Emit).
  --catch_up=DURATION   How far the grant schedule may fall behind real time
                        (a stall) and still be caught up in a burst; 0: no
                        catch-up. Default: 1% of --per, at least one grant's
                        spacing. At most --per.
  --warm_up=DURATION    After a start (and a resume from a stop at least this
                        long) the rate ramps up linearly over DURATION; 0:
                        no warm-up (the default).
  --warm_up_from=FRACTION
                        The fraction of the rate a warm-up starts from, in
                        (0, 1]. Default: 1/3.
  --starvation_bound=DURATION
                        Priorities: a lower class waiting that got no grant
                        for this long gets the next one. 0 (default): none.
  --degradation=POLICY  What workers do while the server cannot be reached:
                        wait (the default: wait on while reconnecting),
                        fail_fast (waits end at once with UNAVAILABLE) or
                        local_share (grant locally at the worker's last
                        share for --local_share_for, then fail fast).
  --local_share_for=DURATION
                        With --degradation=local_share: how long workers
                        grant locally after losing the server, in (0, 1h].
  DURATION              250ms, 1.5s, 2m, 1h30m, or plain seconds (0.25).
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

v1::LatestRequest LatestRequestOf(const Invocation& invocation) {
  v1::LatestRequest request;
  request.set_throttle(invocation.name);
  SetDuration(invocation.window, request.mutable_window());
  request.set_include_workers(invocation.include_workers);
  return request;
}

v1::MeanRequest MeanRequestOf(const Invocation& invocation) {
  v1::MeanRequest request;
  request.set_throttle(invocation.name);
  request.set_include_workers(invocation.include_workers);
  return request;
}

v1::WatchThrottleRequest WatchRequestOf(const Invocation& invocation) {
  v1::WatchThrottleRequest request;
  request.set_throttle(invocation.name);
  SetDuration(invocation.interval, request.mutable_interval());
  return request;
}

absl::Status Execute(const Invocation& invocation, const Controller& controller,
                     v1::Throttle::StubInterface& stub, std::ostream& out) {
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
      return Print(Call(&v1::Throttle::StubInterface::Latest, stub,
                        LatestRequestOf(invocation)),
                   json, out,
                   [](const v1::LatestResponse& r) { return ToText(r); });
    case Command::kMean:
      return Print(Call(&v1::Throttle::StubInterface::Mean, stub,
                        MeanRequestOf(invocation)),
                   json, out,
                   [](const v1::MeanResponse& r) { return ToText(r); });
    case Command::kHelp:
    case Command::kVersion:
    case Command::kWatch:
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

// The max_n in effect: the adaptive ceiling's rate, or max_n (also from a
// server older than current_max_n, which sends 0).
int64_t CurrentMaxN(const v1::ThrottleInfo& info) {
  return info.current_max_n() > 0 ? info.current_max_n()
                                  : info.config().max_n();
}

std::string ToText(const v1::ThrottleInfo& info) {
  const v1::ThrottleConfig& config = info.config();
  return absl::StrCat(
      Line("Name", info.name()), Line("State", StateName(info.state())),
      Line("Mode", ModeName(config.mode())),
      Line("Max n", absl::StrCat(config.max_n())),
      Line("Current max n", absl::StrCat(CurrentMaxN(info))),
      Line("Per seconds", FormatDouble(config.per_seconds())),
      Line("Burst", absl::StrCat(config.burst())),
      Line("Catch up", DurationText(config.has_catch_up(), config.catch_up())),
      Line("Manual emit", config.manual_emit() ? "true" : "false"),
      Line("Warm up", WarmUpText(config)),
      Line("Starvation bound", DurationText(config.has_starvation_bound(),
                                            config.starvation_bound())),
      DegradationLines(config),
      Line("Waiting streams", absl::StrCat(info.waiting_streams())),
      Line("Total", absl::StrCat(info.total_emissions())));
}

std::string ToText(const v1::ListThrottlesResponse& response) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "STATE", "MODE", "MAX_N", "CURRENT", "PER_SECONDS", "BURST",
       "CATCH_UP", "MANUAL_EMIT", "WAITING", "TOTAL", "WARM_UP",
       "DEGRADATION"}};
  for (const v1::ThrottleInfo& info : response.throttles()) {
    const v1::ThrottleConfig& config = info.config();
    rows.push_back(
        {info.name(), StateName(info.state()), ModeName(config.mode()),
         absl::StrCat(config.max_n()), absl::StrCat(CurrentMaxN(info)),
         FormatDouble(config.per_seconds()), absl::StrCat(config.burst()),
         DurationText(config.has_catch_up(), config.catch_up()),
         config.manual_emit() ? "true" : "false",
         absl::StrCat(info.waiting_streams()),
         absl::StrCat(info.total_emissions()), WarmUpText(config),
         DegradationText(config)});
  }
  return Table(rows);
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
      Line("Window seconds", FormatDouble(response.window_seconds())),
      WorkersText(response.workers()));
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
      Line("State", StateName(response.state())),
      Line("Fairness index", FormatDouble(response.fairness_index())),
      WorkersText(response.workers()));
}

}  // namespace throttle::cli
