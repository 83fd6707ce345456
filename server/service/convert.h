// Conversions at the service boundary: proto requests are validated and
// turned into scheduler-core types, absl::Status into grpc::Status.
//
// Part of the service glue (depends on the generated proto code and gRPC).
// Every error is INVALID_ARGUMENT and names the field and its value.
#ifndef THROTTLE_SERVER_SERVICE_CONVERT_H_
#define THROTTLE_SERVER_SERVICE_CONVERT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/field_mask.pb.h"
#include "grpcpp/support/status.h"
#include "server/core/limits.h"
#include "server/core/scheduler.h"
#include "server/core/throttle_config.h"
#include "throttle/v1/throttle.pb.h"

namespace throttle::server {

// The one mapping from absl::Status to grpc::Status (the codes match).
grpc::Status ToGrpcStatus(const absl::Status& status);

// Checks a throttle name: 1 to kMaxNameLength printable ASCII characters
// without spaces. `field` is the request field's name for the message.
absl::Status ValidateName(absl::string_view field, absl::string_view name);

// Checks a worker id: at most kMaxWorkerIdLength bytes.
absl::Status ValidateWorkerId(absl::string_view worker_id);

// Validates and converts a proto config (the field prefix in messages is
// "config.").
absl::StatusOr<ThrottleConfig> FromProto(const v1::ThrottleConfig& proto);

// The config a ConfigureThrottle request asks for, given the throttle's
// `current` one: with an empty `mask` (or the single path "*") `update`
// whole, as FromProto(update); otherwise `current` with the fields named in
// `mask` (ThrottleConfig field names) taken from `update` -- a named field
// unset in `update` takes its default, and a mode other than bucket resets
// burst to 0 unless burst is named too. The merged config is validated as
// a whole. INVALID_ARGUMENT naming update_mask and the path for a path that
// is not a ThrottleConfig field, or as FromProto for a bad merged config.
absl::StatusOr<ThrottleConfig> ApplyConfigUpdate(
    const ThrottleConfig& current, const v1::ThrottleConfig& update,
    const google::protobuf::FieldMask& mask);

// The proto form of a core config, with defaults filled in.
v1::ThrottleConfig ToProto(const ThrottleConfig& config);
v1::State ToProto(State state);
// DEGRADATION_WAIT, DEGRADATION_FAIL_FAST or DEGRADATION_LOCAL_SHARE
// (never unspecified: what a grant stream is told).
v1::Degradation DegradationToProto(Degradation degradation);

// Converts a google.protobuf.Duration; INVALID_ARGUMENT naming `field` if
// it is out of the type's range or its seconds and nanos differ in sign.
absl::StatusOr<absl::Duration> DurationFromProto(
    absl::string_view field, const google::protobuf::Duration& d);

// `d` as a google.protobuf.Duration (whole nanoseconds), clamped to the
// type's range (an infinite wait becomes its largest value). For answers:
// an expected wait, a retry-after.
void DurationToProto(absl::Duration d, google::protobuf::Duration* out);

// Validates and converts the stream part of an AwaitFuel request (count,
// weight, wait_limit, worker_id, fail_if_late; not the throttle name).
absl::StatusOr<StreamRequest> FromProto(const v1::AwaitFuelRequest& proto);

// Validates and converts the first message of an Acquire stream (throttle
// name, worker_id, weight, demand) into an on-demand stream request.
absl::StatusOr<StreamRequest> FromProto(const v1::AcquireRequest& first);
// Checks the demand and withdraw of an Acquire message.
absl::Status ValidateDemand(const v1::AcquireRequest& proto);

// Parses a throttle declared on the command line (--throttle) or in a
// config file of the old line format (config_file.h):
//   NAME max_n=N per=DURATION [mode=smooth|window|bucket|unbounded|
//   monitor-only] [burst=N] [manual_emit=true|false] [catch_up=DURATION]
// with durations in the one syntax of core/duration.h (per=1, per=1s and
// per=1000ms are the same). Returns INVALID_ARGUMENT naming the bad part.
absl::StatusOr<std::pair<std::string, ThrottleConfig>> ParseThrottleSpec(
    absl::string_view spec);

// Parses a mode name with the one parser of throttle/names.h (also used by
// throttlectl and the client library): case-insensitive, '_' taken as '-'.
// "wait", "fail_fast" or "local_share" as the degradation it names;
// INVALID_ARGUMENT naming the value and the choices otherwise.
absl::StatusOr<Degradation> ParseDegradation(absl::string_view name);
absl::StatusOr<Mode> ParseMode(absl::string_view name);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_CONVERT_H_
