// The server's config file (--config): the throttles it declares, in YAML
// parsed by yaml-cpp.
//
//   throttles:
//     crawl:
//       max_n: 4
//       per: 1s              # a duration: 250ms, 1.5s, 2m, or seconds
//     api: {max_n: 100, per: 1s, mode: bucket, burst: 20}
//
//     pool:
//       max_n: 100
//       per: 1s
//       adaptive: {floor_n: 10, window: 2s}   # {} for every default
//
// Keys of a throttle: max_n and per (required), mode, burst, manual_emit,
// catch_up, warm_up, warm_up_from, starvation_bound, degradation,
// local_share_for, as in the --throttle spec (convert.h), and adaptive: a
// mapping of the proto's AdaptiveConfig fields (floor_n,
// target_rejection_ratio, window, increase_n, decrease_factor,
// min_outcomes; the spec's flat adaptive_* keys are not read here). Every
// error names the file, the line and the field ("throttles.api.burst",
// "throttles.pool.adaptive.floor_n"); an unknown key, a key given twice
// and a throttle declared twice are errors.
//
// The old format (one "NAME key=value ..." spec per line, '#' comments) is
// still read, flagged as such so the caller can log that it is
// deprecated (docs/DECISIONS.md, "The config file").
//
// Part of the service glue; used by main.cc and the reloader
// (config_reloader.h). No gRPC.
#ifndef THROTTLE_SERVER_SERVICE_CONFIG_FILE_H_
#define THROTTLE_SERVER_SERVICE_CONFIG_FILE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/throttle_config.h"

namespace throttle::server {

// A throttle as a config file or --throttle declares it.
struct DeclaredThrottle {
  std::string name;
  ThrottleConfig config;
  // Where: "FILE:LINE", or "--throttle".
  std::string source;
};

struct ConfigFile {
  std::string path;
  // In the order of the file.
  std::vector<DeclaredThrottle> throttles;
  // The file is in the deprecated line format.
  bool old_format = false;
  // FileStamp() of the file before it was read (LoadConfigFile only).
  std::string stamp;
};

// Parses the text of a config file read from `path` (used in messages).
// INVALID_ARGUMENT "PATH:LINE: FIELD: what is wrong" for any error.
absl::StatusOr<ConfigFile> ParseConfigFile(absl::string_view text,
                                           const std::string& path);

// Reads and parses the file `path`: INVALID_ARGUMENT "cannot read PATH"
// if it cannot be read, else as ParseConfigFile. Blocks on the read.
absl::StatusOr<ConfigFile> LoadConfigFile(const std::string& path);

// The identity of a file's version: mtime, size and inode ("" if it
// cannot be stat'ed). A file replaced by rename (as editors, kubelet's
// ConfigMap volumes and the tests do) gets a new inode.
std::string FileStamp(const std::string& path);

// The throttles of --throttle (already parsed, their source "--throttle")
// and of `file` together. INVALID_ARGUMENT naming both places if a name is
// declared in both.
absl::StatusOr<std::vector<DeclaredThrottle>> MergeDeclared(
    const std::vector<DeclaredThrottle>& flagged, const ConfigFile& file);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_CONFIG_FILE_H_
