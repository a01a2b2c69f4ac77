// The model zoo: exact parameter totals, forward passes at the smallest inputs, very deep models.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/ops.h"
#include "resnet/model.h"
#include "resnet/models.h"
#include "support/allclose.h"

namespace resnet {
namespace {

TEST(Zoo, TutorialResNet50Totals) {
  Model m = resnet50_tutorial();
  EXPECT_EQ(m.name(), "ResNet50");
  EXPECT_EQ(m.count_params(), 23600006);
  EXPECT_EQ(m.count_trainable_params(), 23546886);
  EXPECT_EQ(m.count_non_trainable_params(), 53120);
  EXPECT_EQ(m.output_shapes()[0], (Shape{6}));
  EXPECT_EQ(m.output_shape(m.layer("avg_pool")), (Shape{1, 1, 2048}));
  EXPECT_EQ(m.output_shape(m.layer("res3a_branch1")), (Shape{8, 8, 512}));
}

TEST(Zoo, KerasApplicationsTotals) {
  EXPECT_EQ(ResNet50().count_params(), 25636712);
  EXPECT_EQ(ResNet50().count_trainable_params(), 25583592);
  EXPECT_EQ(ResNet50({.include_top = false}).count_params(), 23587712);
  EXPECT_EQ(ResNet101().count_params(), 44707176);
  EXPECT_EQ(ResNet152().count_params(), 60419944);
  EXPECT_EQ(ResNet50V2().count_params(), 25613800);
  EXPECT_EQ(ResNet101V2().count_params(), 44675560);
  EXPECT_EQ(ResNet152V2().count_params(), 60380648);
}

TEST(Zoo, KerasApplicationsNamesShapesAndPooling) {
  Model m = ResNet50();
  EXPECT_EQ(m.layers().size(), 177u);
  EXPECT_EQ(m.output_shape(m.layer("conv1_conv")), (Shape{112, 112, 64}));
  EXPECT_EQ(m.output_shape(m.layer("pool1_pool")), (Shape{56, 56, 64}));
  EXPECT_EQ(m.output_shape(m.layer("conv2_block3_out")), (Shape{56, 56, 256}));
  EXPECT_EQ(m.output_shape(m.layer("conv3_block4_out")), (Shape{28, 28, 512}));
  EXPECT_EQ(m.output_shape(m.layer("conv5_block3_out")), (Shape{7, 7, 2048}));
  EXPECT_EQ(m.layer("predictions").count_params(), 2049000);
  Model notop = ResNet50({.include_top = false});
  EXPECT_EQ(notop.layers().size(), 175u);
  EXPECT_EQ(notop.output_shapes()[0], (Shape{7, 7, 2048}));
  EXPECT_EQ(ResNet50({.include_top = false, .pooling = "avg"}).output_shapes()[0], (Shape{2048}));
  Model mx = ResNet50({.include_top = false, .pooling = "max"});
  EXPECT_EQ(mx.output_shapes()[0], (Shape{2048}));
  EXPECT_EQ(mx.layers().back()->name(), "max_pool");
  EXPECT_THROW(ResNet50({.include_top = false, .pooling = "sum"}), ConfigError);
  EXPECT_THROW(ResNet50({.input_shape = {16, 16, 3}}), ConfigError);
}

TEST(Zoo, BasicBlockResNetsMatchTorchvisionCounts) {
  EXPECT_EQ(resnet18().count_trainable_params(), 11689512);
  EXPECT_EQ(resnet34().count_trainable_params(), 21797672);
}

TEST(Zoo, TorchvisionBottleneckResNetsMatchTorchvisionCounts) {
  // sum(p.numel() for p in torchvision.models.resnet50().parameters()), and so on.
  EXPECT_EQ(torchvision_resnet(50).count_trainable_params(), 25557032);
  EXPECT_EQ(torchvision_resnet(101).count_trainable_params(), 44549160);
  EXPECT_EQ(torchvision_resnet(152).count_trainable_params(), 60192808);
  EXPECT_EQ(build_model("resnet50-torchvision").name(), "resnet50_torchvision");
  // v1.5: the first block of stage 3 strides on its 3x3 convolution, not on the first 1x1.
  Model m = torchvision_resnet(50);
  EXPECT_EQ(m.layer("conv3_block1_1_conv").config().get_ints("strides"),
            (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(m.layer("conv3_block1_2_conv").config().get_ints("strides"),
            (std::vector<int64_t>{2, 2}));
  EXPECT_THROW(torchvision_resnet(34), ConfigError);
}

TEST(Zoo, CifarResNetCounts) {
  // He et al. 2015 report about 0.27M, 0.46M, 0.66M, 0.85M, 1.7M and 19.4M parameters (option A,
  // parameter-free shortcuts); the projection shortcuts used here (option B) add a few thousand.
  const std::vector<std::pair<int, double>> paper = {{20, 0.27e6}, {32, 0.46e6}, {44, 0.66e6},
                                                     {56, 0.85e6}, {110, 1.7e6}, {1202, 19.4e6}};
  // Computed by hand: conv1 + BN, per-stage blocks, projections, the Dense head.
  const std::vector<int64_t> exact = {272474, 466906, 661338, 855770, 1730714, 19424026};
  for (size_t i = 0; i < paper.size(); ++i) {
    Model m = cifar_resnet(paper[i].first, {32, 32, 3}, 10);
    EXPECT_EQ(m.count_trainable_params(), exact[i]) << "resnet" << paper[i].first;
    EXPECT_NEAR(static_cast<double>(m.count_trainable_params()), paper[i].second,
                0.05 * paper[i].second)
        << "resnet" << paper[i].first;
  }
  // He et al. 2016: 1.7M (ResNet-164) and 10.2M (ResNet-1001).
  EXPECT_EQ(preact_resnet(164).count_trainable_params(), 1703258);
  EXPECT_NEAR(preact_resnet(164).count_trainable_params(), 1.7e6, 0.05e6);
  EXPECT_NEAR(preact_resnet(1001).count_trainable_params(), 10.2e6, 0.15e6);
  EXPECT_THROW(cifar_resnet(21), ConfigError);
  EXPECT_THROW(preact_resnet(100), ConfigError);
}

TEST(Zoo, EveryModelRunsForwardAtItsSmallestInput) {
  for (const std::string& name : model_names()) {
    if (name == "resnet1202" || name == "preact-resnet1001") continue;  // trained below
    SCOPED_TRACE(name);
    const Shape in = min_input_shape(name);
    Model m = build_model(name, in, 5);
    Tensor x = testing::random_tensor(in.prepend(2), 1, 0.0f, 1.0f);
    Tensor y = m.forward(x, Mode::Inference);
    ASSERT_EQ(y.shape(), (Shape{2, 5}));
    for (int64_t i = 0; i < 2; ++i) {
      double sum = 0;
      for (int64_t c = 0; c < 5; ++c) {
        ASSERT_TRUE(std::isfinite(y.f32()[i * 5 + c]));
        sum += y.f32()[i * 5 + c];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);  // softmax
    }
  }
}

TEST(Zoo, SmallestInputsAreTight) {
  Shape below = min_input_shape("resnet50-tutorial");
  below[0] -= 1;
  below[1] -= 1;
  EXPECT_THROW(build_model("resnet50-tutorial", below), ShapeError);
  EXPECT_THROW(build_model("no-such-model"), ConfigError);
}

void one_training_step(Model& m, const Shape& in) {
  Tensor x = testing::random_tensor(in.prepend(2), 3);
  Tensor y = m.forward(x, Mode::Training);
  Tensor dy = testing::random_tensor(y.shape(), 4);
  m.backward(dy);
  const Param& first = m.layer("conv1_conv").param("kernel");
  double norm = 0;
  for (float g : ops::plain(first.grad).span<float>()) {
    ASSERT_TRUE(std::isfinite(g));
    norm += double(g) * g;
  }
  EXPECT_GT(norm, 0.0);
}

// With the last batch norm of every residual branch zeroed (gamma = 0 and beta = 0, as in the
// "zero-init residual" trick), a block adds exactly 0 to its shortcut, so ResNet-1202 computes what
// ResNet-20 with the same stem, shortcuts and head computes, and backward must give the same
// gradients, bit for bit in exact arithmetic. The gamma and beta gradients of the zeroed batch
// norms are not zero: those of a stage's first block have come back through every later block
// (some 1,200 layers in the deep model), and must equal the shallow model's.
TEST(Zoo, ResNet1202GradientsEqualThoseOfAShallowEquivalent) {
  Model deep = build_model("resnet1202", {8, 8, 3}, 10);
  EXPECT_GT(deep.layers().size(), 1202u);
  Model shallow = build_model("resnet20", {8, 8, 3}, 10);
  // Shallow block b of a stage is deep block b, and its last block (3) the deep one's last (200).
  auto deep_name = [](std::string name) {
    for (const char* stage : {"conv2", "conv3", "conv4"}) {
      const std::string from = std::string(stage) + "_block3_";
      if (name.rfind(from, 0) == 0)
        return std::string(stage) + "_block200_" + name.substr(from.size());
    }
    return name;
  };
  for (const auto& l : deep.layers()) {
    if (l->name().ends_with("_2_bn")) {
      for (const char* p : {"gamma", "beta"}) {
        for (float& v : l->param(p).value.span<float>()) v = 0.0f;
        l->param(p).value.bump_version();
      }
    }
  }
  size_t copied = 0;
  for (const auto& l : shallow.layers()) {
    for (Param& p : l->params()) {
      p.value.copy_from(ops::plain(deep.layer(deep_name(l->name())).param(p.name).value));
      p.value.bump_version();
      ++copied;
    }
  }
  EXPECT_EQ(copied, shallow.params().size());

  const Tensor x = testing::random_tensor({2, 8, 8, 3}, 3);
  const Tensor y_deep = deep.forward(x, Mode::Training);
  const Tensor y_shallow = shallow.forward(x, Mode::Training);
  EXPECT_LE(testing::max_rel_error(y_deep, y_shallow), 1e-6);
  const Tensor dy = testing::random_tensor(y_deep.shape(), 4);
  deep.backward(dy);
  shallow.backward(dy);
  for (const auto& l : shallow.layers()) {
    for (const Param& p : l->params()) {
      if (!p.trainable) continue;
      const Param& q = deep.layer(deep_name(l->name())).param(p.name);
      ASSERT_TRUE(p.grad.defined() && q.grad.defined()) << l->name() << "/" << p.name;
      EXPECT_LE(testing::max_rel_error(ops::plain(q.grad), ops::plain(p.grad)), 1e-5)
          << l->name() << "/" << p.name;
    }
  }
  // Not zero against zero: the gradients that crossed the whole depth are there.
  for (const char* name : {"conv2_block1_2_bn", "conv1_conv"}) {
    const Layer& l = deep.layer(name);
    double norm = 0.0;
    for (float g : ops::plain(l.params()[0].grad).span<float>()) {
      ASSERT_TRUE(std::isfinite(g)) << name;
      norm += double(g) * g;
    }
    EXPECT_GT(norm, 1e-12) << name;
  }
}

TEST(Zoo, PreactResNet1001BuildsAndTrainsOneStep) {
  Model m = build_model("preact-resnet1001", {8, 8, 3}, 10);
  EXPECT_GT(m.layers().size(), 1001u);
  one_training_step(m, {8, 8, 3});
}

}  // namespace
}  // namespace resnet
