// Fused inference ops: the dispatcher (oneDNN: one primitive with post-ops; ref: the unfused ops,
// which is what the fused path is tested against) and the batch-norm folding.
#include <fmt/format.h>

#include <cmath>

#include "ops/onednn/onednn.h"
#include "ops/ops.h"
#include "resnet/error.h"

namespace resnet::ops {

Tensor conv2d_forward_fused(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g,
                            const Tensor& residual, bool relu, bool reuse_residual) {
  if (residual.defined() && residual.shape() != Shape{g.n, g.oh, g.ow, g.f}) {
    throw ShapeError(fmt::format("conv2d_forward_fused: residual has shape {}, expected {}",
                                 residual.shape().str(), Shape{g.n, g.oh, g.ow, g.f}.str()));
  }
  if (backend() == Backend::OneDnn) {
    return onednn::conv2d_forward_fused(x, w, b, g, residual, relu, reuse_residual);
  }
  Tensor y = conv2d_forward(x, w, b, g);
  if (residual.defined()) y = add({y, residual});
  if (relu) y = eltwise_forward(Eltwise::Relu, y);
  return y;
}

PreparedConv::PreparedConv(const Tensor& w, const Tensor& b, const ConvGeom& g, bool residual,
                           bool relu)
    : w_(w), b_(b), g_(g), relu_(relu) {
  if (backend() == Backend::OneDnn) impl_ = onednn::prepare_conv2d_fused(w, b, g, residual, relu);
}

std::vector<ConvKernelUse> conv_kernels_used() { return onednn::conv_kernels_used(); }
void reset_conv_kernels_used() { onednn::reset_conv_kernels_used(); }
std::string kernel_isa() { return onednn::isa_name(onednn::best_isa()); }
std::string onednn_isa() { return onednn::onednn_isa_name(); }

std::string PreparedConv::kernel() const {
  return impl_ == nullptr ? "ref" : onednn::prepared_conv2d_kernel(impl_);
}

Tensor PreparedConv::operator()(const Tensor& x, const Tensor& residual,
                                bool reuse_residual) const {
  if (impl_ == nullptr) return conv2d_forward_fused(x, w_, b_, g_, residual, relu_, reuse_residual);
  return onednn::run_prepared_conv2d(impl_, x, residual, reuse_residual);
}

void fold_batchnorm(const Tensor& w, const Tensor& b, const Tensor& gamma, const Tensor& beta,
                    const Tensor& mean, const Tensor& var, double eps, Tensor& w_out,
                    Tensor& b_out) {
  if (!w.defined() || w.rank() < 1) throw ShapeError("fold_batchnorm: kernel is undefined");
  const int64_t f = w.shape()[-1];
  for (const Tensor* t : {&gamma, &beta, &mean, &var}) {
    if (!t->defined() || t->shape() != Shape{f}) {
      throw ShapeError(
          fmt::format("fold_batchnorm: batch-norm parameters must have shape ({},), "
                      "got {}",
                      f, t->defined() ? t->shape().str() : "undefined"));
    }
  }
  if (b.defined() && b.shape() != Shape{f}) {
    throw ShapeError(
        fmt::format("fold_batchnorm: bias has shape {}, expected ({},)", b.shape().str(), f));
  }
  const Tensor wp = plain(w), bp = plain(b), gp = plain(gamma), betap = plain(beta),
               mp = plain(mean), vp = plain(var);
  if (!w_out.defined() || w_out.shape() != w.shape() || !w_out.is_plain()) {
    w_out = Tensor::empty(w.shape());
  }
  if (!b_out.defined() || b_out.shape() != Shape{f} || !b_out.is_plain()) {
    b_out = Tensor::empty(Shape{f});
  }
  std::vector<double> scale(static_cast<size_t>(f));
  for (int64_t j = 0; j < f; ++j) {
    scale[j] = static_cast<double>(gp.f32()[j]) / std::sqrt(static_cast<double>(vp.f32()[j]) + eps);
    const double bias = bp.defined() ? bp.f32()[j] : 0.0;
    b_out.f32()[j] =
        static_cast<float>((bias - mp.f32()[j]) * scale[j] + static_cast<double>(betap.f32()[j]));
  }
  const float* src = wp.f32();
  float* dst = w_out.f32();
  const int64_t rows = w.numel() / f;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < f; ++j) {
      dst[r * f + j] = static_cast<float>(src[r * f + j] * scale[j]);
    }
  }
  w_out.bump_version();
  b_out.bump_version();
}

}  // namespace resnet::ops
