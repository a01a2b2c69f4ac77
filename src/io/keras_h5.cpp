// Keras model_config / training_config JSON <-> resnet.cpp graphs (see keras_h5.h). The HDF5 side
// of model files is in keras_model_io.cpp.
#include "io/keras_h5.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include "layers/activation.h"
#include "layers/batch_normalization.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/dropout.h"
#include "layers/input_layer.h"
#include "layers/pooling2d.h"
#include "layers/zero_padding2d.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/layers.h"
#include "resnet/optim.h"

namespace resnet {

namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// JSON -> layers

[[noreturn]] void fail_layer(const std::string& where, const std::string& name,
                             const std::string& cls, const std::string& what) {
  throw IoError(fmt::format("'{}': layer '{}' ({}): {}", where, name, cls, what));
}

// A Keras int-or-pair value: 3 -> {3, 3}; [2, 3] -> {2, 3}.
std::array<int64_t, 2> pair_of(const json& v) {
  if (v.is_number_integer()) return {v.get<int64_t>(), v.get<int64_t>()};
  if (v.is_array() && v.size() == 2) return {v[0].get<int64_t>(), v[1].get<int64_t>()};
  if (v.is_array() && v.size() == 1) return {v[0].get<int64_t>(), v[0].get<int64_t>()};
  throw json::type_error::create(302, "expected an integer or a pair of integers: " + v.dump(),
                                 nullptr);
}

Padding padding_of(const json& c, const std::string& where, const std::string& name,
                   const std::string& cls) {
  const std::string p = c.value("padding", std::string("valid"));
  if (p == "valid") return Padding::Valid;
  if (p == "same") return Padding::Same;
  fail_layer(where, name, cls, fmt::format("unsupported padding '{}'", p));
}

void check_channels_last(const json& c, const std::string& where, const std::string& name,
                         const std::string& cls) {
  if (c.contains("data_format") && c["data_format"].is_string() &&
      c["data_format"].get<std::string>() != "channels_last") {
    fail_layer(where, name, cls,
               fmt::format("unsupported data_format '{}'", c["data_format"].get<std::string>()));
  }
}

// An initializer from its Keras config ({"class_name": "HeNormal", "config": {"seed": 1}}); the
// fallback when absent or not one resnet.cpp knows (the weights are loaded over it anyway).
Initializer initializer_of(const json& c, const char* key, Initializer fallback) {
  if (!c.contains(key)) return fallback;
  const json& v = c[key];
  try {
    if (v.is_string()) return Initializer::from_name(v.get<std::string>());
    if (!v.is_object() || !v.contains("class_name")) return fallback;
    Initializer init = Initializer::from_name(v["class_name"].get<std::string>());
    const json cfg = v.value("config", json::object());
    if (cfg.contains("seed") && cfg["seed"].is_number_integer()) {
      init.seed = cfg["seed"].get<uint64_t>();
    }
    switch (init.kind) {
      case Initializer::Kind::RandomUniform:
        init.a = cfg.value("minval", init.a);
        init.b = cfg.value("maxval", init.b);
        break;
      case Initializer::Kind::RandomNormal:
        init.a = cfg.value("mean", init.a);
        init.b = cfg.value("stddev", init.b);
        break;
      case Initializer::Kind::Constant:
        init.a = cfg.value("value", init.a);
        break;
      default:
        break;
    }
    return init;
  } catch (const ConfigError&) {
    return fallback;
  }
}

std::string activation_of(const json& c) {
  if (!c.contains("activation") || c["activation"].is_null()) return "linear";
  return c["activation"].get<std::string>();
}

// Applies one Keras layer (class `cls`, config `c`) to `ins`.
SymTensor apply_layer(const std::string& cls, const json& c, const std::string& name,
                      const std::vector<SymTensor>& ins, const std::string& where) {
  const bool trainable = c.value("trainable", true);
  if (cls == "Conv2D") {
    check_channels_last(c, where, name, cls);
    if (c.value("groups", 1) != 1)
      fail_layer(where, name, cls, "grouped convolutions (groups != 1) are not supported");
    Conv2DOptions o;
    o.filters = c.at("filters").get<int64_t>();
    o.kernel = pair_of(c.at("kernel_size"));
    o.strides = pair_of(c.value("strides", json::array({1, 1})));
    o.padding = padding_of(c, where, name, cls);
    o.dilation = pair_of(c.value("dilation_rate", json::array({1, 1})));
    o.activation = activation_of(c);
    o.use_bias = c.value("use_bias", true);
    o.kernel_initializer = initializer_of(c, "kernel_initializer", o.kernel_initializer);
    o.bias_initializer = initializer_of(c, "bias_initializer", o.bias_initializer);
    o.name = name;
    o.trainable = trainable;
    return Conv2D(o)(ins);
  }
  if (cls == "BatchNormalization") {
    BatchNormalizationOptions o;
    if (c.contains("axis")) {
      const json& a = c["axis"];
      if (a.is_array()) {
        if (a.size() != 1)
          fail_layer(where, name, cls, "normalization over several axes is not supported");
        o.axis = a[0].get<int64_t>();
      } else {
        o.axis = a.get<int64_t>();
      }
    }
    o.momentum = c.value("momentum", o.momentum);
    o.epsilon = c.value("epsilon", o.epsilon);
    o.center = c.value("center", o.center);
    o.scale = c.value("scale", o.scale);
    o.beta_initializer = initializer_of(c, "beta_initializer", o.beta_initializer);
    o.gamma_initializer = initializer_of(c, "gamma_initializer", o.gamma_initializer);
    o.moving_mean_initializer =
        initializer_of(c, "moving_mean_initializer", o.moving_mean_initializer);
    o.moving_variance_initializer =
        initializer_of(c, "moving_variance_initializer", o.moving_variance_initializer);
    o.name = name;
    o.trainable = trainable;
    return BatchNormalization(o)(ins);
  }
  if (cls == "Activation") return Activation(activation_of(c), name)(ins);
  if (cls == "ReLU") {
    const bool plain = (!c.contains("max_value") || c["max_value"].is_null()) &&
                       c.value("negative_slope", 0.0) == 0.0 && c.value("threshold", 0.0) == 0.0;
    if (!plain)
      fail_layer(where, name, cls, "max_value, negative_slope and threshold are not supported");
    return ReLU({.name = name})(ins);
  }
  if (cls == "Add") return Add({.name = name})(ins);
  if (cls == "ZeroPadding2D") {
    check_channels_last(c, where, name, cls);
    ZeroPadding2DOptions o;
    const json& p = c.at("padding");
    if (p.is_number_integer()) {
      const int64_t v = p.get<int64_t>();
      o.padding = {v, v, v, v};
    } else if (p.is_array() && p.size() == 2 && p[0].is_number_integer()) {
      const int64_t h = p[0].get<int64_t>(), w = p[1].get<int64_t>();
      o.padding = {h, h, w, w};
    } else if (p.is_array() && p.size() == 2 && p[0].is_array()) {
      const auto hb = pair_of(p[0]), lr = pair_of(p[1]);
      o.padding = {hb[0], hb[1], lr[0], lr[1]};
    } else {
      fail_layer(where, name, cls, fmt::format("unsupported padding {}", p.dump()));
    }
    o.name = name;
    return ZeroPadding2D(o)(ins);
  }
  if (cls == "MaxPooling2D" || cls == "AveragePooling2D") {
    check_channels_last(c, where, name, cls);
    Pool2DOptions o;
    o.pool_size = pair_of(c.value("pool_size", json::array({2, 2})));
    if (c.contains("strides") && !c["strides"].is_null()) o.strides = pair_of(c["strides"]);
    o.padding = padding_of(c, where, name, cls);
    o.name = name;
    return cls == "MaxPooling2D" ? MaxPooling2D(o)(ins) : AveragePooling2D(o)(ins);
  }
  if (cls == "GlobalAveragePooling2D" || cls == "GlobalMaxPooling2D") {
    check_channels_last(c, where, name, cls);
    if (c.value("keepdims", false)) fail_layer(where, name, cls, "keepdims=True is not supported");
    return cls == "GlobalAveragePooling2D" ? GlobalAveragePooling2D({.name = name})(ins)
                                           : GlobalMaxPooling2D({.name = name})(ins);
  }
  if (cls == "Flatten") return Flatten({.name = name})(ins);
  if (cls == "Dense") {
    DenseOptions o;
    o.units = c.at("units").get<int64_t>();
    o.activation = activation_of(c);
    o.use_bias = c.value("use_bias", true);
    o.kernel_initializer = initializer_of(c, "kernel_initializer", o.kernel_initializer);
    o.bias_initializer = initializer_of(c, "bias_initializer", o.bias_initializer);
    o.name = name;
    o.trainable = trainable;
    return Dense(o)(ins);
  }
  if (cls == "Dropout") {
    DropoutOptions o;
    o.rate = c.value("rate", o.rate);
    if (c.contains("seed") && c["seed"].is_number_integer()) o.seed = c["seed"].get<uint64_t>();
    o.name = name;
    return Dropout(o)(ins);
  }
  throw IoError(fmt::format("'{}': layer '{}' has unsupported class '{}'", where, name, cls));
}

// The source layers of one inbound node. Keras 2: [["name", node_index, tensor_index, {kwargs}],
// ...]; Keras 3: {"args": [...], "kwargs": {...}} where every input is a
// {"class_name": "__keras_tensor__", "config": {"keras_history": ["name", node, tensor]}}.
void collect_keras3_sources(const json& v, std::vector<json>& history) {
  if (v.is_array()) {
    for (const json& e : v) collect_keras3_sources(e, history);
  } else if (v.is_object()) {
    if (v.value("class_name", std::string()) == "__keras_tensor__") {
      history.push_back(v.at("config").at("keras_history"));
    } else {
      for (const auto& [k, e] : v.items()) collect_keras3_sources(e, history);
    }
  }
}

std::vector<std::string> node_sources(const json& node, const std::string& where,
                                      const std::string& name, const std::string& cls) {
  std::vector<json> entries;
  if (node.is_object()) {
    collect_keras3_sources(node.value("args", json::array()), entries);
  } else if (node.is_array()) {
    for (const json& e : node) entries.push_back(e);
  } else {
    fail_layer(where, name, cls, fmt::format("malformed inbound node {}", node.dump()));
  }
  std::vector<std::string> out;
  for (const json& entry : entries) {
    if (!entry.is_array() || entry.empty() || !entry[0].is_string()) {
      fail_layer(where, name, cls, fmt::format("malformed inbound node {}", entry.dump()));
    }
    if ((entry.size() > 1 && entry[1] != 0) || (entry.size() > 2 && entry[2] != 0)) {
      fail_layer(where, name, cls, "shared layers (node or tensor index != 0) are not supported");
    }
    out.push_back(entry[0].get<std::string>());
  }
  return out;
}

// Upper bound of the parameters a layer would create (before creating them), saturating; 0 when
// the config cannot be read (apply_layer reports that).
double estimate_params(const std::string& cls, const json& c, const std::vector<SymTensor>& ins) {
  try {
    if (ins.empty()) return 0;
    const Shape& in = ins[0].shape();
    const double channels = in.rank() > 0 ? static_cast<double>(in[-1]) : 1.0;
    if (cls == "Conv2D") {
      const auto k = pair_of(c.at("kernel_size"));
      const double f = static_cast<double>(c.at("filters").get<int64_t>());
      return std::abs(f) *
             (std::abs(static_cast<double>(k[0]) * static_cast<double>(k[1])) * channels + 1.0);
    }
    if (cls == "Dense") {
      const double u = static_cast<double>(c.at("units").get<int64_t>());
      return std::abs(u) * (channels + 1.0);
    }
    if (cls == "BatchNormalization") return 4.0 * channels;
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace

namespace keras_detail {

void (*save_fault_hook)(const std::string& stage) = nullptr;

KerasGraph build_keras_graph(const std::string& text, const std::string& where,
                             int64_t max_params) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw IoError(fmt::format("'{}': model_config is not valid JSON: {}", where, e.what()));
  }
  std::string cur_name = "?", cur_cls = "?";
  try {
    if (!root.is_object())
      throw IoError(fmt::format("'{}': model_config is not a JSON object", where));
    const std::string top = root.value("class_name", std::string());
    if (top != "Functional" && top != "Model") {
      throw IoError(fmt::format(
          "'{}': unsupported model class '{}' (only Functional/Model graphs are supported)", where,
          top));
    }
    const json& cfg = root.at("config");
    const json& layers = cfg.at("layers");
    if (!layers.is_array())
      throw IoError(fmt::format("'{}': model_config layers is not a list", where));
    KerasGraph graph;
    graph.name = cfg.contains("name") && cfg["name"].is_string() ? cfg["name"].get<std::string>()
                                                                 : std::string("model");

    // Layer specs, and the sources of each (first inbound node only).
    struct Spec {
      std::string name, cls;
      const json* config;
      std::vector<std::string> sources;
    };
    std::vector<Spec> specs;
    std::map<std::string, size_t> index;
    for (const json& l : layers) {
      Spec s;
      s.cls = l.at("class_name").get<std::string>();
      s.config = &l.at("config");
      s.name = l.contains("name") ? l["name"].get<std::string>()
                                  : s.config->at("name").get<std::string>();
      cur_name = s.name;
      cur_cls = s.cls;
      const json nodes = l.value("inbound_nodes", json::array());
      if (!nodes.is_array()) fail_layer(where, s.name, s.cls, "inbound_nodes is not a list");
      if (nodes.size() > 1)
        fail_layer(where, s.name, s.cls, "shared layers (several inbound nodes) are not supported");
      if (!nodes.empty()) s.sources = node_sources(nodes[0], where, s.name, s.cls);
      if (!index.emplace(s.name, specs.size()).second) {
        throw IoError(fmt::format("'{}': duplicate layer name '{}'", where, s.name));
      }
      graph.order.push_back(s.name);
      specs.push_back(std::move(s));
    }
    // Topological order (Kahn), ties in file order.
    std::vector<int> pending(specs.size(), 0);
    std::vector<std::vector<size_t>> consumers(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      for (const std::string& src : specs[i].sources) {
        auto it = index.find(src);
        if (it == index.end()) {
          fail_layer(where, specs[i].name, specs[i].cls,
                     fmt::format("inbound layer '{}' does not exist", src));
        }
        consumers[it->second].push_back(i);
        ++pending[i];
      }
    }
    std::set<size_t> ready;
    for (size_t i = 0; i < specs.size(); ++i) {
      if (pending[i] == 0) ready.insert(i);
    }
    std::map<std::string, SymTensor>& tensors = graph.tensors;
    size_t done = 0;
    double params_used = 0;
    while (!ready.empty()) {
      const size_t i = *ready.begin();
      ready.erase(ready.begin());
      const Spec& s = specs[i];
      cur_name = s.name;
      cur_cls = s.cls;
      SymTensor out;
      if (s.cls == "InputLayer") {
        const json& c = *s.config;
        const json shape = c.contains("batch_input_shape") ? c["batch_input_shape"]
                                                           : c.value("batch_shape", json());
        if (!shape.is_array() || shape.size() < 2) {
          fail_layer(where, s.name, s.cls, "missing or malformed batch_input_shape");
        }
        std::vector<int64_t> dims;
        for (size_t d = 1; d < shape.size(); ++d) {
          if (!shape[d].is_number_integer())
            fail_layer(where, s.name, s.cls, "dynamic input dimensions are not supported");
          const int64_t v = shape[d].get<int64_t>();
          if (v <= 0 || v > (int64_t{1} << 24)) {
            fail_layer(where, s.name, s.cls, fmt::format("bad input dimension {}", v));
          }
          dims.push_back(v);
        }
        try {
          out = Input(Shape(dims), s.name);
        } catch (const Error& e) {
          fail_layer(where, s.name, s.cls, e.what());
        }
      } else {
        if (s.sources.empty()) fail_layer(where, s.name, s.cls, "the layer has no inbound node");
        std::vector<SymTensor> ins;
        for (const std::string& src : s.sources) ins.push_back(tensors.at(src));
        if (max_params >= 0) {
          params_used += estimate_params(s.cls, *s.config, ins);
          if (params_used > max_params) {
            fail_layer(where, s.name, s.cls,
                       fmt::format("the layers up to this one need {} parameters but the file "
                                   "can hold at most {}",
                                   params_used, max_params));
          }
        }
        try {
          out = apply_layer(s.cls, *s.config, s.name, ins, where);
        } catch (const IoError&) {
          throw;
        } catch (const Error& e) {
          fail_layer(where, s.name, s.cls, e.what());
        }
      }
      tensors[s.name] = out;
      ++done;
      for (size_t k : consumers[i]) {
        if (--pending[k] == 0) ready.insert(k);
      }
    }
    if (done != specs.size()) {
      throw IoError(fmt::format("'{}': the layer graph has a cycle", where));
    }
    cur_name = "?";
    cur_cls = "?";
    // [["name", 0, 0], ...], or Keras 3's flat ["name", 0, 0] for a single tensor.
    auto endpoints = [&](const char* key) {
      std::vector<SymTensor> out;
      const json& list = cfg.at(key);
      if (!list.is_array()) throw IoError(fmt::format("'{}': {} is not a list", where, key));
      std::vector<json> entries;
      if (!list.empty() && list[0].is_string()) {
        entries.push_back(list);
      } else {
        for (const json& e : list) entries.push_back(e);
      }
      for (const json& e : entries) {
        const std::string n = e.at(0).get<std::string>();
        auto it = tensors.find(n);
        if (it == tensors.end()) {
          throw IoError(fmt::format("'{}': {} names unknown layer '{}'", where, key, n));
        }
        out.push_back(it->second);
      }
      return out;
    };
    graph.inputs = endpoints("input_layers");
    graph.outputs = endpoints("output_layers");
    return graph;
  } catch (const json::exception& e) {
    throw IoError(fmt::format("'{}': malformed model_config at layer '{}' ({}): {}", where,
                              cur_name, cur_cls, e.what()));
  }
}

Model build_keras_model_from_json(const std::string& text, const std::string& where,
                                  int64_t max_params) {
  KerasGraph g = build_keras_graph(text, where, max_params);
  try {
    return Model(std::move(g.inputs), std::move(g.outputs), g.name);
  } catch (const IoError&) {
    throw;
  } catch (const Error& e) {
    throw IoError(fmt::format("'{}': {}", where, e.what()));
  }
}

// ---------------------------------------------------------------------------------------------
// Layers -> JSON (Keras 2.4 layout, key order as Keras writes it)

namespace {

using ojson = nlohmann::ordered_json;

ojson initializer_json(const Initializer& init) {
  ojson cfg = ojson::object();
  switch (init.kind) {
    case Initializer::Kind::Zeros:
    case Initializer::Kind::Ones:
      break;
    case Initializer::Kind::Constant:
      cfg["value"] = init.a;
      break;
    case Initializer::Kind::RandomUniform:
      cfg["minval"] = init.a;
      cfg["maxval"] = init.b;
      cfg["seed"] = init.seed ? ojson(*init.seed) : ojson(nullptr);
      break;
    case Initializer::Kind::RandomNormal:
      cfg["mean"] = init.a;
      cfg["stddev"] = init.b;
      cfg["seed"] = init.seed ? ojson(*init.seed) : ojson(nullptr);
      break;
    default:
      cfg["seed"] = init.seed ? ojson(*init.seed) : ojson(nullptr);
      break;
  }
  return {{"class_name", init.keras_class_name()}, {"config", cfg}};
}

ojson pair_json(const std::array<int64_t, 2>& p) { return ojson::array({p[0], p[1]}); }

const char* padding_json(Padding p) { return p == Padding::Same ? "same" : "valid"; }

ojson base(const Layer& l) {
  return {{"name", l.name()}, {"trainable", l.trainable()}, {"dtype", "float32"}};
}

// The fields Conv2D and Dense share in a Keras config (no regularizers or constraints here).
void kernel_layer_json(ojson& c, const std::string& activation, bool use_bias,
                       const Initializer& kernel_init, const Initializer& bias_init) {
  c["activation"] = activation;
  c["use_bias"] = use_bias;
  c["kernel_initializer"] = initializer_json(kernel_init);
  c["bias_initializer"] = initializer_json(bias_init);
  for (const char* key : {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                          "kernel_constraint", "bias_constraint"}) {
    c[key] = nullptr;
  }
}

ojson layer_config(const Model& model, const Layer& l) {
  const std::string& cls = l.class_name();
  if (auto* in = dynamic_cast<const layers::InputLayer*>(&l)) {
    ojson shape = ojson::array({nullptr});
    for (int64_t d : in->input_shape().dims()) shape.push_back(d);
    return {{"batch_input_shape", shape},
            {"dtype", "float32"},
            {"sparse", false},
            {"ragged", false},
            {"name", l.name()}};
  }
  ojson c = base(l);
  if (auto* conv = dynamic_cast<const layers::Conv2D*>(&l)) {
    const Conv2DOptions& o = conv->options();
    c["filters"] = o.filters;
    c["kernel_size"] = pair_json(o.kernel);
    c["strides"] = pair_json(o.strides);
    c["padding"] = padding_json(o.padding);
    c["data_format"] = "channels_last";
    c["dilation_rate"] = pair_json(o.dilation);
    c["groups"] = 1;
    kernel_layer_json(c, o.activation, o.use_bias, o.kernel_initializer, o.bias_initializer);
    return c;
  }
  if (auto* bn = dynamic_cast<const layers::BatchNormalization*>(&l)) {
    const BatchNormalizationOptions& o = bn->options();
    // Keras stores the normalized (positive) axis of the batched input: 3 for images.
    const int64_t rank = model.output_shape(l).rank() + 1;
    c["axis"] = ojson::array({o.axis < 0 ? rank + o.axis : o.axis});
    c["momentum"] = o.momentum;
    c["epsilon"] = o.epsilon;
    c["center"] = o.center;
    c["scale"] = o.scale;
    c["beta_initializer"] = initializer_json(o.beta_initializer);
    c["gamma_initializer"] = initializer_json(o.gamma_initializer);
    c["moving_mean_initializer"] = initializer_json(o.moving_mean_initializer);
    c["moving_variance_initializer"] = initializer_json(o.moving_variance_initializer);
    c["beta_regularizer"] = nullptr;
    c["gamma_regularizer"] = nullptr;
    c["beta_constraint"] = nullptr;
    c["gamma_constraint"] = nullptr;
    return c;
  }
  if (auto* act = dynamic_cast<const layers::Activation*>(&l)) {
    c["activation"] = act->kind_name();
    return c;
  }
  if (cls == "ReLU") {
    c["max_value"] = nullptr;
    c["negative_slope"] = 0.0;
    c["threshold"] = 0.0;
    return c;
  }
  if (cls == "Add") return c;
  if (auto* zp = dynamic_cast<const layers::ZeroPadding2D*>(&l)) {
    const auto& p = zp->options().padding;
    c["padding"] = ojson::array({ojson::array({p[0], p[1]}), ojson::array({p[2], p[3]})});
    c["data_format"] = "channels_last";
    return c;
  }
  if (auto* pool = dynamic_cast<const layers::Pooling2D*>(&l)) {
    const Pool2DOptions& o = pool->options();
    c["pool_size"] = pair_json(o.pool_size);
    c["padding"] = padding_json(o.padding);
    c["strides"] = pair_json(o.strides[0] == 0 && o.strides[1] == 0 ? o.pool_size : o.strides);
    c["data_format"] = "channels_last";
    return c;
  }
  if (cls == "GlobalAveragePooling2D" || cls == "GlobalMaxPooling2D" || cls == "Flatten") {
    c["data_format"] = "channels_last";
    return c;
  }
  if (auto* dense = dynamic_cast<const layers::Dense*>(&l)) {
    const DenseOptions& o = dense->options();
    c["units"] = o.units;
    kernel_layer_json(c, o.activation, o.use_bias, o.kernel_initializer, o.bias_initializer);
    return c;
  }
  if (auto* drop = dynamic_cast<const layers::Dropout*>(&l)) {
    const DropoutOptions& o = drop->options();
    c["rate"] = o.rate;
    c["noise_shape"] = nullptr;
    c["seed"] = o.seed ? ojson(*o.seed) : ojson(nullptr);
    return c;
  }
  throw ConfigError(
      fmt::format("layer '{}' ({}): no Keras config for this layer class", l.name(), cls));
}

}  // namespace

std::string model_config_json(const Model& model) {
  ojson layers_json = ojson::array();
  std::set<std::string> consumed;
  for (const auto& l : model.layers()) {
    ojson entry;
    entry["class_name"] = l->class_name();
    entry["config"] = layer_config(model, *l);
    entry["name"] = l->name();
    ojson nodes = ojson::array();
    const std::vector<std::string> srcs = model.inbound(*l);
    if (!srcs.empty()) {
      ojson node = ojson::array();
      for (const std::string& s : srcs) {
        node.push_back(ojson::array({s, 0, 0, ojson::object()}));
        consumed.insert(s);
      }
      nodes.push_back(node);
    }
    entry["inbound_nodes"] = nodes;
    layers_json.push_back(entry);
  }
  ojson inputs = ojson::array(), outputs = ojson::array();
  for (const auto& l : model.layers()) {
    if (l->class_name() == "InputLayer") inputs.push_back(ojson::array({l->name(), 0, 0}));
    if (!consumed.count(l->name())) outputs.push_back(ojson::array({l->name(), 0, 0}));
  }
  ojson cfg;
  cfg["name"] = model.name();
  cfg["layers"] = layers_json;
  cfg["input_layers"] = inputs;
  cfg["output_layers"] = outputs;
  ojson root;
  root["class_name"] = "Functional";
  root["config"] = cfg;
  return root.dump(-1, ' ', /*ensure_ascii=*/true);  // as Python's json.dumps
}

std::string training_config_json(Model& model) {
  const CompileOptions& co = model.compile_options();
  const LossKind loss = loss_from_name(co.loss);
  const std::string prefix = loss == LossKind::SparseCategoricalCrossentropy ? "sparse_" : "";
  ojson metrics = ojson::array();
  for (const std::string& m : co.metrics) {
    std::string name = m, fn;
    if (m == "accuracy" || m == "acc" || m == "categorical_accuracy" ||
        m == "sparse_categorical_accuracy") {
      name = "accuracy";
      fn = loss == LossKind::BinaryCrossentropy ? "binary_accuracy"
                                                : prefix + "categorical_accuracy";
    } else {
      name = "top_k_categorical_accuracy";
      fn = prefix + "top_k_categorical_accuracy";
    }
    metrics.push_back({{"class_name", "MeanMetricWrapper"},
                       {"config", {{"name", name}, {"dtype", "float32"}, {"fn", fn}}}});
  }
  ojson root;
  root["loss"] = loss_name(loss);
  root["metrics"] = ojson::array({metrics});
  root["weighted_metrics"] = nullptr;
  root["loss_weights"] = nullptr;
  root["optimizer_config"] = ojson::parse(model.optimizer().config_json());
  return root.dump(-1, ' ', /*ensure_ascii=*/true);
}

// ---------------------------------------------------------------------------------------------
// training_config -> CompileOptions

namespace {

double number_or(const json& c, const char* key, double fallback) {
  if (!c.contains(key) || c[key].is_null()) return fallback;
  return c[key].get<double>();
}

// "Adam", "Custom>Adam", "adam" -> "adam".
std::string short_class(const std::string& s) {
  std::string t = s.substr(s.rfind('>') == std::string::npos ? 0 : s.rfind('>') + 1);
  for (char& ch : t) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return t;
}

std::shared_ptr<Optimizer> optimizer_from_json(const json& oc, const std::string& where) {
  const std::string cls = short_class(oc.at("class_name").get<std::string>());
  const json c = oc.value("config", json::object());
  OptimizerCommon common;
  const json lr = c.contains("learning_rate") ? c["learning_rate"] : c.value("lr", json(0.001));
  if (lr.is_number()) {
    common.learning_rate = lr.get<double>();
  } else if (lr.is_object()) {
    const std::string s = short_class(lr.at("class_name").get<std::string>());
    const json sc = lr.value("config", json::object());
    if (s == "exponentialdecay") {
      common.schedule = exponential_decay(
          sc.at("initial_learning_rate").get<double>(), sc.at("decay_steps").get<int64_t>(),
          sc.at("decay_rate").get<double>(), sc.value("staircase", false));
    } else if (s == "cosinedecay") {
      const double target = number_or(sc, "warmup_target", -1.0);
      common.schedule =
          cosine_decay(sc.at("initial_learning_rate").get<double>(),
                       sc.at("decay_steps").get<int64_t>(), number_or(sc, "alpha", 0.0),
                       static_cast<int64_t>(number_or(sc, "warmup_steps", 0.0)), target);
    } else {
      throw IoError(fmt::format("'{}': training_config: unsupported learning-rate schedule '{}'",
                                where, lr.at("class_name").get<std::string>()));
    }
    common.learning_rate = (*common.schedule)(0);
  } else {
    throw IoError(fmt::format("'{}': training_config: bad learning_rate {}", where, lr.dump()));
  }
  common.weight_decay = number_or(c, "weight_decay", 0.0);
  common.clipnorm = number_or(c, "clipnorm", 0.0);
  common.global_clipnorm = number_or(c, "global_clipnorm", 0.0);
  common.clipvalue = number_or(c, "clipvalue", 0.0);
  if (cls == "adam" || cls == "adamw") {
    AdamOptions o{.common = common};
    o.beta_1 = number_or(c, "beta_1", o.beta_1);
    o.beta_2 = number_or(c, "beta_2", o.beta_2);
    o.epsilon = number_or(c, "epsilon", o.epsilon);
    o.amsgrad = c.value("amsgrad", false);
    return cls == "adam" ? Adam(o) : AdamW(o);
  }
  if (cls == "sgd") {
    SGDOptions o{.common = common};
    o.momentum = number_or(c, "momentum", 0.0);
    o.nesterov = c.value("nesterov", false);
    return SGD(o);
  }
  if (cls == "rmsprop") {
    RMSpropOptions o{.common = common};
    o.rho = number_or(c, "rho", o.rho);
    o.momentum = number_or(c, "momentum", 0.0);
    o.epsilon = number_or(c, "epsilon", o.epsilon);
    o.centered = c.value("centered", false);
    return RMSprop(o);
  }
  throw IoError(
      fmt::format("'{}': training_config: unsupported optimizer '{}' (Adam, AdamW, SGD, "
                  "RMSprop)",
                  where, oc.at("class_name").get<std::string>()));
}

void collect_metrics(const json& m, std::vector<std::string>& out) {
  if (m.is_array()) {
    for (const json& e : m) collect_metrics(e, out);
    return;
  }
  std::string name, fn;
  if (m.is_string()) {
    name = m.get<std::string>();
  } else if (m.is_object()) {
    const json c = m.value("config", json::object());
    name = c.value("name", std::string());
    fn = c.value("fn", std::string());
    if (name.empty()) name = m.value("class_name", std::string());
  }
  auto is = [&](const char* s) { return name == s || fn == s; };
  std::string key;
  if (is("top_k_categorical_accuracy") || is("sparse_top_k_categorical_accuracy") ||
      is("top_k_accuracy")) {
    key = "top_k_categorical_accuracy";
  } else if (is("accuracy") || is("acc") || is("categorical_accuracy") ||
             is("sparse_categorical_accuracy") || name == "CategoricalAccuracy" ||
             name == "SparseCategoricalAccuracy") {
    key = "accuracy";
  }
  if (!key.empty() && std::find(out.begin(), out.end(), key) == out.end()) out.push_back(key);
}

}  // namespace

CompileOptions compile_options_from_training_config(const std::string& text,
                                                    const std::string& where) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw IoError(fmt::format("'{}': training_config is not valid JSON: {}", where, e.what()));
  }
  try {
    CompileOptions o;
    const json& loss = root.at("loss");
    if (loss.is_string()) {
      o.loss = loss.get<std::string>();
    } else if (loss.is_object() && loss.contains("class_name")) {
      o.loss = loss["class_name"].get<std::string>();
      const json c = loss.value("config", json::object());
      if (c.value("from_logits", false)) {
        throw IoError(
            fmt::format("'{}': training_config: losses from logits are not supported", where));
      }
    } else {
      throw IoError(fmt::format("'{}': training_config: unsupported loss {}", where, loss.dump()));
    }
    try {
      loss_from_name(o.loss);
    } catch (const ConfigError& e) {
      throw IoError(fmt::format("'{}': training_config: {}", where, e.what()));
    }
    o.metrics.clear();
    if (root.contains("metrics") && !root["metrics"].is_null())
      collect_metrics(root["metrics"], o.metrics);
    o.optimizer = optimizer_from_json(root.at("optimizer_config"), where);
    return o;
  } catch (const json::exception& e) {
    throw IoError(fmt::format("'{}': malformed training_config: {}", where, e.what()));
  } catch (const ConfigError& e) {
    throw IoError(fmt::format("'{}': training_config: {}", where, e.what()));
  }
}

}  // namespace keras_detail

}  // namespace resnet
