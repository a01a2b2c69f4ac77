// How training code saves a model: see save_hook.h.
#include "train/save_hook.h"

#include "resnet/io.h"

namespace resnet {

void save_model_file(Model& model, const std::string& path, bool weights_only) {
  save_model_file_with_attributes(model, path, weights_only, {});
}

void save_model_file_with_attributes(Model& model, const std::string& path, bool weights_only,
                                     const std::map<std::string, std::string>& attributes) {
  const FileFormat format = file_format(path);
  if ((format == FileFormat::KerasH5 || format == FileFormat::Keras3) && !weights_only) {
    save_model(model, path, {.include_optimizer = true, .attributes = attributes});
  } else {
    save_weights(model, path, {.include_optimizer = !weights_only, .attributes = attributes});
  }
}

}  // namespace resnet
