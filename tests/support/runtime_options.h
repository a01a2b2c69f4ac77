// Changes the library's RuntimeOptions for the scope of a test, then restores them.
#pragma once

#include <functional>

#include "resnet/runtime.h"

namespace resnet::testing {

class ScopedRuntimeOptions {
 public:
  explicit ScopedRuntimeOptions(const std::function<void(RuntimeOptions&)>& change)
      : saved_(runtime_options()) {
    RuntimeOptions o = saved_;
    change(o);
    set_runtime_options(o);
  }
  ~ScopedRuntimeOptions() { set_runtime_options(saved_); }
  ScopedRuntimeOptions(const ScopedRuntimeOptions&) = delete;
  ScopedRuntimeOptions& operator=(const ScopedRuntimeOptions&) = delete;

 private:
  RuntimeOptions saved_;
};

}  // namespace resnet::testing
