// Convolutions with very few output pixels (N*OH*OW <= kSmallConvMaxPixels), part of the fast
// backend's inference path: the last stages of a ResNet at batch 1 (2x2 and 4x4 outputs of a
// 64x64 input) read megabytes of weights to compute a handful of pixels, so their speed is the
// speed at which the weights stream from memory. oneDNN's kernels reach 40-50 GB/s there (they
// block for reuse that a handful of pixels does not have); these stream each weight exactly once,
// in the order the kernel reads it, at the machine's memory bandwidth (65-75 GB/s measured on the
// 2-core development VM). Measured in docs/performance.md.
//
// The convolution is a small matrix product: rows are output pixels, columns output channels,
// the shared dimension the kernel window times the input channels, (kh, kw, c) in HWIO order.
// Prepared once: the weights packed into panels of NB output channels, each panel [K][NB]
// contiguous, so that one panel is one sequential stream; the bias padded to whole panels; where
// each output pixel reads each tap. Run: threads take whole panels as they get free and compute
// all rows of a panel in registers, reading the input in place tap by tap through a table of
// row pointers (a tap in the padding reads a row of zeros), bias, residual sum and ReLU applied
// before the single store.
//
// Written with GCC vector extensions, compiled for AVX-512 and for AVX2+FMA and picked at run
// time; other CPUs (and RESNET_SMALL_CONV=0 in the environment) use oneDNN for these too.
#pragma once

#include <cstdint>
#include <memory>

#include "ops/ops.h"
#include "resnet/tensor.h"

namespace resnet::ops::onednn {

inline constexpr int64_t kSmallConvMaxPixels = 8;

enum class SmallConvIsa { None, Avx2, Avx512 };
// The instruction set used by the small-convolution kernels: the best this CPU has, None when
// it has neither or RESNET_SMALL_CONV=0. Tests override it (None turns the path off).
SmallConvIsa small_conv_isa();
void set_small_conv_isa(SmallConvIsa isa);  // must be supported by the CPU (checked)
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
