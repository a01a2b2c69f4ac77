// See conv_bn.h.
#include "graph/conv_bn.h"

#include <string>
#include <unordered_map>

#include "layers/batch_normalization.h"
#include "layers/conv2d.h"

namespace resnet::graph_detail {

std::vector<ConvBn> conv_bn_pairs(const Model& model) {
  const auto& layers = model.layers();
  const int n = static_cast<int>(layers.size());
  std::unordered_map<std::string, int> index;
  for (int i = 0; i < n; ++i) index.emplace(layers[i]->name(), i);
  std::vector<int> uses(n, 0);
  std::vector<std::vector<int>> inputs(n);
  for (int i = 0; i < n; ++i) {
    for (const std::string& in : model.inbound(*layers[i])) {
      inputs[i].push_back(index.at(in));
      ++uses[index.at(in)];
    }
  }
  for (const std::string& out : model.output_names()) ++uses[index.at(out)];
  std::vector<ConvBn> pairs;
  for (int i = 0; i < n; ++i) {
    if (dynamic_cast<const layers::BatchNormalization*>(layers[i].get()) == nullptr ||
        inputs[i].size() != 1) {
      continue;
    }
    const int c = inputs[i][0];
    const auto* conv = dynamic_cast<const layers::Conv2D*>(layers[c].get());
    if (conv == nullptr || conv->options().activation != "linear" || uses[c] != 1) continue;
    pairs.push_back({c, i});
  }
  return pairs;
}

}  // namespace resnet::graph_detail
