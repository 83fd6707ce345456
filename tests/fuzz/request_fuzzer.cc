// Fuzz target: every request message of proto/throttle/v1/throttle.proto
// through the validation and conversion the service applies at its boundary
// (server/convert.h), without gRPC.
//
// The input is parsed as each request type in turn (ParseFromArray); each
// one that parses goes to the functions the service calls for that RPC.
// They must not crash, an error must be INVALID_ARGUMENT naming the field,
// and what they accept must satisfy the scheduler's preconditions and
// survive the round trip the API makes (a config read back from the server
// is a valid request again).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "server/core/scheduler.h"
#include "server/core/throttle_config.h"
#include "server/service/convert.h"
#include "tests/fuzz/fuzz_check.h"
#include "throttle/v1/throttle.pb.h"

namespace throttle::server {
namespace {

// An error from a validation function: INVALID_ARGUMENT, and the message
// names one of `fields`.
void CheckInvalidArgument(const absl::Status& status,
                          std::initializer_list<absl::string_view> fields) {
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    std::fprintf(stderr, "expected INVALID_ARGUMENT, got %s\n",
                 status.ToString().c_str());
    std::abort();
  }
  for (absl::string_view field : fields) {
    if (absl::StrContains(status.message(), field)) return;
  }
  std::fprintf(stderr, "error does not name the field: %s\n",
               status.ToString().c_str());
  std::abort();
}

// ValidateName as the service calls it; true if the name is valid.
bool CheckName(absl::string_view field, const std::string& name) {
  const absl::Status status = ValidateName(field, name);
  if (!status.ok()) {
    CheckInvalidArgument(status, {field});
    return false;
  }
  FUZZ_CHECK(!name.empty() && name.size() <= kMaxNameLength);
  return true;
}

void CheckWorkerId(const std::string& worker_id) {
  const absl::Status status = ValidateWorkerId(worker_id);
  if (!status.ok()) {
    CheckInvalidArgument(status, {"worker_id"});
  } else {
    FUZZ_CHECK(worker_id.size() <= kMaxWorkerIdLength);
  }
}

// DurationFromProto; on success the value is exactly seconds + nanos.
void CheckDuration(absl::string_view field,
                   const google::protobuf::Duration& proto) {
  const absl::StatusOr<absl::Duration> d = DurationFromProto(field, proto);
  if (!d.ok()) {
    CheckInvalidArgument(d.status(), {field});
    return;
  }
  FUZZ_CHECK(*d ==
             absl::Seconds(proto.seconds()) + absl::Nanoseconds(proto.nanos()));
  FUZZ_CHECK(*d != absl::InfiniteDuration() && *d != -absl::InfiniteDuration());
}

// Two configs that mean the same; `per` may differ by the rounding of a
// trip through double seconds.
bool SameConfig(const ThrottleConfig& a, const ThrottleConfig& b) {
  return a.max_n == b.max_n && a.mode == b.mode &&
         a.EffectiveBurst() == b.EffectiveBurst() &&
         a.manual_emit == b.manual_emit &&
         a.starvation_bound == b.starvation_bound &&
         absl::AbsDuration(a.per - b.per) <= absl::Nanoseconds(1);
}

void CheckConfig(const v1::ThrottleConfig& proto) {
  const absl::StatusOr<ThrottleConfig> config = FromProto(proto);
  if (!config.ok()) {
    CheckInvalidArgument(config.status(), {"config."});
    return;
  }
  FUZZ_CHECK(ValidateConfig(*config).ok());
  // What ListThrottles and CreateThrottle return is a valid request again.
  const v1::ThrottleConfig back = ToProto(*config);
  const absl::StatusOr<ThrottleConfig> again = FromProto(back);
  if (!again.ok()) {
    std::fprintf(stderr, "config %s accepted, its ToProto %s rejected: %s\n",
                 proto.ShortDebugString().c_str(),
                 back.ShortDebugString().c_str(),
                 again.status().ToString().c_str());
    std::abort();
  }
  FUZZ_CHECK(SameConfig(*config, *again));
}

void CheckAwaitFuel(const v1::AwaitFuelRequest& request) {
  CheckName("throttle", request.throttle());
  const absl::StatusOr<StreamRequest> stream = FromProto(request);
  if (!stream.ok()) {
    CheckInvalidArgument(stream.status(), {"count", "weight", "wait_limit",
                                           "worker_id", "priority"});
    return;
  }
  // Scheduler::Open's preconditions, and the documented defaults.
  FUZZ_CHECK(stream->count >= 0);
  FUZZ_CHECK(stream->weight >= 1);
  FUZZ_CHECK(stream->wait_limit >= absl::ZeroDuration());
  FUZZ_CHECK(stream->count == (request.has_count() ? request.count() : 1));
  FUZZ_CHECK(stream->weight == (request.has_weight() ? request.weight() : 1));
  FUZZ_CHECK(stream->priority >= 0 && stream->priority <= kMaxPriority);
  FUZZ_CHECK(stream->priority ==
             (request.has_priority() ? request.priority() : kDefaultPriority));
  if (!request.has_wait_limit()) {
    FUZZ_CHECK(stream->wait_limit == absl::InfiniteDuration());
  } else {
    CheckDuration("wait_limit", request.wait_limit());
  }
  FUZZ_CHECK(ValidateWorkerId(request.worker_id()).ok());
}

// The first message of an Acquire stream.
void CheckAcquire(const v1::AcquireRequest& first) {
  const absl::StatusOr<StreamRequest> stream = FromProto(first);
  if (!stream.ok()) {
    CheckInvalidArgument(stream.status(), {"throttle", "demand", "withdraw",
                                           "worker_id", "weight", "priority"});
    return;
  }
  FUZZ_CHECK(stream->on_demand);
  FUZZ_CHECK(stream->count == first.demand());
  FUZZ_CHECK(stream->weight >= 1);
  FUZZ_CHECK(stream->priority ==
             (first.has_priority() ? first.priority() : kDefaultPriority));
  FUZZ_CHECK(stream->priority >= 0 && stream->priority <= kMaxPriority);
}

// Parses `data` as T; true if it parsed.
template <typename T>
bool Parse(const uint8_t* data, size_t size, T* message) {
  return message->ParseFromArray(data, static_cast<int>(size));
}

void FuzzOne(const uint8_t* data, size_t size) {
  if (v1::AwaitFuelRequest m; Parse(data, size, &m)) CheckAwaitFuel(m);
  if (v1::AcquireRequest m; Parse(data, size, &m)) CheckAcquire(m);
  if (v1::HasFuelRequest m; Parse(data, size, &m)) {
    CheckName("throttle", m.throttle());
    CheckWorkerId(m.worker_id());
  }
  if (v1::EmitRequest m; Parse(data, size, &m)) {
    CheckName("throttle", m.throttle());
    CheckWorkerId(m.worker_id());
  }
  if (v1::StartRequest m; Parse(data, size, &m)) {
    CheckName("throttle", m.throttle());
  }
  if (v1::StopRequest m; Parse(data, size, &m)) {
    CheckName("throttle", m.throttle());
  }
  if (v1::LatestRequest m; Parse(data, size, &m)) {
    CheckName("throttle", m.throttle());
    if (m.has_window()) CheckDuration("window", m.window());
  }
  if (v1::MeanRequest m; Parse(data, size, &m)) {
    CheckName("throttle", m.throttle());
  }
  if (v1::CreateThrottleRequest m; Parse(data, size, &m)) {
    CheckName("name", m.name());
    CheckConfig(m.config());
  }
  if (v1::ConfigureThrottleRequest m; Parse(data, size, &m)) {
    CheckName("name", m.name());
    CheckConfig(m.config());
  }
  if (v1::DeleteThrottleRequest m; Parse(data, size, &m)) {
    CheckName("name", m.name());
  }
  // Nothing to validate, but it must parse without harm.
  if (v1::ListThrottlesRequest m; Parse(data, size, &m)) {
  }
}

}  // namespace
}  // namespace throttle::server

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // Invalid UTF-8 in a string field fails the parse with a logged error;
  // the log would only slow the fuzzer down.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  throttle::server::FuzzOne(data, size);
  return 0;
}
