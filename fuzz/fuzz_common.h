// Helpers shared by the fuzz targets (fuzz/fuzz_*.cpp): the loaders read files, so each input is
// written to a per-process temporary file (or folder) first.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace resnet_fuzz {

// A per-process temporary folder, removed at exit.
inline const std::filesystem::path& work_dir() {
  struct Dir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("resnet_fuzz_" + std::to_string(::getpid()));
    Dir() {
      std::filesystem::create_directories(path);
      // A file that hangs libhdf5 costs the pre-flight's time limit per loader call: keep it
      // short while fuzzing (an explicit setting wins).
      ::setenv("RESNET_H5_PREFLIGHT_TIMEOUT", "3", 0);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

// Writes `size` bytes to `path`; false when the file cannot be written.
inline bool write_file(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

}  // namespace resnet_fuzz
