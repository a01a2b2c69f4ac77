#include "core/atomic_file.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "resnet/error.h"
#include "resnet/io.h"

namespace resnet {

namespace {
// Removes `path`.tmp-PID files whose process is gone (kill(PID, 0) says no such process).
void remove_stale_temp_files(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const std::string prefix = p.filename().string() + ".tmp-";
  const fs::path folder = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  std::error_code ec;
  fs::directory_iterator it(folder, ec);
  if (ec) return;  // the write itself reports an unusable folder
  for (const fs::directory_entry& e : it) {
    const std::string name = e.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(digits);
    if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH) {
      std::error_code rm;
      fs::remove(e.path(), rm);
    }
  }
}
}  // namespace

std::string temp_path_for(const std::string& path) {
  remove_stale_temp_files(path);
  return fmt::format("{}.tmp-{}", path, static_cast<long>(::getpid()));
}

void commit_temp_file(const std::string& tmp, const std::string& path) {
  // fsync the data before the rename so a crash cannot leave a renamed but empty file.
  if (FILE* f = std::fopen(tmp.c_str(), "rb+")) {
    ::fsync(::fileno(f));
    std::fclose(f);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw IoError(fmt::format("{}: cannot replace the file: {}", path, ec.message()));
  }
}

void check_writable(const std::string& path, const std::string& what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw IoError(fmt::format("{} {}: is a folder, not a file", what, path));
  }
  const fs::path parent = fs::path(path).parent_path();
  const fs::path folder = parent.empty() ? fs::path(".") : parent;
  if (!fs::is_directory(folder, ec)) {
    throw IoError(
        fmt::format("{} {}: the folder '{}' does not exist", what, path, folder.string()));
  }
  const std::string probe = temp_path_for(path);
  FILE* f = std::fopen(probe.c_str(), "wb");
  if (f == nullptr) {
    throw IoError(fmt::format("{} {}: cannot write in '{}': {}", what, path, folder.string(),
                              std::strerror(errno)));
  }
  std::fclose(f);
  std::remove(probe.c_str());
}

void write_file_atomic(const std::string& path, const std::string& data) {
  const std::string tmp = temp_path_for(path);
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    throw IoError(fmt::format("{}: cannot write: {}", path, std::strerror(errno)));
  }
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    std::remove(tmp.c_str());
    throw IoError(fmt::format("{}: write failed", path));
  }
  commit_temp_file(tmp, path);
}

}  // namespace resnet
