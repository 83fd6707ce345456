// Fuzz target: the throttle spec syntax of the server's --throttle flag and
// --config file (ParseThrottleSpec in server/convert.h).
//
// The input is used both ways throttle_server reads specs (server/main.cc):
// as the flag's value, split at ';', and as a config file, one spec per
// line with '#' comments. Every spec must parse or fail with
// INVALID_ARGUMENT on one line (the server prints it as its one error
// line); an accepted spec is a valid name and config, and printing it back
// in the same syntax gives the same throttle.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "server/core/duration.h"
#include "server/core/throttle_config.h"
#include "server/service/convert.h"
#include "tests/fuzz/fuzz_check.h"

namespace throttle::server {
namespace {

// The spec syntax of `name` and `config`, every number exact.
std::string FormatSpec(const std::string& name, const ThrottleConfig& config) {
  std::string spec = absl::StrFormat(
      "%s max_n=%d per=%.17g mode=%s manual_emit=%s", name, config.max_n,
      absl::ToDoubleSeconds(config.per), ModeName(config.mode),
      config.manual_emit ? "true" : "false");
  if (config.burst != 0)
    absl::StrAppendFormat(&spec, " burst=%d", config.burst);
  if (config.warm_up != absl::ZeroDuration()) {
    absl::StrAppendFormat(&spec, " warm_up=%s",
                          server::FormatDuration(config.warm_up));
  }
  if (config.warm_up_from != 0) {
    absl::StrAppendFormat(&spec, " warm_up_from=%.17g", config.warm_up_from);
  }
  if (config.starvation_bound != absl::ZeroDuration()) {
    absl::StrAppendFormat(&spec, " starvation_bound=%s",
                          server::FormatDuration(config.starvation_bound));
  }
  return spec;
}

void CheckSpec(absl::string_view spec) {
  const auto parsed = ParseThrottleSpec(spec);
  if (!parsed.ok()) {
    const absl::string_view message = parsed.status().message();
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(!message.empty());
    // One line on stderr: the input's control characters come escaped.
    FUZZ_CHECK(message.find_first_of("\r\n") == absl::string_view::npos);
    return;
  }
  const auto& [name, config] = *parsed;
  FUZZ_CHECK(ValidateName("name", name).ok());
  FUZZ_CHECK(ValidateConfig(config).ok());

  const std::string again_spec = FormatSpec(name, config);
  const auto again = ParseThrottleSpec(again_spec);
  if (!again.ok()) {
    std::fprintf(stderr, "spec accepted, printed back as \"%s\": %s\n",
                 again_spec.c_str(), again.status().ToString().c_str());
    std::abort();
  }
  FUZZ_CHECK(again->first == name);
  FUZZ_CHECK(again->second.max_n == config.max_n);
  FUZZ_CHECK(again->second.mode == config.mode);
  FUZZ_CHECK(again->second.burst == config.burst);
  FUZZ_CHECK(again->second.manual_emit == config.manual_emit);
  FUZZ_CHECK(absl::AbsDuration(again->second.per - config.per) <=
             absl::Nanoseconds(1));
  FUZZ_CHECK(absl::AbsDuration(again->second.warm_up - config.warm_up) <=
             absl::Nanoseconds(1));
  FUZZ_CHECK(again->second.warm_up_from == config.warm_up_from);
  FUZZ_CHECK(absl::AbsDuration(again->second.starvation_bound -
                               config.starvation_bound) <=
             absl::Nanoseconds(1));
}

void FuzzOne(absl::string_view input) {
  // --throttle="a max_n=1 per=1; b ..." (server/main.cc).
  const std::vector<absl::string_view> flag_specs =
      absl::StrSplit(input, ';', absl::SkipWhitespace());
  for (absl::string_view spec : flag_specs) CheckSpec(spec);

  // --config=FILE: one spec per line, '#' to the end of a line is a comment
  // (server/main.cc reads it with std::getline, which splits at '\n').
  for (absl::string_view line : absl::StrSplit(input, '\n')) {
    const absl::string_view spec =
        absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (!spec.empty()) CheckSpec(spec);
  }

  // Mode names: what ParseMode accepts has a name that parses back to it.
  const absl::StatusOr<Mode> mode = ParseMode(input);
  if (mode.ok()) {
    const absl::StatusOr<Mode> again = ParseMode(ModeName(*mode));
    FUZZ_CHECK(again.ok() && *again == *mode);
  } else {
    FUZZ_CHECK(mode.status().code() == absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace throttle::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  throttle::server::FuzzOne(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
