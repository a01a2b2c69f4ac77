// Layer base: parameters, naming, and connecting layers into a graph (shape inference at build
// time, Keras style).
#include <fmt/format.h>

#include <cctype>
#include <limits>
#include <map>
#include <mutex>
#include <regex>
#include <string>

#include "ops/ops.h"
#include "resnet/layers.h"

namespace resnet {

// ---------------------------------------------------------------------------------------------
// Process-wide state: the global generator and the automatic-name counters.

namespace {

std::mutex& global_rng_mutex() {
  static std::mutex m;
  return m;
}

Rng& global_rng_storage() {
  // Seed 0 by default, so a program that never seeds is still reproducible.
  static Rng rng(0);
  return rng;
}

struct NameCounters {
  std::mutex mutex;
  std::map<std::string, int64_t> zero_based;  // conv2d, conv2d_1, ...
  std::map<std::string, int64_t> one_based;   // input_1, input_2, ...
};

NameCounters& name_counters() {
  static NameCounters c;
  return c;
}

// Keras's generic_utils.to_snake_case: Conv2D -> conv2d, ReLU -> re_lu,
// MaxPooling2D -> max_pooling2d, BatchNormalization -> batch_normalization.
std::string to_snake_case(const std::string& name) {
  static const std::regex kFirst("(.)([A-Z][a-z0-9]+)");
  static const std::regex kSecond("([a-z])([A-Z])");
  std::string s = std::regex_replace(name, kFirst, "$1_$2");
  s = std::regex_replace(s, kSecond, "$1_$2");
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Keras names graph inputs with a one-based counter (input_1, input_2, ...), unlike layers.
std::string unique_input_name() {
  NameCounters& c = name_counters();
  std::lock_guard lock(c.mutex);
  int64_t n = ++c.one_based["input"];
  return fmt::format("input_{}", n);
}

}  // namespace

void set_global_seed(uint64_t seed) {
  std::lock_guard lock(global_rng_mutex());
  global_rng_storage() = Rng(seed);
}

Rng& global_rng() { return global_rng_storage(); }

void reset_name_counters() {
  NameCounters& c = name_counters();
  std::lock_guard lock(c.mutex);
  c.zero_based.clear();
  c.one_based.clear();
}

std::string unique_layer_name(const std::string& prefix) {
  NameCounters& c = name_counters();
  std::lock_guard lock(c.mutex);
  int64_t n = c.zero_based[prefix]++;
  return n == 0 ? prefix : fmt::format("{}_{}", prefix, n);
}

// ---------------------------------------------------------------------------------------------
// SymTensor

const Shape& SymTensor::shape() const {
  if (!node_) throw ConfigError("undefined symbolic tensor has no shape");
  return node_->shape;
}

Layer& SymTensor::layer() const {
  if (!node_) throw ConfigError("undefined symbolic tensor has no layer");
  return *node_->layer;
}

// ---------------------------------------------------------------------------------------------
// Layer

Layer::Layer(std::string class_name, std::string name)
    : class_name_(std::move(class_name)), name_(std::move(name)) {
  if (name_.empty()) {
    name_ = class_name_ == "InputLayer" ? unique_input_name()
                                        : unique_layer_name(to_snake_case(class_name_));
  }
}

Layer::~Layer() = default;

void Layer::set_trainable(bool t) { trainable_ = t; }

Tensor to_plain(const Tensor& t) { return ops::plain(t); }

Config Layer::config() const {
  Config c;
  c.set("name", name_).set("trainable", trainable_).set("dtype", "float32");
  return c;
}

Param& Layer::param(std::string_view name) {
  for (Param& p : params_) {
    if (p.name == name) return p;
  }
  throw ConfigError(fmt::format("{} has no parameter '{}'", where(), name));
}

const Param& Layer::param(std::string_view name) const {
  return const_cast<Layer*>(this)->param(name);
}

int64_t Layer::count_params() const {
  int64_t n = 0;
  for (const Param& p : params_) n += p.value.numel();
  return n;
}

int64_t Layer::count_trainable_params() const {
  if (!trainable_) return 0;
  int64_t n = 0;
  for (const Param& p : params_) {
    if (p.trainable) n += p.value.numel();
  }
  return n;
}

Param& Layer::add_param(const std::string& name, Shape shape, const Initializer& init,
                        int64_t fan_in, int64_t fan_out, bool trainable) {
  for (const Param& p : params_) {
    if (p.name == name)
      throw ConfigError(fmt::format("{} already has a parameter '{}'", where(), name));
  }
  Param p;
  p.name = name;
  p.value = Tensor::empty(shape);
  init.fill(p.value, fan_in, fan_out);
  p.trainable = trainable;
  params_.push_back(std::move(p));
  return params_.back();
}

std::string Layer::where() const { return fmt::format("layer '{}' ({})", name_, class_name_); }

SymTensor Layer::operator()(const SymTensor& x) { return (*this)(std::vector<SymTensor>{x}); }

SymTensor Layer::operator()(const std::vector<SymTensor>& xs) {
  if (connected_) {
    throw ConfigError(fmt::format("layer '{}' is already connected; create a new layer", name_));
  }
  const int n = static_cast<int>(xs.size());
  if (n < min_inputs() || n > max_inputs()) {
    std::string expected = min_inputs() == max_inputs() ? std::to_string(min_inputs())
                           : max_inputs() == std::numeric_limits<int>::max()
                               ? fmt::format("at least {}", min_inputs())
                               : fmt::format("{} to {}", min_inputs(), max_inputs());
    throw ConfigError(fmt::format("{}: expects {} input{}, got {}", where(), expected,
                                  expected == "1" ? "" : "s", n));
  }
  std::vector<Shape> shapes;
  shapes.reserve(xs.size());
  for (int i = 0; i < n; ++i) {
    if (!xs[i].defined()) {
      throw ConfigError(fmt::format("{}: input {} is an undefined symbolic tensor", where(), i));
    }
    shapes.push_back(xs[i].shape());
  }
  Shape out;
  try {
    out = infer(shapes);
  } catch (const ShapeError& e) {
    if (n < 2) throw;
    // With several inputs, say where each came from: the mismatch is between those layers.
    std::string from;
    for (int i = 0; i < n; ++i) {
      if (i) from += ", ";
      from += fmt::format("layer '{}' {}", xs[i].layer().name(), shapes[i].keras_str());
    }
    throw ShapeError(fmt::format("{}; inputs from {}", e.what(), from));
  }
  if (!built_) {
    build(shapes);
    built_ = true;
  }
  connected_ = true;
  return SymTensor(std::make_shared<Node>(Node{shared_from_this(), xs, std::move(out)}));
}

}  // namespace resnet
