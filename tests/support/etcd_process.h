// A real etcd server (one member, on 127.0.0.1) in a child process, for the
// tests of server/etcd/ and of what is built on it.
//
//   absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start("");
//   ASSERT_TRUE(etcd.ok()) << etcd.status();  // fails if etcd is missing
//   ClientOptions options;
//   options.endpoints = {(*etcd)->endpoint()};
//
// etcd runs as a single member (--initial-cluster of itself alone) with
// fast raft timings (--election-timeout=500 --heartbeat-interval=50: leases
// of 1 s are granted as asked, expiry is noticed within about 0.5 s) and
// periodic auto-compaction (5 min). Its data is data_dir()/etcd-data, its
// log data_dir()/etcd.log (zap, JSON lines).
#ifndef THROTTLE_TESTS_SUPPORT_ETCD_PROCESS_H_
#define THROTTLE_TESTS_SUPPORT_ETCD_PROCESS_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/support/subprocess.h"

namespace throttle::testing {

// One etcd process and its data directory. Not thread-safe.
class EtcdProcess {
 public:
  // Starts etcd (found on PATH, else /usr/bin/etcd) on a free client port
  // and a free peer port of 127.0.0.1, with its data in `data_dir` (created
  // if missing; empty: a fresh temporary directory, which the destructor
  // removes), and waits up to 20 s until it serves a linearizable read
  // through throttle::etcd::Client. Blocks.
  //
  // FAILED_PRECONDITION when there is no etcd binary (install etcd-server,
  // scripts/setup.sh); DEADLINE_EXCEEDED or INTERNAL (with the end of its
  // log) when it does not come up.
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start(
      std::string data_dir);

  // Stops etcd (Stop) and removes a temporary data directory.
  ~EtcdProcess();

  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  // "127.0.0.1:PORT", the client endpoint; the same after a Restart.
  std::string endpoint() const;
  const std::string& data_dir() const { return data_dir_; }
  std::string log_path() const { return data_dir_ + "/etcd.log"; }
  // Whether the process is running (not stopped, killed or exited).
  bool running();

  // SIGKILL (a crash: no goodbye to clients) and reaps it. Blocks.
  void Kill();
  // SIGTERM and reaps it (SIGKILL after 10 s). Blocks.
  void Stop();
  // Starts etcd again on the same data directory and ports (stopping it
  // first if it runs) and waits until it is healthy, as Start. A single
  // member restarts with the same flags: etcd ignores the --initial-cluster
  // flags once its data directory holds a member. Blocks.
  absl::Status Restart();

 private:
  EtcdProcess(std::string data_dir, bool remove_data_dir, std::string binary);

  // Picks the ports, spawns etcd and waits for it to be healthy.
  absl::Status Launch();
  // Spawns etcd on the current ports.
  absl::Status Spawn();
  // Waits until etcd is healthy or gone.
  absl::Status AwaitHealthy();

  const std::string data_dir_;
  const bool remove_data_dir_;
  const std::string binary_;
  int client_port_ = 0;
  int peer_port_ = 0;
  std::optional<Subprocess> process_;
};

}  // namespace throttle::testing

#endif  // THROTTLE_TESTS_SUPPORT_ETCD_PROCESS_H_
