// Backend-neutral operations on tensors. Layers call only these; they never see oneDNN types.
//
// Shape letters: N batch, H/W height/width, C input channels, F output channels (filters),
// KH/KW kernel size, OH/OW output size, M rows (N*H*W for channel-last ops), K/U Dense in/out.
// Every activation is logically NHWC; conv kernels are HWIO (KH, KW, C, F); Dense kernels (K, U).
//
// Backends: `ref` (plain loops on plain tensors: the test oracle) and `onednn` (default). Any op
// accepts tensors in any layout the backend produced; results may come back in a blocked layout
// (not plain). `plain()` converts a tensor to the logical layout. Ops never modify their inputs and
// always write every element of their outputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "resnet/tensor.h"

namespace resnet::ops {

enum class Backend { Ref, OneDnn };
// The backend used by subsequent op calls (process-wide; default OneDnn).
void set_backend(Backend b);
Backend backend();
const char* backend_name(Backend b);
// RAII switch of the backend, restored on scope exit.
class BackendScope {
 public:
  explicit BackendScope(Backend b) : prev_(backend()) { set_backend(b); }
  ~BackendScope() { set_backend(prev_); }
  BackendScope(const BackendScope&) = delete;
  BackendScope& operator=(const BackendScope&) = delete;

 private:
  Backend prev_;
};

// Threads used by the compute kernels (OpenMP); defaults to the number of cores. The count is the
// calling thread's own (OpenMP's nthreads-var): set on a thread, it holds for the kernels that
// thread runs, so concurrent callers may each use their own.
void set_num_threads(int n);
int num_threads();

// Sets this thread's count to `n` (n >= 1) for its lifetime and restores the previous one; n <= 0
// leaves the count as it is.
class NumThreadsScope {
 public:
  explicit NumThreadsScope(int n);
  ~NumThreadsScope();
  NumThreadsScope(const NumThreadsScope&) = delete;
  NumThreadsScope& operator=(const NumThreadsScope&) = delete;

 private:
  int prev_ = 0;  // 0: nothing to restore
};

// While one of these is alive on a thread, the oneDNN backend reorders weights that it needs in
// another layout into temporary buffers and never keeps the copy. Training forward and backward
// run inside one: the weights change every step, so a kept copy would only add resident memory
// (inference and evaluation keep them).
class TransientWeightsScope {
 public:
  TransientWeightsScope();
  ~TransientWeightsScope();
  TransientWeightsScope(const TransientWeightsScope&) = delete;
  TransientWeightsScope& operator=(const TransientWeightsScope&) = delete;
  static bool active();
};

// The tensor in the logical (plain, row-major) layout; returns `t` itself if already plain.
Tensor plain(const Tensor& t);

// ---------------------------------------------------------------------------------------------
// Geometry. Padding amounts are explicit; `same_padding` computes Keras/TensorFlow 'same' padding
// (the odd extra pixel goes to the bottom/right).
struct Pad2 {
  int64_t top = 0, bottom = 0, left = 0, right = 0;
};
// Output size of a window op along one axis: floor((in + pads - dil*(k-1) - 1) / stride) + 1.
int64_t window_out(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_lo,
                   int64_t pad_hi);
// 'same' padding for one axis: (lo, hi).
std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t k, int64_t stride, int64_t dilation);

struct ConvGeom {
  int64_t n = 0, h = 0, w = 0, c = 0;  // input  (N, H, W, C)
  int64_t kh = 0, kw = 0, f = 0;       // kernel (KH, KW, C, F)
  int64_t sh = 1, sw = 1;              // strides
  int64_t dh = 1, dw = 1;              // dilation (1 = none)
  Pad2 pad;                            // explicit padding
  int64_t oh = 0, ow = 0;              // output (N, OH, OW, F)
  // Fills oh/ow from the rest.
  void finish();
  std::string str() const;
};

enum class PoolKind { Max, Avg };
struct PoolGeom {
  PoolKind kind = PoolKind::Max;
  int64_t n = 0, h = 0, w = 0, c = 0;  // input (N, H, W, C)
  int64_t kh = 0, kw = 0;              // window
  int64_t sh = 1, sw = 1;              // strides
  Pad2 pad;                            // Max: padded cells never win; Avg: excluded from the count
  int64_t oh = 0, ow = 0;              // output (N, OH, OW, C)
  void finish();
  std::string str() const;
};

enum class Eltwise { Linear, Relu, Sigmoid, Tanh };
const char* eltwise_name(Eltwise e);

// ---------------------------------------------------------------------------------------------
// Convolution. x (N,H,W,C), w (KH,KW,C,F), b (F) or undefined -> y (N,OH,OW,F).
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g);
// dy (N,OH,OW,F), w -> dx (N,H,W,C).
Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const ConvGeom& g);
// x, dy -> dw (KH,KW,C,F) and, when `with_bias`, db (F).
void conv2d_backward_weights(const Tensor& x, const Tensor& dy, const ConvGeom& g, bool with_bias,
                             Tensor& dw, Tensor& db);

// Batch normalization over the last axis (C) of x viewed as (M, C).
// Training: y = gamma * (x - mean) / sqrt(var + eps) + beta with the batch mean and biased
// variance, returned in `mean` and `var` (both (C)).
Tensor batchnorm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  double eps, Tensor& mean, Tensor& var);
// Inference: the same formula with given (moving) statistics.
Tensor batchnorm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                   const Tensor& mean, const Tensor& var, double eps);
// Backward of the training form (statistics depend on x): dx, dgamma, dbeta.
// With `stats_fixed` the statistics are treated as constants (backward of the inference form).
void batchnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& var, double eps, bool stats_fixed, Tensor& dx, Tensor& dgamma,
                        Tensor& dbeta);

// Element-wise activations. Backward uses x for Relu/Linear and y for Sigmoid/Tanh; pass both.
// `alpha` is Relu's slope for x < 0 (0: ReLU; > 0: LeakyReLU, y = alpha * x there); it must be
// >= 0 (so y > 0 exactly when x > 0) and is ignored by the other kinds.
Tensor eltwise_forward(Eltwise e, const Tensor& x, double alpha = 0.0);
Tensor eltwise_backward(Eltwise e, const Tensor& dy, const Tensor& x, const Tensor& y,
                        double alpha = 0.0);

// Softmax over the last axis. Backward: dx = y * (dy - sum(dy * y)).
Tensor softmax_forward(const Tensor& x);
Tensor softmax_backward(const Tensor& dy, const Tensor& y);

// Sum of same-shape tensors.
Tensor add(const std::vector<Tensor>& xs);

// Pooling. Forward may return a backend workspace (max-pool argmax) needed by backward; pass it
// back unchanged (it may be undefined).
Tensor pool_forward(const Tensor& x, const PoolGeom& g, Tensor& workspace);
Tensor pool_backward(const Tensor& dy, const Tensor& x, const Tensor& workspace, const PoolGeom& g);

// Zero padding of H and W: x (N,H,W,C) -> (N, H+top+bottom, W+left+right, C); backward crops.
Tensor zero_pad_forward(const Tensor& x, const Pad2& p);
Tensor zero_pad_backward(const Tensor& dy, const Pad2& p);

// Dense: x (M,K), w (K,U), b (U) or undefined -> y (M,U).
Tensor dense_forward(const Tensor& x, const Tensor& w, const Tensor& b);
Tensor dense_backward_data(const Tensor& dy, const Tensor& w);
void dense_backward_weights(const Tensor& x, const Tensor& dy, bool with_bias, Tensor& dw,
                            Tensor& db);

// ---------------------------------------------------------------------------------------------
// Fused inference ops (used by Model's inference plan, src/graph/inference_plan.cpp).
//
// y = relu?(conv(x, w) + b + residual?): a convolution with an optional bias, then optionally the
// sum with `residual` (N,OH,OW,F; undefined for none), then optionally ReLU - in one oneDNN
// primitive (sum and eltwise post-ops, prop_kind forward_inference); the ref backend runs the
// unfused ops. With `reuse_residual` the caller hands residual over: the result may be written
// into its storage (the only op that may modify an input, and only when asked to).
Tensor conv2d_forward_fused(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g,
                            const Tensor& residual, bool relu, bool reuse_residual = false);
// The same fused convolution prepared once for fixed weights and input shape: the primitive,
// the weights reordered into its layout and the output layout are resolved when it is made, so
// a call only wraps the buffers and runs the kernel (inference at batch 1 calls ~50 of these
// per image). Its own copy of the weights: remake it when `w` or `b` change. Empty (run falls
// back to conv2d_forward_fused) on the reference backend.
class PreparedConv {
 public:
  PreparedConv() = default;
  PreparedConv(const Tensor& w, const Tensor& b, const ConvGeom& g, bool residual, bool relu);
  bool defined() const { return impl_ != nullptr; }
  // What runs it: "onednn", "onednn winograd" (3x3 stride-1 convolutions with enough output
  // pixels, AVX-512 CPUs), "winograd-f4x4 avx2" / "winograd-f2x2 avx2" (the same on AVX2 CPUs,
  // src/ops/onednn/winograd.h), "small-conv avx512" / "small-conv avx2" (the streaming kernels for
  // outputs of a few pixels, src/ops/onednn/small_conv.h) or "ref" (not prepared).
  std::string kernel() const;
  // As conv2d_forward_fused(x, w, b, g, residual, relu, reuse_residual) with the w, b, g and
  // relu given when prepared; x must have the prepared geometry's shape.
  Tensor operator()(const Tensor& x, const Tensor& residual, bool reuse_residual) const;

 private:
  std::shared_ptr<const void> impl_;
  Tensor w_, b_;
  ConvGeom g_;
  bool relu_ = false;
};

// Which kernels the convolutions of this process chose, for `resnet bench`: one entry per
// (kind, kernel) with the number of distinct convolution geometries that use it. Kinds:
// "forward" (training, and inference without the fused plan), "forward inference" (the
// prepared, fused convolutions), "backward data", "backward weights". Kernels are oneDNN's
// implementation names ("jit:avx2", "brgconv:avx512_core", "jit_wino_4x3:avx512_core", ...) or
// "small-conv avx2" / "small-conv avx512"; algorithm is "direct", "winograd", "small-output" or
// "gemm". Recorded when a kernel is chosen (once per geometry and thread count), so listing it
// costs nothing per call. Empty on the reference backend.
struct ConvKernelUse {
  std::string kind, kernel, algorithm;
  int64_t geometries = 0;
};
std::vector<ConvKernelUse> conv_kernels_used();
void reset_conv_kernels_used();
// The best vector ISA the kernels may use here, "avx512", "avx2" or "scalar": what the CPU has,
// capped by ONEDNN_MAX_CPU_ISA (which caps oneDNN and resnet.cpp's own kernels alike); and
// oneDNN's own name for its effective ISA ("avx2", "avx512_core_vnni", ...).
std::string kernel_isa();
std::string onednn_isa();

// Folds inference-mode batch norm into the preceding convolution (kernel HWIO, F = last axis):
// s = gamma / sqrt(var + eps), w_out = w * s, b_out = (b - mean) * s + beta (b undefined: 0).
// Computed in double; w_out/b_out are (re)allocated plain when their shapes differ, then
// overwritten and their versions bumped (so cached reorders of them are refreshed).
void fold_batchnorm(const Tensor& w, const Tensor& b, const Tensor& gamma, const Tensor& beta,
                    const Tensor& mean, const Tensor& var, double eps, Tensor& w_out,
                    Tensor& b_out);

}  // namespace resnet::ops
