// Winograd F(4x4, 3x3) convolutions for the inference plan on AVX2 CPUs, where oneDNN 2.6 has
// no Winograd kernel (it has them for AVX-512 only).
//
// y = A^T [ (G g G^T) . (B^T d B) ] A per 6x6 input tile d and 3x3 filter g (Lavin & Gray 2015):
// 36 products per 4x4 output tile instead of 144. Prepared once: the filters transformed (in
// double precision) and packed per transformed position into panels of 16 output channels,
// [36][F/16][C][16], so that each position's product is a stream of the same panel kernel as
// the small-output convolutions (small_conv_kernel.inc: 6 rows x 2 vectors of accumulators).
// Run: each thread takes blocks of tiles; per block it transforms the input tiles (8 channels
// per vector) into [36][tiles][C], multiplies each position's rows with the position's panels
// into [36][tiles][F], and transforms back, adding bias and residual and applying ReLU before the
// single store. Input and output are plain NHWC.
//
// Applies to 3x3 stride-1 undilated convolutions (any padding) with input channels a multiple of
// 8 and output channels a multiple of 16, when the small-convolution ISA is AVX2 (an AVX2 CPU,
// or ONEDNN_MAX_CPU_ISA=AVX2), and RESNET_WINOGRAD is on. Results differ from the direct
// convolution by rounding (the transforms' constants; tests bound it at 1e-4 of the output's
// largest magnitude).
#pragma once

#include <memory>

#include "ops/ops.h"
#include "resnet/tensor.h"

namespace resnet::ops::onednn {

struct WinogradConv;

// The geometry and the CPU allow the kernel (it may still be slower than direct: the inference
// plan decides with winograd_pays in conv.cpp).
bool winograd_conv_applies(const ConvGeom& g);
// Null when winograd_conv_applies(g) is false.
std::shared_ptr<const WinogradConv> prepare_winograd_conv(const Tensor& w, const Tensor& b,
                                                          const ConvGeom& g, bool relu);
// "winograd-f4x4 avx2" or "winograd-f2x2 avx2": the tile size chosen (2x2 for outputs with a
// side below 4).
const char* winograd_conv_kernel(const WinogradConv& p);
// y = relu?(conv(x) + b + residual?) for x (any layout; made plain) and residual (any layout or
// undefined). With `reuse_residual` the result goes into residual's storage when it is plain.
Tensor run_winograd_conv(const WinogradConv& p, const Tensor& x, const Tensor& residual,
                         bool reuse_residual);

}  // namespace resnet::ops::onednn
