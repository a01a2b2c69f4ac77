// Keras model_config / training_config JSON <-> resnet.cpp graphs (see config.h). The HDF5 side
// of model files is in h5_files.cpp.
#include "io/keras/config.h"

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

#include "layers/config_json.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/layers.h"
#include "resnet/optim.h"

namespace resnet {

namespace {

using json = nlohmann::ordered_json;

// ---------------------------------------------------------------------------------------------
// JSON -> layers

[[noreturn]] void fail_layer(const std::string& where, const std::string& name,
                             const std::string& cls, const std::string& what) {
  throw IoError(fmt::format("'{}': layer '{}' ({}): {}", where, name, cls, what));
}

// Creates the layer of class `cls` from its config (the registry) and connects it to `ins`,
// after checking that the parameters it would create fit in what the file can hold.
SymTensor apply_layer(const std::string& cls, const json& c, const std::string& name,
                      const std::vector<SymTensor>& ins, const std::string& where,
                      double& params_used, int64_t max_params) {
  if (!c.is_object()) fail_layer(where, name, cls, "the layer config is not a JSON object");
  json cfg = c;
  cfg["name"] = name;  // the entry's name wins (Keras 3 files may carry it only outside)
  std::shared_ptr<Layer> layer;
  try {
    layer = layer_from_config(cls, ConfigAccess::from_json(std::move(cfg)));
  } catch (const Error& e) {
    fail_layer(where, name, cls, e.what());
  }
  if (layer->min_inputs() > 0 && ins.empty()) {
    fail_layer(where, name, cls, "the layer has no inbound node");
  }
  if (max_params >= 0) {
    std::vector<Shape> shapes;
    for (const SymTensor& t : ins) shapes.push_back(t.shape());
    params_used += layer->params_needed(shapes);
    if (params_used > static_cast<double>(max_params)) {
      fail_layer(where, name, cls,
                 fmt::format("the layers up to this one need {} parameters but the file "
                             "can hold at most {}",
                             params_used, max_params));
    }
  }
  try {
    return (*layer)(ins);
  } catch (const Error& e) {
    fail_layer(where, name, cls, e.what());
  }
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

}  // namespace

namespace keras_detail {

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
      std::vector<SymTensor> ins;
      for (const std::string& src : s.sources) ins.push_back(tensors.at(src));
      const SymTensor out =
          apply_layer(s.cls, *s.config, s.name, ins, where, params_used, max_params);
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

// A Functional config's input_layers (the InputLayers) and output_layers (the layers no other
// layer consumes), as [name, 0, 0] entries in layer order.
std::pair<ojson, ojson> io_layers(const Model& model) {
  std::set<std::string> consumed;
  for (const auto& l : model.layers()) {
    for (const std::string& s : model.inbound(*l)) consumed.insert(s);
  }
  ojson inputs = ojson::array(), outputs = ojson::array();
  for (const auto& l : model.layers()) {
    if (l->class_name() == "InputLayer") inputs.push_back(ojson::array({l->name(), 0, 0}));
    if (!consumed.count(l->name())) outputs.push_back(ojson::array({l->name(), 0, 0}));
  }
  return {inputs, outputs};
}

}  // namespace

std::string model_config_json(const Model& model) {
  ojson layers_json = ojson::array();
  for (const auto& l : model.layers()) {
    ojson entry;
    entry["class_name"] = l->class_name();
    entry["config"] = ConfigAccess::json(l->config());
    entry["name"] = l->name();
    ojson nodes = ojson::array();
    const std::vector<std::string> srcs = model.inbound(*l);
    if (!srcs.empty()) {
      ojson node = ojson::array();
      for (const std::string& s : srcs) node.push_back(ojson::array({s, 0, 0, ojson::object()}));
      nodes.push_back(node);
    }
    entry["inbound_nodes"] = nodes;
    layers_json.push_back(entry);
  }
  const auto [inputs, outputs] = io_layers(model);
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
    } else if (m == "mae" || m == "mean_absolute_error") {
      name = "mae";
      fn = "mean_absolute_error";
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
// Keras 3 serialization (config.json of .keras files)

namespace {

ojson k3_registered(const std::string& module, ojson obj) {
  ojson out;
  out["module"] = module;
  out["class_name"] = obj.value("class_name", std::string());
  out["config"] = obj.contains("config") ? obj["config"] : ojson::object();
  out["registered_name"] = nullptr;
  return out;
}

ojson k3_dtype(const ojson& name) {
  return {{"module", "keras"},
          {"class_name", "DTypePolicy"},
          {"config", {{"name", name.is_string() ? name : ojson("float32")}}},
          {"registered_name", nullptr}};
}

ojson k3_shape(const Shape& s) {
  ojson a = ojson::array({nullptr});
  for (int64_t d : s.dims()) a.push_back(d);
  return a;
}

ojson k3_layer_config(const Layer& l) {
  ojson c = ConfigAccess::json(l.config());
  if (l.class_name() == "InputLayer") {
    ojson out = ojson::object();
    out["batch_shape"] =
        c.contains("batch_input_shape") ? c["batch_input_shape"] : c.value("batch_shape", ojson());
    out["dtype"] = c.value("dtype", ojson("float32"));
    out["sparse"] = c.value("sparse", false);
    out["ragged"] = c.value("ragged", false);
    out["name"] = l.name();
    out["optional"] = false;
    return out;
  }
  for (auto it = c.begin(); it != c.end(); ++it) {
    if (it.key() == "dtype") {
      it.value() = k3_dtype(it.value());
    } else if (it.value().is_object() && it.value().contains("class_name")) {
      it.value() = k3_registered("keras.initializers", it.value());
    }
  }
  if (l.class_name() == "BatchNormalization") {
    c["axis"] = -1;  // the channel (last) axis, the only one resnet.cpp normalizes over
    c["synchronized"] = false;
  }
  return c;
}

ojson k3_tensor(const Model& model, const std::string& layer) {
  return {{"class_name", "__keras_tensor__"},
          {"config",
           {{"shape", k3_shape(model.output_shape(model.layer(layer)))},
            {"dtype", "float32"},
            {"keras_history", ojson::array({layer, 0, 0})}}}};
}

// Keras 2 optimizer_config (Optimizer::config_json) -> Keras 3's optimizer entry.
ojson k3_optimizer(const ojson& k2) {
  ojson c = k2.value("config", ojson::object());
  ojson out = ojson::object();
  std::string name = k2.value("class_name", std::string("Adam"));
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  out["name"] = name;
  ojson lr = c.value("learning_rate", ojson(0.001));
  if (lr.is_object()) lr = k3_registered("keras.optimizers.schedules", lr);
  out["learning_rate"] = lr;
  for (const char* k : {"weight_decay", "clipnorm", "global_clipnorm", "clipvalue"}) {
    out[k] = c.contains(k) && !c[k].is_null() && c[k] != ojson(0.0) ? c[k] : ojson();
  }
  out["use_ema"] = false;
  out["ema_momentum"] = 0.99;
  out["ema_overwrite_frequency"] = nullptr;
  out["loss_scale_factor"] = nullptr;
  out["gradient_accumulation_steps"] = nullptr;
  for (auto it = c.begin(); it != c.end(); ++it) {
    if (!out.contains(it.key()) && it.key() != "decay" && it.key() != "lr") {
      out[it.key()] = it.value();
    }
  }
  ojson o = k3_registered("keras.optimizers", {{"class_name", k2.value("class_name", "Adam")}});
  o["config"] = out;
  return o;
}

}  // namespace

std::string keras3_config_json(Model& model) {
  ojson layers = ojson::array();
  for (const auto& l : model.layers()) {
    ojson e;
    e["module"] = "keras.layers";
    e["class_name"] = l->class_name();
    e["config"] = k3_layer_config(*l);
    e["registered_name"] = nullptr;
    const std::vector<std::string> srcs = model.inbound(*l);
    if (!l->params().empty() || l->class_name() == "Add") {
      ojson shapes = ojson::array();
      for (const std::string& s : srcs)
        shapes.push_back(k3_shape(model.output_shape(model.layer(s))));
      e["build_config"] = {{"input_shape", shapes.size() == 1 ? shapes[0] : shapes}};
    }
    e["name"] = l->name();
    ojson nodes = ojson::array();
    if (!srcs.empty()) {
      ojson args = ojson::array();
      if (srcs.size() == 1) {
        args.push_back(k3_tensor(model, srcs[0]));
      } else {
        ojson list = ojson::array();
        for (const std::string& s : srcs) list.push_back(k3_tensor(model, s));
        args.push_back(list);
      }
      nodes.push_back({{"args", args}, {"kwargs", ojson::object()}});
    }
    e["inbound_nodes"] = nodes;
    layers.push_back(e);
  }
  const auto [inputs, outputs] = io_layers(model);
  ojson cfg;
  cfg["name"] = model.name();
  cfg["trainable"] = true;
  cfg["layers"] = layers;
  cfg["input_layers"] = inputs.size() == 1 ? inputs[0] : inputs;
  cfg["output_layers"] = outputs.size() == 1 ? outputs[0] : outputs;
  ojson root;
  root["module"] = "keras.src.models.functional";
  root["class_name"] = "Functional";
  root["config"] = cfg;
  root["registered_name"] = "Functional";
  root["build_config"] = {{"input_shape", nullptr}};
  if (model.compiled()) {
    const ojson training = ojson::parse(training_config_json(model));
    ojson cc;
    cc["optimizer"] = k3_optimizer(training["optimizer_config"]);
    cc["loss"] = training["loss"];
    cc["loss_weights"] = nullptr;
    ojson metrics = ojson::array();
    for (const std::string& m : model.compile_options().metrics) {
      metrics.push_back(m == "accuracy" || m == "acc"              ? "accuracy"
                        : m == "mae" || m == "mean_absolute_error" ? "mae"
                                                                   : "top_k_categorical_accuracy");
    }
    cc["metrics"] = metrics;
    cc["weighted_metrics"] = nullptr;
    cc["run_eagerly"] = false;
    cc["steps_per_execution"] = 1;
    cc["jit_compile"] = false;
    root["compile_config"] = cc;
  }
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
  } else if (is("mae") || is("mean_absolute_error") || name == "MeanAbsoluteError") {
    key = "mae";
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
