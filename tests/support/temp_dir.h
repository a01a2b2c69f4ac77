// A fresh folder of a test's own under the system temporary directory, removed with everything in
// it. Its name holds the process id, a counter and the test's name, so tests running in parallel
// (ctest -j) never share one.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

namespace resnet::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "resnet") {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "test";
    for (char& c : test) {
      if (c == '/') c = '_';  // parameterized test names
    }
    path_ = std::filesystem::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()) +
                                                      "_" + std::to_string(counter++) + "_" + test);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The path of `name` inside the folder.
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // Names of everything directly in the folder, sorted (to check nothing is left behind).
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  // Regular files anywhere below the folder.
  size_t count_files() const {
    size_t n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(path_)) {
      n += e.is_regular_file();
    }
    return n;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace resnet::testing
