// A throttle's durable record (server/state/state.proto) to and from the
// scheduler core's types.
//
// Part of the service glue.
#ifndef THROTTLE_SERVER_SERVICE_RECORD_H_
#define THROTTLE_SERVER_SERVICE_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/scheduler.h"
#include "server/service/clock.h"
#include "server/state/state_store.h"

namespace throttle::server {

// What is stored of one throttle.
struct StoredThrottle {
  std::string name;
  ThrottleConfig config;
  SchedulerState state;
  // Grants beyond `state` its writer may make before the next write.
  int64_t reserved = 0;
  int64_t starts = 0;
  int64_t stops = 0;
};

// Points in time are stored as wall-clock dates (`clock`'s ToWall), so a
// server on another host, or after a reboot, reads them right.
ThrottleRecord ToRecord(const StoredThrottle& stored, const Clock& clock,
                        const std::string& writer);

// This process as a record's writer: "host:pid".
std::string WriterName();

// DATA_LOSS naming the throttle if the record is not one this server can
// restore (a bad name or configuration).
absl::StatusOr<StoredThrottle> FromRecord(const ThrottleRecord& record,
                                          const Clock& clock);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_RECORD_H_
