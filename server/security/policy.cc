#include "server/security/policy.h"

#include <fnmatch.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/security/text_file.h"

namespace throttle::server {

const char* RoleName(Role role) {
  switch (role) {
    case Role::kWorker:
      return "worker";
    case Role::kController:
      return "controller";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

int RequiredRole(absl::string_view method) {
  for (absl::string_view m :
       {"AwaitFuel", "Acquire", "HasFuel", "Emit", "Report"}) {
    if (method == m) return static_cast<int>(Role::kWorker);
  }
  for (absl::string_view m :
       {"Start", "Stop", "Latest", "Mean", "ListThrottles", "WatchThrottle"}) {
    if (method == m) return static_cast<int>(Role::kController);
  }
  for (absl::string_view m :
       {"CreateThrottle", "ConfigureThrottle", "DeleteThrottle"}) {
    if (method == m) return static_cast<int>(Role::kAdmin);
  }
  return -1;
}

bool GlobMatch(absl::string_view pattern, absl::string_view text) {
  // fnmatch without FNM_PATHNAME: '*' also matches '/', as in SPIFFE paths;
  // '[' is refused by Parse, so only '*' and '?' are special.
  return fnmatch(std::string(pattern).c_str(), std::string(text).c_str(),
                 FNM_NOESCAPE) == 0;
}

absl::StatusOr<Policy> Policy::Parse(absl::string_view text,
                                     absl::string_view source) {
  Policy policy;
  absl::Status status = ForEachLine(
      text, source,
      [&](int line,
          const std::vector<absl::string_view>& words) -> absl::Status {
        if (words.size() < 3) {
          return absl::InvalidArgumentError(absl::StrCat(
              "a rule is IDENTITY-PATTERN ROLE THROTTLE-PATTERN..., got only ",
              words.size(), " word(s)"));
        }
        Rule rule;
        rule.line = line;
        rule.identity = std::string(words[0]);
        const std::string role = absl::AsciiStrToLower(words[1]);
        if (role == "worker") {
          rule.role = Role::kWorker;
        } else if (role == "controller") {
          rule.role = Role::kController;
        } else if (role == "admin") {
          rule.role = Role::kAdmin;
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("role must be worker, controller or admin, got \"",
                           words[1], "\""));
        }
        for (size_t i = 2; i < words.size(); ++i) {
          rule.throttles.emplace_back(words[i]);
        }
        for (absl::string_view pattern : words) {
          if (pattern.find_first_of("[]\\") != absl::string_view::npos) {
            return absl::InvalidArgumentError(absl::StrCat(
                "patterns know only '*' and '?', got \"", pattern, "\""));
          }
        }
        policy.rules_.push_back(std::move(rule));
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return policy;
}

absl::StatusOr<Policy> Policy::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadTextFile("policy", path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

bool Policy::Allows(absl::string_view identity, absl::string_view method,
                    absl::string_view throttle) const {
  const int needed = RequiredRole(method);
  if (needed < 0) return false;
  for (const Rule& rule : rules_) {
    if (static_cast<int>(rule.role) < needed) continue;
    if (!GlobMatch(rule.identity, identity)) continue;
    for (const std::string& pattern : rule.throttles) {
      if (GlobMatch(pattern, throttle)) return true;
    }
  }
  return false;
}

bool Policy::HasRole(absl::string_view identity, Role role) const {
  for (const Rule& rule : rules_) {
    if (rule.role >= role && GlobMatch(rule.identity, identity)) return true;
  }
  return false;
}

}  // namespace throttle::server
