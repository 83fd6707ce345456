#include "tests/support/etcd_process.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/etcd/etcd_client.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kHealthyWithin = absl::Seconds(20);
constexpr absl::Duration kStopWithin = absl::Seconds(10);
// Fresh ports for a fresh start whose ports another process took meanwhile.
constexpr int kStartAttempts = 3;

// The path of the etcd binary: on PATH, else /usr/bin/etcd; empty if none.
std::string FindEtcd() {
  const char* path = getenv("PATH");
  std::vector<std::string> candidates;
  for (absl::string_view dir :
       absl::StrSplit(path == nullptr ? "" : path, ':', absl::SkipEmpty())) {
    candidates.push_back(absl::StrCat(dir, "/etcd"));
  }
  candidates.push_back("/usr/bin/etcd");
  for (const std::string& candidate : candidates) {
    if (access(candidate.c_str(), X_OK) == 0 &&
        !std::filesystem::is_directory(candidate)) {
      return candidate;
    }
  }
  return "";
}

// Two ports of 127.0.0.1 free now (held together, so they differ).
absl::Status PickPorts(int* a, int* b) {
  int fds[2] = {-1, -1};
  int* ports[2] = {a, b};
  absl::Status status;
  for (int i = 0; i < 2 && status.ok(); ++i) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (fds[i] < 0 ||
        bind(fds[i], reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        getsockname(fds[i], reinterpret_cast<sockaddr*>(&address), &length) !=
            0) {
      status = absl::InternalError(
          absl::StrCat("picking a free port: ", std::strerror(errno)));
    } else {
      *ports[i] = ntohs(address.sin_port);
    }
  }
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  return status;
}

// The last `n` lines of `path`, for error messages.
std::string Tail(const std::string& path, size_t n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(std::move(line));
    if (lines.size() > n) lines.erase(lines.begin());
  }
  return absl::StrJoin(lines, "\n");
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(
    std::string data_dir) {
  std::string binary = FindEtcd();
  if (binary.empty()) {
    return absl::FailedPreconditionError(
        "no etcd binary on PATH or at /usr/bin/etcd: install etcd-server "
        "(scripts/setup.sh does)");
  }
  const bool temporary = data_dir.empty();
  if (temporary) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "etcd_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(
          absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
    }
    data_dir = pattern;
  } else {
    std::error_code error;
    std::filesystem::create_directories(data_dir, error);
    if (error) {
      return absl::InternalError(
          absl::StrCat("creating ", data_dir, ": ", error.message()));
    }
  }
  std::unique_ptr<EtcdProcess> etcd(
      new EtcdProcess(std::move(data_dir), temporary, std::move(binary)));
  if (absl::Status status = etcd->Launch(); !status.ok()) return status;
  return etcd;
}

EtcdProcess::EtcdProcess(std::string data_dir, bool remove_data_dir,
                         std::string binary)
    : data_dir_(std::move(data_dir)),
      remove_data_dir_(remove_data_dir),
      binary_(std::move(binary)) {}

EtcdProcess::~EtcdProcess() {
  Stop();
  if (remove_data_dir_) {
    std::error_code ignored;
    std::filesystem::remove_all(data_dir_, ignored);
  }
}

std::string EtcdProcess::endpoint() const {
  return absl::StrCat("127.0.0.1:", client_port_);
}

bool EtcdProcess::running() {
  if (!process_.has_value()) return false;
  if (process_->Wait(absl::ZeroDuration()).ok()) {
    process_.reset();  // exited by itself: reaped
    return false;
  }
  return true;
}

void EtcdProcess::Kill() {
  if (!process_.has_value()) return;
  process_->Signal(SIGKILL);
  process_->Wait(absl::InfiniteDuration()).IgnoreError();
  process_.reset();
}

void EtcdProcess::Stop() {
  if (!process_.has_value()) return;
  process_->Signal(SIGTERM);
  if (!process_->Wait(kStopWithin).ok()) process_->Signal(SIGKILL);
  process_->Wait(absl::InfiniteDuration()).IgnoreError();
  process_.reset();
}

absl::Status EtcdProcess::Restart() {
  Stop();
  if (absl::Status status = Spawn(); !status.ok()) return status;
  return AwaitHealthy();
}

absl::Status EtcdProcess::Launch() {
  absl::Status status;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    status = PickPorts(&client_port_, &peer_port_);
    if (!status.ok()) return status;
    status = Spawn();
    if (!status.ok()) return status;
    status = AwaitHealthy();
    // An etcd that exited may have lost a port to another process.
    if (status.ok() || running()) return status;
  }
  return status;
}

absl::Status EtcdProcess::Spawn() {
  const std::string client_url =
      absl::StrCat("http://127.0.0.1:", client_port_);
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  const std::vector<std::string> argv = {
      binary_,
      "--name=s1",
      // A directory of its own: etcd warns about other files (the log) in
      // its data directory, and creates it with the mode it wants (0700).
      "--data-dir=" + data_dir_ + "/etcd-data",
      "--listen-client-urls=" + client_url,
      "--advertise-client-urls=" + client_url,
      "--listen-peer-urls=" + peer_url,
      "--initial-advertise-peer-urls=" + peer_url,
      "--initial-cluster=s1=" + peer_url,
      "--initial-cluster-state=new",
      "--election-timeout=500",
      "--heartbeat-interval=50",
      "--auto-compaction-mode=periodic",
      "--auto-compaction-retention=5m",
      "--logger=zap",
      "--log-outputs=" + log_path(),
  };
  absl::StatusOr<Subprocess> process =
      Subprocess::Spawn(argv, data_dir_ + "/etcd.stdout");
  if (!process.ok()) return process.status();
  process_.emplace(*std::move(process));
  return absl::OkStatus();
}

absl::Status EtcdProcess::AwaitHealthy() {
  etcd::ClientOptions options;
  options.endpoints = {endpoint()};
  options.rpc_timeout = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<etcd::Client>> client =
      etcd::Client::Connect(options);
  if (!client.ok()) return client.status();
  const absl::Time deadline = absl::Now() + kHealthyWithin;
  absl::Status health;
  while (true) {
    if (!running()) {
      return absl::InternalError(
          absl::StrCat("etcd on ", endpoint(), " exited while starting; ",
                       log_path(), " ends with:\n", Tail(log_path(), 10)));
    }
    health = (*client)->CheckHealth();
    if (health.ok()) return health;
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd on ", endpoint(), " not healthy after ",
                   absl::FormatDuration(kHealthyWithin), ": ", health.message(),
                   "; ", log_path(), " ends with:\n", Tail(log_path(), 10)));
}

}  // namespace throttle::testing
