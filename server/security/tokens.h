// Bearer tokens (--token_file): which token proves which identity, stored
// hashed.
//
// Part of the security layer. The format, one token per line ('#' starts a
// comment):
//
//   NAME  sha256:HEX
//
// where HEX is the SHA-256 of the token in lower-case hex (`printf %s
// "$TOKEN" | sha256sum`, or `throttle_server --hash_token=TOKEN`). A call
// that sends `authorization: Bearer TOKEN` (over TLS only) has the
// identity "token:NAME".
#ifndef THROTTLE_SERVER_SECURITY_TOKENS_H_
#define THROTTLE_SERVER_SECURITY_TOKENS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace throttle::server {

// "sha256:" + the lower-case hex SHA-256 of `token`.
std::string HashToken(absl::string_view token);

class TokenFile {
 public:
  // INVALID_ARGUMENT naming `source` and the line for a bad line or a
  // repeated name or hash.
  static absl::StatusOr<TokenFile> Parse(absl::string_view text,
                                         absl::string_view source);
  static absl::StatusOr<TokenFile> Load(const std::string& path);

  // The identity ("token:NAME") of `token`, or empty if it is not listed.
  std::string IdentityOf(absl::string_view token) const;

  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;  // hash, name
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SECURITY_TOKENS_H_
