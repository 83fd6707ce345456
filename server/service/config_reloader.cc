#include "server/service/config_reloader.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/service/convert.h"
#include "server/service/log.h"

namespace throttle::server {
namespace {

// Whether two configs mean the same (defaults filled in).
bool SameConfig(const ThrottleConfig& a, const ThrottleConfig& b) {
  return ToProto(a).SerializeAsString() == ToProto(b).SerializeAsString();
}

}  // namespace

ConfigReloader::ConfigReloader(const ReloaderOptions& options,
                               ConfigFile loaded, DeclareFunction declare)
    : options_(options),
      declare_(std::move(declare)),
      current_(std::move(loaded)),
      stamp_(current_.stamp) {
  thread_ = std::thread([this] { Run(); });
}

ConfigReloader::~ConfigReloader() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void ConfigReloader::RequestReload() {
  absl::MutexLock lock(&mu_);
  requested_ = true;
}

void ConfigReloader::Run() {
  while (true) {
    bool forced = false;
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return requested_ || stopping_;
      };
      const absl::Time deadline =
          options_.poll_interval > absl::ZeroDuration()
              ? options_.clock->Now() + options_.poll_interval
              : absl::InfiniteFuture();
      options_.clock->WaitUntil(&mu_, absl::Condition(&woken), deadline);
      if (stopping_) return;
      forced = requested_;
      requested_ = false;
    }
    Reload(forced);
  }
}

void ConfigReloader::Reload(bool forced) {
  const std::string stamp = FileStamp(options_.path);
  if (!forced && stamp == stamp_) return;
  // Remembered even if the file is bad: it is not read (nor complained
  // about) again until it changes or a reload is asked for.
  stamp_ = stamp;
  const char* trigger = forced ? "reload requested" : "file changed";
  absl::StatusOr<ConfigFile> loaded = LoadConfigFile(options_.path);
  if (loaded.ok()) {
    for (const DeclaredThrottle& declared : loaded->throttles) {
      if (options_.fixed_names.contains(declared.name)) {
        loaded = absl::InvalidArgumentError(absl::StrCat(
            declared.source, ": throttle ", declared.name,
            " is declared by --throttle too (declare each name once)"));
        break;
      }
    }
  }
  if (!loaded.ok()) {
    Log(LogLevel::kError, "config_rejected",
        {{"file", options_.path},
         {"trigger", trigger},
         {"error", std::string(loaded.status().message())},
         {"kept", "the previous config"}});
    return;
  }
  if (loaded->old_format) {
    Log(LogLevel::kWarning, "config_format_deprecated",
        {{"file", options_.path},
         {"use", "YAML (README.md, \"The config file\")"}});
  }

  absl::flat_hash_map<std::string, const DeclaredThrottle*> before;
  for (const DeclaredThrottle& declared : current_.throttles) {
    before[declared.name] = &declared;
  }
  // What is applied becomes current; a throttle that could not be applied
  // keeps its previous version, so the next reload tries again.
  ConfigFile applied = *loaded;
  applied.throttles.clear();
  int created = 0, configured = 0, unchanged = 0, failed = 0;
  for (const DeclaredThrottle& declared : loaded->throttles) {
    auto it = before.find(declared.name);
    const DeclaredThrottle* previous =
        it == before.end() ? nullptr : it->second;
    if (previous != nullptr) before.erase(it);
    if (previous != nullptr && SameConfig(previous->config, declared.config)) {
      ++unchanged;
      applied.throttles.push_back(declared);
      continue;
    }
    absl::StatusOr<bool> result = declare_(declared.name, declared.config);
    if (!result.ok()) {
      ++failed;
      Log(LogLevel::kError, "config_throttle_not_applied",
          {{"throttle", declared.name},
           {"source", declared.source},
           {"error", std::string(result.status().message())}});
      if (previous != nullptr) applied.throttles.push_back(*previous);
      continue;
    }
    ++(*result ? created : configured);
    applied.throttles.push_back(declared);
  }
  std::vector<std::string> removed;
  for (const DeclaredThrottle& declared : current_.throttles) {
    if (before.contains(declared.name)) removed.push_back(declared.name);
  }
  if (!removed.empty()) {
    Log(LogLevel::kWarning, "config_throttles_undeclared",
        {{"file", options_.path},
         {"throttles", absl::StrJoin(removed, ",")},
         {"kept",
          "they stay as they are; throttlectl delete NAME removes "
          "one"}});
  }
  Log(LogLevel::kInfo, "config_reloaded",
      {{"file", options_.path},
       {"trigger", trigger},
       {"created", absl::StrCat(created)},
       {"configured", absl::StrCat(configured)},
       {"unchanged", absl::StrCat(unchanged)},
       {"undeclared", absl::StrCat(removed.size())},
       {"failed", absl::StrCat(failed)}});
  current_ = std::move(applied);
}

}  // namespace throttle::server
