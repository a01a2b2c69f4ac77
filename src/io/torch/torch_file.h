// Internal: torch.save files, the PyTorch side of the file dispatch (src/io/model_io.cpp).
#pragma once

#include <map>
#include <string>

#include "resnet/io.h"

namespace resnet::torch_detail {

// load_torch_state_dict over the bytes of a file held in memory (fuzz targets); `name` is used in
// messages.
TorchStateDict read_torch_bytes(std::string bytes, const std::string& name,
                                const TorchLoadOptions& options = {});

// The state_dict of `model` in PyTorch's layout (torch_key_for names; BatchNormalization layers
// also get num_batches_tracked = 0), as a zip-format torch.save file that
// torch.load(weights_only=True) reads. `attributes` (resnet.cpp's metadata) go into a JSON
// member archive/resnet_attributes.json, which torch.load ignores. Written atomically.
void save_torch_state_dict(const Model& model, const std::string& path,
                           const std::map<std::string, std::string>& attributes = {});
// Those attributes ({} for files without them, legacy-format files included).
std::map<std::string, std::string> read_torch_attributes(const std::string& path);

}  // namespace resnet::torch_detail
