#include "server/service/config_file.h"

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/core/duration.h"
#include "server/service/convert.h"
#include "yaml-cpp/yaml.h"

namespace throttle::server {
namespace {

constexpr const char* kKnownKeys =
    "max_n, per, mode, burst, manual_emit, catch_up, warm_up, warm_up_from, "
    "starvation_bound, degradation, local_share_for, adaptive";

int LineOf(const YAML::Node& node) { return node.Mark().line + 1; }

std::string Quote(absl::string_view s) {
  return absl::StrCat("\"", absl::CHexEscape(s.substr(0, 40)),
                      s.size() > 40 ? "..." : "", "\"");
}

// Builds the errors of one file: "PATH:LINE: FIELD: message".
class Errors {
 public:
  explicit Errors(const std::string& path) : path_(path) {}
  absl::Status At(int line, absl::string_view field,
                  absl::string_view message) const {
    return absl::InvalidArgumentError(
        field.empty()
            ? absl::StrCat(path_, ":", line, ": ", message)
            : absl::StrCat(path_, ":", line, ": ", field, ": ", message));
  }
  absl::Status At(const YAML::Node& node, absl::string_view field,
                  absl::string_view message) const {
    return At(LineOf(node), field, message);
  }

 private:
  const std::string& path_;
};

const char* TypeName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a value";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

// Calls `entry` with each key and value of the mapping `map` (whose field
// is `field`), in order; a key that is not a plain value, or that comes
// twice, is an error naming both lines.
template <typename F>
absl::Status ForEachKey(const YAML::Node& map, absl::string_view field,
                        const Errors& errors, F entry) {
  absl::flat_hash_map<std::string, int> seen;
  for (const auto& pair : map) {
    const YAML::Node& key = pair.first;
    if (!key.IsScalar()) {
      return errors.At(
          key, field,
          absl::StrCat("a key must be a name, got ", TypeName(key)));
    }
    const std::string path =
        field.empty() ? key.Scalar() : absl::StrCat(field, ".", key.Scalar());
    auto [it, inserted] = seen.emplace(key.Scalar(), LineOf(key));
    if (!inserted) {
      return errors.At(
          key, path,
          absl::StrCat("given twice (first at line ", it->second, ")"));
    }
    if (absl::Status s = entry(key, pair.second, path); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// The numbers and durations of the file: an error names the value's line,
// the field and what the value must be.
absl::Status ReadInteger(const YAML::Node& value, const std::string& path,
                         const Errors& errors, int64_t* out) {
  if (absl::SimpleAtoi(value.Scalar(), out)) return absl::OkStatus();
  return errors.At(
      value, path,
      absl::StrCat("must be an integer, got ", Quote(value.Scalar())));
}
absl::Status ReadNumber(const YAML::Node& value, const std::string& path,
                        absl::string_view range, const Errors& errors,
                        double* out) {
  if (absl::SimpleAtod(value.Scalar(), out)) return absl::OkStatus();
  return errors.At(value, path,
                   absl::StrCat("must be a number in ", range, ", got ",
                                Quote(value.Scalar())));
}
absl::Status ReadDuration(const YAML::Node& value, const std::string& path,
                          const Errors& errors, absl::Duration* out) {
  absl::StatusOr<absl::Duration> duration = ParseDuration(value.Scalar());
  if (!duration.ok()) {
    return errors.At(value, path, duration.status().message());
  }
  *out = *duration;
  return absl::OkStatus();
}

// The values given under a throttle, by their field path below it
// ("burst", "adaptive.floor_n"), so that an error of ValidateConfig points
// at the line of the field it names.
using GivenValues = absl::flat_hash_map<std::string, YAML::Node>;

constexpr const char* kAdaptiveKeys =
    "floor_n, target_rejection_ratio, window, increase_n, decrease_factor, "
    "min_outcomes";

// The mapping under a throttle's "adaptive" (the proto's AdaptiveConfig,
// by its field names; what it omits keeps the defaults, as in the RPC).
absl::Status ParseAdaptive(const YAML::Node& settings, const std::string& field,
                           const Errors& errors, AdaptiveConfig* config,
                           GivenValues* given) {
  return ForEachKey(
      settings, field, errors,
      [&](const YAML::Node& key, const YAML::Node& value,
          const std::string& path) -> absl::Status {
        const std::string& name = key.Scalar();
        if (!value.IsScalar()) {
          return errors.At(
              key, path,
              absl::StrCat("must be a value, got ", TypeName(value)));
        }
        (*given)["adaptive." + name] = value;
        if (name == "floor_n") {
          return ReadInteger(value, path, errors, &config->floor_n);
        } else if (name == "target_rejection_ratio") {
          return ReadNumber(value, path, "(0, 1)", errors,
                            &config->target_rejection_ratio);
        } else if (name == "window") {
          return ReadDuration(value, path, errors, &config->window);
        } else if (name == "increase_n") {
          return ReadInteger(value, path, errors, &config->increase_n);
        } else if (name == "decrease_factor") {
          return ReadNumber(value, path, "(0, 1)", errors,
                            &config->decrease_factor);
        } else if (name == "min_outcomes") {
          return ReadInteger(value, path, errors, &config->min_outcomes);
        }
        return errors.At(
            key, path,
            absl::StrCat("unknown key (known: ", kAdaptiveKeys, ")"));
      });
}

// The settings of one throttle (the mapping under its name).
absl::Status ParseSettings(const YAML::Node& settings, const std::string& field,
                           const Errors& errors, ThrottleConfig* config) {
  GivenValues nodes;
  absl::Status status = ForEachKey(
      settings, field, errors,
      [&](const YAML::Node& key, const YAML::Node& value,
          const std::string& path) -> absl::Status {
        const std::string& name = key.Scalar();
        static const absl::string_view kKeys[] = {"max_n",
                                                  "per",
                                                  "mode",
                                                  "burst",
                                                  "manual_emit",
                                                  "catch_up",
                                                  "warm_up",
                                                  "warm_up_from",
                                                  "starvation_bound",
                                                  "degradation",
                                                  "local_share_for",
                                                  "adaptive"};
        bool known = false;
        for (absl::string_view k : kKeys) known = known || k == name;
        if (!known) {
          // The --throttle spec's flat spellings have one form in the
          // file: the nested mapping (docs/DECISIONS.md).
          return errors.At(
              key, path,
              absl::StrCat("unknown key (known: ", kKnownKeys, ")",
                           absl::StartsWith(name, "adaptive_")
                               ? "; the adaptive_* settings of --throttle "
                                 "go in the mapping adaptive: {...}"
                               : ""));
        }
        if (name == "adaptive") {
          if (!value.IsMap()) {
            return errors.At(
                key, path,
                absl::StrCat("must be a mapping of adaptive settings (",
                             kAdaptiveKeys, "; {} for every default), got ",
                             TypeName(value)));
          }
          nodes[name] = key;
          return ParseAdaptive(value, path, errors, &config->adaptive.emplace(),
                               &nodes);
        }
        if (!value.IsScalar()) {
          return errors.At(
              key, path,
              absl::StrCat("must be a value, got ", TypeName(value)));
        }
        nodes[name] = value;
        const std::string& text = value.Scalar();
        if (name == "max_n") {
          return ReadInteger(value, path, errors, &config->max_n);
        } else if (name == "burst") {
          return ReadInteger(value, path, errors, &config->burst);
        } else if (name == "manual_emit") {
          if (!absl::SimpleAtob(text, &config->manual_emit)) {
            return errors.At(
                value, path,
                absl::StrCat("must be true or false, got ", Quote(text)));
          }
        } else if (name == "mode") {
          absl::StatusOr<Mode> mode = ParseMode(text);
          if (!mode.ok())
            return errors.At(value, path, mode.status().message());
          config->mode = *mode;
        } else if (name == "degradation") {
          absl::StatusOr<Degradation> degradation = ParseDegradation(text);
          if (!degradation.ok()) {
            return errors.At(value, path, degradation.status().message());
          }
          config->degradation = *degradation;
        } else if (name == "warm_up_from") {
          return ReadNumber(value, path, "(0, 1]", errors,
                            &config->warm_up_from);
        } else {  // per, catch_up, warm_up, starvation_bound,
                  // local_share_for
          return ReadDuration(
              value, path, errors,
              &(name == "per"                ? config->per
                : name == "warm_up"          ? config->warm_up
                : name == "starvation_bound" ? config->starvation_bound
                : name == "local_share_for"  ? config->local_share_for
                                             : config->catch_up.emplace()));
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  for (const char* required : {"max_n", "per"}) {
    if (!nodes.contains(required)) {
      return errors.At(settings, field, absl::StrCat(required, " is required"));
    }
  }
  status = ValidateConfig(*config);
  if (status.ok()) return status;
  // ValidateConfig names the proto's fields ("config.burst",
  // "config.adaptive.floor_n", or "config.per_seconds" for per): point at
  // the line of the first one named that the file gives, or of the
  // mapping it is in ("adaptive" for a default out of range there).
  std::string message(status.message());
  absl::StrReplaceAll({{"config.per_seconds", "per"}, {"config.", ""}},
                      &message);
  const absl::string_view original = status.message();
  size_t at = original.find("config.");
  std::string key;
  if (at != absl::string_view::npos) {
    absl::string_view rest = original.substr(at + 7);
    key = std::string(
        rest.substr(0, rest.find_first_not_of("abcdefghijklmnopqrstuvwxyz_.")));
    if (key == "per_seconds") key = "per";
  }
  // The field, else the mapping it is in.
  while (!key.empty()) {
    if (auto it = nodes.find(key); it != nodes.end()) {
      return errors.At(it->second, absl::StrCat(field, ".", key), message);
    }
    const size_t dot = key.rfind('.');
    key.resize(dot == std::string::npos ? 0 : dot);
  }
  return errors.At(settings, field, message);
}

absl::StatusOr<ConfigFile> ParseYaml(const YAML::Node& root,
                                     const std::string& path) {
  const Errors errors(path);
  ConfigFile file;
  file.path = path;
  if (root.IsNull()) return file;  // empty, or comments only
  if (!root.IsMap()) {
    return errors.At(root, "",
                     absl::StrCat("the file must be a mapping with the key "
                                  "\"throttles\", got ",
                                  TypeName(root)));
  }
  absl::Status status = ForEachKey(
      root, "", errors,
      [&](const YAML::Node& key, const YAML::Node& value,
          const std::string& field) -> absl::Status {
        if (key.Scalar() != "throttles") {
          return errors.At(key, field, "unknown key (known: throttles)");
        }
        if (value.IsNull()) return absl::OkStatus();
        if (!value.IsMap()) {
          return errors.At(
              key, field,
              absl::StrCat("must be a mapping of throttle names to "
                           "their settings, got ",
                           TypeName(value)));
        }
        return ForEachKey(
            value, field, errors,
            [&](const YAML::Node& name, const YAML::Node& settings,
                const std::string& throttle) -> absl::Status {
              if (absl::Status s = ValidateName("name", name.Scalar());
                  !s.ok()) {
                return errors.At(name, throttle, s.message());
              }
              if (!settings.IsMap()) {
                return errors.At(
                    name, throttle,
                    absl::StrCat("must be a mapping of settings (", kKnownKeys,
                                 "), got ", TypeName(settings)));
              }
              DeclaredThrottle declared;
              declared.name = name.Scalar();
              declared.source = absl::StrCat(path, ":", LineOf(name));
              if (absl::Status s = ParseSettings(settings, throttle, errors,
                                                 &declared.config);
                  !s.ok()) {
                return s;
              }
              file.throttles.push_back(std::move(declared));
              return absl::OkStatus();
            });
      });
  if (!status.ok()) return status;
  return file;
}

// The deprecated line format: one --throttle spec per line.
absl::StatusOr<ConfigFile> ParseOldFormat(absl::string_view text,
                                          const std::string& path) {
  ConfigFile file;
  file.path = path;
  file.old_format = true;
  absl::flat_hash_map<std::string, int> seen;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    const absl::string_view spec =
        absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (spec.empty()) continue;
    auto parsed = ParseThrottleSpec(spec);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": ", parsed.status().message()));
    }
    auto [it, inserted] = seen.emplace(parsed->first, number);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", number, ": throttle ", parsed->first,
                       " is declared twice (first at line ", it->second, ")"));
    }
    file.throttles.push_back(
        {parsed->first, parsed->second, absl::StrCat(path, ":", number)});
  }
  return file;
}

}  // namespace

absl::StatusOr<ConfigFile> ParseConfigFile(absl::string_view text,
                                           const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    // yaml-cpp reports syntax errors only by exception.
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  // Lines of "NAME key=value" read as one plain YAML value.
  if (root.IsScalar()) return ParseOldFormat(text, path);
  return ParseYaml(root, path);
}

std::string FileStamp(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, "/",
                      st.st_size, "/", st.st_ino);
}

absl::StatusOr<ConfigFile> LoadConfigFile(const std::string& path) {
  std::string stamp = FileStamp(path);
  std::ifstream in(path);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in) return absl::InvalidArgumentError("cannot read " + path);
  absl::StatusOr<ConfigFile> file = ParseConfigFile(text.str(), path);
  if (file.ok()) file->stamp = std::move(stamp);
  return file;
}

absl::StatusOr<std::vector<DeclaredThrottle>> MergeDeclared(
    const std::vector<DeclaredThrottle>& flagged, const ConfigFile& file) {
  std::map<std::string, std::string> sources;
  std::vector<DeclaredThrottle> all;
  for (const auto* list : {&flagged, &file.throttles}) {
    for (const DeclaredThrottle& declared : *list) {
      auto [it, inserted] = sources.emplace(declared.name, declared.source);
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(
            "throttle ", declared.name, " is declared twice: in ", it->second,
            " and in ", declared.source, " (declare each name once)"));
      }
      all.push_back(declared);
    }
  }
  return all;
}

}  // namespace throttle::server
