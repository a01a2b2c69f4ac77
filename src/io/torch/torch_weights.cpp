// PyTorch state_dicts onto resnet.cpp models: key names, layouts and the strict checks of
// load_state_dict (include/resnet/io.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include "graph/usage.h"
#include "resnet/error.h"
#include "resnet/io.h"

namespace resnet {

namespace {
// The module path of a layer: conv1_conv -> conv1, conv1_bn -> bn1, predictions -> fc (or
// linear), conv<s>_block<b>_<k>_conv/bn -> layer<s-1>.<b-1>.conv<k>/bn<k>, _0_ (the projection)
// -> downsample.0/1 (or shortcut.0/1); any other layer keeps its own name.
std::string torch_module_for(const std::string& layer, const std::string& head,
                             const std::string& projection) {
  if (layer == "conv1_conv") return "conv1";
  if (layer == "conv1_bn") return "bn1";
  if (layer == "predictions") return head;
  static const std::regex block(R"(conv(\d+)_block(\d+)_(\d)_(conv|bn))");
  std::smatch m;
  if (std::regex_match(layer, m, block)) {
    const int stage = std::stoi(m[1]);
    const int b = std::stoi(m[2]);
    const std::string k = m[3];
    const std::string kind = m[4];
    if (stage >= 2 && b >= 1) {
      const std::string prefix = fmt::format("layer{}.{}.", stage - 1, b - 1);
      if (k == "0") return prefix + projection + (kind == "conv" ? ".0" : ".1");
      return prefix + kind + k;
    }
  }
  return layer;
}

// PyTorch's shape of a weight from resnet.cpp's: Conv2D kernels HWIO -> OIHW, Dense kernels
// (in, out) -> (out, in).
Shape torch_shape(const Layer& l, const Param& p) {
  const Shape& s = p.value.shape();
  if (p.name == "kernel" && s.rank() == 4) return Shape{s[3], s[2], s[0], s[1]};
  if (p.name == "kernel" && s.rank() == 2 && l.class_name() == "Dense") return Shape{s[1], s[0]};
  return s;
}

// A float tensor in PyTorch's layout -> resnet.cpp's layout for `p`.
Tensor from_torch_layout(const Tensor& t, const Layer& l, const Param& p) {
  const Shape& s = t.shape();
  if (p.name == "kernel" && s.rank() == 4) {
    const int64_t o = s[0], i = s[1], h = s[2], w = s[3];
    Tensor out = Tensor::empty(Shape{h, w, i, o});
    const float* src = t.f32();
    float* dst = out.f32();
    for (int64_t a = 0; a < o; ++a)
      for (int64_t b = 0; b < i; ++b)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x) dst[((y * w + x) * i + b) * o + a] = *src++;
    return out;
  }
  if (p.name == "kernel" && s.rank() == 2 && l.class_name() == "Dense") {
    const int64_t o = s[0], i = s[1];
    Tensor out = Tensor::empty(Shape{i, o});
    const float* src = t.f32();
    float* dst = out.f32();
    for (int64_t a = 0; a < o; ++a)
      for (int64_t b = 0; b < i; ++b) dst[b * o + a] = src[a * i + b];
    return out;
  }
  return t;
}

std::string join_limited(const std::vector<std::string>& v, size_t limit = 8) {
  std::vector<std::string> shown(v.begin(), v.begin() + std::min(v.size(), limit));
  std::string s = fmt::format("{}", fmt::join(shown, "; "));
  if (v.size() > limit) s += fmt::format("; and {} more", v.size() - limit);
  return s;
}
}  // namespace

bool torch_parameter_free(const Layer& layer) {
  const std::string suffix = "_shortcut_a";
  const std::string& n = layer.name();
  return layer.class_name() == "Conv2D" && !layer.trainable() && n.size() > suffix.size() &&
         n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string torch_key_for(const std::string& layer, const std::string& class_name,
                          const std::string& param, const std::string& head,
                          const std::string& projection) {
  std::string p = param;
  if (class_name == "BatchNormalization") {
    if (param == "gamma") p = "weight";
    if (param == "beta") p = "bias";
    if (param == "moving_mean") p = "running_mean";
    if (param == "moving_variance") p = "running_var";
  } else if (param == "kernel") {
    p = "weight";
  }
  return torch_module_for(layer, head, projection) + "." + p;
}

TorchStateDict load_torch_weights(Model& model, const std::string& path,
                                  const TorchWeightsOptions& options) {
  TorchStateDict sd = load_torch_state_dict(path, {.key = options.key});
  load_torch_weights(model, sd, options);
  return sd;
}

void load_torch_weights(Model& model, const TorchStateDict& sd,
                        const TorchWeightsOptions& options) {
  graph_detail::ModelUse use(model, graph_detail::ModelUse::Kind::Exclusive, "load_torch_weights");
  LoadWeightsReport local;
  LoadWeightsReport& report = options.report ? *options.report : local;
  report = {};
  const std::string& path = sd.source;
  if (sd.tensors.empty()) throw IoError(fmt::format("{}: the state_dict holds no tensors", path));
  const bool linear = std::any_of(sd.tensors.begin(), sd.tensors.end(),
                                  [](const auto& e) { return e.name.rfind("linear.", 0) == 0; });
  const bool shortcut = std::any_of(sd.tensors.begin(), sd.tensors.end(), [](const auto& e) {
    return e.name.find(".shortcut.") != std::string::npos;
  });
  const std::string head = linear ? "linear" : "fc";
  // PyTorch CIFAR code (a "linear" head) names its projections "shortcut", torchvision
  // "downsample".
  const std::string projection = shortcut || linear ? "shortcut" : "downsample";

  struct Assignment {
    Param* param;
    Tensor value;
  };
  std::vector<Assignment> plan;
  std::vector<std::string> missing, mismatched, unexpected, missing_layers;
  std::set<std::string> used;
  std::vector<std::string> loaded_layers;
  for (const auto& l : model.layers()) {
    if (torch_parameter_free(*l)) continue;
    bool any = false;
    for (Param& p : l->params()) {
      const std::string key = torch_key_for(l->name(), l->class_name(), p.name, head, projection);
      const Shape want = torch_shape(*l, p);
      const TorchTensorEntry* e = sd.find(key);
      if (e == nullptr) {
        missing.push_back(fmt::format("{} {} (layer {})", key, want.str(), l->name()));
        if (missing_layers.empty() || missing_layers.back() != l->name()) {
          missing_layers.push_back(l->name());
        }
        continue;
      }
      used.insert(key);
      if (e->value.shape() != want) {
        mismatched.push_back(fmt::format("{}: expected {} for layer {}, found {}", key, want.str(),
                                         l->name(), e->value.shape().str()));
        continue;
      }
      Tensor v = e->value.dtype() == DType::F32 ? e->value : e->value.to_f32();
      for (float x : v.span<float>()) {
        if (!std::isfinite(x)) {
          throw IoError(fmt::format("{}: '{}' holds NaN or infinite values", path, key));
        }
      }
      plan.push_back({&p, from_torch_layout(v, *l, p)});
      any = true;
    }
    if (any) loaded_layers.push_back(l->name());
  }
  for (const TorchTensorEntry& e : sd.tensors) {
    const std::string suffix = ".num_batches_tracked";
    const bool counter = e.name.size() > suffix.size() &&
                         e.name.compare(e.name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (!used.count(e.name) && !counter) {
      unexpected.push_back(fmt::format("{} {}", e.name, e.value.shape().str()));
    }
  }
  if (options.strict && (!missing.empty() || !unexpected.empty() || !mismatched.empty())) {
    std::vector<std::string> parts;
    if (!missing.empty()) {
      parts.push_back(fmt::format("{} missing key(s): {}", missing.size(), join_limited(missing)));
    }
    if (!unexpected.empty()) {
      parts.push_back(
          fmt::format("{} unexpected key(s): {}", unexpected.size(), join_limited(unexpected)));
    }
    if (!mismatched.empty()) {
      parts.push_back(
          fmt::format("{} wrongly shaped: {}", mismatched.size(), join_limited(mismatched)));
    }
    std::string hint;
    for (const char* v1 : {"resnet50", "resnet101", "resnet152"}) {
      if (model.name() == v1) {
        hint = fmt::format(
            ". keras.applications' {0} is ResNet v1 with convolution biases; torchvision's is "
            "v1.5 without them: use the zoo model {0}-torchvision",
            v1);
      }
    }
    throw IoError(
        fmt::format("{}: the state_dict does not fit model '{}' ({}). Shapes are "
                    "PyTorch's (OIHW, (out, in)); non-strict loading takes what fits{}",
                    path, model.name(), fmt::join(parts, ". "), hint));
  }
  if (plan.empty()) {
    throw IoError(fmt::format("{}: no tensor of the state_dict fits model '{}' (keys like '{}')",
                              path, model.name(), sd.tensors.front().name));
  }
  for (Assignment& a : plan) {
    a.param->value.copy_from(a.value);
    a.param->value.bump_version();
  }
  report.loaded = std::move(loaded_layers);
  for (const std::string& m : mismatched) report.skipped.push_back(m);
  for (const std::string& u : unexpected) report.skipped.push_back(u + ": not in the model");
  report.missing = std::move(missing_layers);
}

}  // namespace resnet
