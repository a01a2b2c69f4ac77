// One function per subcommand: each registers its options and its callback on the app.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "resnet/model.h"
#include "resnet/models.h"
#include "resnet/shape.h"

namespace resnet::cli {

void add_demo_command(CLI::App& app);
// train, evaluate, predict.
void add_train_commands(CLI::App& app);
void add_finetune_command(CLI::App& app);  // finetune (transfer learning)
// summary, plot, models.
void add_model_commands(CLI::App& app);
// bench (speed, FLOP rate, peak memory, profile).
void add_bench_command(CLI::App& app);
void add_onnx_commands(CLI::App& app);  // export (ONNX)

// "64,64,3" -> (64, 64, 3); empty -> rank-0 shape (the model's default). Throws ConfigError.
Shape parse_shape(const std::string& text);

// --shortcut: "A" or "B" (either case). Throws ConfigError.
Shortcut parse_shortcut(const std::string& text);
// Adds --shortcut A|B (the CIFAR ResNets' shortcut option) to `cmd`.
void add_shortcut_option(CLI::App* cmd, std::string& value);

// --recompute (full) / --no-recompute (off) / neither (pointwise, the default). Throws
// ConfigError when both are given.
Model::Recompute recompute_mode(bool full, bool none);

}  // namespace resnet::cli
