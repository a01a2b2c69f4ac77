// Keras 2.x HDF5 models (model.save('x.h5')): the graph from the root attribute `model_config`,
// the weights from the group `model_weights` (KERAS.md §3).
#include "io/keras_h5.h"

#include <fmt/format.h>
#include <hdf5.h>

#include <array>
#include <deque>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/layers.h"

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
    if (c.value("groups", 1) != 1) fail_layer(where, name, cls, "grouped convolutions (groups != 1) are not supported");
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
        if (a.size() != 1) fail_layer(where, name, cls, "normalization over several axes is not supported");
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
    if (!plain) fail_layer(where, name, cls, "max_value, negative_slope and threshold are not supported");
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

// The source layer of an inbound entry ["name", node_index, tensor_index, {kwargs}].
std::string inbound_source(const json& entry, const std::string& where, const std::string& name,
                           const std::string& cls) {
  if (!entry.is_array() || entry.empty() || !entry[0].is_string()) {
    fail_layer(where, name, cls, fmt::format("malformed inbound node {}", entry.dump()));
  }
  if ((entry.size() > 1 && entry[1] != 0) || (entry.size() > 2 && entry[2] != 0)) {
    fail_layer(where, name, cls, "shared layers (node or tensor index != 0) are not supported");
  }
  return entry[0].get<std::string>();
}

}  // namespace

namespace keras_detail {

Model build_keras_model_from_json(const std::string& text, const std::string& where) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    throw IoError(fmt::format("'{}': model_config is not valid JSON: {}", where, e.what()));
  }
  std::string cur_name = "?", cur_cls = "?";
  try {
    const std::string top = root.value("class_name", std::string());
    if (top != "Functional" && top != "Model") {
      throw IoError(fmt::format(
          "'{}': unsupported model class '{}' (only Functional/Model graphs are supported)", where,
          top));
    }
    const json& cfg = root.at("config");
    const json& layers = cfg.at("layers");
    const std::string model_name = cfg.value("name", std::string("model"));

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
      if (nodes.size() > 1) fail_layer(where, s.name, s.cls, "shared layers (several inbound nodes) are not supported");
      if (!nodes.empty()) {
        for (const json& e : nodes[0]) s.sources.push_back(inbound_source(e, where, s.name, s.cls));
      }
      if (!index.emplace(s.name, specs.size()).second) {
        throw IoError(fmt::format("'{}': duplicate layer name '{}'", where, s.name));
      }
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
    std::map<std::string, SymTensor> tensors;
    size_t done = 0;
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
          if (!shape[d].is_number_integer()) fail_layer(where, s.name, s.cls, "dynamic input dimensions are not supported");
          dims.push_back(shape[d].get<int64_t>());
        }
        out = Input(Shape(dims), s.name);
      } else {
        if (s.sources.empty()) fail_layer(where, s.name, s.cls, "the layer has no inbound node");
        std::vector<SymTensor> ins;
        for (const std::string& src : s.sources) ins.push_back(tensors.at(src));
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
    auto endpoints = [&](const char* key) {
      std::vector<SymTensor> out;
      for (const json& e : cfg.at(key)) {
        const std::string n = e.at(0).get<std::string>();
        auto it = tensors.find(n);
        if (it == tensors.end()) {
          throw IoError(fmt::format("'{}': {} names unknown layer '{}'", where, key, n));
        }
        out.push_back(it->second);
      }
      return out;
    };
    std::vector<SymTensor> inputs = endpoints("input_layers");
    std::vector<SymTensor> outputs = endpoints("output_layers");
    try {
      return Model(std::move(inputs), std::move(outputs), model_name);
    } catch (const IoError&) {
      throw;
    } catch (const Error& e) {
      throw IoError(fmt::format("'{}': {}", where, e.what()));
    }
  } catch (const json::exception& e) {
    throw IoError(fmt::format("'{}': malformed model_config at layer '{}' ({}): {}", where,
                              cur_name, cur_cls, e.what()));
  }
}

}  // namespace keras_detail

namespace {

// ---------------------------------------------------------------------------------------------
// HDF5

template <herr_t (*Close)(hid_t)>
class H5Handle {
 public:
  H5Handle() = default;
  explicit H5Handle(hid_t id) : id_(id) {}
  ~H5Handle() {
    if (id_ >= 0) Close(id_);
  }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using H5File = H5Handle<H5Fclose>;
using H5Dataset = H5Handle<H5Dclose>;
using H5Space = H5Handle<H5Sclose>;
using H5Type = H5Handle<H5Tclose>;
using H5Attr = H5Handle<H5Aclose>;
using H5Object = H5Handle<H5Oclose>;

// True when `path` ("a/b/c") names an object under `loc` (checked link by link, as H5Lexists
// needs every intermediate group to exist).
bool path_exists(hid_t loc, const std::string& path) {
  std::string prefix;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash - start);
    if (!part.empty()) {
      prefix += (prefix.empty() ? "" : "/") + part;
      if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return !prefix.empty();
}

// A string attribute (scalar or 1-D; fixed- or variable-length strings). An empty array of any
// type gives no strings. Throws IoError (prefixed with `what`) otherwise.
std::vector<std::string> read_string_attr(hid_t obj, const std::string& attr_name,
                                          const std::string& what) {
  H5Attr attr(H5Aopen(obj, attr_name.c_str(), H5P_DEFAULT));
  if (!attr.valid()) throw IoError(fmt::format("{}: cannot open attribute '{}'", what, attr_name));
  H5Space space(H5Aget_space(attr.get()));
  H5Type type(H5Aget_type(attr.get()));
  if (!space.valid() || !type.valid()) {
    throw IoError(fmt::format("{}: cannot read attribute '{}'", what, attr_name));
  }
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > (1 << 24)) {
    throw IoError(fmt::format("{}: attribute '{}' has a bad size", what, attr_name));
  }
  if (n == 0) return {};
  if (H5Tget_class(type.get()) != H5T_STRING) {
    throw IoError(fmt::format("{}: attribute '{}' is not a string", what, attr_name));
  }
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.get()) > 0) {
    H5Type mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    if (H5Aread(attr.get(), mem.get(), ptrs.data()) < 0) {
      throw IoError(fmt::format("{}: cannot read attribute '{}'", what, attr_name));
    }
    for (char* p : ptrs) {
      out.emplace_back(p ? p : "");
      if (p) H5free_memory(p);
    }
  } else {
    const size_t size = H5Tget_size(type.get());
    if (size == 0 || size > (size_t{1} << 30) / static_cast<size_t>(n)) {
      throw IoError(fmt::format("{}: attribute '{}' has a bad string size", what, attr_name));
    }
    std::string buf(size * static_cast<size_t>(n), '\0');
    if (H5Aread(attr.get(), type.get(), buf.data()) < 0) {
      throw IoError(fmt::format("{}: cannot read attribute '{}'", what, attr_name));
    }
    for (hssize_t i = 0; i < n; ++i) {
      std::string s = buf.substr(static_cast<size_t>(i) * size, size);
      const size_t nul = s.find('\0');
      if (nul != std::string::npos) s.resize(nul);
      while (!s.empty() && s.back() == ' ') s.pop_back();  // space-padded strings
      out.push_back(std::move(s));
    }
  }
  return out;
}

// `weight_names` of a layer group: also accepts the split form weight_names0, weight_names1, ...
// Returns nullopt-like empty + false when the group has no such attribute.
bool read_weight_names(hid_t group, const std::string& what, std::vector<std::string>& out) {
  if (H5Aexists(group, "weight_names") > 0) {
    out = read_string_attr(group, "weight_names", what);
    return true;
  }
  bool any = false;
  for (int i = 0;; ++i) {
    const std::string key = fmt::format("weight_names{}", i);
    if (H5Aexists(group, key.c_str()) <= 0) break;
    for (auto& s : read_string_attr(group, key, what)) out.push_back(std::move(s));
    any = true;
  }
  return any;
}

// The parameter name of a Keras variable name: "conv1/kernel:0" -> "kernel".
std::string param_name_of(const std::string& var) {
  std::string s = var.substr(var.rfind('/') == std::string::npos ? 0 : var.rfind('/') + 1);
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos) s.resize(colon);
  return s;
}

// Reads the float dataset at `path` into `param` (shapes must match exactly).
void read_param(hid_t file, const std::string& file_path, const std::string& path, Param& param) {
  auto fail = [&](const std::string& what) -> void {
    throw IoError(fmt::format("'{}', dataset '{}': {}", file_path, path, what));
  };
  H5Dataset d(H5Dopen2(file, path.c_str(), H5P_DEFAULT));
  if (!d.valid()) fail("cannot open the dataset (not a dataset, or corrupt)");
  H5Type type(H5Dget_type(d.get()));
  if (!type.valid() || H5Tget_class(type.get()) != H5T_FLOAT) fail("not a floating-point dataset");
  H5Space space(H5Dget_space(d.get()));
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0 || rank > 8) fail("cannot read its dataspace");
  std::vector<hsize_t> h(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), h.data(), nullptr);
  std::vector<int64_t> dims(h.begin(), h.end());
  const Shape file_shape(dims);
  if (!(file_shape == param.value.shape())) {
    fail(fmt::format("shape {} does not match the parameter '{}' of shape {}",
                     file_shape.str(), param.name, param.value.shape().str()));
  }
  Tensor t(file_shape, DType::F32);
  if (t.numel() > 0 &&
      H5Dread(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.f32()) < 0) {
    fail("cannot read the data (truncated or corrupt file)");
  }
  param.value.copy_from(t);
}

}  // namespace

Model load_keras_model(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw IoError(fmt::format("cannot read '{}': no such file", path));
  }
  if (H5Fis_hdf5(path.c_str()) <= 0) throw IoError(fmt::format("'{}' is not an HDF5 file", path));
  H5File file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) {
    throw IoError(fmt::format("cannot open HDF5 file '{}' (truncated or corrupt)", path));
  }
  const std::string where = fmt::format("'{}'", path);
  if (H5Aexists(file.get(), "model_config") <= 0) {
    throw IoError(fmt::format(
        "'{}' has no model_config attribute (a weights-only file, or not a Keras model)", path));
  }
  const auto config = read_string_attr(file.get(), "model_config", where);
  if (config.size() != 1) {
    throw IoError(fmt::format("'{}': model_config is not a single string", path));
  }
  Model model = keras_detail::build_keras_model_from_json(config[0], path);

  // Weights: model_weights/<layer>/..., or the root for files laid out without the group.
  const std::string prefix = path_exists(file.get(), "model_weights") ? "model_weights/" : "";
  for (const auto& layer : model.layers()) {
    if (layer->params().empty()) continue;
    const std::string group_path = prefix + layer->name();
    if (!path_exists(file.get(), group_path)) {
      throw IoError(fmt::format("'{}', group '{}': no weights for layer '{}' ({})", path,
                                group_path, layer->name(), layer->class_name()));
    }
    H5Object group(H5Oopen(file.get(), group_path.c_str(), H5P_DEFAULT));
    if (!group.valid()) {
      throw IoError(fmt::format("'{}', group '{}': cannot open it", path, group_path));
    }
    std::vector<std::string> names;
    read_weight_names(group.get(), fmt::format("'{}', group '{}'", path, group_path), names);
    std::set<std::string> loaded;
    for (const std::string& var : names) {
      const std::string pname = param_name_of(var);
      const std::string ds = group_path + "/" + var;
      Param* param = nullptr;
      for (Param& p : layer->params()) {
        if (p.name == pname) param = &p;
      }
      if (!param) {
        throw IoError(fmt::format("'{}', dataset '{}': layer '{}' ({}) has no parameter '{}'",
                                  path, ds, layer->name(), layer->class_name(), pname));
      }
      std::string found = ds;
      if (!path_exists(file.get(), found)) {
        // Tolerate a weight_names entry with or without the ":0" suffix.
        const std::string alt = var.find(':') != std::string::npos
                                    ? group_path + "/" + var.substr(0, var.rfind(':'))
                                    : ds + ":0";
        if (!path_exists(file.get(), alt)) {
          throw IoError(fmt::format("'{}', dataset '{}': no such dataset", path, ds));
        }
        found = alt;
      }
      read_param(file.get(), path, found, *param);
      loaded.insert(pname);
    }
    // Parameters not listed in weight_names: <layer>/<layer>/<param>:0, or without ":0".
    for (Param& p : layer->params()) {
      if (loaded.count(p.name)) continue;
      const std::string ds = group_path + "/" + layer->name() + "/" + p.name + ":0";
      const std::string alt = group_path + "/" + layer->name() + "/" + p.name;
      if (path_exists(file.get(), ds)) {
        read_param(file.get(), path, ds, p);
      } else if (path_exists(file.get(), alt)) {
        read_param(file.get(), path, alt, p);
      } else {
        throw IoError(fmt::format("'{}', dataset '{}': no such dataset (parameter '{}' of layer "
                                  "'{}' ({}))",
                                  path, ds, p.name, layer->name(), layer->class_name()));
      }
    }
  }
  return model;
}

}  // namespace resnet
