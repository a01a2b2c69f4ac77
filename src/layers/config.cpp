// Config: a layer's Keras config dict over nlohmann::ordered_json, and the shared field helpers
// of the built-in layers (config_json.h).
#include <fmt/format.h>

#include <algorithm>

#include "layers/config_json.h"
#include "resnet/error.h"

namespace resnet {

using ojson = nlohmann::ordered_json;

struct Config::Impl {
  ojson j = ojson::object();
};

Config::Config() : impl_(std::make_unique<Impl>()) {}
Config::~Config() = default;
Config::Config(const Config& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
Config::Config(Config&& other) noexcept : impl_(std::move(other.impl_)) {}
Config& Config::operator=(const Config& other) {
  if (this != &other) impl_ = std::make_unique<Impl>(*other.impl_);
  return *this;
}
Config& Config::operator=(Config&& other) noexcept {
  impl_ = std::move(other.impl_);
  return *this;
}

ojson& ConfigAccess::json(Config& c) {
  if (!c.impl_) c.impl_ = std::make_unique<Config::Impl>();  // a moved-from Config
  return c.impl_->j;
}
const ojson& ConfigAccess::json(const Config& c) {
  static const ojson empty = ojson::object();
  return c.impl_ ? c.impl_->j : empty;
}
Config ConfigAccess::from_json(ojson j) {
  if (!j.is_object()) {
    throw ConfigError(fmt::format("a layer config must be a JSON object, got {}", j.dump()));
  }
  Config c;
  c.impl_->j = std::move(j);
  return c;
}

Config Config::parse(std::string_view text) {
  ojson j;
  try {
    j = ojson::parse(text);
  } catch (const ojson::exception& e) {
    throw ConfigError(fmt::format("a layer config is not valid JSON: {}", e.what()));
  }
  return ConfigAccess::from_json(std::move(j));
}

std::string Config::dump() const {
  return ConfigAccess::json(*this).dump(-1, ' ', /*ensure_ascii=*/true);
}

namespace {

const ojson* find(const ojson& j, std::string_view key) {
  auto it = j.find(std::string(key));
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

[[noreturn]] void wrong(std::string_view key, const char* expected, const ojson& found) {
  std::string text = found.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  throw ConfigError(fmt::format("config key '{}': expected {}, found {}", key, expected, text));
}

const ojson& need(const ojson& j, std::string_view key) {
  const ojson* v = find(j, key);
  if (!v) throw ConfigError(fmt::format("config key '{}' is missing", key));
  return *v;
}

bool as_bool(std::string_view key, const ojson& v) {
  if (!v.is_boolean()) wrong(key, "true or false", v);
  return v.get<bool>();
}
int64_t as_int(std::string_view key, const ojson& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  // Python writes 3.0 for some integer fields; accept a float that is an integer.
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d)) && d > -9.2e18 && d < 9.2e18) {
      return static_cast<int64_t>(d);
    }
  }
  wrong(key, "an integer", v);
}
double as_double(std::string_view key, const ojson& v) {
  if (!v.is_number()) wrong(key, "a number", v);
  return v.get<double>();
}
std::string as_string(std::string_view key, const ojson& v) {
  if (!v.is_string()) wrong(key, "a string", v);
  return v.get<std::string>();
}

}  // namespace

bool Config::has(std::string_view key) const {
  return find(ConfigAccess::json(*this), key) != nullptr;
}

std::vector<std::string> Config::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : ConfigAccess::json(*this).items()) out.push_back(k);
  return out;
}

bool Config::get_bool(std::string_view key) const {
  return as_bool(key, need(ConfigAccess::json(*this), key));
}
int64_t Config::get_int(std::string_view key) const {
  return as_int(key, need(ConfigAccess::json(*this), key));
}
double Config::get_double(std::string_view key) const {
  return as_double(key, need(ConfigAccess::json(*this), key));
}
std::string Config::get_string(std::string_view key) const {
  return as_string(key, need(ConfigAccess::json(*this), key));
}
std::vector<int64_t> Config::get_ints(std::string_view key) const {
  const ojson& v = need(ConfigAccess::json(*this), key);
  if (!v.is_array()) return {as_int(key, v)};
  std::vector<int64_t> out;
  for (const ojson& e : v) out.push_back(as_int(key, e));
  return out;
}
Config Config::get_object(std::string_view key) const {
  const ojson& v = need(ConfigAccess::json(*this), key);
  if (!v.is_object()) wrong(key, "an object", v);
  return ConfigAccess::from_json(v);
}

bool Config::get_bool(std::string_view key, bool fallback) const {
  const ojson* v = find(ConfigAccess::json(*this), key);
  return v ? as_bool(key, *v) : fallback;
}
int64_t Config::get_int(std::string_view key, int64_t fallback) const {
  const ojson* v = find(ConfigAccess::json(*this), key);
  return v ? as_int(key, *v) : fallback;
}
double Config::get_double(std::string_view key, double fallback) const {
  const ojson* v = find(ConfigAccess::json(*this), key);
  return v ? as_double(key, *v) : fallback;
}
std::string Config::get_string(std::string_view key, const std::string& fallback) const {
  const ojson* v = find(ConfigAccess::json(*this), key);
  return v ? as_string(key, *v) : fallback;
}

Config& Config::set(std::string_view key, bool v) {
  ConfigAccess::json(*this)[std::string(key)] = v;
  return *this;
}
Config& Config::set(std::string_view key, int64_t v) {
  ConfigAccess::json(*this)[std::string(key)] = v;
  return *this;
}
Config& Config::set(std::string_view key, double v) {
  ConfigAccess::json(*this)[std::string(key)] = v;
  return *this;
}
Config& Config::set(std::string_view key, const std::string& v) {
  ConfigAccess::json(*this)[std::string(key)] = v;
  return *this;
}
Config& Config::set(std::string_view key, const std::vector<int64_t>& v) {
  ConfigAccess::json(*this)[std::string(key)] = v;
  return *this;
}
Config& Config::set(std::string_view key, const Config& v) {
  ConfigAccess::json(*this)[std::string(key)] = ConfigAccess::json(v);
  return *this;
}
Config& Config::set_null(std::string_view key) {
  ConfigAccess::json(*this)[std::string(key)] = nullptr;
  return *this;
}
void Config::erase(std::string_view key) { ConfigAccess::json(*this).erase(std::string(key)); }

bool Config::operator==(const Config& other) const {
  return ConfigAccess::json(*this) == ConfigAccess::json(other);
}

// ---------------------------------------------------------------------------------------------
// Field helpers of the built-in layers.

namespace layers {

std::array<int64_t, 2> config_pair(const Config& c, const char* key) {
  const std::vector<int64_t> v = c.get_ints(key);
  if (v.size() == 1) return {v[0], v[0]};
  if (v.size() == 2) return {v[0], v[1]};
  wrong(key, "an integer or a pair of integers", ConfigAccess::json(c).at(key));
}

std::array<int64_t, 2> config_pair(const Config& c, const char* key,
                                   std::array<int64_t, 2> fallback) {
  return c.has(key) ? config_pair(c, key) : fallback;
}

Padding config_padding(const Config& c) {
  const std::string p = c.get_string("padding", "valid");
  if (p == "valid") return Padding::Valid;
  if (p == "same") return Padding::Same;
  throw ConfigError(fmt::format("unsupported padding '{}'", p));
}

void require_channels_last(const Config& c) {
  const std::string f = c.get_string("data_format", "channels_last");
  if (f != "channels_last") throw ConfigError(fmt::format("unsupported data_format '{}'", f));
}

std::string config_activation(const Config& c) { return c.get_string("activation", "linear"); }

Initializer config_initializer(const Config& c, const char* key, Initializer fallback) {
  const ojson* v = find(ConfigAccess::json(c), key);
  if (!v) return fallback;
  try {
    if (v->is_string()) return Initializer::from_name(v->get<std::string>());
    if (!v->is_object() || !v->contains("class_name") || !(*v)["class_name"].is_string()) {
      return fallback;
    }
    Initializer init = Initializer::from_name((*v)["class_name"].get<std::string>());
    const ojson cfg = v->value("config", ojson::object());
    if (!cfg.is_object()) return fallback;
    if (cfg.contains("seed") && cfg["seed"].is_number_integer()) {
      init.seed = cfg["seed"].get<uint64_t>();
    }
    auto number = [&](const char* k, double dflt) {
      return cfg.contains(k) && cfg[k].is_number() ? cfg[k].get<double>() : dflt;
    };
    switch (init.kind) {
      case Initializer::Kind::RandomUniform:
        init.a = number("minval", init.a);
        init.b = number("maxval", init.b);
        break;
      case Initializer::Kind::RandomNormal:
        init.a = number("mean", init.a);
        init.b = number("stddev", init.b);
        break;
      case Initializer::Kind::Constant:
        init.a = number("value", init.a);
        break;
      default:
        break;
    }
    return init;
  } catch (const ConfigError&) {
    return fallback;
  }
}

Config initializer_config(const Initializer& init) {
  ojson cfg = ojson::object();
  const ojson seed = init.seed ? ojson(*init.seed) : ojson(nullptr);
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
      cfg["seed"] = seed;
      break;
    case Initializer::Kind::RandomNormal:
      cfg["mean"] = init.a;
      cfg["stddev"] = init.b;
      cfg["seed"] = seed;
      break;
    default:
      cfg["seed"] = seed;
      break;
  }
  return ConfigAccess::from_json({{"class_name", init.keras_class_name()}, {"config", cfg}});
}

void kernel_layer_config(Config& c, const std::string& activation, bool use_bias,
                         const Initializer& kernel_init, const Initializer& bias_init) {
  c.set("activation", activation)
      .set("use_bias", use_bias)
      .set("kernel_initializer", initializer_config(kernel_init))
      .set("bias_initializer", initializer_config(bias_init));
  for (const char* key : {"kernel_regularizer", "bias_regularizer", "activity_regularizer",
                          "kernel_constraint", "bias_constraint"}) {
    c.set_null(key);
  }
}

std::string config_name(const Config& c) { return c.get_string("name", ""); }
bool config_trainable(const Config& c) { return c.get_bool("trainable", true); }

}  // namespace layers
}  // namespace resnet
