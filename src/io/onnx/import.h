// ONNX import from memory (for import_onnx and the fuzz target fuzz/fuzz_onnx.cpp). No ONNX or
// protobuf types here: those stay inside src/io/onnx/.
#pragma once

#include <string>
#include <string_view>

#include "resnet/model.h"

namespace resnet {

// import_onnx (include/resnet/onnx.h) on the bytes of a file; `file` names it in error messages.
Model import_onnx_bytes(std::string_view bytes, const std::string& file);

}  // namespace resnet
