// The layer registry: resnet.cpp's own layer classes by Keras class name (one line each below),
// and the classes users register (register_layer_class, CustomObjectScope), which take
// precedence. The Keras readers create every layer through layer_from_config.
#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "layers/activation.h"
#include "layers/add.h"
#include "layers/average_pooling2d.h"
#include "layers/batch_normalization.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/global_average_pooling2d.h"
#include "layers/global_max_pooling2d.h"
#include "layers/input_layer.h"
#include "layers/leaky_re_lu.h"
#include "layers/max_pooling2d.h"
#include "layers/re_lu.h"
#include "layers/zero_padding2d.h"
#include "resnet/config.h"
#include "resnet/error.h"

namespace resnet {
namespace {

using BuiltinFactory = std::shared_ptr<Layer> (*)(const Config&);

// Adding a layer class: its own .h/.cpp with config() and a static from_config(), one line here,
// one converter in src/io/onnx (docs/design-notes.md, "Adding a layer").
const std::map<std::string, BuiltinFactory, std::less<>>& builtin_classes() {
  static const std::map<std::string, BuiltinFactory, std::less<>> classes = {
      {"InputLayer", &layers::InputLayer::from_config},
      {"Conv2D", &layers::Conv2D::from_config},
      {"BatchNormalization", &layers::BatchNormalization::from_config},
      {"Activation", &layers::Activation::from_config},
      {"ReLU", &layers::ReLU::from_config},
      {"LeakyReLU", &layers::LeakyReLU::from_config},
      {"Add", &layers::Add::from_config},
      {"ZeroPadding2D", &layers::ZeroPadding2D::from_config},
      {"MaxPooling2D", &layers::MaxPooling2D::from_config},
      {"AveragePooling2D", &layers::AveragePooling2D::from_config},
      {"GlobalAveragePooling2D", &layers::GlobalAveragePooling2D::from_config},
      {"GlobalMaxPooling2D", &layers::GlobalMaxPooling2D::from_config},
      {"Flatten", &layers::Flatten::from_config},
      {"Dense", &layers::Dense::from_config},
      {"Dropout", &layers::Dropout::from_config},
  };
  return classes;
}

struct CustomClasses {
  std::shared_mutex mutex;
  std::map<std::string, LayerFactory, std::less<>> classes;
};

CustomClasses& custom() {
  static CustomClasses c;
  return c;
}

}  // namespace

void register_layer_class(const std::string& class_name, LayerFactory factory) {
  if (class_name.empty()) throw ConfigError("register_layer_class: the class name is empty");
  if (!factory) {
    throw ConfigError(fmt::format("register_layer_class('{}'): the factory is empty", class_name));
  }
  std::unique_lock lock(custom().mutex);
  custom().classes[class_name] = std::move(factory);
}

bool unregister_layer_class(const std::string& class_name) {
  std::unique_lock lock(custom().mutex);
  return custom().classes.erase(class_name) > 0;
}

CustomObjectScope::CustomObjectScope(std::map<std::string, LayerFactory> classes) {
  for (auto& [name, factory] : classes) {
    if (name.empty() || !factory) {
      throw ConfigError("CustomObjectScope: a class name or factory is empty");
    }
  }
  std::unique_lock lock(custom().mutex);
  for (auto& [name, factory] : classes) {
    auto it = custom().classes.find(name);
    previous_[name] = it == custom().classes.end() ? LayerFactory() : it->second;
    custom().classes[name] = std::move(factory);
  }
}

CustomObjectScope::~CustomObjectScope() {
  std::unique_lock lock(custom().mutex);
  for (auto& [name, factory] : previous_) {
    if (factory) {
      custom().classes[name] = std::move(factory);
    } else {
      custom().classes.erase(name);
    }
  }
}

std::shared_ptr<Layer> layer_from_config(const std::string& class_name, const Config& config) {
  LayerFactory factory;
  {
    std::shared_lock lock(custom().mutex);
    auto it = custom().classes.find(class_name);
    if (it != custom().classes.end()) factory = it->second;
  }
  std::shared_ptr<Layer> layer;
  if (factory) {
    layer = factory(config);
  } else {
    auto it = builtin_classes().find(class_name);
    if (it == builtin_classes().end()) {
      throw ConfigError(fmt::format(
          "unknown layer class '{}' (register it with resnet::register_layer_class)", class_name));
    }
    layer = it->second(config);
  }
  if (!layer) {
    throw ConfigError(fmt::format("the factory of layer class '{}' returned no layer", class_name));
  }
  // Every Keras layer has the flag (a frozen base freezes its ReLUs too); factories need not
  // read it.
  if (!config.get_bool("trainable", true)) layer->set_trainable(false);
  return layer;
}

bool layer_class_registered(const std::string& class_name) {
  if (builtin_classes().count(class_name)) return true;
  std::shared_lock lock(custom().mutex);
  return custom().classes.count(class_name) > 0;
}

std::vector<std::string> registered_layer_classes() {
  std::vector<std::string> out;
  for (const auto& [name, f] : builtin_classes()) out.push_back(name);
  {
    std::shared_lock lock(custom().mutex);
    for (const auto& [name, f] : custom().classes) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace resnet
