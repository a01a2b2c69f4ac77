// The CLI on PyTorch files: summary, predict, evaluate and export of a state_dict with --model
// naming its architecture; --strict, --classes from the head; files of the wrong kind refused.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "resnet/data.h"
#include "resnet/io.h"
#include "resnet/models.h"
#include "resnet/onnx.h"
#include "support/allclose.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace resnet {
namespace {

struct CliRun {
  int code = -1;
  std::string out;
};

CliRun run(const std::string& args, bool merge = true) {
  const testing::CommandResult c = testing::run_command(std::string(RESNET_CLI_PATH) + " " + args +
                                                        (merge ? " 2>&1" : " 2>/dev/null"));
  return {c.code, c.out};
}

class TorchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    reset_name_counters();
    model_ = std::make_unique<Model>(cifar_resnet(20, {16, 16, 3}, 4));
    plain_ = dir_.file("plain.pth");
    save_torch_state_dict(*model_, plain_);
  }
  testing::TempDir dir_;
  std::unique_ptr<Model> model_;
  std::string plain_;
  const std::string arch_ = " --model resnet20 --input-shape 16,16,3";
};

TEST_F(TorchCli, SummaryNeedsTheArchitectureAndTakesTheClassesFromTheHead) {
  CliRun s = run("summary " + plain_ + arch_);
  ASSERT_EQ(s.code, 0) << s.out;
  EXPECT_NE(s.out.find("107 weights of 43 layers loaded into resnet20 (zip format)"),
            std::string::npos)
      << s.out;
  EXPECT_NE(s.out.find("Total params: 273,652"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("(None, 4)"), std::string::npos) << s.out;  // 4 classes, from linear.weight
  CliRun none = run("summary " + plain_);
  EXPECT_EQ(none.code, 2) << none.out;
  EXPECT_NE(none.out.find("is a PyTorch state_dict"), std::string::npos) << none.out;
  EXPECT_NE(none.out.find("--model"), std::string::npos) << none.out;
}

TEST_F(TorchCli, StrictByDefaultAndNonStrictListsWhatItSkipped) {
  CliRun strict = run("summary " + plain_ + arch_ + " --classes 3");
  EXPECT_EQ(strict.code, 1) << strict.out;
  EXPECT_NE(strict.out.find("linear.weight: expected (3, 64) for layer predictions, found (4, 64)"),
            std::string::npos)
      << strict.out;
  CliRun loose = run("summary " + plain_ + arch_ + " --classes 3 --strict false");
  EXPECT_EQ(loose.code, 0) << loose.out;
  EXPECT_NE(loose.out.find("skipped linear.bias"), std::string::npos) << loose.out;
  CliRun wrong = run("summary " + plain_ + " --model resnet32 --input-shape 16,16,3");
  EXPECT_EQ(wrong.code, 1) << wrong.out;
  EXPECT_NE(wrong.out.find("missing key(s): layer1.3.conv1.weight"), std::string::npos)
      << wrong.out;
}

TEST_F(TorchCli, PredictUsesTorchPreprocessingAndTheLoadedWeights) {
  ASSERT_EQ(run("plot --model resnet20 -o " + dir_.file("img.png")).code, 0);
  CliRun p =
      run("predict " + plain_ + arch_ + " " + dir_.file("img.png") + " --json --top-k 4", false);
  ASSERT_EQ(p.code, 0) << p.out;
  const nlohmann::json j = nlohmann::json::parse(p.out);
  Tensor img = load_image(dir_.file("img.png"), 16, 16, 3).to_f32();
  Preprocess::from_name("torch").apply(img);
  const Tensor want = model_->predict(img, 1);
  const auto& top = j["predictions"][0]["top_k"];
  ASSERT_EQ(top.size(), 4u);
  for (const auto& t : top) {
    const int64_t c = t["class"].get<int64_t>();
    EXPECT_NEAR(t["probability"].get<double>(), want.f32()[c], 1e-6) << c;
  }
}

TEST_F(TorchCli, ExportConvertsToKerasAndBackToPyTorch) {
  const std::string h5 = dir_.file("m.h5");
  CliRun e = run("export " + plain_ + arch_ + " -o " + h5);
  ASSERT_EQ(e.code, 0) << e.out;
  Model back = load_model(h5, false);
  const Tensor x = testing::random_tensor(Shape{2, 16, 16, 3}, 5);
  EXPECT_TRUE(testing::AllClose(back.predict(x), model_->predict(x), 0));
  const auto attrs = read_model_attributes(h5);
  EXPECT_EQ(attrs.at("preprocess"), "torch");
  EXPECT_EQ(attrs.at("zoo_model"), "resnet20");
  // And to ONNX.
  const std::string onnx = dir_.file("m.onnx");
  if (onnx_available()) {
    ASSERT_EQ(run("export " + plain_ + arch_ + " -o " + onnx).code, 0);
    EXPECT_TRUE(testing::AllClose(import_onnx(onnx).predict(x), model_->predict(x), 1e-5));
  }
  // .h5 -> .pth: a file that records its architecture, so no --model is needed to read it.
  const std::string pth = dir_.file("again.pth");
  ASSERT_EQ(run("export " + h5 + " -o " + pth).code, 0);
  CliRun s = run("summary " + pth);
  EXPECT_EQ(s.code, 0) << s.out;
  reset_name_counters();
  Model m = cifar_resnet(20, {16, 16, 3}, 4);
  load_torch_weights(m, pth);
  EXPECT_TRUE(testing::AllClose(m.predict(x), model_->predict(x), 0));
  // Flags that a file of its own architecture cannot honour.
  CliRun bad = run("evaluate " + h5 + " --model resnet20 --dataset fashion-mnist");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("describe a PyTorch state_dict"), std::string::npos) << bad.out;
  CliRun fold = run("export " + plain_ + arch_ + " --fold-bn -o " + dir_.file("x.h5"));
  EXPECT_EQ(fold.code, 2) << fold.out;
  CliRun rnw = run("export " + plain_ + arch_ + " -o " + dir_.file("x.rnw"));
  EXPECT_EQ(rnw.code, 2) << rnw.out;
}

// An ImageNet-layout file (a 7x7 stem) is classified on torchvision's evaluation crop: the shorter
// side resized to input / 0.875, then the centre; --resize 0 resizes straight to the input.
TEST(TorchCliImageNet, PredictUsesTorchvisionsResizeAndCenterCrop) {
  testing::TempDir dir;
  reset_name_counters();
  Model m = resnet18({64, 64, 3}, 5);
  save_torch_state_dict(m, dir.file("r18.pth"));
  ASSERT_EQ(run("plot --model resnet20 -o " + dir.file("img.png")).code, 0);
  auto probabilities = [&](const std::string& extra) {
    CliRun p = run("predict " + dir.file("r18.pth") + " --model resnet18 --input-shape 64,64,3 " +
                       dir.file("img.png") + " --json --top-k 5" + extra,
                   false);
    EXPECT_EQ(p.code, 0) << p.out;
    std::vector<double> out(5);
    const nlohmann::json j = nlohmann::json::parse(p.out);
    for (const auto& t : j["predictions"][0]["top_k"]) {
      out[t["class"].get<size_t>()] = t["probability"].get<double>();
    }
    return out;
  };
  for (const auto& [extra, image] :
       {std::pair<std::string, Tensor>{"", load_image_center_crop(dir.file("img.png"), 73, 64, 64)},
        {" --resize 0", load_image(dir.file("img.png"), 64, 64)},
        {" --resize 100", load_image_center_crop(dir.file("img.png"), 100, 64, 64)}}) {
    Tensor x = image.to_f32();
    Preprocess::from_name("torch").apply(x);
    const Tensor want = m.predict(x, 1);
    const std::vector<double> got = probabilities(extra);
    for (int c = 0; c < 5; ++c) EXPECT_NEAR(got[c], want.f32()[c], 1e-6) << extra << " class " << c;
  }
  CliRun small = run("predict " + dir.file("r18.pth") + " --model resnet18 --input-shape 64,64,3 " +
                     dir.file("img.png") + " --resize 32");
  EXPECT_EQ(small.code, 2) << small.out;
  EXPECT_NE(small.out.find("--resize 32 is smaller than the model's input 64x64"),
            std::string::npos)
      << small.out;
}

TEST(ShortcutCli, OptionAIsForTheCifarResNetsAndTravelsWithExportedFiles) {
  CliRun a = run("summary --model resnet20 --input-shape 16,16,3 --shortcut A");
  ASSERT_EQ(a.code, 0) << a.out;
  EXPECT_NE(a.out.find("conv3_block1_shortcut_a (Conv2D"), std::string::npos) << a.out;
  EXPECT_EQ(a.out.find("conv3_block1_0_conv"), std::string::npos) << a.out;
  CliRun bad = run("summary --model resnet18 --shortcut A");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("option-A shortcuts are for the CIFAR ResNets"), std::string::npos)
      << bad.out;
  CliRun letter = run("plot --model resnet20 --shortcut C -o x.png");
  EXPECT_EQ(letter.code, 2) << letter.out;
  // A .pth exported from option A records it: read back without --model or --shortcut.
  testing::TempDir dir;
  ASSERT_EQ(
      run("export --model resnet20 --input-shape 16,16,3 --shortcut A -o " + dir.file("a.pth"))
          .code,
      0);
  CliRun back = run("summary " + dir.file("a.pth"));
  ASSERT_EQ(back.code, 0) << back.out;
  EXPECT_NE(back.out.find("conv3_block1_shortcut_a"), std::string::npos) << back.out;
}

}  // namespace
}  // namespace resnet
