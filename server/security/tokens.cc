#include "server/security/tokens.h"

#include <openssl/sha.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/security/text_file.h"

namespace throttle::server {

std::string HashToken(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         digest);
  return absl::StrCat(
      "sha256:", absl::BytesToHexString(absl::string_view(
                     reinterpret_cast<const char*>(digest), sizeof(digest))));
}

absl::StatusOr<TokenFile> TokenFile::Parse(absl::string_view text,
                                           absl::string_view source) {
  TokenFile file;
  absl::flat_hash_set<std::string> names, hashes;
  absl::Status status = ForEachLine(
      text, source,
      [&](int, const std::vector<absl::string_view>& words) -> absl::Status {
        if (words.size() != 2) {
          return absl::InvalidArgumentError("a line is NAME sha256:HEX");
        }
        const std::string hash = absl::AsciiStrToLower(words[1]);
        if (!absl::StartsWith(hash, "sha256:") || hash.size() != 7 + 64 ||
            hash.find_first_not_of("0123456789abcdef", 7) !=
                std::string::npos) {
          return absl::InvalidArgumentError(absl::StrCat(
              "the hash must be sha256: and 64 hex digits, got \"", words[1],
              "\" (tokens are stored hashed: printf %s TOKEN | sha256sum)"));
        }
        if (!names.insert(std::string(words[0])).second) {
          return absl::InvalidArgumentError(
              absl::StrCat("the name \"", words[0], "\" is listed twice"));
        }
        if (!hashes.insert(hash).second) {
          return absl::InvalidArgumentError(
              "this token's hash is listed twice");
        }
        file.entries_.emplace_back(hash, std::string(words[0]));
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return file;
}

absl::StatusOr<TokenFile> TokenFile::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadTextFile("token_file", path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

std::string TokenFile::IdentityOf(absl::string_view token) const {
  const std::string hash = HashToken(token);
  for (const auto& [h, name] : entries_) {
    if (h == hash) return absl::StrCat("token:", name);
  }
  return "";
}

}  // namespace throttle::server
