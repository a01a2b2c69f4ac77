// Op-level profiler of the oneDNN backend: exclusive wall time per op name ("conv2d_forward",
// "batchnorm_backward", "reorder", ...). Off by default; a disabled Scope costs one relaxed load.
// Time is exclusive: a reorder inside a convolution call counts as "reorder", not as convolution.
// Timing covers the calling thread's view (the op's OpenMP team runs inside it). Used by
// `resnet bench --profile`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace resnet::ops::profile {

void set_enabled(bool on);
bool enabled();
// Drops every accumulated total.
void reset();

struct Entry {
  std::string name;
  double seconds = 0.0;  // exclusive
  int64_t calls = 0;
};
// Totals since the last reset(), largest first.
std::vector<Entry> totals();

// Times the enclosing block under `name` (a string literal: its pointer is kept) when enabled.
class Scope {
 public:
  explicit Scope(const char* name);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  const char* name_ = nullptr;  // null when profiling was off at construction
  Scope* parent_ = nullptr;
  int64_t start_ns_ = 0;
  int64_t child_ns_ = 0;
};

}  // namespace resnet::ops::profile
