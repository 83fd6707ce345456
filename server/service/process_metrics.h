// The standard Prometheus process metrics (the names every client library
// exports: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds), read from Linux's /proc/self at scrape
// time, so they cost nothing between scrapes; and throttle_build_info
// {version}, which binary runs.
//
// Part of the service glue. They describe the process, not a server in it:
// whoever owns the metrics port exposes them once (ThrottleServer on its
// own port; a high-available node on its always-on port, leader or
// standby).
#ifndef THROTTLE_SERVER_SERVICE_PROCESS_METRICS_H_
#define THROTTLE_SERVER_SERVICE_PROCESS_METRICS_H_

#include <memory>
#include <string>

#include "prometheus/collectable.h"

namespace throttle::server {

// A collectable of this process's metrics and of throttle_build_info with
// `version`. Thread-safe; a value that cannot be read (no /proc) is left
// out of the scrape.
std::shared_ptr<prometheus::Collectable> NewProcessCollector(
    const std::string& version);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_PROCESS_METRICS_H_
