// The one Conv2D -> BatchNormalization matcher (src/graph/conv_bn.h) that the inference plan, the
// pointwise recomputation and the ONNX exporter share: which pairs it takes and which it refuses.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "graph/conv_bn.h"
#include "resnet/layers.h"
#include "resnet/model.h"
#include "support/allclose.h"

namespace resnet {
namespace {

std::vector<std::string> pair_names(const Model& m) {
  std::vector<std::string> out;
  for (const graph_detail::ConvBn& p : graph_detail::conv_bn_pairs(m)) {
    out.push_back(m.layers()[p.conv]->name() + ">" + m.layers()[p.bn]->name());
  }
  return out;
}

TEST(ConvBn, TakesOnlyAConvolutionWhoseOutputOnlyItsBatchNormUses) {
  reset_name_counters();
  auto in = Input({6, 6, 3});
  // a: a pair.
  auto a = Conv2D({.filters = 4, .kernel = {3, 3}, .padding = Padding::Same, .name = "a"})(in);
  a = BatchNormalization({.name = "a_bn"})(a);
  // b: the convolution has its own ReLU: BN(relu(conv)) is not BN(conv).
  auto b = Conv2D({.filters = 4, .kernel = {1, 1}, .activation = "relu", .name = "b"})(a);
  b = BatchNormalization({.name = "b_bn"})(b);
  // c: the convolution's output also feeds the Add.
  auto c = Conv2D({.filters = 4, .kernel = {1, 1}, .name = "c"})(b);
  auto c_bn = BatchNormalization({.name = "c_bn"})(c);
  auto sum = Add({.name = "sum"})({c, c_bn});
  // d: the convolution is a model output.
  auto d = Conv2D({.filters = 4, .kernel = {1, 1}, .name = "d"})(sum);
  auto d_bn = BatchNormalization({.name = "d_bn"})(d);
  // e: a pair at the end of the graph.
  auto e = Conv2D({.filters = 2, .kernel = {1, 1}, .name = "e"})(d_bn);
  e = BatchNormalization({.name = "e_bn"})(e);
  Model m({in}, {e, d}, "pairs");
  EXPECT_EQ(m.output_names(), (std::vector<std::string>{"e_bn", "d"}));
  EXPECT_EQ(pair_names(m), (std::vector<std::string>{"a>a_bn", "e>e_bn"}));

  // The inference plan fuses exactly those pairs, and only them: outputs equal the unfused run.
  const Tensor x = testing::random_tensor({2, 6, 6, 3}, 5);
  m.set_inference_fusion(false);
  const std::vector<Tensor> plain = m.forward(std::vector<Tensor>{x}, Mode::Inference);
  m.set_inference_fusion(true);
  const std::vector<Tensor> fused = m.forward(std::vector<Tensor>{x}, Mode::Inference);
  ASSERT_EQ(fused.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_LE(testing::max_rel_error(fused[i], plain[i]), 1e-5);
}

}  // namespace
}  // namespace resnet
