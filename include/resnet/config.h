// Layer configs and the layer registry: what Keras's get_config / from_config and
// custom_objects / register_keras_serializable do.
//
// A Config is one layer's Keras config dict (a JSON object): {"name": "conv1", "trainable": true,
// "dtype": "float32", "filters": 64, "kernel_size": [7, 7], ...}. Every layer class writes its
// own (Layer::config()) and is created from one by the factory registered under its Keras class
// name; the Keras file reader and writer only walk the registry. Register a layer class of your
// own the same way, and files naming it load:
//
//   class Scale : public resnet::Layer { ... Config config() const override; ... };
//   resnet::register_layer_class("Scale", [](const resnet::Config& c) {
//     return std::make_shared<Scale>(c.get_double("factor"), c.get_string("name"));
//   });
//
// Getters throw ConfigError naming the key and what was found when a key is missing or holds
// another type; the file readers add the file and the layer to the message.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace resnet {

class Layer;

class Config {
 public:
  Config();  // an empty object
  ~Config();
  Config(const Config& other);
  Config(Config&& other) noexcept;
  Config& operator=(const Config& other);
  Config& operator=(Config&& other) noexcept;

  // Parses JSON text, which must be an object; throws ConfigError.
  static Config parse(std::string_view json);
  // Compact JSON text, keys in insertion order (as Python's json.dumps writes them).
  std::string dump() const;

  // Whether `key` is present and not null.
  bool has(std::string_view key) const;
  std::vector<std::string> keys() const;

  // Required values (ConfigError when absent, null or of another type).
  bool get_bool(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  double get_double(std::string_view key) const;  // any number
  std::string get_string(std::string_view key) const;
  // An integer or a list of integers ([3, 3]; 3 gives {3}).
  std::vector<int64_t> get_ints(std::string_view key) const;
  // A nested object (an initializer's {"class_name": ..., "config": {...}}, say).
  Config get_object(std::string_view key) const;
  // With a fallback for an absent or null key (a present value of another type still throws).
  bool get_bool(std::string_view key, bool fallback) const;
  int64_t get_int(std::string_view key, int64_t fallback) const;
  double get_double(std::string_view key, double fallback) const;
  std::string get_string(std::string_view key, const std::string& fallback) const;

  // Sets (or replaces, keeping its position) a value.
  Config& set(std::string_view key, bool v);
  Config& set(std::string_view key, int v) { return set(key, static_cast<int64_t>(v)); }
  Config& set(std::string_view key, int64_t v);
  Config& set(std::string_view key, double v);
  Config& set(std::string_view key, const char* v) { return set(key, std::string(v)); }
  Config& set(std::string_view key, const std::string& v);
  Config& set(std::string_view key, const std::vector<int64_t>& v);
  Config& set(std::string_view key, const Config& v);
  Config& set_null(std::string_view key);
  void erase(std::string_view key);

  bool operator==(const Config& other) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend struct ConfigAccess;  // internal: the JSON value itself (src/layers/config_json.h)
};

// Creates a layer (not yet connected) from its Keras config. Throws ConfigError for a config the
// class cannot honour.
using LayerFactory = std::function<std::shared_ptr<Layer>(const Config& config)>;

// keras.saving.register_keras_serializable: files naming `class_name` create their layer with
// `factory` from now on. A name of resnet.cpp's own classes is shadowed (as Keras's
// custom_objects take precedence). Thread-safe. Throws ConfigError for an empty name.
void register_layer_class(const std::string& class_name, LayerFactory factory);
// Removes a registration made by register_layer_class (the built-in class, if any, shows again);
// returns whether there was one.
bool unregister_layer_class(const std::string& class_name);

// keras.utils.custom_object_scope: registers classes for the lifetime of the scope, then
// restores what was registered under those names before.
class CustomObjectScope {
 public:
  explicit CustomObjectScope(std::map<std::string, LayerFactory> classes);
  ~CustomObjectScope();
  CustomObjectScope(const CustomObjectScope&) = delete;
  CustomObjectScope& operator=(const CustomObjectScope&) = delete;

 private:
  std::map<std::string, LayerFactory> previous_;  // empty factory: nothing was registered
};

// The layer of class `class_name` built from `config` (registrations first, then resnet.cpp's
// own classes). Throws ConfigError for an unknown class ("unknown layer class 'X'"), or what the
// factory throws.
std::shared_ptr<Layer> layer_from_config(const std::string& class_name, const Config& config);
// Whether a class of that name can be created.
bool layer_class_registered(const std::string& class_name);
// Every class name that can be created, sorted (built-in and registered).
std::vector<std::string> registered_layer_classes();

}  // namespace resnet
