// Cross-framework fixtures: named float32 tensors written by tests/reference/generate_fixtures.py.
//
// File format (little-endian): "RNFX", uint32 version (1), uint32 count, then per tensor:
// uint32 name length, the name's bytes, uint32 rank, int64 dims[rank], float32 data (row-major).
// Tensors are in Keras's logical layouts (NHWC activations, HWIO conv kernels).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "resnet/tensor.h"

namespace resnet::testing {

class Fixture {
 public:
  Fixture() = default;
  Fixture(std::string path, std::map<std::string, Tensor> tensors)
      : path_(std::move(path)), tensors_(std::move(tensors)) {}

  // The tensor called `name`; throws IoError naming the file and the tensor when absent.
  const Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  std::vector<std::string> names() const;
  const std::string& path() const { return path_; }
  size_t size() const { return tensors_.size(); }

 private:
  std::string path_;
  std::map<std::string, Tensor> tensors_;
};

// Reads a fixture file; throws IoError naming the file when it is missing, truncated or malformed.
Fixture read_fixture_file(const std::string& path);
// Reads RESNET_FIXTURE_DIR "/" name ".rnfx".
Fixture load_fixture(const std::string& name);

// Writes a fixture file (used by the reader's own tests).
void write_fixture_file(const std::string& path, const std::map<std::string, Tensor>& tensors);

}  // namespace resnet::testing
