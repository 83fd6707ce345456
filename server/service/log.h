// Structured logs: one line per event on stderr, logfmt style
// (ts=... level=info event=throttle_started throttle=crawl).
//
// Part of the service glue and main. Thread-safe: each line is written
// with one call.
#ifndef THROTTLE_SERVER_SERVICE_LOG_H_
#define THROTTLE_SERVER_SERVICE_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace throttle::server {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Sets the lowest level written (default kInfo).
void SetLogLevel(LogLevel level);
// Parses "debug", "info", "warning" or "error"; false if none.
bool ParseLogLevel(absl::string_view text, LogLevel* level);
// True if lines of `level` are written.
bool LogEnabled(LogLevel level);

using LogField = std::pair<absl::string_view, std::string>;

// Writes one line: ts, level, event, then the fields in order. Values with
// spaces, quotes or '=' are quoted. Never blocks beyond the write.
void Log(LogLevel level, absl::string_view event,
         std::initializer_list<LogField> fields = {});

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_LOG_H_
