#include "server/service/status_page.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace throttle::server {
namespace {

// A JSON number (JSON has no NaN or infinity: those are 0).
std::string JsonNumber(double x) {
  return std::isfinite(x) ? absl::StrCat(x) : "0";
}

// The page: a table drawn by the script from the JSON embedded in it, then
// from /status.json every second. Names reach the DOM only as text
// (textContent, attribute values), never as markup.
constexpr char kPage[] = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Throttle server status</title>
<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd;
         text-align: right; vertical-align: middle; }
th:nth-child(-n+3), td:nth-child(-n+3), th:last-child { text-align: left; }
td.state.running { color: #17702a; font-weight: bold; }
td.state.stopped { color: #a33; }
svg.chart { background: #fafafa; border: 1px solid #ccc; }
polyline.achieved { fill: none; stroke: #1f62c9; stroke-width: 1.5; }
line.configured { stroke: #d08000; stroke-dasharray: 4 3; }
text { font-size: 10px; fill: #666; }
#error { color: #a33; }
</style>
</head>
<body>
<h1 id="title">Throttle server</h1>
<p id="role"></p>
<p>Rates are emissions per second. The chart shows the achieved rate of
the last five minutes (one point per second; dashed: the configured rate).
<span id="updated"></span> <span id="error"></span></p>
<table id="throttles">
<thead><tr><th>Throttle</th><th>State</th><th>Mode</th><th>Configured rate</th>
<th>Achieved (last 1 s)</th><th>Achieved (mean)</th><th>Waiting streams</th>
<th>Total emissions</th><th>Achieved rate, last 5 min</th></tr></thead>
<tbody></tbody>
</table>
<p id="empty" hidden>No throttles.</p>
<p id="more" hidden></p>
<script id="initial" type="application/json">@INITIAL@</script>
<script>
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const W = 300, H = 60;
function fmt(x) {
  return Number.isInteger(x) ? String(x) : x.toFixed(x < 10 ? 2 : 1);
}
function el(ns, tag, attrs, text) {
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}
function chart(t, samples, step) {
  const svg = el(SVG, "svg", {class: "chart", width: W, height: H,
                              viewBox: "0 0 " + W + " " + H});
  const top = Math.max(t.configured_rate, ...t.history, 1e-9) * 1.15;
  const y = v => (H - 2 - (H - 12) * v / top).toFixed(1);
  const n = t.history.length;
  const x = i => (W * (samples - n + i) / (samples - 1)).toFixed(1);
  svg.appendChild(el(SVG, "line", {class: "configured", x1: 0, x2: W,
      y1: y(t.configured_rate), y2: y(t.configured_rate)}));
  const points = t.history.map((v, i) => x(i) + "," + y(v)).join(" ");
  svg.appendChild(el(SVG, "polyline", {class: "achieved", points: points}));
  svg.appendChild(el(SVG, "text", {x: 2, y: 9}, "max " + fmt(top / 1.15)));
  const minutes = samples * step / 60;
  svg.appendChild(el(SVG, "text", {x: W - 2, y: 9, "text-anchor": "end"},
                     minutes + " min to now"));
  return svg;
}
function render(data) {
  document.getElementById("role").textContent = data.role_text;
  const body = document.querySelector("#throttles tbody");
  body.replaceChildren();
  for (const t of data.throttles) {
    const row = el(null, "tr", {"data-throttle": t.name});
    const cell = (cls, text) => row.appendChild(el(null, "td", {class: cls}, text));
    cell("name", t.name);
    cell("state " + t.state, t.state);
    cell("mode", t.mode);
    cell("configured", fmt(t.configured_rate));
    cell("achieved", fmt(t.achieved_rate));
    cell("mean", fmt(t.mean_rate));
    cell("waiting", String(t.waiting_streams));
    cell("emissions", String(t.total_emissions));
    row.appendChild(el(null, "td", {class: "chart"})).appendChild(
        chart(t, data.history_samples, data.history_step_seconds));
    body.appendChild(row);
  }
  document.getElementById("empty").hidden = data.throttles.length > 0;
  const more = document.getElementById("more");
  more.hidden = data.throttles_total <= data.throttles.length;
  more.textContent = "Showing the first " + data.throttles.length + " of " +
      data.throttles_total + " throttles (by name).";
  document.getElementById("updated").textContent =
      "Updated " + new Date().toLocaleTimeString() + ".";
}
async function poll() {
  try {
    const reply = await fetch("status.json", {cache: "no-store"});
    if (!reply.ok) throw new Error("HTTP " + reply.status);
    render(await reply.json());
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent =
        "Cannot reach the server (" + e.message + "); showing the last data.";
  }
}
render(JSON.parse(document.getElementById("initial").textContent));
setInterval(poll, 1000);
</script>
</body>
</html>
)html";

// The JSON of the page: `role_text` and the throttles (already JSON), of
// `total` in all.
std::string PageJson(absl::string_view role, absl::string_view role_text,
                     absl::string_view throttles, size_t total) {
  return absl::StrCat(
      "{\"role\":", JsonString(role), ",\"role_text\":", JsonString(role_text),
      ",\"history_samples\":", kHistorySamples,
      ",\"history_step_seconds\":", absl::ToDoubleSeconds(kHistoryStep),
      ",\"throttles_total\":", total, ",\"throttles\":[", throttles, "]}");
}

// The throttles the page shows.
void KeepShown(std::vector<ThrottleSnapshot>* snapshots) {
  if (snapshots->size() > static_cast<size_t>(kMaxPageThrottles)) {
    snapshots->resize(kMaxPageThrottles);
  }
}

bool ServeJson(const std::string& json, absl::string_view path,
               HttpReply* reply) {
  if (path == "/" || path == "/status") {
    // In a <script> element: JsonString escaped every '<' already.
    reply->content_type = "text/html; charset=utf-8";
    reply->body = absl::StrReplaceAll(kPage, {{"@INITIAL@", json}});
    return true;
  }
  if (path == "/status.json") {
    reply->content_type = "application/json";
    reply->body = json;
    return true;
  }
  return false;
}

}  // namespace

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (u < 0x20 || c == '<' || c == '>' || c == '&') {
      static constexpr char kHex[] = "0123456789abcdef";
      absl::StrAppend(&out, "\\u00", std::string(1, kHex[u >> 4]),
                      std::string(1, kHex[u & 0xf]));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

StatusPage::StatusPage(const Clock* clock, const ThrottleStatsSource* source,
                       std::string role)
    : clock_(clock), source_(source), role_(std::move(role)), loop_(clock) {
  loop_.Start([this] { return Sample(); });
}

absl::Time StatusPage::Sample() {
  const absl::Time now = clock_->Now();
  std::vector<ThrottleSnapshot> snapshots = source_->Snapshot();
  KeepShown(&snapshots);
  absl::MutexLock lock(&mu_);
  if (now < next_sample_) return next_sample_;  // kicked early: not yet
  std::map<std::string, Series, std::less<>> kept;
  for (const ThrottleSnapshot& s : snapshots) {
    // Throttles that are gone lose their history with this move.
    auto it = history_.find(s.name);
    Series& series = kept[s.name];
    if (it != history_.end()) series = std::move(it->second);
    series.rates.push_back(static_cast<float>(s.achieved_rate));
    ++series.taken;
    while (series.rates.size() > static_cast<size_t>(kHistorySamples)) {
      series.rates.pop_front();
    }
  }
  history_ = std::move(kept);
  // One step on from the last sample, or from now after a pause: never a
  // burst of samples to catch up.
  next_sample_ = next_sample_ + kHistoryStep > now ? next_sample_ + kHistoryStep
                                                   : now + kHistoryStep;
  return next_sample_;
}

std::string StatusPage::Json() const {
  std::vector<ThrottleSnapshot> snapshots = source_->Snapshot();
  const size_t total = snapshots.size();
  KeepShown(&snapshots);
  std::vector<std::string> throttles;
  absl::MutexLock lock(&mu_);
  for (const ThrottleSnapshot& s : snapshots) {
    std::vector<std::string> history;
    if (auto it = history_.find(s.name); it != history_.end()) {
      for (float rate : it->second.rates) {
        history.push_back(JsonNumber(rate));
      }
    }
    throttles.push_back(absl::StrCat(
        "{\"name\":", JsonString(s.name), ",\"state\":", JsonString(s.state),
        ",\"mode\":", JsonString(s.mode),
        ",\"configured_rate\":", JsonNumber(s.configured_rate),
        ",\"achieved_rate\":", JsonNumber(s.achieved_rate), ",\"mean_rate\":",
        JsonNumber(s.mean_rate), ",\"waiting_streams\":", s.waiting_streams,
        ",\"open_streams\":", s.open_streams, ",\"total_emissions\":",
        s.emissions, ",\"history\":[", absl::StrJoin(history, ","), "]}"));
  }
  const std::string role_text =
      role_.empty() ? "" : absl::StrCat("This server is the ", role_, ".");
  return PageJson(role_, role_text, absl::StrJoin(throttles, ","), total);
}

bool StatusPage::Serve(absl::string_view path, HttpReply* reply) const {
  if (path != "/" && path != "/status" && path != "/status.json") return false;
  return ServeJson(Json(), path, reply);
}

std::vector<float> StatusPage::History(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = history_.find(name);
  if (it == history_.end()) return {};
  return {it->second.rates.begin(), it->second.rates.end()};
}

bool StatusPage::AwaitSamples(const std::string& name, int64_t n,
                              absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto has = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = history_.find(name);
    return n == 0 ? it == history_.end()
                  : it != history_.end() && it->second.taken >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&has), timeout);
}

bool ServeStandbyPage(absl::string_view state, absl::string_view path,
                      HttpReply* reply) {
  const std::string text =
      absl::StrCat("This server is a standby (state: ", state,
                   "): it serves no throttle. The leader's page shows them.");
  return ServeJson(PageJson("standby", text, "", 0), path, reply);
}

}  // namespace throttle::server
