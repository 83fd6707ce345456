#include "server/state/file_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace throttle::server {
namespace {

constexpr absl::string_view kSuffix = ".record";

std::string ErrnoText() { return std::strerror(errno); }

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0750) == 0 || errno == EEXIST) {
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        absl::StrCat("--state_dir: ", path, " is not a directory"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--state_dir: cannot create ", path, ": ", ErrnoText()));
}

absl::Status SyncPath(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open ", path, ": ", ErrnoText()));
  }
  const int rc = fsync(fd);
  close(fd);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot fsync ", path, ": ", ErrnoText()));
  }
  return absl::OkStatus();
}

class FileStore final : public StateStore {
 public:
  explicit FileStore(std::string dir)
      : dir_(std::move(dir)), records_(dir_ + "/throttles") {}

  absl::Status Init() {
    if (absl::Status s = MakeDir(dir_); !s.ok()) return s;
    if (absl::Status s = MakeDir(records_); !s.ok()) return s;
    // A write that died before its rename leaves a .tmp file: drop it.
    DIR* d = opendir(records_.c_str());
    if (d == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--state_dir: cannot read ", records_, ": ", ErrnoText()));
    }
    while (dirent* e = readdir(d)) {
      if (absl::EndsWith(e->d_name, ".tmp")) {
        unlink(absl::StrCat(records_, "/", e->d_name).c_str());
      }
    }
    closedir(d);
    return SyncPath(records_);
  }

  absl::StatusOr<std::vector<ThrottleRecord>> LoadAll() override {
    std::vector<ThrottleRecord> out;
    DIR* d = opendir(records_.c_str());
    if (d == nullptr) {
      return absl::InternalError(
          absl::StrCat("cannot read ", records_, ": ", ErrnoText()));
    }
    std::vector<std::string> files;
    while (dirent* e = readdir(d)) {
      if (absl::EndsWith(e->d_name, kSuffix)) files.push_back(e->d_name);
    }
    closedir(d);
    for (const std::string& file : files) {
      const std::string path = absl::StrCat(records_, "/", file);
      std::ifstream in(path, std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      ThrottleRecord record;
      if (!in || !record.ParseFromString(bytes.str())) {
        return absl::DataLossError(
            absl::StrCat("cannot parse the throttle record ", path));
      }
      if (FileOf(record.name()) != file) {
        return absl::DataLossError(absl::StrCat("the throttle record ", path,
                                                " names another throttle, \"",
                                                record.name(), "\""));
      }
      out.push_back(std::move(record));
    }
    std::sort(out.begin(), out.end(),
              [](const ThrottleRecord& a, const ThrottleRecord& b) {
                return a.name() < b.name();
              });
    return out;
  }

  absl::Status Write(const std::vector<ThrottleRecord>& records,
                     const std::vector<std::string>& deleted) override {
    for (const ThrottleRecord& record : records) {
      if (absl::Status s = WriteOne(record); !s.ok()) return s;
    }
    for (const std::string& name : deleted) {
      const std::string path = PathOf(name);
      if (unlink(path.c_str()) != 0 && errno != ENOENT) {
        return absl::InternalError(
            absl::StrCat("cannot remove ", path, ": ", ErrnoText()));
      }
    }
    return SyncPath(records_);
  }

  std::string Describe() const override { return absl::StrCat("dir ", dir_); }

 private:
  // Names may hold any printable character, '/' too: the file is named by
  // the name's hex form.
  static std::string FileOf(const std::string& name) {
    return absl::StrCat(absl::BytesToHexString(name), kSuffix);
  }
  std::string PathOf(const std::string& name) const {
    return absl::StrCat(records_, "/", FileOf(name));
  }

  absl::Status WriteOne(const ThrottleRecord& record) {
    const std::string path = PathOf(record.name());
    const std::string tmp = path + ".tmp";
    const std::string bytes = record.SerializeAsString();
    const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0) {
      return absl::InternalError(
          absl::StrCat("cannot create ", tmp, ": ", ErrnoText()));
    }
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string error = ErrnoText();
        close(fd);
        return absl::InternalError(
            absl::StrCat("cannot write ", tmp, ": ", error));
      }
      done += static_cast<size_t>(n);
    }
    if (fsync(fd) != 0) {
      const std::string error = ErrnoText();
      close(fd);
      return absl::InternalError(
          absl::StrCat("cannot fsync ", tmp, ": ", error));
    }
    close(fd);
    if (rename(tmp.c_str(), path.c_str()) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot rename ", tmp, ": ", ErrnoText()));
    }
    return absl::OkStatus();
  }

  const std::string dir_;
  const std::string records_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> OpenFileStore(
    const std::string& dir) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("--state_dir: empty directory name");
  }
  auto store =
      std::make_unique<FileStore>(std::string(absl::StripSuffix(dir, "/")));
  if (absl::Status s = store->Init(); !s.ok()) return s;
  return std::unique_ptr<StateStore>(std::move(store));
}

}  // namespace throttle::server
