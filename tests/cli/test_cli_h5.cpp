// The CLI with Keras .h5 files: train --out x.h5, evaluate/predict/summary of it, train --resume
// x.h5 (same losses as an uninterrupted run), finetune (transfer learning from a .h5 base).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "support/process.h"
#include "support/temp_dir.h"

namespace {

struct CliRun {
  int code = -1;
  std::string out;
};

CliRun run(const std::string& args) {
  const std::string cmd = std::string(RESNET_CLI_PATH) + " " + args + " 2>&1";
  const resnet::testing::CommandResult c = resnet::testing::run_command(cmd);
  return {c.code, c.out};
}

std::string signs_dir() {
  if (const char* env = std::getenv("RESNET_SIGNS_DIR"); env != nullptr && *env != '\0') return env;
  return std::string(RESNET_SOURCE_DIR) + "/../shared/datasets/signs";
}

// The value printed after `key` following the first occurrence of `after`.
std::string value_after(const std::string& text, const std::string& after, const std::string& key) {
  const auto a = text.find(after);
  if (a == std::string::npos) return "<no " + after + ">";
  const auto k = text.find(key, a);
  if (k == std::string::npos) return "<no " + key + ">";
  return text.substr(k + key.size(), 6);
}

class CliH5 : public ::testing::Test {
 protected:
  void SetUp() override {
    train_ = signs_dir() + "/train_signs.h5";
    test_ = signs_dir() + "/test_signs.h5";
    if (!std::filesystem::exists(train_) || !std::filesystem::exists(test_)) {
      GTEST_SKIP() << "SIGNS not found in " << signs_dir()
                   << " (set RESNET_SIGNS_DIR to the folder holding {train,test}_signs.h5)";
    }
    // A folder of each test's own: tests run in parallel under ctest -j.
    tmp_.emplace("resnet_cli_h5");
    dir_ = tmp_->str();
  }
  // Small and fast: ResNet-20 on 32 SIGNS images (validation on the 120 test images only where
  // a test needs the printed test accuracy).
  std::string data(bool val = false) const {
    return "--data " + train_ + (val ? " --val " + test_ : std::string()) +
           " --limit 32 --batch-size 16 --seed 3 ";
  }
  std::string train_, test_, dir_;
  std::optional<resnet::testing::TempDir> tmp_;
};

TEST_F(CliH5, TrainSaveEvaluateAndResumeWithTheSameLosses) {
  const std::string full = dir_ + "/full.h5";
  CliRun straight = run("train --model resnet20 " + data(true) + "--epochs 2 --out " + full);
  ASSERT_EQ(straight.code, 0) << straight.out;
  EXPECT_NE(straight.out.find("saved " + full), std::string::npos) << straight.out;

  // The saved model reproduces the accuracy the training run printed; predict names classes.
  const std::string accuracy = value_after(straight.out, "Test accuracy", ": ");
  CliRun e = run("evaluate " + full + " " + test_);
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("accuracy: " + accuracy), std::string::npos) << e.out << " vs " << accuracy;
  CliRun s = run("summary " + full);
  ASSERT_EQ(s.code, 0) << s.out;
  EXPECT_NE(s.out.find("predictions (Dense)"), std::string::npos) << s.out;

  // One epoch, then resume for the second: the same second-epoch loss as the straight run.
  const std::string half = dir_ + "/half.h5";
  CliRun first = run("train --model resnet20 " + data() + "--epochs 1 --out " + half);
  ASSERT_EQ(first.code, 0) << first.out;
  CliRun resumed =
      run("train --model resnet20 " + data() + "--epochs 2 --resume " + half + " --out " + half);
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_NE(resumed.out.find("resumed from " + half + " at epoch 1"), std::string::npos)
      << resumed.out;
  EXPECT_EQ(resumed.out.find("Epoch 1/2"), std::string::npos) << resumed.out;
  const std::string want = value_after(straight.out, "Epoch 2/2", "- loss: ");
  const std::string got = value_after(resumed.out, "Epoch 2/2", "- loss: ");
  EXPECT_EQ(got, want) << "straight:\n" << straight.out << "\nresumed:\n" << resumed.out;
}

TEST_F(CliH5, FinetuneFromAnH5Base) {
  const std::string base = dir_ + "/base.h5";
  CliRun t = run("train --model resnet20 " + data() + "--epochs 1 --out " + base);
  ASSERT_EQ(t.code, 0) << t.out;
  const std::string tuned = dir_ + "/tuned.h5";
  CliRun f = run("finetune --base " + base + " --model resnet20 --freeze-until conv3_block3_out " +
                 data() + "--epochs 1 --dropout 0.5 --out " + tuned);
  ASSERT_EQ(f.code, 0) << f.out;
  EXPECT_NE(f.out.find("frozen up to conv3_block3_out"), std::string::npos) << f.out;
  EXPECT_NE(f.out.find("Epoch 1/1"), std::string::npos) << f.out;
  CliRun s = run("summary " + tuned);
  ASSERT_EQ(s.code, 0) << s.out;
  EXPECT_NE(s.out.find("top_dropout (Dropout)"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("Non-trainable params: "), std::string::npos) << s.out;
  CliRun e = run("evaluate " + tuned + " " + test_);
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("accuracy: "), std::string::npos) << e.out;

  // Errors: a missing base (exit 1, naming it), no --model (usage, exit 2), a .rnw --out.
  CliRun missing = run("finetune --base " + dir_ + "/nope.h5 --model resnet20 " + data());
  EXPECT_EQ(missing.code, 1) << missing.out;
  EXPECT_NE(missing.out.find(dir_ + "/nope.h5"), std::string::npos) << missing.out;
  EXPECT_EQ(run("finetune --base " + base + " " + data()).code, 2);
  EXPECT_EQ(run("finetune --base " + base + " --model resnet20 " + data() + "--out x.rnw").code, 2);
}

}  // namespace
