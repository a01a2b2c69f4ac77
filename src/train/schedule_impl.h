// Internal: the concrete learning-rate schedules, so optimizers can write their Keras config.
#pragma once

#include <nlohmann/json.hpp>

#include "resnet/optim.h"

namespace resnet::train {

// A schedule that knows its Keras serialization: {"class_name": ..., "config": {...}}.
class KerasSchedule : public LearningRateSchedule {
 public:
  virtual nlohmann::ordered_json keras_config() const = 0;
};

}  // namespace resnet::train
