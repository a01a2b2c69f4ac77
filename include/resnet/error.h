// Typed errors of resnet.cpp. Every message names the layer, file or shape at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace resnet {

// Base of every error the library throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Incompatible shapes: a layer connected to an input it cannot take, mismatched Add operands.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A file that cannot be read or written, or whose content is inconsistent.
class IoError : public Error {
 public:
  using Error::Error;
};

// An invalid option or graph: unknown activation, duplicate layer name, bad hyper-parameter.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// The compute backend failed (oneDNN returned an error, unsupported layout).
class BackendError : public Error {
 public:
  using Error::Error;
};

}  // namespace resnet
