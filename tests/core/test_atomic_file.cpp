// Atomic writes (src/core/atomic_file.h): the temporary files a killed save leaves behind are
// removed by the next save of the same file, those of running processes are not, and
// check_writable refuses what a save could not write, leaving nothing behind.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/atomic_file.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "support/temp_dir.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;

// The id of a process that has ended (a child that exited and was reaped).
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return static_cast<long>(child);
}

void touch(const std::string& path) { std::ofstream(path) << "partial"; }

TEST(AtomicFile, ASaveRemovesTheTemporaryFilesOfDeadProcesses) {
  testing::TempDir dir;
  const std::string target = dir.file("model.bin");
  const std::string stale = target + ".tmp-" + std::to_string(dead_pid());
  const std::string live = target + ".tmp-" + std::to_string(static_cast<long>(::getppid()));
  const std::string other = dir.file("other.bin.tmp-" + std::to_string(dead_pid()));
  const std::string not_ours = target + ".tmp-notapid";
  for (const std::string& p : {stale, live, other, not_ours}) touch(p);
  write_file_atomic(target, "done");
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));      // a process that still runs may be saving right now
  EXPECT_TRUE(fs::exists(other));     // another file's
  EXPECT_TRUE(fs::exists(not_ours));  // not a name a save makes
  std::ifstream in(target);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "done");
}

TEST(AtomicFile, CheckWritableRefusesFoldersAndMissingFoldersAndLeavesNothing) {
  testing::TempDir dir;
  EXPECT_NO_THROW(check_writable(dir.file("ok.h5"), "--out"));
  EXPECT_FALSE(fs::exists(dir.file("ok.h5")));
  try {
    check_writable(dir.file("missing/ok.h5"), "--out");
    FAIL() << "a missing folder was accepted";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("--out"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  fs::create_directory(dir.file("sub"));
  EXPECT_THROW(check_writable(dir.file("sub"), "--out"), IoError);
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.file(""))) ++entries;
  EXPECT_EQ(entries, 1u);  // only "sub"
}

}  // namespace
}  // namespace resnet
