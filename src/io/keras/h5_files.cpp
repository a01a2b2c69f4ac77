// Keras HDF5 model and weights files (layout in include/resnet/io.h and docs/file-formats.md):
// the .h5 side of save_model / load_model / save_weights / load_weights, optimizer_weights.
#include "io/keras/h5_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "core/atomic_file.h"
#include "core/fault_injection.h"
#include "io/hdf5/file.h"
#include "io/keras/config.h"
#include "resnet/error.h"
#include "resnet/io.h"

namespace resnet {

namespace {

constexpr const char* kPrefix = "resnet_";
constexpr const char* kKerasVersion = "2.4.0";
constexpr const char* kBackend = "tensorflow";

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty() || a == "/") return b;
  return a + "/" + b;
}

// "conv1/kernel:0" -> "kernel"; "conv1/kernel" -> "kernel".
std::string var_param_name(const std::string& var) {
  std::string s = var.substr(var.rfind('/') == std::string::npos ? 0 : var.rfind('/') + 1);
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos) s.resize(colon);
  return s;
}

std::string strip_colon(const std::string& s) {
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos && colon + 1 < s.size() &&
      s.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
    return s.substr(0, colon);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Writing

// Keras save_weights_to_hdf5_group: layer_names, backend, keras_version on `root`, one group per
// layer with weight_names and datasets <layer>/<layer>/<param>:0.
void write_layer_weights(h5::File& f, const std::string& root, Model& model) {
  std::vector<std::string> names;
  for (const auto& l : model.layers()) names.push_back(l->name());
  if (!root.empty()) f.create_group(root);
  f.write_strings(root, "layer_names", names);
  f.write_string(root, "backend", kBackend);
  f.write_string(root, "keras_version", kKerasVersion);
  for (const auto& l : model.layers()) {
    const std::string group = join_path(root, l->name());
    f.create_group(group);
    std::vector<std::string> weight_names;
    for (const Param& p : l->params()) weight_names.push_back(l->name() + "/" + p.name + ":0");
    f.write_strings(group, "weight_names", weight_names);
    for (const Param& p : l->params()) {
      f.write_f32(group + "/" + l->name() + "/" + p.name + ":0", p.value);
    }
  }
}

// "layer/param" of every trainable parameter, in trainable_params() order.
std::vector<std::string> trainable_var_names(Model& model) {
  std::map<const Param*, std::string> names;
  for (const auto& l : model.layers()) {
    for (const Param& p : l->params()) names[&p] = l->name() + "/" + p.name;
  }
  std::vector<std::string> out;
  for (const Param* p : model.trainable_params()) {
    auto it = names.find(p);
    out.push_back(it == names.end() ? fmt::format("param_{}", out.size()) : it->second);
  }
  return out;
}

// Keras save_optimizer_weights_to_hdf5_group: <Opt>/iter:0, then every slot kind for every
// variable (all m, then all v, ...), as TF2 names them.
void write_optimizer_weights(h5::File& f, Model& model) {
  Optimizer& opt = model.optimizer();
  const auto& slots = opt.slots();
  if (opt.iterations() == 0 && slots.empty()) return;  // Keras: no weights yet, no group
  const std::string cls = opt.class_name();
  const std::vector<std::string> vars = trainable_var_names(model);
  f.create_group("optimizer_weights");
  std::vector<std::string> names = {cls + "/iter:0"};
  f.write_i64("optimizer_weights/" + cls + "/iter:0", opt.iterations());
  std::vector<std::string> kinds;
  for (const auto& s : slots) {
    for (const auto& slot : s) {
      if (std::find(kinds.begin(), kinds.end(), slot.name) == kinds.end())
        kinds.push_back(slot.name);
    }
  }
  for (const std::string& kind : kinds) {
    for (size_t i = 0; i < slots.size() && i < vars.size(); ++i) {
      for (const auto& slot : slots[i]) {
        if (slot.name != kind) continue;
        const std::string name = cls + "/" + vars[i] + "/" + kind + ":0";
        f.write_f32("optimizer_weights/" + name, slot.value);
        names.push_back(name);
      }
    }
  }
  f.write_strings("optimizer_weights", "weight_names", names);
}

// resnet_<key> per attribute, and resnet_attributes listing the keys (so readers open
// attributes by name and never enumerate them: HDF5 1.10 can crash enumerating the attributes of
// a corrupt file, found by fuzz/fuzz_keras_h5.cpp).
void write_extra(h5::File& f, const std::map<std::string, std::string>& attrs) {
  if (attrs.empty()) return;
  std::vector<std::string> keys;
  for (const auto& [k, v] : attrs) {
    f.write_string("/", kPrefix + k, v, /*utf8=*/true);
    keys.push_back(k);
  }
  f.write_strings("/", std::string(kPrefix) + "attributes", keys);
}

// Creates `path` through a temporary file in the same folder; `fill` writes the content.
template <class Fill>
void write_h5_atomic(const std::string& path, Fill&& fill) {
  const std::string tmp = temp_path_for(path);
  try {
    h5::File f = h5::File::create(tmp);
    fill(f);
    f.close();
  } catch (const IoError& e) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    std::string msg = e.what();
    // Name the destination, not only the temporary file.
    if (msg.find(path) == std::string::npos || msg.find(tmp) != std::string::npos) {
      throw IoError(fmt::format("cannot save '{}': {}", path, msg));
    }
    throw;
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  commit_temp_file(tmp, path);
}

// ---------------------------------------------------------------------------------------------
// Reading

struct FileLayer {
  std::string name;
  std::string group;
  std::vector<std::string> weight_names;
};

std::vector<FileLayer> read_file_layers(const h5::File& f, const std::string& root) {
  std::vector<std::string> names;
  if (!f.read_split_strings(root, "layer_names", names)) {
    // Not written by Keras's saver: every subgroup is a layer.
    for (const std::string& c : f.children(root)) {
      if (f.is_group(join_path(root, c))) names.push_back(c);
    }
  }
  std::vector<FileLayer> out;
  for (const std::string& n : names) {
    FileLayer fl;
    fl.name = n;
    fl.group = join_path(root, n);
    if (!f.is_group(fl.group)) {
      throw IoError(fmt::format("'{}', '{}': layer_names lists '{}' but there is no such group",
                                f.path(), root.empty() ? "/" : root, n));
    }
    f.read_split_strings(fl.group, "weight_names", fl.weight_names);
    out.push_back(std::move(fl));
  }
  return out;
}

// The dataset of a weight name, tolerating a missing or extra ":0" (Keras 3 writes no suffix).
std::string weight_dataset(const h5::File& f, const FileLayer& fl, const std::string& var) {
  const std::string ds = fl.group + "/" + var;
  if (f.is_dataset(ds)) return ds;
  const std::string alt = strip_colon(var) != var ? fl.group + "/" + strip_colon(var) : ds + ":0";
  if (f.is_dataset(alt)) return alt;
  throw IoError(fmt::format("'{}', '{}': no such dataset (weight '{}' of layer '{}')", f.path(), ds,
                            var, fl.name));
}

struct Staged {
  Param* param;
  Tensor value;
};

// Reads the weights of file layer `fl` for model layer `l` into `staged`. Returns an empty string
// on success, else the reason of a mismatch (count or shape).
std::string stage_layer(const h5::File& f, const FileLayer& fl, Layer& l,
                        std::vector<Staged>& staged) {
  std::vector<std::string> vars = fl.weight_names;
  if (vars.empty()) {
    // No weight_names attribute: <layer>/<layer>/<param>:0 by parameter name.
    for (const Param& p : l.params()) {
      const std::string base = fl.group + "/" + l.name() + "/" + p.name;
      if (f.is_dataset(base + ":0"))
        vars.push_back(l.name() + "/" + p.name + ":0");
      else if (f.is_dataset(base))
        vars.push_back(l.name() + "/" + p.name);
    }
  }
  if (vars.size() != l.params().size()) {
    return fmt::format("layer '{}' ({}) has {} weights but the file's layer '{}' has {}", l.name(),
                       l.class_name(), l.params().size(), fl.name, vars.size());
  }
  // By parameter name when every name matches, else by position (Keras).
  std::vector<Param*> targets;
  for (const std::string& v : vars) {
    Param* match = nullptr;
    for (Param& p : l.params()) {
      if (p.name == var_param_name(v)) match = &p;
    }
    targets.push_back(match);
  }
  std::set<Param*> distinct(targets.begin(), targets.end());
  if (distinct.count(nullptr) || distinct.size() != targets.size()) {
    for (size_t i = 0; i < vars.size(); ++i) targets[i] = &l.params()[i];
  }
  std::vector<Staged> mine;
  for (size_t i = 0; i < vars.size(); ++i) {
    const std::string ds = weight_dataset(f, fl, vars[i]);
    // The shape first, so a damaged header never makes us allocate what it claims.
    const Shape file_shape(f.dataset_info(ds).dims);
    if (file_shape != targets[i]->value.shape()) {
      return fmt::format(
          "'{}': shape {} does not match the parameter '{}' of layer '{}' ({}) of "
          "shape {}",
          ds, file_shape.str(), targets[i]->name, l.name(), l.class_name(),
          targets[i]->value.shape().str());
    }
    mine.push_back({targets[i], f.read_f32(ds)});
  }
  for (auto& s : mine) staged.push_back(std::move(s));
  return {};
}

// Loads layer weights from `root` of `f` into `model`. `require_all`: every model layer with
// weights must be in the file (model files).
void load_layer_weights(const h5::File& f, const std::string& root, Model& model,
                        const LoadWeightsOptions& o, bool require_all, LoadWeightsReport& report) {
  const std::vector<FileLayer> file_layers = read_file_layers(f, root);
  std::vector<std::pair<Layer*, const FileLayer*>> pairs;
  if (o.by_name || require_all) {
    std::map<std::string, const FileLayer*> by_name;
    for (const FileLayer& fl : file_layers) by_name.emplace(fl.name, &fl);
    for (const auto& l : model.layers()) {
      if (l->params().empty()) continue;
      auto it = by_name.find(l->name());
      if (it == by_name.end()) {
        if (require_all) {
          throw IoError(fmt::format("'{}', '{}': no weights for layer '{}' ({})", f.path(),
                                    join_path(root, l->name()), l->name(), l->class_name()));
        }
        report.missing.push_back(l->name());
        continue;
      }
      pairs.emplace_back(l.get(), it->second);
    }
  } else {
    std::vector<const FileLayer*> with_weights;
    for (const FileLayer& fl : file_layers) {
      if (!fl.weight_names.empty()) with_weights.push_back(&fl);
    }
    std::vector<Layer*> model_layers;
    for (const auto& l : model.layers()) {
      if (!l->params().empty()) model_layers.push_back(l.get());
    }
    if (with_weights.size() != model_layers.size()) {
      throw IoError(fmt::format(
          "'{}': the file has {} layers with weights but model '{}' has {} (load by name with "
          "by_name=true to match the common layers)",
          f.path(), with_weights.size(), model.name(), model_layers.size()));
    }
    for (size_t i = 0; i < model_layers.size(); ++i)
      pairs.emplace_back(model_layers[i], with_weights[i]);
  }
  std::vector<Staged> staged;
  for (auto& [layer, fl] : pairs) {
    const std::string why = stage_layer(f, *fl, *layer, staged);
    if (why.empty()) {
      report.loaded.push_back(layer->name());
    } else if (o.skip_mismatch) {
      report.skipped.push_back(layer->name() + ": " + why);
    } else {
      throw IoError(fmt::format("'{}': {}", f.path(), why));
    }
  }
  // Everything checked: now change the model.
  for (Staged& s : staged) {
    s.param->value.copy_from(s.value);
    s.param->value.bump_version();
  }
}

// Slot kinds of an optimizer, in Keras's order, for positional matching of old files.
std::vector<std::string> slot_kinds_for(const std::string& cls, size_t count) {
  if (cls == "Adam" || cls == "AdamW") {
    if (count == 2) return {"m", "v"};
    if (count == 3) return {"m", "v", "vhat"};
  }
  if (cls == "SGD" && count == 1) return {"momentum"};
  if (cls == "RMSprop") {
    if (count == 1) return {"rms"};
    if (count == 2) return {"rms", "momentum"};
    if (count == 3) return {"rms", "momentum", "mg"};
  }
  return {};
}

// Restores iterations and slots from optimizer_weights. Returns false (changing nothing) when the
// file's optimizer state does not fit the model's optimizer.
bool restore_optimizer(const h5::File& f, Model& model, std::string& why) {
  std::vector<std::string> names;
  if (!f.read_split_strings("optimizer_weights", "weight_names", names) || names.empty()) {
    why = "no weight_names";
    return false;
  }
  Optimizer& opt = model.optimizer();
  const std::string cls = opt.class_name();
  const std::vector<std::string> vars = trainable_var_names(model);
  const auto params = model.trainable_params();
  std::map<std::string, size_t> var_index;
  for (size_t i = 0; i < vars.size(); ++i) var_index[vars[i]] = i;

  int64_t iterations = -1;
  std::vector<std::string> rest;
  for (const std::string& n : names) {
    const std::string s = strip_colon(n);
    if (s == "iter" || (s.size() > 5 && s.compare(s.size() - 5, 5, "/iter") == 0) ||
        s.ends_with("/iterations")) {
      iterations = f.read_i64("optimizer_weights/" + n);
    } else {
      rest.push_back(n);
    }
  }
  const std::string file_cls = names[0].substr(0, names[0].find('/'));
  if (file_cls != cls && file_cls != "training") {
    why = fmt::format("the file holds {} state, the model uses {}", file_cls, cls);
    return false;
  }
  std::vector<std::vector<Optimizer::Slot>> slots(params.size());
  // By name: <Opt>/<layer>/<param>/<slot>:0.
  bool by_name = true;
  for (const std::string& n : rest) {
    const std::string s = strip_colon(n);
    const size_t first = s.find('/'), last = s.rfind('/');
    if (first == std::string::npos || last <= first) {
      by_name = false;
      break;
    }
    auto it = var_index.find(s.substr(first + 1, last - first - 1));
    if (it == var_index.end()) {
      by_name = false;
      break;
    }
    slots[it->second].push_back({s.substr(last + 1), Tensor()});
  }
  std::vector<std::pair<size_t, std::string>> where(rest.size());  // param index, dataset name
  if (by_name) {
    for (auto& s : slots) s.clear();
    for (size_t k = 0; k < rest.size(); ++k) {
      const std::string s = strip_colon(rest[k]);
      const size_t first = s.find('/'), last = s.rfind('/');
      const size_t i = var_index.at(s.substr(first + 1, last - first - 1));
      where[k] = {i, s.substr(last + 1)};
    }
  } else {
    // Keras's own rule: by position, every slot kind for every variable in turn.
    if (params.empty() || rest.size() % params.size() != 0) {
      why = fmt::format("{} slot tensors for {} trainable variables", rest.size(), params.size());
      return false;
    }
    const auto kinds = slot_kinds_for(cls, rest.size() / params.size());
    if (kinds.empty()) {
      why = fmt::format("{} slots per variable do not fit {}", rest.size() / params.size(), cls);
      return false;
    }
    for (size_t k = 0; k < rest.size(); ++k) {
      where[k] = {k % params.size(), kinds[k / params.size()]};
    }
  }
  for (auto& s : slots) s.clear();
  for (size_t k = 0; k < rest.size(); ++k) {
    const auto& [i, kind] = where[k];
    const Shape file_shape(f.dataset_info("optimizer_weights/" + rest[k]).dims);
    if (file_shape != params[i]->value.shape()) {
      why = fmt::format("'optimizer_weights/{}' has shape {}, the variable {} has {}", rest[k],
                        file_shape.str(), vars[i], params[i]->value.shape().str());
      return false;
    }
    slots[i].push_back({kind, f.read_f32("optimizer_weights/" + rest[k])});
  }
  const size_t per = slots.empty() ? 0 : slots[0].size();
  for (const auto& s : slots) {
    if (s.size() != per) {
      why = "some variables have no optimizer slots";
      return false;
    }
  }
  opt.slots() = std::move(slots);
  if (iterations >= 0) opt.set_iterations(iterations);
  return true;
}

std::map<std::string, std::string> h5_attributes(const h5::File& f) {
  std::map<std::string, std::string> out;
  const std::string prefix = kPrefix;
  std::vector<std::string> keys;
  if (!f.read_split_strings("/", prefix + "attributes", keys)) return out;
  for (const std::string& k : keys) {
    if (!f.has_attr("/", prefix + k)) {
      throw IoError(
          fmt::format("'{}', '/': resnet_attributes lists '{}' but there is no "
                      "attribute '{}{}'",
                      f.path(), k, prefix, k));
    }
    std::string v;
    for (const std::string& p : f.read_strings("/", prefix + k)) v += p;
    out[k] = v;
  }
  return out;
}

std::string joined_attr(const h5::File& f, const std::string& name) {
  std::vector<std::string> parts;
  if (!f.read_split_strings("/", name, parts)) return {};
  std::string out;
  for (const std::string& p : parts) out += p;
  return out;
}

void maybe_restore_optimizer(const h5::File& f, Model& model, LoadWeightsReport& report) {
  if (!model.compiled() || !f.is_group("optimizer_weights")) return;
  std::string why;
  report.optimizer_restored = restore_optimizer(f, model, why);
  if (!report.optimizer_restored) {
    // Keras warns and starts with a fresh optimizer.
    std::fprintf(stderr,
                 "warning: '%s': optimizer state not restored (%s); training starts with "
                 "a fresh optimizer state\n",
                 f.path().c_str(), why.c_str());
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writing and reading whole files

namespace keras_detail {

void save_h5_model(Model& model, const std::string& path, bool include_optimizer,
                   const std::map<std::string, std::string>& extra_attributes) {
  const std::string config = keras_detail::model_config_json(model);
  const std::string training = model.compiled() ? keras_detail::training_config_json(model) : "";
  write_h5_atomic(path, [&](h5::File& f) {
    f.write_string("/", "keras_version", kKerasVersion, /*utf8=*/true);
    f.write_string("/", "backend", kBackend, /*utf8=*/true);
    f.write_string("/", "model_config", config);
    if (!training.empty()) f.write_string("/", "training_config", training);
    write_extra(f, extra_attributes);
    write_layer_weights(f, "model_weights", model);
    fault_point("model_weights");
    if (include_optimizer && model.compiled()) {
      write_optimizer_weights(f, model);
      fault_point("optimizer_weights");
    }
  });
}

Model load_h5_model(const std::string& path, bool compile) {
  const h5::File f = h5::File::open(path);
  const std::string config = joined_attr(f, "model_config");
  if (config.empty()) {
    throw IoError(fmt::format(
        "'{}' has no model_config attribute (a weights-only file, or not a Keras model)", path));
  }
  // The file must hold every weight: refuse configs that would allocate more than it can hold.
  std::error_code ec;
  const auto file_size = std::filesystem::file_size(path, ec);
  const int64_t max_params = ec ? -1 : static_cast<int64_t>(file_size / 4) + 1024;
  Model model = keras_detail::build_keras_model_from_json(config, path, max_params);
  LoadWeightsReport report;
  const std::string root = f.is_group("model_weights") ? "model_weights" : "";
  load_layer_weights(f, root, model, {.by_name = true}, /*require_all=*/true, report);
  if (compile) {
    const std::string training = joined_attr(f, "training_config");
    if (!training.empty()) {
      CompileOptions co = keras_detail::compile_options_from_training_config(training, path);
      try {
        model.compile(std::move(co));
      } catch (const ConfigError& e) {
        throw IoError(
            fmt::format("'{}': cannot compile with its training_config: {}", path, e.what()));
      }
      maybe_restore_optimizer(f, model, report);
    }
  }
  return model;
}

std::map<std::string, std::string> read_h5_attributes(const std::string& path) {
  return h5_attributes(h5::File::open(path));
}

void save_h5_weights(Model& model, const std::string& path,
                     const std::map<std::string, std::string>& attributes, bool include_optimizer) {
  write_h5_atomic(path, [&](h5::File& f) {
    write_layer_weights(f, "", model);
    write_extra(f, attributes);
    if (include_optimizer && model.compiled()) write_optimizer_weights(f, model);
  });
}

std::map<std::string, std::string> load_h5_weights(Model& model, const std::string& path,
                                                   const LoadWeightsOptions& o,
                                                   LoadWeightsReport& report) {
  const h5::File f = h5::File::open(path);
  std::string root;
  if (f.has_attr("/", "layer_names") || f.has_attr("/", "layer_names0")) {
    root = "";
  } else if (f.is_group("model_weights")) {
    root = "model_weights";
  } else {
    throw IoError(
        fmt::format("'{}': neither a layer_names attribute nor a model_weights group; "
                    "not a Keras weights or model file",
                    path));
  }
  load_layer_weights(f, root, model, o, /*require_all=*/false, report);
  if (o.optimizer) maybe_restore_optimizer(f, model, report);
  return h5_attributes(f);
}

}  // namespace keras_detail
}  // namespace resnet
