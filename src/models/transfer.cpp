// Transfer learning (the tutorial's part 2): a zoo model without its top, weights by name from a
// file, a new head, frozen base layers. See transfer_model in include/resnet/io.h.
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/keras/config.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"

namespace resnet {

namespace {

std::string unique_name(const std::string& want, const std::map<std::string, SymTensor>& taken) {
  if (!taken.count(want)) return want;
  for (int i = 1;; ++i) {
    const std::string n = fmt::format("{}_{}", want, i);
    if (!taken.count(n)) return n;
  }
}

}  // namespace

Model transfer_model(const TransferOptions& o) {
  if (o.classes <= 0)
    throw ConfigError(fmt::format("transfer model: classes must be positive, got {}", o.classes));
  if (!(o.dropout >= 0.0 && o.dropout < 1.0)) {
    throw ConfigError(fmt::format("transfer model: dropout must be in [0, 1), got {}", o.dropout));
  }
  const Model full = build_model(o.base_model, o.input_shape, o.classes);
  // The base ends at the last layer with an image-shaped (H, W, C) output.
  const Layer* base_out = nullptr;
  for (const auto& l : full.layers()) {
    if (full.output_shape(*l).rank() == 3) base_out = l.get();
  }
  if (base_out == nullptr) {
    throw ConfigError(fmt::format("transfer model: '{}' has no image-shaped layer", o.base_model));
  }
  // The base's layers: the ancestors of base_out.
  std::set<std::string> keep = {base_out->name()};
  const auto& layers = full.layers();
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    if (!keep.count((*it)->name())) continue;
    for (const std::string& src : full.inbound(**it)) keep.insert(src);
  }
  nlohmann::ordered_json cfg = nlohmann::ordered_json::parse(keras_detail::model_config_json(full));
  nlohmann::ordered_json kept = nlohmann::ordered_json::array();
  for (const auto& l : cfg["config"]["layers"]) {
    if (keep.count(l["name"].get<std::string>())) kept.push_back(l);
  }
  cfg["config"]["layers"] = kept;
  cfg["config"]["output_layers"] = nlohmann::ordered_json::array({{base_out->name(), 0, 0}});
  keras_detail::KerasGraph g = keras_detail::build_keras_graph(cfg.dump(), o.base_model);
  const SymTensor features = g.tensors.at(base_out->name());
  if (!o.weights_path.empty()) {
    Model base(g.inputs, {features}, full.name());
    LoadWeightsReport report;
    load_weights(base, o.weights_path, {.by_name = true, .optimizer = false, .report = &report});
    if (!report.missing.empty()) {
      throw IoError(
          fmt::format("'{}': no weights for layer '{}' of the {} base{} (is it a {} "
                      "weights file?)",
                      o.weights_path, report.missing.front(), o.base_model,
                      report.missing.size() > 1
                          ? fmt::format(" (and {} more layers)", report.missing.size() - 1)
                          : std::string(),
                      o.base_model));
    }
  }
  SymTensor x = GlobalAveragePooling2D({.name = unique_name("avg_pool", g.tensors)})(features);
  if (o.dropout > 0) {
    x = Dropout({.rate = o.dropout, .name = unique_name("top_dropout", g.tensors)})(x);
  }
  x = Dense({.units = o.classes,
             .activation = "softmax",
             .name = unique_name("predictions", g.tensors)})(x);
  Model m(g.inputs, {x}, full.name());
  if (!o.freeze_until.empty()) m.freeze_until(o.freeze_until);
  return m;
}

}  // namespace resnet
