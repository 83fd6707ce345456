// --help and --version of the project's programs: throttle_server, the
// tutorial (examples/tutorial), the load generator (bench/throttle_bench)
// and throttlectl's version.
//
// Abseil's --help lists only the flags of files named after the program
// (throttle_server.cc for throttle_server), so for flags defined in
// server/main.cc it printed "No flags matched." and exited 1. Here --help
// lists the flags of the program's own source file and exits 0.
//
// Depends on Abseil's flags only; used by the mains, not by the service.
#ifndef THROTTLE_SERVER_USAGE_H_
#define THROTTLE_SERVER_USAGE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace throttle {

// The project's version (CMake's PROJECT_VERSION, e.g. "0.1.0").
const char* ProjectVersion();

// "PROGRAM VERSION\n", the line --version prints.
std::string VersionLine(absl::string_view program);

// What --help prints: "PROGRAM: USAGE", then each flag defined in
// `main_file` (pass the main's own __FILE__), sorted by name, with its help
// text and default value.
std::string HelpText(absl::string_view program, absl::string_view usage,
                     absl::string_view main_file);

// Parses the command line as absl::ParseCommandLine() does (and returns
// what it returns), after answering the usage flags: --help, -help,
// --helpshort and -helpshort print HelpText() to stdout, --version and
// -version print VersionLine(); both exit 0. The other Abseil usage flags
// (--helpfull, --help=SUBSTRING, ...) behave as in Abseil, filtered the
// same way. Sets Abseil's program usage message: call once, instead of
// absl::SetProgramUsageMessage() and absl::ParseCommandLine().
std::vector<char*> ParseCommandLineWithUsage(int argc, char** argv,
                                             absl::string_view usage,
                                             absl::string_view main_file);

}  // namespace throttle

#endif  // THROTTLE_SERVER_USAGE_H_
