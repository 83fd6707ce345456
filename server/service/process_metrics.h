// The standard Prometheus process metrics (the names every client library
// exports: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds,
// process_start_time_seconds), read from Linux's /proc/self at scrape
// time, so they cost nothing between scrapes.
//
// Part of the service glue; ThrottleServer exposes it next to its own
// metrics.
#ifndef THROTTLE_SERVER_SERVICE_PROCESS_METRICS_H_
#define THROTTLE_SERVER_SERVICE_PROCESS_METRICS_H_

#include <memory>

#include "prometheus/collectable.h"

namespace throttle::server {

// A collectable of this process's metrics. Thread-safe; a value that
// cannot be read (no /proc) is left out of the scrape.
std::shared_ptr<prometheus::Collectable> NewProcessCollector();

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_PROCESS_METRICS_H_
