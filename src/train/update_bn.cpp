// update_bn: precise BatchNormalization statistics (see include/resnet/train.h).
#include <fmt/format.h>

#include <numeric>

#include "layers/batch_normalization.h"
#include "resnet/error.h"
#include "resnet/model.h"
#include "resnet/train.h"

namespace resnet {

int64_t update_bn(Model& model, const Dataset& data, const UpdateBnOptions& o) {
  if (o.batch_size < 1) {
    throw ConfigError(fmt::format("update_bn: batch size must be positive, got {}", o.batch_size));
  }
  data.validate();
  std::vector<layers::BatchNormalization*> bns;
  for (const auto& l : model.layers()) {
    auto* bn = dynamic_cast<layers::BatchNormalization*>(l.get());
    if (bn != nullptr && bn->trainable()) bns.push_back(bn);
  }
  if (bns.empty() || data.size() == 0) return 0;
  std::vector<double> momentum;
  for (auto* bn : bns) momentum.push_back(bn->options().momentum);

  BatchLoader loader(data, o.batch_size, o.preprocess, AugmentOptions{}, 0, o.data_workers);
  std::vector<int64_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  loader.start_epoch(std::move(order), 0);
  int64_t k = 0;
  Batch b;
  try {
    while ((o.max_batches <= 0 || k < o.max_batches) && loader.next(b)) {
      ++k;
      // moving = moving * (k-1)/k + batch / k: after k batches, the mean of their statistics.
      const double m = static_cast<double>(k - 1) / static_cast<double>(k);
      for (auto* bn : bns) bn->set_momentum(m);
      model.forward(b.x, Mode::Training);
    }
  } catch (...) {
    for (size_t i = 0; i < bns.size(); ++i) bns[i]->set_momentum(momentum[i]);
    throw;
  }
  for (size_t i = 0; i < bns.size(); ++i) bns[i]->set_momentum(momentum[i]);
  for (const auto& l : model.layers()) l->clear_saved();
  return k;
}

}  // namespace resnet
