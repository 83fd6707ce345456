#include "server/service/grant_log.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace throttle::server {

absl::StatusOr<std::unique_ptr<GrantLog>> GrantLog::Open(
    const std::string& path, std::string writer, const Clock& clock) {
  std::FILE* file = std::fopen(path.c_str(), "a");
  if (file == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--grant_log: cannot open ", path, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<GrantLog>(
      new GrantLog(file, std::move(writer), clock.WallOffset()));
}

GrantLog::~GrantLog() {
  absl::MutexLock lock(&mu_);
  std::fclose(file_);
}

void GrantLog::Append(absl::string_view throttle, absl::Time granted_at,
                      int64_t grants, absl::Duration spacing) {
  const std::string line = absl::StrCat(
      throttle, " ", absl::ToUnixNanos(granted_at + wall_offset_), " ", grants,
      " ", absl::ToInt64Nanoseconds(spacing), " ", writer_, "\n");
  absl::MutexLock lock(&mu_);
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);  // a process killed with -9 loses nothing written
}

}  // namespace throttle::server
