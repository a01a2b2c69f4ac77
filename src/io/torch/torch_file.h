// Internal: torch.save files, the PyTorch side of the file dispatch (src/io/model_io.cpp).
#pragma once

#include <string>

#include "resnet/io.h"

namespace resnet::torch_detail {

// load_torch_state_dict over the bytes of a file held in memory (fuzz targets); `name` is used in
// messages.
TorchStateDict read_torch_bytes(std::string bytes, const std::string& name,
                                const TorchLoadOptions& options = {});

// The state_dict of `model` in PyTorch's layout (torch_key_for names), as a zip-format torch.save
// file that torch.load(weights_only=True) reads. Written atomically.
void save_torch_state_dict(const Model& model, const std::string& path);

}  // namespace resnet::torch_detail
