// Internal: resnet.cpp's own .rnw weights files (layout in include/resnet/io.h), the .rnw side of
// the file dispatch in src/io/model_io.cpp.
#pragma once

#include <map>
#include <string>

#include "resnet/io.h"
#include "resnet/model.h"

namespace resnet {

namespace rnw_detail {

void save_rnw(Model& model, const std::string& path,
              const std::map<std::string, std::string>& attributes, bool include_optimizer);
std::map<std::string, std::string> load_rnw(Model& model, const std::string& path,
                                            bool restore_optimizer, LoadWeightsReport& report);
std::map<std::string, std::string> read_rnw_attributes(const std::string& path);

}  // namespace rnw_detail
}  // namespace resnet
