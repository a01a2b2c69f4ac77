// Internal: the JSON value behind a Config, and the helpers the built-in layers share to read and
// write the fields of their Keras configs.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "resnet/config.h"
#include "resnet/layers.h"

namespace resnet {

struct ConfigAccess {
  static nlohmann::ordered_json& json(Config& c);
  static const nlohmann::ordered_json& json(const Config& c);
  // A Config holding `j`, which must be an object (ConfigError otherwise).
  static Config from_json(nlohmann::ordered_json j);
};

namespace layers {

// A Keras int-or-pair value: 3 -> {3, 3}; [2, 3] -> {2, 3}; [2] -> {2, 2}. ConfigError naming
// the key otherwise.
std::array<int64_t, 2> config_pair(const Config& c, const char* key);
std::array<int64_t, 2> config_pair(const Config& c, const char* key,
                                   std::array<int64_t, 2> fallback);
// "valid" / "same" (fallback "valid"); ConfigError for another value.
Padding config_padding(const Config& c);
// ConfigError unless data_format is absent or channels_last.
void require_channels_last(const Config& c);
// The fused activation ("linear" when absent or null).
std::string config_activation(const Config& c);
// An initializer from its Keras config ({"class_name": "HeNormal", "config": {"seed": 1}} or a
// name); `fallback` when absent or of a class resnet.cpp does not know (the weights are loaded
// over it anyway).
Initializer config_initializer(const Config& c, const char* key, Initializer fallback);
// {"class_name": "GlorotUniform", "config": {"seed": null}} as Keras 2.4 writes it.
Config initializer_config(const Initializer& init);
// The fields Conv2D and Dense share in a Keras config: activation, use_bias, the initializers, and
// null regularizers and constraints.
void kernel_layer_config(Config& c, const std::string& activation, bool use_bias,
                         const Initializer& kernel_init, const Initializer& bias_init);
// The name and trainable flag every layer config has ("" / true when absent).
std::string config_name(const Config& c);
bool config_trainable(const Config& c);

}  // namespace layers
}  // namespace resnet
