// A subcommand with every option of `resnet train` (data, epochs, optimizer, lr, schedule,
// augmentation, early stopping, --out, --resume, ...), shared by `resnet train` and
// `resnet finetune` (src/cli/train_commands.cpp).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>

#include "resnet/model.h"
#include "resnet/shape.h"

namespace resnet::cli {

// Builds the model to train from the --model name, the input shape and the class count.
using ModelBuilder =
    std::function<Model(const std::string& model_name, const Shape& input, int64_t classes)>;

// Adds subcommand `name` with the train options. After parsing, its callback asks
// `make_builder` (when set) for the model builder, then runs the training of `resnet train`.
// Returns the subcommand so callers can add options of their own.
CLI::App* add_training_command(CLI::App& app, const std::string& name,
                               const std::string& description,
                               std::function<ModelBuilder()> make_builder);

}  // namespace resnet::cli
