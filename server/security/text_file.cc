#include "server/security/text_file.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace throttle::server {

absl::StatusOr<std::string> ReadTextFile(absl::string_view flag,
                                         const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": cannot read ", path));
  }
  return text.str();
}

absl::Status ForEachLine(
    absl::string_view text, absl::string_view source,
    absl::FunctionRef<absl::Status(int, const std::vector<absl::string_view>&)>
        line) {
  int number = 0;
  for (absl::string_view content : absl::StrSplit(text, '\n')) {
    ++number;
    content = content.substr(0, content.find('#'));
    const std::vector<absl::string_view> words =
        absl::StrSplit(content, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty()) continue;
    if (absl::Status s = line(number, words); !s.ok()) {
      return absl::Status(s.code(),
                          absl::StrCat(source, ":", number, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace throttle::server
