// Keras 3 native model files (.keras): a zip of metadata.json, config.json and model.weights.h5
// (weights under layers/<object name>/vars/<i>, the optimizer under optimizer/vars/<i>).
#include "io/keras/keras_file.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "io/hdf5/file.h"
#include "io/keras/config.h"
#include "io/zip/zip.h"
#include "resnet/error.h"
#include "resnet/io.h"

namespace resnet::keras_detail {

namespace {
using json = nlohmann::json;
namespace fs = std::filesystem;
// The Keras version whose .keras layout the writer reproduces (the shared real file's).
constexpr const char* kKerasVersion = "3.13.2";
// resnet.cpp's own metadata (zoo model, preprocessing, class names), which Keras ignores.
constexpr const char* kAttributesMember = "resnet_attributes.json";

// The weights member, written to a file of its own for libhdf5 (and its pre-flight child), removed
// again when the load ends.
class TempWeights {
 public:
  explicit TempWeights(const std::string& bytes) {
    static std::atomic<int> counter{0};
    path_ = (fs::temp_directory_path() /
             fmt::format("resnet-keras-{}-{}.weights.h5", static_cast<long>(::getpid()), counter++))
                .string();
    std::ofstream f(path_, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.close();
    if (!f) {
      std::error_code ec;
      fs::remove(path_, ec);
      throw IoError(fmt::format("cannot write a temporary file '{}'", path_));
    }
  }
  ~TempWeights() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  TempWeights(const TempWeights&) = delete;
  TempWeights& operator=(const TempWeights&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Keras's object name of a layer in model.weights.h5: its class in snake case, made unique in
// the order of model.layers (dense, dense_1, ...; InputLayer -> input_layer).
std::string snake_case(const std::string& cls) {
  std::string out;
  for (size_t i = 0; i < cls.size(); ++i) {
    const char c = cls[i];
    if (std::isupper(static_cast<unsigned char>(c))) {
      const bool prev_lower = i > 0 && std::islower(static_cast<unsigned char>(cls[i - 1]));
      const bool next_lower =
          i + 1 < cls.size() && std::islower(static_cast<unsigned char>(cls[i + 1]));
      const bool prev_upper = i > 0 && std::isupper(static_cast<unsigned char>(cls[i - 1]));
      if (i > 0 && (prev_lower || (prev_upper && next_lower))) out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

std::string member_error(const std::string& path, const std::string& member, const char* what) {
  return fmt::format("{}: member '{}': {}", path, member, what);
}

json parse_member(const std::string& path, const std::string& member, const std::string& text) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) throw IoError(member_error(path, member, "not a JSON object"));
    return j;
  } catch (const json::exception& e) {
    throw IoError(fmt::format("{}: member '{}' is not valid JSON: {}", path, member, e.what()));
  }
}

struct Staged {
  Param* param;
  Tensor value;
};

// Keras 3 compile_config -> the Keras 2 training_config that compile_options_from_training_config
// reads (the same names for optimizer, loss and metrics).
std::string training_config_from(const json& cc) {
  json t = json::object();
  t["loss"] = cc.value("loss", json());
  t["metrics"] = cc.value("metrics", json());
  const json opt = cc.value("optimizer", json());
  if (opt.is_string()) {
    t["optimizer_config"] = {{"class_name", opt}, {"config", json::object()}};
  } else {
    t["optimizer_config"] = opt;
  }
  return t.dump();
}
bool restore_keras3_optimizer(const h5::File& f, Model& model, const std::string& where) {
  if (!f.is_group("optimizer/vars")) return false;
  Optimizer& opt = model.optimizer();
  const std::string cls = opt.class_name();
  const auto params = model.trainable_params();
  const size_t n = f.children("optimizer/vars").size();
  // iterations, learning_rate, then the slots of each trainable variable in turn (Adam: m, v).
  std::vector<std::string> kinds;
  if (cls == "Adam" || cls == "AdamW") kinds = {"m", "v"};
  if (cls == "SGD") kinds = {"momentum"};
  if (kinds.empty() || n < 2) {
    std::fprintf(stderr, "warning: %s: %s state not restored; training starts afresh\n",
                 where.c_str(), cls.c_str());
    return false;
  }
  if (cls == "SGD" && n == 2) return false;  // SGD without momentum keeps no slots
  if (n != 2 + kinds.size() * params.size()) {
    std::fprintf(stderr,
                 "warning: %s: optimizer/vars holds %zu variables, %s of %zu trainable variables "
                 "needs %zu; training starts with a fresh optimizer state\n",
                 where.c_str(), n, cls.c_str(), params.size(), 2 + kinds.size() * params.size());
    return false;
  }
  std::vector<std::vector<Optimizer::Slot>> slots(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    for (size_t k = 0; k < kinds.size(); ++k) {
      const std::string ds = fmt::format("optimizer/vars/{}", 2 + i * kinds.size() + k);
      const Shape s(f.dataset_info(ds).dims);
      if (s != params[i]->value.shape()) {
        throw IoError(fmt::format("{}: '{}' has shape {}, the trainable variable {} has {}", where,
                                  ds, s.str(), i, params[i]->value.shape().str()));
      }
      slots[i].push_back({kinds[k], f.read_f32(ds)});
    }
  }
  opt.slots() = std::move(slots);
  opt.set_iterations(f.read_i64("optimizer/vars/0"));
  return true;
}
}  // namespace

void save_keras_file(Model& model, const std::string& path, bool include_optimizer,
                     const std::map<std::string, std::string>& attributes) {
  const std::string config = keras3_config_json(model);
  // model.weights.h5, written to a temporary file first (libhdf5 writes files).
  const std::string tmp =
      (fs::temp_directory_path() / fmt::format("resnet-keras-save-{}-{}.weights.h5",
                                               static_cast<long>(::getpid()),
                                               reinterpret_cast<uintptr_t>(&model)))
          .string();
  std::string weights;
  try {
    h5::File f = h5::File::create(tmp);
    f.create_group("layers");
    std::map<std::string, int> seen;
    for (const auto& l : model.layers()) {
      const std::string base = snake_case(l->class_name());
      const int k = seen[base]++;
      const std::string vars =
          fmt::format("layers/{}/vars", k == 0 ? base : fmt::format("{}_{}", base, k));
      f.create_group(vars);
      f.write_string(vars, "name", l->name(), /*utf8=*/true);
      for (size_t i = 0; i < l->params().size(); ++i) {
        f.write_f32(fmt::format("{}/{}", vars, i), l->params()[i].value);
      }
    }
    if (include_optimizer && model.compiled()) {
      Optimizer& opt = model.optimizer();
      std::string name = opt.class_name();
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      f.create_group("optimizer/vars");
      f.write_string("optimizer/vars", "name", name, /*utf8=*/true);
      f.write_i64("optimizer/vars/0", opt.iterations());
      f.write_f32("optimizer/vars/1",
                  Tensor::full(Shape{}, static_cast<float>(opt.learning_rate())));
      int index = 2;
      for (const auto& slots : opt.slots()) {
        for (const Optimizer::Slot& s : slots)
          f.write_f32(fmt::format("optimizer/vars/{}", index++), s.value);
      }
    }
    f.create_group("vars");
    f.write_string("vars", "name", model.name(), /*utf8=*/true);
    f.close();
    std::ifstream in(tmp, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    weights = ss.str();
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::remove(tmp, ec);
  zip_detail::ZipWriter zip;
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", std::gmtime(&now));
  json meta = {{"keras_version", kKerasVersion}, {"date_saved", date}};
  zip.add("metadata.json", meta.dump());
  zip.add("config.json", config);
  zip.add("model.weights.h5", weights);
  if (!attributes.empty()) {
    nlohmann::ordered_json a = nlohmann::ordered_json::object();
    for (const auto& [k, v] : attributes) a[k] = v;
    zip.add(kAttributesMember, a.dump(1));
  }
  write_file_atomic(path, zip.finish());
}

std::map<std::string, std::string> read_keras_attributes(const std::string& path) {
  zip_detail::ZipReader zip(path);
  std::map<std::string, std::string> out;
  if (zip.find(kAttributesMember) == nullptr) return out;
  const json j = parse_member(path, kAttributesMember, zip.read(kAttributesMember));
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

Model load_keras_file(const std::string& path, bool compile, KerasFileInfo* info) {
  zip_detail::ZipReader zip(path);
  for (const char* m : {"metadata.json", "config.json", "model.weights.h5"}) {
    if (zip.find(m) == nullptr) {
      throw IoError(
          fmt::format("{}: not a Keras .keras file: the archive has no member '{}'", path, m));
    }
  }
  const json meta = parse_member(path, "metadata.json", zip.read("metadata.json"));
  const std::string version = meta.value("keras_version", std::string());
  if (info) info->keras_version = version;
  const std::string config = zip.read("config.json");
  const json cfg = parse_member(path, "config.json", config);
  const zip_detail::ZipMember& wm = *zip.find("model.weights.h5");
  // float16 weights take 2 bytes each: the config may not ask for more than the member holds.
  const int64_t max_params = static_cast<int64_t>(wm.size / 2) + 1024;
  Model model = build_keras_model_from_json(config, path + ", member 'config.json'", max_params);
  const TempWeights tmp(zip.read(wm));
  const std::string where = path + ", member 'model.weights.h5'";
  try {
    const h5::File f = h5::File::open(tmp.path());
    // The file's layer groups by the layer name their vars record, else by Keras's object name.
    std::map<std::string, std::string> group_of;
    if (f.is_group("layers")) {
      for (const std::string& g : f.children("layers")) {
        const std::string vars = "layers/" + g + "/vars";
        std::string name;
        if (f.is_group(vars) && f.has_attr(vars, "name")) {
          const auto names = f.read_strings(vars, "name");
          if (!names.empty()) name = names[0];
        }
        if (!name.empty()) group_of.emplace(name, "layers/" + g);
        group_of.emplace("\x01" + g, "layers/" + g);  // by object name
      }
    }
    std::map<std::string, int> seen;
    std::vector<Staged> staged;
    for (const auto& l : model.layers()) {
      const std::string base = snake_case(l->class_name());
      const int k = seen[base]++;
      const std::string object = k == 0 ? base : fmt::format("{}_{}", base, k);
      if (l->params().empty()) continue;
      auto it = group_of.find(l->name());
      if (it == group_of.end()) it = group_of.find("\x01" + object);
      if (it == group_of.end()) {
        throw IoError(fmt::format("{}: no weights for layer '{}' ({}; group layers/{})", where,
                                  l->name(), l->class_name(), object));
      }
      const std::string vars = it->second + "/vars";
      const size_t count = f.is_group(vars) ? f.children(vars).size() : 0;
      if (count != l->params().size()) {
        throw IoError(fmt::format("{}: '{}' holds {} variables, layer '{}' ({}) has {}", where,
                                  vars, count, l->name(), l->class_name(), l->params().size()));
      }
      for (size_t i = 0; i < count; ++i) {
        Param& p = l->params()[i];
        const std::string ds = fmt::format("{}/{}", vars, i);
        if (!f.is_dataset(ds)) throw IoError(fmt::format("{}: no dataset '{}'", where, ds));
        const Shape s(f.dataset_info(ds).dims);
        if (s != p.value.shape()) {
          throw IoError(fmt::format("{}: '{}' has shape {}, parameter '{}' of layer '{}' has {}",
                                    where, ds, s.str(), p.name, l->name(), p.value.shape().str()));
        }
        staged.push_back({&p, f.read_f32(ds)});
      }
    }
    for (Staged& s : staged) {
      s.param->value.copy_from(s.value);
      s.param->value.bump_version();
    }
    if (compile && cfg.contains("compile_config") && cfg["compile_config"].is_object()) {
      CompileOptions co = compile_options_from_training_config(
          training_config_from(cfg["compile_config"]), path + ", member 'config.json'");
      try {
        model.compile(std::move(co));
      } catch (const ConfigError& e) {
        throw IoError(
            fmt::format("{}: cannot compile with its compile_config: {}", path, e.what()));
      }
      const bool restored = restore_keras3_optimizer(f, model, where);
      if (info) info->optimizer_restored = restored;
    }
  } catch (const IoError& e) {
    // Messages of the HDF5 layer name the temporary file: name the archive and member instead.
    std::string msg = e.what();
    const size_t at = msg.find(tmp.path());
    if (at == std::string::npos) throw;
    msg.replace(at, tmp.path().size(), where);
    throw IoError(msg);
  }
  return model;
}

void load_keras_weights(Model& model, const std::string& path, const LoadWeightsOptions& options,
                        LoadWeightsReport& report) {
  const Model file = load_keras_file(path, /*compile=*/false);
  std::vector<std::pair<Param*, const Tensor*>> plan;
  for (const auto& l : model.layers()) {
    if (l->params().empty()) continue;
    const Layer* src = nullptr;
    for (const auto& fl : file.layers()) {
      if (fl->name() == l->name()) src = fl.get();
    }
    std::string why;
    if (src == nullptr) {
      why = "not in the file";
    } else if (src->params().size() != l->params().size()) {
      why = fmt::format("{} weights in the file, {} in the model", src->params().size(),
                        l->params().size());
    } else {
      for (size_t i = 0; i < src->params().size() && why.empty(); ++i) {
        if (src->params()[i].value.shape() != l->params()[i].value.shape()) {
          why =
              fmt::format("'{}' has shape {} in the file, {} in the model", l->params()[i].name,
                          src->params()[i].value.shape().str(), l->params()[i].value.shape().str());
        }
      }
    }
    if (!why.empty()) {
      if (src == nullptr && options.by_name) {
        report.missing.push_back(l->name());
        continue;
      }
      if (options.skip_mismatch && src != nullptr) {
        report.skipped.push_back(l->name() + ": " + why);
        continue;
      }
      throw IoError(fmt::format("{}: layer '{}': {}", path, l->name(), why));
    }
    for (size_t i = 0; i < src->params().size(); ++i) {
      plan.emplace_back(&l->params()[i], &src->params()[i].value);
    }
    report.loaded.push_back(l->name());
  }
  for (auto& [p, v] : plan) {
    p->value.copy_from(*v);
    p->value.bump_version();
  }
}

}  // namespace resnet::keras_detail
