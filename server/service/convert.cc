#include "server/service/convert.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/core/duration.h"
#include "server/core/format.h"
#include "throttle/names.h"

namespace throttle::server {
namespace {

std::string Quote(absl::string_view s) {
  constexpr size_t kShown = 40;
  std::string shown = absl::CHexEscape(s.substr(0, kShown));
  if (s.size() > kShown) absl::StrAppend(&shown, "...");
  return absl::StrCat("\"", shown, "\"");
}

// The one correspondence between the core's modes and the proto's.
struct ModePair {
  Mode mode;
  v1::Mode proto;
};
constexpr ModePair kModePairs[] = {
    {Mode::kSmooth, v1::MODE_SMOOTH},
    {Mode::kWindow, v1::MODE_WINDOW},
    {Mode::kBucket, v1::MODE_BUCKET},
    {Mode::kUnbounded, v1::MODE_UNBOUNDED},
    {Mode::kMonitorOnly, v1::MODE_MONITOR_ONLY},
};

// MODE_UNSPECIFIED (and anything unknown) is smooth.
Mode ModeFromProto(v1::Mode proto) {
  for (const ModePair& pair : kModePairs) {
    if (pair.proto == proto) return pair.mode;
  }
  return Mode::kSmooth;
}

v1::Mode ModeToProto(Mode mode) {
  for (const ModePair& pair : kModePairs) {
    if (pair.mode == mode) return pair.proto;
  }
  return v1::MODE_SMOOTH;
}

// Checks a rate window given in seconds before it becomes a Duration
// (NaN and infinities have no Duration), and names the value as sent: a
// window below the rate limit's 1 / kMaxRatePerSecond (which no max_n >= 1
// can meet) is refused here, before it could round to a zero Duration and
// be reported as "got 0".
absl::StatusOr<absl::Duration> PerFromSeconds(absl::string_view field,
                                              double seconds) {
  if (!std::isfinite(seconds) || seconds <= 0 || seconds > kMaxPerSeconds) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be finite and in (0, ", FormatDouble(kMaxPerSeconds),
        "], got ", FormatDouble(seconds)));
  }
  if (seconds < kMinPerSeconds) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be at least ", FormatDouble(kMinPerSeconds),
        " (max_n / per_seconds is at most ", FormatDouble(kMaxRatePerSecond),
        " per second), got ", FormatDouble(seconds)));
  }
  return absl::Seconds(seconds);
}

}  // namespace

absl::StatusOr<absl::Duration> DurationFromProto(
    absl::string_view field, const google::protobuf::Duration& d) {
  const bool valid = d.seconds() >= -315576000000 &&
                     d.seconds() <= 315576000000 && d.nanos() > -1000000000 &&
                     d.nanos() < 1000000000 &&
                     !(d.seconds() > 0 && d.nanos() < 0) &&
                     !(d.seconds() < 0 && d.nanos() > 0);
  if (!valid) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not a valid Duration: seconds=", d.seconds(),
                     " nanos=", d.nanos()));
  }
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::Status ValidateName(absl::string_view field, absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  }
  if (name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", name.size(), " bytes long, the limit is ",
                     kMaxNameLength, ": ", Quote(name)));
  }
  for (char c : name) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " must be printable ASCII without spaces, got ", Quote(name)));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateWorkerId(absl::string_view worker_id) {
  if (worker_id.size() > kMaxWorkerIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("worker_id is ", worker_id.size(),
                     " bytes long, the limit is ", kMaxWorkerIdLength));
  }
  return absl::OkStatus();
}

namespace {

// An AdaptiveConfig with its zero defaults filled in (not yet validated
// against max_n).
absl::StatusOr<AdaptiveConfig> AdaptiveFromProto(
    const v1::AdaptiveConfig& proto) {
  const AdaptiveConfig defaults;
  AdaptiveConfig config;
  config.floor_n = proto.floor_n() != 0 ? proto.floor_n() : defaults.floor_n;
  config.target_rejection_ratio = proto.target_rejection_ratio() != 0
                                      ? proto.target_rejection_ratio()
                                      : defaults.target_rejection_ratio;
  config.window = defaults.window;
  if (proto.has_window()) {
    absl::StatusOr<absl::Duration> window =
        DurationFromProto("config.adaptive.window", proto.window());
    if (!window.ok()) return window.status();
    config.window = *window;
  }
  config.increase_n =
      proto.increase_n() != 0 ? proto.increase_n() : defaults.increase_n;
  config.decrease_factor = proto.decrease_factor() != 0
                               ? proto.decrease_factor()
                               : defaults.decrease_factor;
  config.min_outcomes =
      proto.min_outcomes() != 0 ? proto.min_outcomes() : defaults.min_outcomes;
  return config;
}

}  // namespace

absl::StatusOr<ThrottleConfig> FromProto(const v1::ThrottleConfig& proto) {
  if (!v1::Mode_IsValid(proto.mode())) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.mode has no such value: ", proto.mode()));
  }
  absl::StatusOr<absl::Duration> per =
      PerFromSeconds("config.per_seconds", proto.per_seconds());
  if (!per.ok()) return per.status();
  ThrottleConfig config;
  config.max_n = proto.max_n();
  config.per = *per;
  config.mode = ModeFromProto(proto.mode());
  config.burst = proto.burst();
  config.manual_emit = proto.manual_emit();
  if (proto.has_catch_up()) {
    absl::StatusOr<absl::Duration> catch_up =
        DurationFromProto("config.catch_up", proto.catch_up());
    if (!catch_up.ok()) return catch_up.status();
    config.catch_up = *catch_up;
  }
  if (proto.has_warm_up()) {
    absl::StatusOr<absl::Duration> warm_up =
        DurationFromProto("config.warm_up", proto.warm_up());
    if (!warm_up.ok()) return warm_up.status();
    config.warm_up = *warm_up;
  }
  config.warm_up_from = proto.warm_up_from();
  if (proto.has_starvation_bound()) {
    absl::StatusOr<absl::Duration> bound =
        DurationFromProto("config.starvation_bound", proto.starvation_bound());
    if (!bound.ok()) return bound.status();
    config.starvation_bound = *bound;
  }
  if (proto.has_adaptive()) {
    absl::StatusOr<AdaptiveConfig> adaptive =
        AdaptiveFromProto(proto.adaptive());
    if (!adaptive.ok()) return adaptive.status();
    config.adaptive = *adaptive;
  }
  switch (proto.degradation()) {
    case v1::DEGRADATION_UNSPECIFIED:
    case v1::DEGRADATION_WAIT:
      config.degradation = Degradation::kWait;
      break;
    case v1::DEGRADATION_FAIL_FAST:
      config.degradation = Degradation::kFailFast;
      break;
    case v1::DEGRADATION_LOCAL_SHARE:
      config.degradation = Degradation::kLocalShare;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "config.degradation has no such value: ", proto.degradation()));
  }
  if (proto.has_local_share_for()) {
    absl::StatusOr<absl::Duration> local_share_for =
        DurationFromProto("config.local_share_for", proto.local_share_for());
    if (!local_share_for.ok()) return local_share_for.status();
    config.local_share_for = *local_share_for;
  }
  if (absl::Status status = ValidateConfig(config); !status.ok()) return status;
  return config;
}

namespace {

// `d` as a google.protobuf.Duration (whole nanoseconds).
void SetDurationProto(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t seconds = absl::ToInt64Seconds(d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(d - absl::Seconds(seconds))));
}

// The proto form of an adaptive config (defaults are filled in when it is
// read, so stored and listed forms are the same).
void AdaptiveToProto(const AdaptiveConfig& config, v1::AdaptiveConfig* out) {
  out->set_floor_n(config.floor_n);
  out->set_target_rejection_ratio(config.target_rejection_ratio);
  SetDurationProto(config.window, out->mutable_window());
  out->set_increase_n(config.increase_n);
  out->set_decrease_factor(config.decrease_factor);
  out->set_min_outcomes(config.min_outcomes);
}

// Sets the degradation fields of `proto`: nothing for the default (wait).
void SetDegradationProto(const ThrottleConfig& config,
                         v1::ThrottleConfig* proto) {
  if (config.degradation == Degradation::kWait) return;
  proto->set_degradation(DegradationToProto(config.degradation));
  if (config.local_share_for > absl::ZeroDuration()) {
    SetDurationProto(config.local_share_for, proto->mutable_local_share_for());
  }
}

// The proto form of a core config as stored, defaults not filled in
// (burst 0 stays "max_n", an unset catch_up stays the default), so that a
// partial update keeps what was configured rather than what it meant.
v1::ThrottleConfig StoredToProto(const ThrottleConfig& config) {
  v1::ThrottleConfig proto;
  proto.set_max_n(config.max_n);
  proto.set_per_seconds(absl::ToDoubleSeconds(config.per));
  proto.set_mode(ModeToProto(config.mode));
  proto.set_burst(config.burst);
  proto.set_manual_emit(config.manual_emit);
  if (config.catch_up.has_value()) {
    SetDurationProto(*config.catch_up, proto.mutable_catch_up());
  }
  if (config.warm_up > absl::ZeroDuration()) {
    SetDurationProto(config.warm_up, proto.mutable_warm_up());
  }
  proto.set_warm_up_from(config.warm_up_from);
  if (config.starvation_bound > absl::ZeroDuration()) {
    SetDurationProto(config.starvation_bound, proto.mutable_starvation_bound());
  }
  if (config.adaptive.has_value()) {
    AdaptiveToProto(*config.adaptive, proto.mutable_adaptive());
  }
  SetDegradationProto(config, &proto);
  return proto;
}

// The ThrottleConfig fields an update_mask may name.
constexpr absl::string_view kConfigPaths[] = {
    "max_n",    "per_seconds",  "mode",
    "burst",    "manual_emit",  "catch_up",
    "warm_up",  "warm_up_from", "starvation_bound",
    "adaptive", "degradation",  "local_share_for"};

}  // namespace

absl::StatusOr<ThrottleConfig> ApplyConfigUpdate(
    const ThrottleConfig& current, const v1::ThrottleConfig& update,
    const google::protobuf::FieldMask& mask) {
  if (mask.paths().empty() ||
      (mask.paths_size() == 1 && mask.paths(0) == "*")) {
    return FromProto(update);
  }
  v1::ThrottleConfig merged = StoredToProto(current);
  bool has_burst = false;
  bool has_mode = false;
  bool has_degradation = false;
  bool has_local_share_for = false;
  for (const std::string& path : mask.paths()) {
    // A named field unset in `update` takes its default, as in a whole
    // config.
    if (path == "max_n") {
      merged.set_max_n(update.max_n());
    } else if (path == "per_seconds") {
      merged.set_per_seconds(update.per_seconds());
    } else if (path == "mode") {
      merged.set_mode(update.mode());
      has_mode = true;
    } else if (path == "burst") {
      merged.set_burst(update.burst());
      has_burst = true;
    } else if (path == "manual_emit") {
      merged.set_manual_emit(update.manual_emit());
    } else if (path == "catch_up" && update.has_catch_up()) {
      *merged.mutable_catch_up() = update.catch_up();
    } else if (path == "catch_up") {
      merged.clear_catch_up();
    } else if (path == "warm_up") {
      *merged.mutable_warm_up() = update.warm_up();
    } else if (path == "warm_up_from") {
      merged.set_warm_up_from(update.warm_up_from());
    } else if (path == "starvation_bound") {
      *merged.mutable_starvation_bound() = update.starvation_bound();
    } else if (path == "adaptive" && update.has_adaptive()) {
      *merged.mutable_adaptive() = update.adaptive();
    } else if (path == "adaptive") {
      merged.clear_adaptive();
    } else if (path == "degradation") {
      merged.set_degradation(update.degradation());
      has_degradation = true;
    } else if (path == "local_share_for") {
      *merged.mutable_local_share_for() = update.local_share_for();
      has_local_share_for = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("update_mask has an unknown path ", Quote(path),
                       " (known: ", absl::StrJoin(kConfigPaths, ", "), ")"));
    }
  }
  // A burst kept from bucket mode would make the new mode invalid (burst
  // must be 0 outside bucket mode): a mode switch drops it unless the
  // caller named burst too.
  if (has_mode && !has_burst && merged.mode() != v1::MODE_BUCKET) {
    merged.set_burst(0);
  }
  // Likewise local_share_for, which must be unset outside local share.
  if (has_degradation && !has_local_share_for &&
      merged.degradation() != v1::DEGRADATION_LOCAL_SHARE) {
    merged.clear_local_share_for();
  }
  return FromProto(merged);
}

v1::ThrottleConfig ToProto(const ThrottleConfig& config) {
  v1::ThrottleConfig proto;
  proto.set_max_n(config.max_n);
  proto.set_per_seconds(absl::ToDoubleSeconds(config.per));
  proto.set_mode(ModeToProto(config.mode));
  proto.set_burst(config.mode == Mode::kBucket ? config.EffectiveBurst() : 0);
  proto.set_manual_emit(config.manual_emit);
  SetDurationProto(config.EffectiveCatchUp(), proto.mutable_catch_up());
  if (config.warm_up > absl::ZeroDuration()) {
    SetDurationProto(config.warm_up, proto.mutable_warm_up());
    proto.set_warm_up_from(config.EffectiveWarmUpFrom());
  }
  if (config.starvation_bound > absl::ZeroDuration()) {
    SetDurationProto(config.starvation_bound, proto.mutable_starvation_bound());
  }
  if (config.adaptive.has_value()) {
    AdaptiveToProto(*config.adaptive, proto.mutable_adaptive());
  }
  SetDegradationProto(config, &proto);
  return proto;
}

v1::Degradation DegradationToProto(Degradation degradation) {
  switch (degradation) {
    case Degradation::kFailFast:
      return v1::DEGRADATION_FAIL_FAST;
    case Degradation::kLocalShare:
      return v1::DEGRADATION_LOCAL_SHARE;
    case Degradation::kWait:
      break;
  }
  return v1::DEGRADATION_WAIT;
}

v1::State ToProto(State state) {
  switch (state) {
    case State::kCreated:
      return v1::STATE_CREATED;
    case State::kRunning:
      return v1::STATE_RUNNING;
    case State::kStopped:
      return v1::STATE_STOPPED;
  }
  return v1::STATE_UNSPECIFIED;
}

namespace {

// A stream's weight as sent: unset means 1.
absl::StatusOr<int64_t> WeightFromProto(bool has_weight, int64_t weight) {
  if (!has_weight) return 1;
  if (weight < 1 || weight > kMaxWeight) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight must be in [1, ", kMaxWeight, "], got ", weight));
  }
  return weight;
}

// A stream's priority class as sent: unset means kDefaultPriority.
absl::StatusOr<int64_t> PriorityFromProto(bool has_priority, int64_t priority) {
  if (!has_priority) return kDefaultPriority;
  if (priority < 0 || priority > kMaxPriority) {
    return absl::InvalidArgumentError(absl::StrCat(
        "priority must be in [0, ", kMaxPriority, "], got ", priority));
  }
  return priority;
}

}  // namespace

void DurationToProto(absl::Duration d, google::protobuf::Duration* out) {
  // google.protobuf.Duration spans about +-10,000 years.
  const absl::Duration kMax = absl::Seconds(315'576'000'000);
  SetDurationProto(std::clamp(d, -kMax, kMax), out);
}

absl::StatusOr<StreamRequest> FromProto(const v1::AwaitFuelRequest& proto) {
  StreamRequest request;
  if (proto.has_count()) {
    if (proto.count() < 0 || proto.count() > kMaxStreamCount) {
      return absl::InvalidArgumentError(
          absl::StrCat("count must be in [0, ", kMaxStreamCount,
                       "] (0 = until stopped), got ", proto.count()));
    }
    request.count = proto.count();
  }
  absl::StatusOr<int64_t> weight =
      WeightFromProto(proto.has_weight(), proto.weight());
  if (!weight.ok()) return weight.status();
  request.weight = *weight;
  if (proto.has_wait_limit()) {
    absl::StatusOr<absl::Duration> limit =
        DurationFromProto("wait_limit", proto.wait_limit());
    if (!limit.ok()) return limit.status();
    if (*limit < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("wait_limit must not be negative, got ",
                       absl::FormatDuration(*limit)));
    }
    request.wait_limit = *limit;
  }
  request.fail_if_late = proto.fail_if_late();
  absl::StatusOr<int64_t> priority =
      PriorityFromProto(proto.has_priority(), proto.priority());
  if (!priority.ok()) return priority.status();
  request.priority = *priority;
  if (absl::Status status = ValidateWorkerId(proto.worker_id()); !status.ok()) {
    return status;
  }
  return request;
}

absl::Status ValidateDemand(const v1::AcquireRequest& proto) {
  if (proto.demand() < 0 || proto.demand() > kMaxDemand) {
    return absl::InvalidArgumentError(absl::StrCat(
        "demand must be in [0, ", kMaxDemand, "], got ", proto.demand()));
  }
  if (proto.withdraw() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("withdraw must not be negative, got ", proto.withdraw()));
  }
  return absl::OkStatus();
}

absl::StatusOr<StreamRequest> FromProto(const v1::AcquireRequest& first) {
  if (absl::Status status = ValidateName("throttle", first.throttle());
      !status.ok()) {
    return status;
  }
  if (absl::Status status = ValidateDemand(first); !status.ok()) {
    return status;
  }
  if (absl::Status status = ValidateWorkerId(first.worker_id()); !status.ok()) {
    return status;
  }
  absl::StatusOr<int64_t> weight =
      WeightFromProto(first.has_weight(), first.weight());
  if (!weight.ok()) return weight.status();
  absl::StatusOr<int64_t> priority =
      PriorityFromProto(first.has_priority(), first.priority());
  if (!priority.ok()) return priority.status();
  StreamRequest request;
  request.on_demand = true;
  request.priority = *priority;
  request.count = first.demand();  // a first withdrawal has nothing to take
  request.weight = *weight;
  return request;
}

absl::StatusOr<Mode> ParseMode(absl::string_view name) {
  // The one parser of mode names (throttle/names.h), as in throttlectl and
  // the client library.
  absl::StatusOr<v1::Mode> mode = ModeFromName(name);
  if (!mode.ok()) return mode.status();
  return ModeFromProto(*mode);
}

absl::StatusOr<Degradation> ParseDegradation(absl::string_view name) {
  if (name == "wait") return Degradation::kWait;
  if (name == "fail_fast") return Degradation::kFailFast;
  if (name == "local_share") return Degradation::kLocalShare;
  return absl::InvalidArgumentError(
      absl::StrCat("degradation ", Quote(name),
                   " is not one of wait, fail_fast, local_share"));
}

absl::StatusOr<std::pair<std::string, ThrottleConfig>> ParseThrottleSpec(
    absl::string_view spec) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(spec, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (parts.empty()) return absl::InvalidArgumentError("empty throttle spec");
  std::string name(parts[0]);
  if (absl::Status status = ValidateName("name", name); !status.ok()) {
    return status;
  }
  ThrottleConfig config;
  bool has_max_n = false;
  bool has_per = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    const auto bad = [&] {
      return absl::InvalidArgumentError(absl::StrCat(
          "throttle ", name, ": bad value in ", Quote(parts[i]),
          kv.first == "per" || kv.first == "catch_up" ||
                  kv.first == "warm_up" || kv.first == "starvation_bound" ||
                  kv.first == "local_share_for"
              ? " (a duration: seconds, or 250ms, 1.5s, 2m)"
              : ""));
    };
    if (kv.first == "max_n") {
      if (!absl::SimpleAtoi(kv.second, &config.max_n)) return bad();
      has_max_n = true;
    } else if (kv.first == "per") {
      absl::StatusOr<absl::Duration> parsed = ParseDuration(kv.second);
      if (!parsed.ok()) return bad();
      absl::StatusOr<absl::Duration> per =
          PerFromSeconds("per", absl::ToDoubleSeconds(*parsed));
      if (!per.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("throttle ", name, ": ", per.status().message()));
      }
      config.per = *per;
      has_per = true;
    } else if (kv.first == "mode") {
      absl::StatusOr<Mode> mode = ParseMode(kv.second);
      if (!mode.ok()) return mode.status();
      config.mode = *mode;
    } else if (kv.first == "burst") {
      if (!absl::SimpleAtoi(kv.second, &config.burst)) return bad();
    } else if (kv.first == "manual_emit") {
      if (!absl::SimpleAtob(kv.second, &config.manual_emit)) return bad();
    } else if (kv.first == "catch_up") {
      absl::StatusOr<absl::Duration> catch_up = ParseDuration(kv.second);
      if (!catch_up.ok()) return bad();
      config.catch_up = *catch_up;
    } else if (kv.first == "warm_up") {
      absl::StatusOr<absl::Duration> warm_up = ParseDuration(kv.second);
      if (!warm_up.ok()) return bad();
      config.warm_up = *warm_up;
    } else if (kv.first == "warm_up_from") {
      if (!absl::SimpleAtod(kv.second, &config.warm_up_from)) return bad();
    } else if (kv.first == "starvation_bound") {
      absl::StatusOr<absl::Duration> bound = ParseDuration(kv.second);
      if (!bound.ok()) return bad();
      config.starvation_bound = *bound;
    } else if (absl::StartsWith(kv.first, "adaptive_")) {
      // Any adaptive_* key makes the throttle adaptive; the others keep
      // their defaults.
      AdaptiveConfig& a = config.adaptive.has_value()
                              ? *config.adaptive
                              : config.adaptive.emplace();
      const absl::string_view key = kv.first.substr(9);
      bool ok = true;
      if (key == "floor_n") {
        ok = absl::SimpleAtoi(kv.second, &a.floor_n);
      } else if (key == "target") {
        ok = absl::SimpleAtod(kv.second, &a.target_rejection_ratio);
      } else if (key == "window") {
        absl::StatusOr<absl::Duration> window = ParseDuration(kv.second);
        ok = window.ok();
        if (ok) a.window = *window;
      } else if (key == "increase_n") {
        ok = absl::SimpleAtoi(kv.second, &a.increase_n);
      } else if (key == "decrease") {
        ok = absl::SimpleAtod(kv.second, &a.decrease_factor);
      } else if (key == "min_outcomes") {
        ok = absl::SimpleAtoi(kv.second, &a.min_outcomes);
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "throttle ", name, ": unknown setting ", Quote(parts[i]),
            " (known adaptive_*: adaptive_floor_n, adaptive_target, "
            "adaptive_window, adaptive_increase_n, adaptive_decrease, "
            "adaptive_min_outcomes)"));
      }
      if (!ok) return bad();
    } else if (kv.first == "degradation") {
      absl::StatusOr<Degradation> degradation = ParseDegradation(kv.second);
      if (!degradation.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "throttle ", name, ": ", degradation.status().message()));
      }
      config.degradation = *degradation;
    } else if (kv.first == "local_share_for") {
      absl::StatusOr<absl::Duration> local_share_for = ParseDuration(kv.second);
      if (!local_share_for.ok()) return bad();
      config.local_share_for = *local_share_for;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "throttle ", name, ": unknown setting ", Quote(parts[i]),
          " (known: max_n, per, mode, burst, manual_emit, "
          "catch_up, warm_up, warm_up_from, starvation_bound, adaptive_*, "
          "degradation, local_share_for)"));
    }
  }
  if (!has_max_n || !has_per) {
    return absl::InvalidArgumentError(
        absl::StrCat("throttle ", name, ": max_n and per are required"));
  }
  if (absl::Status status = ValidateConfig(config); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("throttle ", name, ": ", status.message()));
  }
  return std::make_pair(std::move(name), config);
}

}  // namespace throttle::server
