// Live reload of the config file (--config): on request (SIGHUP) and when
// the file changes (its mtime, size or inode, polled), the file is read
// again and what changed since the last version read is applied.
//
// - a throttle the new file adds is created (state CREATED);
// - a throttle whose settings changed is configured, its open streams kept
//   (as ConfigureThrottle);
// - a throttle the new file no longer declares is left as it is and
//   logged: an operator deletes it (throttlectl delete) if it should go;
// - a throttle whose settings did not change is not touched, even if it
//   was configured at run time since;
// - a new file that does not parse, or declares a name that --throttle
//   declares, is rejected with one log line and nothing changes.
//
// Part of the service glue; started by main.cc. Owns one thread.
#ifndef THROTTLE_SERVER_SERVICE_CONFIG_RELOADER_H_
#define THROTTLE_SERVER_SERVICE_CONFIG_RELOADER_H_

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/clock.h"
#include "server/service/config_file.h"

namespace throttle::server {

struct ReloaderOptions {
  // The --config file.
  std::string path;
  // How often the file is checked for a change; zero: never (a reload
  // only on RequestReload).
  absl::Duration poll_interval = absl::Seconds(1);
  // Names --throttle declares: a file that declares one is rejected.
  absl::flat_hash_set<std::string> fixed_names;
  // Not owned; waits go through it.
  const Clock* clock = RealClock();
};

// Creates the throttle `name` with `config`, or configures it if it exists
// (open streams kept). Returns whether it was created, or why it failed.
// Called from the reloader's thread.
using DeclareFunction = std::function<absl::StatusOr<bool>(
    const std::string& name, const ThrottleConfig& config)>;

// Thread-safe.
class ConfigReloader {
 public:
  // `loaded` is the file as read at start-up (LoadConfigFile), whose
  // throttles exist already. Starts watching at once.
  ConfigReloader(const ReloaderOptions& options, ConfigFile loaded,
                 DeclareFunction declare);
  // Stops watching and joins the thread (waits for a reload under way).
  ~ConfigReloader() ABSL_LOCKS_EXCLUDED(mu_);
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Asks for the file to be read again now, changed or not (SIGHUP).
  // Never blocks: the reload happens on the reloader's thread.
  void RequestReload() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Reads the file (if `forced` or it changed) and applies it.
  void Reload(bool forced);

  const ReloaderOptions options_;
  const DeclareFunction declare_;
  // Only the reloader's thread touches these after construction.
  ConfigFile current_;  // the version last applied
  std::string stamp_;   // of the version last read

  absl::Mutex mu_;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_CONFIG_RELOADER_H_
