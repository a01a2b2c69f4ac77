// The `resnet` binary: help on every subcommand, version, exit codes, errors on stderr.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "support/process.h"
#include "support/temp_dir.h"

namespace {

struct CliRun {
  int code = -1;
  std::string out;  // stdout and stderr, or only stdout (see run())
};

// Runs the CLI with `args` through the shell; `merge` folds stderr into the captured output,
// otherwise stderr is discarded so tests can check where messages go.
CliRun run(const std::string& args, bool merge = true, bool stderr_only = false) {
  std::string cmd = std::string(RESNET_CLI_PATH) + " " + args;
  if (stderr_only) {
    cmd += " 2>&1 >/dev/null";
  } else {
    cmd += merge ? " 2>&1" : " 2>/dev/null";
  }
  const resnet::testing::CommandResult c = resnet::testing::run_command(cmd);
  return {c.code, c.out};
}

TEST(Cli, VersionAndHelp) {
  CliRun v = run("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_NE(v.out.find("resnet.cpp "), std::string::npos) << v.out;
  for (const char* sub : {"demo", "summary", "plot", "models", "train", "evaluate", "predict"}) {
    CliRun h = run(std::string(sub) + " --help");
    EXPECT_EQ(h.code, 0) << sub;
    EXPECT_NE(h.out.find("Usage"), std::string::npos) << sub << ": " << h.out;
  }
}

TEST(Cli, UsageErrorsExitWithTwoOnStderr) {
  CliRun none = run("");
  EXPECT_EQ(none.code, 2);
  CliRun bad = run("summary --model no-such-model", false, /*stderr_only=*/true);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("unknown model 'no-such-model'"), std::string::npos) << bad.out;
  CliRun shape = run("summary --model resnet20 --input-shape 32,x,3");
  EXPECT_EQ(shape.code, 2);
  EXPECT_NE(shape.out.find("--input-shape"), std::string::npos) << shape.out;
  CliRun flag = run("train --epochs 0");
  EXPECT_EQ(flag.code, 2);
}

TEST(Cli, TrainRefusesAnOnnxOutputBeforeReadingTheData) {
  // The data file does not exist: the --out error must come first, before any work.
  CliRun r = run("train --model resnet20 --data /nonexistent/data.h5 --out model.onnx", false,
                 /*stderr_only=*/true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--out model.onnx"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("/nonexistent/data.h5"), std::string::npos) << r.out;
}

TEST(Cli, TrainRefusesAnUnwritableOutputBeforeReadingTheData) {
  resnet::testing::TempDir dir;
  // The data file does not exist: the output errors must come first (exit 1: a failure of the
  // work's destination, named with the flag).
  const std::string data = " --data /nonexistent/data.h5";
  CliRun missing = run("train --model resnet20" + data + " --out " + dir.file("no/such/m.h5"),
                       false, /*stderr_only=*/true);
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("--out"), std::string::npos) << missing.out;
  EXPECT_NE(missing.out.find("does not exist"), std::string::npos) << missing.out;
  EXPECT_EQ(missing.out.find("/nonexistent/data.h5"), std::string::npos) << missing.out;
  CliRun folder = run("train --model resnet20" + data + " --out " + dir.file(""), false, true);
  EXPECT_EQ(folder.code, 1);
  EXPECT_NE(folder.out.find("is a folder"), std::string::npos) << folder.out;
  CliRun history =
      run("train --model resnet20" + data + " --history " + dir.file("no/h"), false, true);
  EXPECT_EQ(history.code, 1);
  EXPECT_NE(history.out.find("--history"), std::string::npos) << history.out;
  // Nothing is left behind by the checks.
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.file(""))) ++files;
  EXPECT_EQ(files, 0u);
}

TEST(Cli, ExportRefusesAnOutputOfNoModelFormat) {
  resnet::testing::TempDir dir;
  CliRun r = run("export --model resnet20 -o " + dir.file("model.txt"), false, true);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("must end in .onnx, .h5, .keras or .pth"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("model.txt")));
  // .h5 is a Keras model file now.
  CliRun h5 = run("export --model resnet20 -o " + dir.file("model.h5"));
  EXPECT_EQ(h5.code, 0) << h5.out;
  EXPECT_TRUE(std::filesystem::exists(dir.file("model.h5")));
}

TEST(Cli, AMalformedRuntimeVariableIsAUsageError) {
  const resnet::testing::CommandResult r = resnet::testing::run_command(
      "RESNET_WINOGRAD=maybe " + std::string(RESNET_CLI_PATH) + " models 2>&1 >/dev/null");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("RESNET_WINOGRAD must be 0 or 1, got 'maybe'"), std::string::npos) << r.out;
}

TEST(Cli, FailuresExitWithOne) {
  CliRun r = run("evaluate /nonexistent/model.rnw /nonexistent/data.h5", false, true);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("/nonexistent/model.rnw"), std::string::npos) << r.out;
}

TEST(Cli, SummaryOfTheTutorialModel) {
  CliRun r = run("summary --model resnet50-tutorial", false);
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("Model: \"ResNet50\"", 0), 0u);
  EXPECT_NE(r.out.find("Total params: 23,600,006"), std::string::npos);
  // A repeated option takes its last value (scripts append overrides).
  CliRun last = run("summary --model resnet20 --model resnet50-tutorial", false);
  ASSERT_EQ(last.code, 0) << last.out;
  EXPECT_EQ(last.out.rfind("Model: \"ResNet50\"", 0), 0u);
  CliRun c = run("summary --model resnet20 --input-shape 28,28,1 --classes 10", false);
  ASSERT_EQ(c.code, 0);
  EXPECT_NE(c.out.find("[(None, 28, 28, 1)]"), std::string::npos);
}

TEST(Cli, DemoTrainsAndTheLossFalls) {
  CliRun r = run("demo --steps 12 --batch-size 16 --seed 3", false);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto first = r.out.find("loss: ");
  const auto last = r.out.rfind("loss: ");
  ASSERT_NE(first, std::string::npos);
  const double l0 = std::stod(r.out.substr(first + 6));
  const double l1 = std::stod(r.out.substr(last + 6));
  EXPECT_LT(l1, l0) << r.out;
  // Same seed, same losses.
  CliRun again = run("demo --steps 12 --batch-size 16 --seed 3 --threads 2", false);
  CliRun again2 = run("demo --steps 12 --batch-size 16 --seed 3 --threads 2", false);
  auto strip_times = [](std::string s) {
    std::string out;
    for (size_t i = 0; i < s.size();) {
      const size_t dash = s.find(" - ", i);
      const size_t nl = s.find('\n', i);
      if (nl == std::string::npos) break;
      const size_t ms = s.rfind(" - ", nl);
      out += s.substr(i, (ms != std::string::npos && ms > i ? ms : nl) - i) + "\n";
      (void)dash;
      i = nl + 1;
    }
    return out;
  };
  EXPECT_EQ(strip_times(again.out), strip_times(again2.out));
}

}  // namespace

namespace {

TEST(Cli, SummaryOfARealKerasFile) {
  const char* env = std::getenv("RESNET_KERAS_DIR");
  const std::string dir = env ? env : std::string(RESNET_SOURCE_DIR) + "/../shared/datasets/keras";
  const std::string file = dir + "/resnet8_cifar10_keras2.4.h5";
  if (FILE* f = std::fopen(file.c_str(), "rb")) {
    std::fclose(f);
  } else {
    GTEST_SKIP() << file << " not found (set RESNET_KERAS_DIR)";
  }
  CliRun r = run("summary " + file, false);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Total params: 78,666"), std::string::npos) << r.out;
  EXPECT_EQ(run("summary").code, 2);
}

}  // namespace

namespace {

TEST(Cli, TrainClassesAtLeastTwoAndAtLeastTheData) {
  CliRun one = run("train --model resnet20 --data /nonexistent/data.h5 --classes 1", false, true);
  EXPECT_EQ(one.code, 2);
  EXPECT_NE(one.out.find("--classes"), std::string::npos) << one.out;
  if (FILE* f = std::fopen("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb")) {
    std::fclose(f);
  } else {
    GTEST_SKIP() << "Fashion-MNIST not installed (Debian package dataset-fashion-mnist)";
  }
  // Fewer classes than the data's 10 labels: refused before the first epoch (exit 1).
  CliRun few = run("train --dataset fashion-mnist --model resnet20 --limit 64 --classes 3");
  EXPECT_EQ(few.code, 1) << few.out;
  EXPECT_NE(few.out.find("--classes 3: the training data"), std::string::npos) << few.out;
  EXPECT_NE(few.out.find("has 10 classes"), std::string::npos) << few.out;
  EXPECT_EQ(few.out.find("Epoch 1"), std::string::npos) << few.out;
}

TEST(Cli, TrainSaveEvaluatePredictRoundTrip) {
  if (FILE* f = std::fopen("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", "rb")) {
    std::fclose(f);
  } else {
    GTEST_SKIP() << "Fashion-MNIST not installed (Debian package dataset-fashion-mnist)";
  }
  const resnet::testing::TempDir tmp("resnet_cli_roundtrip");
  const std::string dir = tmp.str();
  const std::string model = dir + "/m.rnw";
  CliRun t =
      run("train --dataset fashion-mnist --model resnet20 --limit 256 --epochs 1 "
          "--batch-size 64 --seed 2 --out " +
              model + " --history " + dir + "/h",
          false);
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("Epoch 1/1\n4/4 [==============================]"), std::string::npos)
      << t.out;
  const auto pos = t.out.find("Test accuracy: ");
  ASSERT_NE(pos, std::string::npos) << t.out;
  const std::string accuracy = t.out.substr(pos + 15, 6);
  // The saved model reproduces the test accuracy the training run printed.
  CliRun e = run("evaluate " + model + " --dataset fashion-mnist", false);
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("accuracy: " + accuracy), std::string::npos) << e.out << " vs " << accuracy;
  for (const char* ext : {".csv", ".png", ".svg"}) {
    FILE* f = std::fopen((dir + "/h" + ext).c_str(), "rb");
    EXPECT_NE(f, nullptr) << ext;
    if (f) std::fclose(f);
  }
  // Any PNG will do as an image to classify: draw one.
  ASSERT_EQ(run("plot --model resnet20 -o " + dir + "/img.png").code, 0);
  CliRun p = run("predict " + model + " " + dir + "/img.png --top-k 2", false);
  ASSERT_EQ(p.code, 0) << p.out;
  EXPECT_NE(p.out.find(" 1. "), std::string::npos) << p.out;
  EXPECT_NE(p.out.find(" 2. "), std::string::npos) << p.out;
  // Fashion-MNIST class names travel with the model.
  bool named = false;
  for (const char* name : {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                           "Sneaker", "Bag", "Ankle boot"}) {
    named = named || p.out.find(name) != std::string::npos;
  }
  EXPECT_TRUE(named) << p.out;
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
