// Convolutions with very few output pixels (N*OH*OW <= kSmallConvMaxPixels), part of the fast
// backend's inference path: the last two stages of a ResNet at batch 1 (4x4 and 2x2 outputs of
// a 64x64 input) read 86 MB of weights to compute a handful of pixels, so their speed is the
// speed at which the weights stream from memory. oneDNN's kernels reach 35-50 GB/s there (they
// block for a reuse that a handful of pixels does not have); these read each weight once, in
// the order the kernel uses it, at 50-65 GB/s on the 2-core development VM (bench/
// bench_small_conv: 1.0-1.45x oneDNN per convolution; docs/performance.md).
//
// The convolution is a small matrix product: rows are output pixels, columns output channels,
// the shared dimension the kernel window times the input channels, (kh, kw, c) in HWIO order.
// Prepared once: the weights packed into panels of NB output channels, each panel [K][NB]
// contiguous, so that one panel is one sequential stream; the bias padded to whole panels; where
// each output pixel reads each tap. Run: each thread takes a contiguous share of the panels and
// computes a few rows of a panel at a time in registers (four-vector panels for 1-4 rows on
// AVX-512 and 1-2 on AVX2, which only stream; for more rows one-vector panels, 8 rows per call,
// on AVX-512 and two-vector panels, 6 rows per call, on AVX2's 16 registers), reading the input
// in place tap by tap through
// a table of row pointers (a tap in the padding reads a row of zeros); bias, residual sum and
// ReLU are applied before the single store.
//
// Written with GCC vector extensions, compiled for AVX-512 and for AVX2+FMA and picked at run
// time; other CPUs (and RESNET_SMALL_CONV=0 in the environment) use oneDNN for these too.
#pragma once

#include <cstdint>
#include <memory>

#include "ops/ops.h"
#include "resnet/tensor.h"

namespace resnet::ops::onednn {

inline constexpr int64_t kSmallConvMaxPixels = 16;

enum class SmallConvIsa { None, Avx2, Avx512 };
// The instruction set used by the small-convolution kernels: the best this CPU has within
// oneDNN's ISA cap (ONEDNN_MAX_CPU_ISA=AVX2 caps these kernels to AVX2 as well), None when it has
// neither or RESNET_SMALL_CONV=0. Tests override it (None turns the path off).
SmallConvIsa small_conv_isa();
void set_small_conv_isa(SmallConvIsa isa);  // must be supported by the CPU (checked)
// The CPU has `isa` and oneDNN's ISA cap allows it.
bool cpu_supports(SmallConvIsa isa);
const char* small_conv_isa_name(SmallConvIsa isa);

struct SmallConv;
// Null when the path does not apply: too many output pixels or no usable ISA.
std::shared_ptr<const SmallConv> prepare_small_conv(const Tensor& w, const Tensor& b,
                                                    const ConvGeom& g, bool relu);
SmallConvIsa small_conv_isa_of(const SmallConv& p);
// y = relu?(conv(x) + b + residual?) for x (plain, the prepared geometry's input shape) and
// residual (plain NHWC or undefined). With `reuse_residual` the result goes into residual's
// storage.
Tensor run_small_conv(const SmallConv& p, const Tensor& x, const Tensor& residual,
                      bool reuse_residual);

}  // namespace resnet::ops::onednn
