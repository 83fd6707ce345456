// An audit log of every grant handed to a stream: one line per batch,
// "<throttle> <first nominal time, wall clock, unix ns> <grants> <spacing ns>
// <writer>", flushed at once. For tests and audits of the bounds across a
// failover (--grant_log); it costs a write per batch, so it is off by
// default. Grants queued on a stream that then stalls come back and are
// logged again when re-granted: the log may hold more than was delivered,
// never less.
//
// Part of the service glue. Thread-safe.
#ifndef THROTTLE_SERVER_SERVICE_GRANT_LOG_H_
#define THROTTLE_SERVER_SERVICE_GRANT_LOG_H_

#include <cstdio>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/clock.h"

namespace throttle::server {

class GrantLog {
 public:
  // Appends to `path`. INVALID_ARGUMENT naming --grant_log if it cannot.
  // Times are written as wall-clock dates with the clock's WallOffset taken
  // once, now: offsets read per line jitter by tens of microseconds, which
  // an audit of a window bound would read as over-grants.
  static absl::StatusOr<std::unique_ptr<GrantLog>> Open(const std::string& path,
                                                        std::string writer,
                                                        const Clock& clock);
  ~GrantLog();
  GrantLog(const GrantLog&) = delete;
  GrantLog& operator=(const GrantLog&) = delete;

  // `granted_at` is a point of the clock given to Open.
  void Append(absl::string_view throttle, absl::Time granted_at, int64_t grants,
              absl::Duration spacing) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  GrantLog(std::FILE* file, std::string writer, absl::Duration wall_offset)
      : file_(file), writer_(std::move(writer)), wall_offset_(wall_offset) {}
  absl::Mutex mu_;
  std::FILE* const file_ ABSL_PT_GUARDED_BY(mu_);
  const std::string writer_;
  const absl::Duration wall_offset_;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_GRANT_LOG_H_
