// The line format shared by the policy and token files: words separated by
// blanks, '#' starts a comment, blank lines are ignored; errors name the
// file and the line.
//
// Part of the security layer.
#ifndef THROTTLE_SERVER_SECURITY_TEXT_FILE_H_
#define THROTTLE_SERVER_SECURITY_TEXT_FILE_H_

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace throttle::server {

// The whole file `path`; INVALID_ARGUMENT "--FLAG: cannot read PATH".
absl::StatusOr<std::string> ReadTextFile(absl::string_view flag,
                                         const std::string& path);

// Calls `line` with the number (from 1) and the words of each line of
// `text` that has any. The first error it returns ends the walk, prefixed
// with "SOURCE:LINE: ".
absl::Status ForEachLine(
    absl::string_view text, absl::string_view source,
    absl::FunctionRef<absl::Status(int, const std::vector<absl::string_view>&)>
        line);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SECURITY_TEXT_FILE_H_
