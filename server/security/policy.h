// Who may call what: the policy file of --policy, and the roles.
//
// Part of the security layer (server/security/), below the service glue.
//
// The format, one rule per line ('#' starts a comment, blank lines are
// ignored):
//
//   IDENTITY-PATTERN  ROLE  THROTTLE-PATTERN...
//
//   spiffe://example.org/worker/*   worker      crawl api-*
//   spiffe://example.org/ops/*      controller  *
//   token:deployer                  admin       *
//
// An identity is what the call proves: the SPIFFE URI of a verified client
// certificate (else its subject as gRPC prints it, last RDN first:
// "O=...,CN=..."), or "token:NAME" for a
// bearer token listed in the token file (tokens.h). Patterns use '*'
// (any run of characters) and '?' (one character), as shell globs without
// brackets. A call is allowed when some rule matches its identity, its
// role covers the method and one of its throttle patterns matches the
// throttle. Roles, each covering the one before:
//   worker      AwaitFuel, HasFuel, Emit, Report
//   controller  + Start, Stop, Latest, Mean, ListThrottles
//   admin       + CreateThrottle, ConfigureThrottle, DeleteThrottle
// ListThrottles lists only the throttles a rule of the caller names.
#ifndef THROTTLE_SERVER_SECURITY_POLICY_H_
#define THROTTLE_SERVER_SECURITY_POLICY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace throttle::server {

enum class Role { kWorker = 0, kController = 1, kAdmin = 2 };

// "worker", "controller", "admin".
const char* RoleName(Role role);

// The role a method needs; -1 for a method the policy does not know.
int RequiredRole(absl::string_view method);

// Whether `text` matches the glob `pattern` ('*' and '?').
bool GlobMatch(absl::string_view pattern, absl::string_view text);

class Policy {
 public:
  struct Rule {
    std::string identity;  // pattern
    Role role;
    std::vector<std::string> throttles;  // patterns
    int line;
  };

  // Parses the policy; INVALID_ARGUMENT naming `source`, the line and what
  // is wrong (an unknown role, a rule without throttles, ...).
  static absl::StatusOr<Policy> Parse(absl::string_view text,
                                      absl::string_view source);
  // Reads and parses the file `path`.
  static absl::StatusOr<Policy> Load(const std::string& path);

  // Whether `identity` may call `method` on `throttle` (for ListThrottles:
  // whether it may see it).
  bool Allows(absl::string_view identity, absl::string_view method,
              absl::string_view throttle) const;

  // Whether some rule gives `identity` at least `role` (on any throttle).
  bool HasRole(absl::string_view identity, Role role) const;

  const std::vector<Rule>& rules() const { return rules_; }

 private:
  std::vector<Rule> rules_;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SECURITY_POLICY_H_
