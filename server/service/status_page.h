// The status page on the HTTP port (--metrics_listen): every throttle with
// its state, mode, configured and achieved rate, waiting streams, total
// emissions and a live chart of its achieved rate over the last minutes.
//
// Part of the service glue, served through http_pages.h. "/" (and
// "/status") is one self-contained HTML page (no external assets: it works
// offline) whose small script draws the table and an inline SVG chart per
// throttle, and polls "/status.json" every second. The JSON carries each
// throttle's history, so a page opened now shows the past minutes at once:
// the page keeps one sample of each throttle's achieved rate per second of
// the service's clock, the last kHistorySamples of them, taken by a thread
// of its own (a RefillLoop, so a fake clock drives it in tests).
#ifndef THROTTLE_SERVER_SERVICE_STATUS_PAGE_H_
#define THROTTLE_SERVER_SERVICE_STATUS_PAGE_H_

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/clock.h"
#include "server/service/http_pages.h"
#include "server/service/metrics.h"
#include "server/service/refill_loop.h"

namespace throttle::server {

// The history kept per throttle: one sample per second, five minutes. A
// sample is a float: 1.2 kB per throttle.
inline constexpr int kHistorySamples = 300;
inline constexpr absl::Duration kHistoryStep = absl::Seconds(1);
// The page shows (and keeps the history of) the first this many throttles
// in name order, and says how many there are: a page, its JSON (about
// 2 kB a throttle) and the history (240 kB) stay bounded whatever
// --max_throttles allows.
inline constexpr int kMaxPageThrottles = 200;

// Thread-safe. Owns its sampling thread; Stop or the destructor joins it.
class StatusPage {
 public:
  // `clock` and `source` are not owned and must outlive the page (or its
  // Stop). `role` is what the page says this server is ("" for a single
  // server, "leader" under HA). Takes the first sample at once.
  StatusPage(const Clock* clock, const ThrottleStatsSource* source,
             std::string role);
  ~StatusPage() { Stop(); }

  StatusPage(const StatusPage&) = delete;
  StatusPage& operator=(const StatusPage&) = delete;

  // Stops and joins the sampling thread. Idempotent.
  void Stop() { loop_.Stop(); }

  // The page's answer to `path` (PageHandler): "/" and "/status" are the
  // HTML page, "/status.json" the JSON; false for any other path.
  bool Serve(absl::string_view path, HttpReply* reply) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // The first kMaxPageThrottles throttles now, in name order, with their
  // history (oldest first, the last one taken at most one step ago), and
  // how many throttles there are.
  std::string Json() const ABSL_LOCKS_EXCLUDED(mu_);

  // The samples kept of the throttle `name` (oldest first); for tests.
  std::vector<float> History(const std::string& name) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until `n` samples of the throttle `name` were taken since it
  // appeared (n == 0: until it has no history) or `timeout` passes (real
  // time: a test's generous deadline); returns whether they were.
  bool AwaitSamples(const std::string& name, int64_t n,
                    absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // The sampling thread's pass: one sample of every throttle; returns when
  // the next is due.
  absl::Time Sample() ABSL_LOCKS_EXCLUDED(mu_);

  const Clock* const clock_;
  const ThrottleStatsSource* const source_;
  const std::string role_;
  struct Series {
    std::deque<float> rates;  // the last kHistorySamples
    int64_t taken = 0;        // ever
  };
  mutable absl::Mutex mu_;
  std::map<std::string, Series, std::less<>> history_ ABSL_GUARDED_BY(mu_);
  absl::Time next_sample_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  RefillLoop loop_;  // last: its thread stops first
};

// The page a standby serves on its HTTP port: it says it is a standby and
// in which state (`state`, e.g. "following"), and lists no throttle.
bool ServeStandbyPage(absl::string_view state, absl::string_view path,
                      HttpReply* reply);

// The JSON string literal of `text` (quoted; '<', '>' and '&' escaped too,
// so that it can sit inside a <script> element).
std::string JsonString(absl::string_view text);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_STATUS_PAGE_H_
