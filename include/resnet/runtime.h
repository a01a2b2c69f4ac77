// Run-time switches: every environment variable the library reads, read once, in one place
// (src/core/runtime.cpp), and listed in docs/runtime.md. Programs may also set them in code.
#pragma once

#include <cstdint>

namespace resnet {

struct RuntimeOptions {
  // RESNET_SMALL_CONV=0: no hand-written small-output convolution kernels (oneDNN only).
  bool small_conv = true;
  // RESNET_WINOGRAD=0: no Winograd convolutions in the inference plan.
  bool winograd = true;
  // RESNET_DIST_BUCKET_KB: data-parallel gradient bucket size in KiB (a positive integer).
  int64_t dist_bucket_kb = 4096;
  // RESNET_DIST_TIMEOUT: seconds a rank waits for the others before failing (>= 0; 0: forever).
  double dist_timeout_seconds = 300.0;
  // RESNET_DIST_VERBOSE=1: rank 0 prints how much gradient reduction overlapped backward.
  bool dist_verbose = false;
  // RESNET_H5_NO_PREFLIGHT=1: open HDF5 files without reading them in a child process first.
  bool h5_preflight = true;
  // RESNET_H5_PREFLIGHT_TIMEOUT: seconds the pre-flight child may take (1 to 86399).
  int64_t h5_preflight_timeout_seconds = 60;
};

// The options: on first use read from the environment (a malformed value throws ConfigError
// naming the variable, and is read again on the next call); afterwards what the last
// set_runtime_options gave. Thread-safe.
RuntimeOptions runtime_options();
// Replaces the options (for programs that configure in code, and tests). The convolution
// switches take effect for primitives created afterwards.
void set_runtime_options(const RuntimeOptions& options);
// The options as the environment gives them now (throws as runtime_options does).
RuntimeOptions runtime_options_from_environment();

}  // namespace resnet
