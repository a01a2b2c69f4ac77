// Internal: the .rnw side of save_weights/load_weights (model_file.cpp), called by the
// extension dispatch in keras_model_io.cpp.
#pragma once

#include <map>
#include <string>

#include "resnet/io.h"
#include "resnet/model.h"

namespace resnet {

// True for .h5 / .hdf5 paths (Keras HDF5 files); everything else is a .rnw file.
bool is_h5_path(const std::string& path);

namespace detail {

void save_rnw(Model& model, const std::string& path,
              const std::map<std::string, std::string>& attributes, bool include_optimizer);
std::map<std::string, std::string> load_rnw(Model& model, const std::string& path,
                                            bool restore_optimizer, LoadWeightsReport& report);
std::map<std::string, std::string> read_rnw_attributes(const std::string& path);

}  // namespace detail
}  // namespace resnet
