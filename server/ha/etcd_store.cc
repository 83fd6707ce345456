#include "server/ha/etcd_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace throttle::server {
namespace {

// Below etcd's --max-txn-ops (128): the transactions of one Write are
// fenced each; each record is still written atomically.
constexpr size_t kOpsPerTxn = 100;

class EtcdStore final : public StateStore {
 public:
  EtcdStore(etcd::Client* client, std::string prefix, etcd::LeaderKey fence)
      : client_(client), prefix_(std::move(prefix)), fence_(std::move(fence)) {}

  absl::StatusOr<std::vector<ThrottleRecord>> LoadAll() override {
    absl::StatusOr<std::vector<etcd::KeyValue>> kvs =
        client_->GetPrefix(prefix_);
    if (!kvs.ok()) return kvs.status();
    std::vector<ThrottleRecord> records;
    for (const etcd::KeyValue& kv : *kvs) {
      ThrottleRecord record;
      if (!record.ParseFromString(kv.value) ||
          absl::StripPrefix(kv.key, prefix_) != record.name()) {
        return absl::DataLossError(absl::StrCat(
            "cannot parse the throttle record at etcd key ", kv.key));
      }
      records.push_back(std::move(record));
    }
    return records;
  }

  absl::Status Write(const std::vector<ThrottleRecord>& records,
                     const std::vector<std::string>& deleted) override {
    std::vector<etcd::TxnOp> ops;
    for (const ThrottleRecord& record : records) {
      ops.push_back({etcd::TxnOp::kPut, prefix_ + record.name(),
                     record.SerializeAsString()});
    }
    for (const std::string& name : deleted) {
      ops.push_back({etcd::TxnOp::kDelete, prefix_ + name, ""});
    }
    for (size_t i = 0; i < ops.size(); i += kOpsPerTxn) {
      const std::vector<etcd::TxnOp> part(
          ops.begin() + static_cast<std::ptrdiff_t>(i),
          ops.begin() + static_cast<std::ptrdiff_t>(
                            std::min(ops.size(), i + kOpsPerTxn)));
      if (absl::Status s = client_->FencedTxn(fence_, part); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  std::string Describe() const override {
    return absl::StrCat("etcd ", client_->target(), " ", prefix_);
  }

 private:
  etcd::Client* const client_;
  const std::string prefix_;
  const etcd::LeaderKey fence_;
};

}  // namespace

std::string RecordPrefix(const std::string& cluster) {
  return absl::StrCat("/throttle/", cluster, "/throttles/");
}

std::string ElectionName(const std::string& cluster) {
  return absl::StrCat("/throttle/", cluster, "/leader");
}

std::unique_ptr<StateStore> NewEtcdStore(etcd::Client* client,
                                         const std::string& cluster,
                                         const etcd::LeaderKey& fence) {
  return std::make_unique<EtcdStore>(client, RecordPrefix(cluster), fence);
}

}  // namespace throttle::server
