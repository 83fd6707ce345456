// Where the durable records of the throttles are kept: local disk
// (file_store.h) or etcd (server/ha/etcd_store.h).
//
// The server writes a throttle's record before it answers a controller
// call that changed it, when it renews the throttle's reservation, and at
// least every second while its statistics change (service/persister.h).
#ifndef THROTTLE_SERVER_STATE_STATE_STORE_H_
#define THROTTLE_SERVER_STATE_STATE_STORE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/state/state.pb.h"

namespace throttle::server {

using ThrottleRecord = state::v1::ThrottleRecord;

class StateStore {
 public:
  virtual ~StateStore() = default;

  // Every stored record, in name order.
  virtual absl::StatusOr<std::vector<ThrottleRecord>> LoadAll() = 0;

  // Stores `records` (replacing those of the same name) and removes the
  // records named in `deleted`; each record is written atomically, durable
  // once this returns OK. FAILED_PRECONDITION means this server may no
  // longer write (a deposed leader); other errors may be transient.
  virtual absl::Status Write(const std::vector<ThrottleRecord>& records,
                             const std::vector<std::string>& deleted) = 0;

  // Where, for logs: "dir /var/lib/throttle", "etcd 10.0.0.1:2379 ...".
  virtual std::string Describe() const = 0;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_STATE_STATE_STORE_H_
