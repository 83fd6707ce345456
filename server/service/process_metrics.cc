#include "server/service/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"

namespace throttle::server {
namespace {

// The fields of /proc/self/stat after the command name, from field 3
// (state) on; empty if it cannot be read.
std::vector<std::string> StatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  // The command name is in parentheses and may hold spaces: skip past the
  // last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;
}

// Seconds since the epoch at boot ("btime" in /proc/stat).
std::optional<double> BootTime() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double seconds = 0;
      if (in >> seconds) return seconds;
      return std::nullopt;
    }
    in.ignore(1 << 20, '\n');
  }
  return std::nullopt;
}

std::optional<double> OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  int64_t n = 0;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return static_cast<double>(n - 1);  // not the one reading the directory
}

// The soft limit of open files ("Max open files" in /proc/self/limits).
std::optional<double> MaxFds() {
  std::ifstream in("/proc/self/limits");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream fields(line.substr(sizeof("Max open files") - 1));
    std::string soft;
    fields >> soft;
    double value = 0;
    if (!absl::SimpleAtod(soft, &value)) return std::nullopt;  // unlimited
    return value;
  }
  return std::nullopt;
}

class ProcessCollector final : public prometheus::Collectable {
 public:
  explicit ProcessCollector(std::string version)
      : version_(std::move(version)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families;
    const auto add = [&](const char* name, const char* help,
                         prometheus::MetricType type,
                         std::optional<double> value) {
      if (!value.has_value()) return;
      prometheus::MetricFamily family;
      family.name = name;
      family.help = help;
      family.type = type;
      prometheus::ClientMetric metric;
      if (type == prometheus::MetricType::Counter) {
        metric.counter.value = *value;
      } else {
        metric.gauge.value = *value;
      }
      family.metric.push_back(std::move(metric));
      families.push_back(std::move(family));
    };
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    const std::vector<std::string> stat = StatFields();
    // By field number of proc(5); stat[0] is field 3 (state).
    const auto field = [&](size_t number) -> std::optional<double> {
      double value = 0;
      if (number - 3 >= stat.size() ||
          !absl::SimpleAtod(stat[number - 3], &value)) {
        return std::nullopt;
      }
      return value;
    };
    std::optional<double> cpu, start, rss;
    const std::optional<double> vsize = field(23);
    if (ticks > 0 && field(14) && field(15)) {
      cpu = (*field(14) + *field(15)) / ticks;
    }
    const std::optional<double> boot = BootTime();
    if (ticks > 0 && boot && field(22)) start = *boot + *field(22) / ticks;
    if (field(24)) rss = *field(24) * page;
    using prometheus::MetricType;
    add("process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.", MetricType::Counter,
        cpu);
    add("process_resident_memory_bytes", "Resident memory size in bytes.",
        MetricType::Gauge, rss);
    add("process_virtual_memory_bytes", "Virtual memory size in bytes.",
        MetricType::Gauge, vsize);
    add("process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        MetricType::Gauge, start);
    add("process_open_fds", "Number of open file descriptors.",
        MetricType::Gauge, OpenFds());
    add("process_max_fds", "Maximum number of open file descriptors.",
        MetricType::Gauge, MaxFds());
    add("throttle_build_info", "The server's version (value always 1).",
        MetricType::Gauge, 1);
    families.back().metric.back().label = {{"version", version_}};
    return families;
  }

 private:
  const std::string version_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> NewProcessCollector(
    const std::string& version) {
  return std::make_shared<ProcessCollector>(version);
}

}  // namespace throttle::server
