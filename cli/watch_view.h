// The terminal view of `throttlectl watch` (cli/watch.h runs the stream):
// what is drawn from the WatchThrottle snapshots, kept apart from the
// terminal and the stream so that it is unit-tested
// (cli/watch_view_test.cc). Pure functions and one small history class; no
// I/O.
#ifndef THROTTLE_CLI_WATCH_VIEW_H_
#define THROTTLE_CLI_WATCH_VIEW_H_

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "throttle/v1/throttle.pb.h"

namespace throttle::cli {

// The rows of the chart; each row is drawn in eighths (Unicode blocks).
inline constexpr int kChartRows = 8;
// How far back the chart reaches.
inline constexpr absl::Duration kChartSpan = absl::Seconds(60);

// What a watch has seen: the newest snapshot and the achieved rate
// (latest.emissions_per_second) of each interval's snapshot over the last
// kChartSpan, one chart column per snapshot. Not thread-safe.
class WatchHistory {
 public:
  // Keeps kChartSpan / interval rates (at least one).
  explicit WatchHistory(absl::Duration interval);

  // Records `snapshot`. A snapshot sent because the state or configuration
  // changed (changed: true) replaces the newest one shown but adds no chart
  // column, so that the columns stay one interval apart.
  void Add(const v1::WatchThrottleResponse& snapshot);

  bool empty() const { return !has_snapshot_; }
  // The newest snapshot; empty() must be false.
  const v1::WatchThrottleResponse& latest() const { return latest_; }
  // The rates, oldest first.
  const std::deque<double>& rates() const { return rates_; }
  absl::Duration interval() const { return interval_; }

 private:
  const absl::Duration interval_;
  const size_t capacity_;
  bool has_snapshot_ = false;
  v1::WatchThrottleResponse latest_;
  std::deque<double> rates_;
};

// The configured rate of `config` in grants per second: max_n /
// per_seconds (0 if per_seconds is 0).
double ConfiguredRate(const v1::ThrottleConfig& config);

// The chart's top: the smallest 1, 2 or 5 x 10^k at least the largest of
// `rates` and `configured_rate`; 1 when they are all 0.
double ChartScale(const std::vector<double>& rates, double configured_rate);

// Each rate's column height in eighths of a row, 0 to kChartRows * 8:
// rate / scale of the chart, rounded to the nearest eighth and clamped.
std::vector<int> ColumnHeights(const std::vector<double>& rates, double scale);

// A rate as the view prints it: up to 4 significant digits and "/s"
// ("4/s", "3.95/s", "1.2e+04/s").
std::string RateText(double per_second);

// The whole view as lines without colours or escapes, none wider than
// `columns` terminal cells: the name, state and mode; the configured rate
// and the achieved one (latest and mean); waiting streams and total;
// `status` (a line of its own when not empty: the stream's trouble); then
// the chart of history.rates(), the newest at the right, as many columns
// as fit, its y-axis labelled with the scale and the configured rate, whose
// row is dotted. A terminal too narrow for a chart column gets a line
// saying so. history.empty() shows only `status` (or "waiting for the first
// snapshot").
std::vector<std::string> RenderView(const WatchHistory& history,
                                    absl::string_view status, int columns);

// `snapshot` as one line, for a stdout that is not a terminal: time, name,
// state, mode, configured and achieved rates, waiting, total.
std::string RenderLine(const v1::WatchThrottleResponse& snapshot);

// The bytes that redraw a whole ANSI terminal screen with `lines`.
std::string Redraw(const std::vector<std::string>& lines);

}  // namespace throttle::cli

#endif  // THROTTLE_CLI_WATCH_VIEW_H_
