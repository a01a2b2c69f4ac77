// `resnet finetune`: transfer learning (the tutorial's part 2). The zoo model without its top,
// weights by name from --base, a new head (GlobalAveragePooling2D, Dropout, Dense softmax), the
// layers up to --freeze-until frozen, then the training of `resnet train` (same options).
#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "cli/training_command.h"
#include "resnet/error.h"
#include "resnet/io.h"

namespace resnet::cli {

void add_finetune_command(CLI::App& app) {
  auto base = std::make_shared<std::string>();
  auto freeze = std::make_shared<std::string>();
  auto dropout = std::make_shared<double>(0.2);
  auto self = std::make_shared<CLI::App*>(nullptr);
  CLI::App* cmd = add_training_command(
      app, "finetune",
      "Transfer learning: a zoo model without its top, weights by name from --base, a new head "
      "(GlobalAveragePooling2D, Dropout, Dense softmax), layers up to --freeze-until frozen; "
      "then trained as `resnet train`",
      [=]() -> ModelBuilder {
        CLI::App* c = *self;
        if (c->get_option("--model")->count() == 0) {
          throw ConfigError(
              "finetune: give --model, the zoo model of the --base weights "
              "(e.g. resnet50 for keras.applications ResNet50 *_notop.h5)");
        }
        const std::string out = c->get_option("--out")->as<std::string>();
        if (!out.empty() && file_format(out) != FileFormat::KerasH5 &&
            file_format(out) != FileFormat::Keras3) {
          throw ConfigError(
              fmt::format("finetune: --out {} must be a .h5 or .keras file (the fine-tuned graph "
                          "differs from the zoo "
                          "model, so it is saved with its Keras model_config)",
                          out));
        }
        return [=](const std::string& name, const Shape& input, int64_t classes) {
          Model m = transfer_model({.base_model = name,
                                    .input_shape = input,
                                    .classes = classes,
                                    .weights_path = *base,
                                    .freeze_until = *freeze,
                                    .dropout = *dropout});
          fmt::print("base {} from {}: {} of {} parameters trainable{}\n", name, *base,
                     m.count_trainable_params(), m.count_params(),
                     freeze->empty() ? std::string() : fmt::format(" (frozen up to {})", *freeze));
          return m;
        };
      });
  *self = cmd;
  cmd->add_option("--base", *base,
                  "base weights: keras.applications *_notop.h5, a Keras or resnet.cpp .h5 model, "
                  "or a PyTorch .pth state_dict of the --model architecture")
      ->required();
  cmd->add_option("--freeze-until", *freeze,
                  "freeze every layer up to and including this one (e.g. conv5_block3_out)");
  cmd->add_option("--dropout", *dropout, "dropout rate before the new Dense layer (0: none)")
      ->check(CLI::Range(0.0, 0.99));
}

}  // namespace resnet::cli
