#include "throttle/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace throttle {
namespace {

struct NamedMode {
  v1::Mode mode;
  absl::string_view name;
};

constexpr NamedMode kModes[] = {
    {v1::MODE_SMOOTH, "smooth"},
    {v1::MODE_WINDOW, "window"},
    {v1::MODE_BUCKET, "bucket"},
    {v1::MODE_UNBOUNDED, "unbounded"},
    {v1::MODE_MONITOR_ONLY, "monitor-only"},
};

struct NamedDegradation {
  v1::Degradation degradation;
  absl::string_view name;
};

constexpr NamedDegradation kDegradations[] = {
    {v1::DEGRADATION_WAIT, "wait"},
    {v1::DEGRADATION_FAIL_FAST, "fail_fast"},
    {v1::DEGRADATION_LOCAL_SHARE, "local_share"},
};

}  // namespace

absl::StatusOr<v1::Mode> ModeFromName(absl::string_view name) {
  const std::string normal =
      absl::StrReplaceAll(absl::AsciiStrToLower(name), {{"_", "-"}});
  for (const NamedMode& m : kModes) {
    if (m.name == normal) return m.mode;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("mode \"", absl::CHexEscape(name),
                   "\" is not one of smooth, window, bucket, unbounded, "
                   "monitor-only"));
}

std::string ModeName(v1::Mode mode) {
  for (const NamedMode& m : kModes) {
    if (m.mode == mode) return std::string(m.name);
  }
  return "unspecified";
}

absl::StatusOr<v1::Degradation> DegradationFromName(absl::string_view name) {
  for (const NamedDegradation& d : kDegradations) {
    if (d.name == name) return d.degradation;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("degradation \"", absl::CHexEscape(name),
                   "\" is not one of wait, fail_fast, local_share"));
}

std::string DegradationName(v1::Degradation degradation) {
  for (const NamedDegradation& d : kDegradations) {
    if (d.degradation == degradation) return std::string(d.name);
  }
  return "unspecified";
}

std::string StateName(v1::State state) {
  switch (state) {
    case v1::STATE_CREATED:
      return "created";
    case v1::STATE_RUNNING:
      return "running";
    case v1::STATE_STOPPED:
      return "stopped";
    default:
      return "unspecified";
  }
}

}  // namespace throttle
