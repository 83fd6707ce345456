// The state store on local disk (--state_dir): one file per throttle,
// written atomically (write, fsync, rename, fsync of the directory).
#ifndef THROTTLE_SERVER_STATE_FILE_STORE_H_
#define THROTTLE_SERVER_STATE_FILE_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/state/state_store.h"

namespace throttle::server {

// Opens (creating it if needed) the store in directory `dir`. Records are
// in `dir`/throttles/<hex of the name>.record. INVALID_ARGUMENT naming
// --state_dir if the directory cannot be created or written.
absl::StatusOr<std::unique_ptr<StateStore>> OpenFileStore(
    const std::string& dir);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_STATE_FILE_STORE_H_
