// The state store in etcd: one key per throttle under
// /throttle/<cluster>/throttles/, every write a transaction fenced on the
// leader's election key, so a deposed leader cannot overwrite the state.
#ifndef THROTTLE_SERVER_HA_ETCD_STORE_H_
#define THROTTLE_SERVER_HA_ETCD_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "server/etcd/etcd_client.h"
#include "server/state/state_store.h"

namespace throttle::server {

// The prefix of a cluster's throttle records.
std::string RecordPrefix(const std::string& cluster);
// The election a cluster's servers campaign in.
std::string ElectionName(const std::string& cluster);

// `client` is not owned and must outlive the store. Writes answer
// FAILED_PRECONDITION once `fence` no longer leads.
std::unique_ptr<StateStore> NewEtcdStore(etcd::Client* client,
                                         const std::string& cluster,
                                         const etcd::LeaderKey& fence);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_HA_ETCD_STORE_H_
