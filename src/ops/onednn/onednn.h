// The oneDNN backend: the fast path of every op in ops.h, with the same signatures and contracts.
//
// Activations may come back in a blocked layout chosen by oneDNN (nChw8c/nChw16c); such tensors
// carry a detail::Layout and are accepted by every function here. `to_plain` converts them to the
// logical layout. This header is free of oneDNN types so that the dispatcher and tests stay so too.
#pragma once

#include <string>
#include <vector>

#include "ops/ops.h"
#include "resnet/tensor.h"

namespace resnet::ops::onednn {

// OpenMP threads used by the oneDNN kernels (default: the number of cores).
void set_num_threads(int n);
int num_threads();

// The vector instruction sets of x86 CPUs that the kernels here distinguish, and whether oneDNN
// may use one on this CPU: the CPU has it and ONEDNN_MAX_CPU_ISA (read by oneDNN when it is
// first asked) does not cap below it. resnet.cpp's own kernels follow the same cap, so that
// ONEDNN_MAX_CPU_ISA=AVX2 measures what an AVX2 machine runs. Avx512 means AVX-512 F/CD/BW/DQ/VL
// (oneDNN's avx512_core).
enum class CpuIsa { Scalar, Avx2, Avx512 };
bool isa_allowed(CpuIsa isa);
CpuIsa best_isa();                 // the best isa_allowed()
const char* isa_name(CpuIsa isa);  // "scalar", "avx2", "avx512"
std::string onednn_isa_name();     // oneDNN's effective ISA: "avx2", "avx512_core", ...

// `t` in the logical layout (row-major in the order of its shape); `t` itself when already plain.
Tensor to_plain(const Tensor& t);

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g);
Tensor conv2d_forward_fused(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g,
                            const Tensor& residual, bool relu, bool reuse_residual);
// ops::PreparedConv: resolved once (primitive, weights in its layout, output layout), run many.
std::shared_ptr<const void> prepare_conv2d_fused(const Tensor& w, const Tensor& b,
                                                 const ConvGeom& g, bool residual, bool relu);
// Prepared 3x3 stride-1 convolutions with enough output pixels use oneDNN's Winograd kernels
// (AVX-512 CPUs; the others, and RESNET_WINOGRAD=0 in the environment, use direct ones). Their
// results differ from the direct ones by rounding (about 2e-6 of the output's scale).
void set_inference_winograd(bool on);
bool inference_winograd();
bool winograd_available();  // oneDNN has Winograd kernels for this CPU
std::string prepared_conv2d_kernel(const std::shared_ptr<const void>& prepared);
// ops::conv_kernels_used(): what the convolution primitives and prepared convolutions chose.
std::vector<ConvKernelUse> conv_kernels_used();
void reset_conv_kernels_used();
Tensor run_prepared_conv2d(const std::shared_ptr<const void>& prepared, const Tensor& x,
                           const Tensor& residual, bool reuse_residual);
Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const ConvGeom& g);
void conv2d_backward_weights(const Tensor& x, const Tensor& dy, const ConvGeom& g, bool with_bias,
                             Tensor& dw, Tensor& db);

Tensor batchnorm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  double eps, Tensor& mean, Tensor& var);
Tensor batchnorm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                   const Tensor& mean, const Tensor& var, double eps);
void batchnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& var, double eps, bool stats_fixed, Tensor& dx, Tensor& dgamma,
                        Tensor& dbeta);

Tensor eltwise_forward(Eltwise e, const Tensor& x, double alpha);
Tensor eltwise_backward(Eltwise e, const Tensor& dy, const Tensor& x, const Tensor& y,
                        double alpha);

Tensor softmax_forward(const Tensor& x);
Tensor softmax_backward(const Tensor& dy, const Tensor& y);

Tensor add(const std::vector<Tensor>& xs);

Tensor pool_forward(const Tensor& x, const PoolGeom& g, Tensor& workspace);
Tensor pool_backward(const Tensor& dy, const Tensor& x, const Tensor& workspace, const PoolGeom& g);

Tensor zero_pad_forward(const Tensor& x, const Pad2& p);
Tensor zero_pad_backward(const Tensor& dy, const Pad2& p);

Tensor dense_forward(const Tensor& x, const Tensor& w, const Tensor& b);
Tensor dense_backward_data(const Tensor& dy, const Tensor& w);
void dense_backward_weights(const Tensor& x, const Tensor& dy, bool with_bias, Tensor& dw,
                            Tensor& db);

}  // namespace resnet::ops::onednn
