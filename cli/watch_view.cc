#include "cli/watch_view.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "throttle/names.h"

namespace throttle::cli {
namespace {

// The eighths of a cell, empty to full.
constexpr const char* kBlocks[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
// An empty cell in the configured rate's row.
constexpr char kMarker[] = "·";

// `line` cut to `columns` code points (every character the view uses takes
// one terminal cell).
std::string Fit(const std::string& line, int columns) {
  int cells = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const bool starts_character = (line[i] & 0xC0) != 0x80;
    if (starts_character && ++cells > columns) return line.substr(0, i);
  }
  return line;
}

}  // namespace

WatchHistory::WatchHistory(absl::Duration interval)
    : interval_(interval),
      capacity_(
          interval > absl::ZeroDuration()
              ? static_cast<size_t>(std::max<double>(
                    1, std::floor(absl::FDivDuration(kChartSpan, interval))))
              : 1) {}

void WatchHistory::Add(const v1::WatchThrottleResponse& snapshot) {
  latest_ = snapshot;
  has_snapshot_ = true;
  if (snapshot.changed()) return;
  rates_.push_back(snapshot.latest().emissions_per_second());
  while (rates_.size() > capacity_) rates_.pop_front();
}

double ConfiguredRate(const v1::ThrottleConfig& config) {
  if (config.per_seconds() == 0) return 0;
  return static_cast<double>(config.max_n()) / config.per_seconds();
}

double ChartScale(const std::vector<double>& rates, double configured_rate) {
  double top = std::max(0.0, configured_rate);
  for (const double rate : rates) top = std::max(top, rate);
  if (!(top > 0) || !std::isfinite(top)) return 1;
  // The decade at or below top, then the first of 1, 2, 5, 10 x it that
  // reaches top. A constant number of steps, whatever top is.
  const double decade = std::pow(10.0, std::floor(std::log10(top)));
  for (const double step : {1.0, 2.0, 5.0, 10.0}) {
    if (step * decade >= top) return step * decade;
  }
  return 10 * decade;
}

std::vector<int> ColumnHeights(const std::vector<double>& rates, double scale) {
  constexpr int kFull = kChartRows * 8;
  std::vector<int> heights;
  heights.reserve(rates.size());
  for (const double rate : rates) {
    const double eighths = scale > 0 ? std::round(rate / scale * kFull) : 0;
    heights.push_back(static_cast<int>(std::clamp<double>(eighths, 0, kFull)));
  }
  return heights;
}

std::string RateText(double per_second) {
  return absl::StrFormat("%.4g/s", per_second);
}

std::vector<std::string> RenderView(const WatchHistory& history,
                                    absl::string_view status, int columns) {
  columns = std::max(columns, 1);
  std::vector<std::string> lines;
  const auto add = [&](const std::string& line) {
    lines.push_back(Fit(line, columns));
  };
  if (history.empty()) {
    add(status.empty() ? "waiting for the first snapshot"
                       : std::string(status));
    return lines;
  }
  const v1::WatchThrottleResponse& snapshot = history.latest();
  const v1::ThrottleInfo& info = snapshot.throttle();
  const double configured = ConfiguredRate(info.config());
  add(absl::StrCat("throttle ", info.name(), "   state ",
                   StateName(info.state()), "   mode ",
                   ModeName(info.config().mode())));
  add(absl::StrCat(
      "configured ", RateText(configured), "   achieved ",
      RateText(snapshot.latest().emissions_per_second()), " (latest)  ",
      RateText(snapshot.mean().mean_emissions_per_second()), " (mean)"));
  add(absl::StrCat("waiting streams ", info.waiting_streams(), "   total ",
                   info.total_emissions()));
  if (!status.empty()) add(std::string(status));
  add("");

  const std::vector<double> all(history.rates().begin(), history.rates().end());
  const double scale = ChartScale(all, configured);
  const std::string top_label = RateText(scale);
  const std::string configured_label = RateText(configured);
  const int label_width =
      static_cast<int>(std::max(top_label.size(), configured_label.size()));
  const int chart_width = columns - label_width - 1;
  if (chart_width < 1) {
    add("(terminal too narrow for the chart)");
    return lines;
  }
  // The newest rates that fit, at the right.
  const size_t shown = std::min(all.size(), static_cast<size_t>(chart_width));
  const std::vector<double> visible(all.end() - shown, all.end());
  const std::vector<int> heights = ColumnHeights(visible, scale);
  // The row whose range holds the configured rate (row 0 at the bottom).
  const int marked_row = std::clamp(
      static_cast<int>(std::ceil(configured / scale * kChartRows)) - 1, 0,
      kChartRows - 1);
  for (int row = kChartRows - 1; row >= 0; --row) {
    // The top row names the scale, even when it is the configured one's.
    const std::string label = row == kChartRows - 1 ? top_label
                              : row == marked_row   ? configured_label
                                                    : "";
    std::string line(label_width - label.size(), ' ');
    absl::StrAppend(&line, label, row == marked_row ? "┤" : "│");
    // Where no column is yet (the newest is always at the right).
    for (size_t i = shown; i < static_cast<size_t>(chart_width); ++i) {
      absl::StrAppend(&line, row == marked_row ? kMarker : " ");
    }
    for (const int height : heights) {
      const int filled = std::clamp(height - row * 8, 0, 8);
      absl::StrAppend(
          &line, filled == 0 && row == marked_row ? kMarker : kBlocks[filled]);
    }
    lines.push_back(line);  // exactly `columns` cells
  }
  std::string axis(label_width - 1, ' ');
  absl::StrAppend(&axis, "0└");
  for (int i = 0; i < chart_width; ++i) absl::StrAppend(&axis, "─");
  lines.push_back(axis);
  add(absl::StrCat(std::string(label_width + 1, ' '), "one column per ",
                   absl::FormatDuration(history.interval()), ", newest right; ",
                   kMarker, " configured rate"));
  return lines;
}

std::string RenderLine(const v1::WatchThrottleResponse& snapshot) {
  const v1::ThrottleInfo& info = snapshot.throttle();
  return absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                       absl::FromUnixSeconds(snapshot.time().seconds()),
                       absl::UTCTimeZone()),
      " ", info.name(), " state=", StateName(info.state()),
      " mode=", ModeName(info.config().mode()),
      " configured=", RateText(ConfiguredRate(info.config())),
      " latest=", RateText(snapshot.latest().emissions_per_second()),
      " mean=", RateText(snapshot.mean().mean_emissions_per_second()),
      " waiting=", info.waiting_streams(), " total=", info.total_emissions(),
      snapshot.changed() ? " changed" : "");
}

std::string Redraw(const std::vector<std::string>& lines) {
  // Home, clear the screen, then each line.
  std::string out = "\x1b[H\x1b[2J";
  for (const std::string& line : lines) absl::StrAppend(&out, line, "\r\n");
  return out;
}

}  // namespace throttle::cli
