// The arguments of the panel micro-kernel (small_conv_kernel.inc), shared by the translation
// units that instantiate it for their instruction sets: the small-output convolutions
// (small_conv.cpp) and the Winograd convolutions (winograd.cpp), whose transformed-domain
// products are the same register-blocked row-times-panel streams.
#pragma once

#include <cstdint>

namespace resnet::ops::onednn::panel {

struct KernelArgs {
  int taps = 0;                        // kh * kw
  int64_t c = 0;                       // input channels
  const float* const* rows = nullptr;  // row i of tap t: rows[t * mr + i], c floats
  const float* w = nullptr;            // the panel, [taps * c][nb]
  const float* bias = nullptr;         // nb values
  const float* res = nullptr;          // residual row i at res + i * ldr (null: none)
  int64_t ldr = 0;
  float* y = nullptr;  // output row i at y + i * ldy
  int64_t ldy = 0;
  int cols = 0;  // valid columns of this panel
  bool relu = false;
  // Prefetch the thread's next panel (panel_floats further on) into L2 instead of the next few
  // KiB of this one: set on the last of several calls on a panel, which reads this panel from
  // L2 and has compute to hide the next panel's memory stream behind.
  bool next_panel = false;
  int64_t panel_floats = 0;
};
using KernelFn = void (*)(const KernelArgs&);

}  // namespace resnet::ops::onednn::panel
