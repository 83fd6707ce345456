#include "server/usage.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#ifndef THROTTLE_VERSION
#error "THROTTLE_VERSION must be defined (server/CMakeLists.txt)"
#endif

namespace throttle {
namespace {

constexpr size_t kWidth = 80;

// Appends `text` to `out` wrapped at kWidth columns; the first line starts
// with `first`, the others with `indent`.
void AppendWrapped(std::string* out, absl::string_view first,
                   absl::string_view indent, absl::string_view text) {
  std::string line(first);
  bool line_has_word = false;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (line_has_word && line.size() + 1 + word.size() > kWidth) {
      absl::StrAppend(out, line, "\n");
      line = std::string(indent);
      line_has_word = false;
    }
    absl::StrAppend(&line, line_has_word ? " " : "", word);
    line_has_word = true;
  }
  absl::StrAppend(out, line, "\n");
}

absl::string_view Basename(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// True for a flag defined in `main_file`. Abseil gives a flag's file name
// normalized (the leading '/' dropped): a suffix of __FILE__.
bool InMainFile(absl::string_view main_file, absl::string_view filename) {
  return !filename.empty() && absl::EndsWith(main_file, filename);
}

}  // namespace

const char* ProjectVersion() { return THROTTLE_VERSION; }

std::string VersionLine(absl::string_view program) {
  return absl::StrCat(program, " ", ProjectVersion(), "\n");
}

std::string HelpText(absl::string_view program, absl::string_view usage,
                     absl::string_view main_file) {
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (InMainFile(main_file, flag->Filename())) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  std::string text = absl::StrCat(program, ": ", usage, "\n\nFlags:\n");
  for (const absl::CommandLineFlag* flag : flags) {
    const std::string value = flag->DefaultValue();
    const std::string shown =
        flag->IsOfType<std::string>() ? absl::StrCat("\"", value, "\"") : value;
    AppendWrapped(&text, absl::StrCat("  --", flag->Name(), " "), "      ",
                  absl::StrCat("(", flag->Help(), "); default: ", shown, ";"));
  }
  text.push_back('\n');
  AppendWrapped(&text, "", "",
                "--version prints the version; --helpfull lists every flag, "
                "also those of the libraries.");
  return text;
}

std::vector<char*> ParseCommandLineWithUsage(int argc, char** argv,
                                             absl::string_view usage,
                                             absl::string_view main_file) {
  const std::string program(Basename(argc > 0 ? argv[0] : "program"));
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  const std::string file(main_file);
  config.contains_help_flags = [file](absl::string_view f) {
    return InMainFile(file, f);
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  config.version_string = [program] { return VersionLine(program); };
  absl::SetFlagsUsageConfig(config);

  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--help" || arg == "-help" || arg == "--helpshort" ||
        arg == "-helpshort") {
      std::fputs(HelpText(program, usage, main_file).c_str(), stdout);
      std::exit(0);
    }
    if (arg == "--version" || arg == "-version") {
      std::fputs(VersionLine(program).c_str(), stdout);
      std::exit(0);
    }
  }
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace throttle
