// Helpers for the data tests: temporary folders, small files, and IoError checks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "resnet/data.h"
#include "resnet/error.h"
#include "support/temp_dir.h"

namespace resnet::testing {

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// The SIGNS folder: $RESNET_SIGNS_DIR, else ../shared/datasets/signs beside the project.
inline std::string signs_dir() {
  if (const char* env = std::getenv("RESNET_SIGNS_DIR"); env != nullptr && *env != '\0') return env;
  return RESNET_SOURCE_DIR "/../shared/datasets/signs";
}

// Runs `fn`, expecting an IoError whose message contains every string of `parts`.
template <class Fn>
void expect_io_error(Fn&& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no IoError thrown (expected one naming " << ::testing::PrintToString(parts)
                  << ")";
  } catch (const IoError& e) {
    const std::string what = e.what();
    for (const auto& p : parts) {
      EXPECT_NE(what.find(p), std::string::npos) << "message '" << what << "' lacks '" << p << "'";
    }
  }
}

}  // namespace resnet::testing
