// Batch normalization over the channel axis, in whatever layout the input has (so that a blocked
// conv output stays blocked through BN). gamma/beta are passed as separate scale and shift
// (normalization_flags::use_scale | use_shift, oneDNN >= 2.3).
#include <fmt/format.h>

#include "ops/onednn/common.h"
#include "ops/onednn/onednn.h"

namespace resnet::ops::onednn {
namespace {

using dnnl::batch_normalization_backward;
using dnnl::batch_normalization_forward;
using dnnl::normalization_flags;
using dnnl::prop_kind;

const normalization_flags kScaleShift =
    normalization_flags::use_scale | normalization_flags::use_shift;

struct BnFwd {
  batch_normalization_forward::primitive_desc pd;
  batch_normalization_forward prim;
};

struct BnBwd {
  batch_normalization_backward::primitive_desc pd;
  batch_normalization_backward prim;
};

batch_normalization_forward::primitive_desc make_fwd_pd(prop_kind kind, const memory::desc& md,
                                                        float eps, normalization_flags flags) {
  return {batch_normalization_forward::desc(kind, md, eps, flags), user_scratchpad(), engine()};
}

std::shared_ptr<const BnFwd> bn_fwd(prop_kind kind, const memory::desc& md, float eps,
                                    normalization_flags flags) {
  Key key("bn_fwd");
  key << static_cast<int64_t>(kind) << md << static_cast<double>(eps)
      << static_cast<int64_t>(flags);
  return cached<BnFwd>(key, [&] {
    auto pd = make_fwd_pd(kind, md, eps, flags);
    return BnFwd{pd, batch_normalization_forward(pd)};
  });
}

std::shared_ptr<const BnBwd> bn_bwd(const memory::desc& md, float eps, normalization_flags flags) {
  Key key("bn_bwd");
  key << md << static_cast<double>(eps) << static_cast<int64_t>(flags);
  return cached<BnBwd>(key, [&] {
    auto hint = make_fwd_pd(prop_kind::forward_training, md, eps, flags);
    batch_normalization_backward::desc desc(prop_kind::backward, md, md, eps, flags);
    batch_normalization_backward::primitive_desc pd(desc, user_scratchpad(), engine(), hint);
    return BnBwd{pd, batch_normalization_backward(pd)};
  });
}

int64_t channels(const char* op, const Tensor& x) {
  if (!x.defined() || x.rank() < 2) {
    throw ShapeError(fmt::format("oneDNN {}: input must have rank >= 2, got {}", op,
                                 x.defined() ? x.shape().str() : "undefined"));
  }
  return x.shape()[-1];
}

memory::desc vec_md(int64_t c) { return tagged_md({c}, tag::x); }

}  // namespace

Tensor batchnorm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  double eps, Tensor& mean, Tensor& var) {
  const char* op = "batchnorm_forward_training";
  const int64_t c = channels(op, x);
  expect_shape(op, "gamma", gamma, Shape{c});
  expect_shape(op, "beta", beta, Shape{c});
  return guarded(
      op, [&] { return fmt::format("x={} eps={}", describe(x), eps); },
      [&] {
        const memory::desc src_md = md_of(x);
        auto bn = bn_fwd(prop_kind::forward_training, src_md, static_cast<float>(eps), kScaleShift);
        Tensor y = make_output(x.shape(), src_md);
        Tensor new_mean = Tensor::empty(Shape{c});
        Tensor new_var = Tensor::empty(Shape{c});
        execute(bn->prim, {{DNNL_ARG_SRC, mem_over(x, src_md)},
                           {DNNL_ARG_DST, mem_over(y, src_md)},
                           {DNNL_ARG_SCALE, as_md(gamma, vec_md(c))},
                           {DNNL_ARG_SHIFT, as_md(beta, vec_md(c))},
                           {DNNL_ARG_MEAN, mem_over(new_mean, bn->pd.mean_desc())},
                           {DNNL_ARG_VARIANCE, mem_over(new_var, bn->pd.variance_desc())}});
        mean = new_mean;
        var = new_var;
        return y;
      });
}

Tensor batchnorm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                   const Tensor& mean, const Tensor& var, double eps) {
  const char* op = "batchnorm_forward_inference";
  const int64_t c = channels(op, x);
  expect_shape(op, "gamma", gamma, Shape{c});
  expect_shape(op, "beta", beta, Shape{c});
  expect_shape(op, "mean", mean, Shape{c});
  expect_shape(op, "variance", var, Shape{c});
  return guarded(
      op, [&] { return fmt::format("x={} eps={}", describe(x), eps); },
      [&] {
        const memory::desc src_md = md_of(x);
        auto bn = bn_fwd(prop_kind::forward_inference, src_md, static_cast<float>(eps),
                         kScaleShift | normalization_flags::use_global_stats);
        Tensor y = make_output(x.shape(), src_md);
        execute(bn->prim, {{DNNL_ARG_SRC, mem_over(x, src_md)},
                           {DNNL_ARG_DST, mem_over(y, src_md)},
                           {DNNL_ARG_SCALE, as_md(gamma, vec_md(c))},
                           {DNNL_ARG_SHIFT, as_md(beta, vec_md(c))},
                           {DNNL_ARG_MEAN, as_md(mean, bn->pd.mean_desc())},
                           {DNNL_ARG_VARIANCE, as_md(var, bn->pd.variance_desc())}});
        return y;
      });
}

void batchnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& var, double eps, bool stats_fixed, Tensor& dx, Tensor& dgamma,
                        Tensor& dbeta) {
  const char* op = "batchnorm_backward";
  const int64_t c = channels(op, x);
  expect_shape(op, "output gradient", dy, x.shape());
  expect_shape(op, "gamma", gamma, Shape{c});
  expect_shape(op, "mean", mean, Shape{c});
  expect_shape(op, "variance", var, Shape{c});
  guarded(
      op,
      [&] {
        return fmt::format("x={} dy={} eps={} stats_fixed={}", describe(x), describe(dy), eps,
                           stats_fixed);
      },
      [&] {
        const memory::desc src_md = md_of(x);
        normalization_flags flags = kScaleShift;
        if (stats_fixed) flags = flags | normalization_flags::use_global_stats;
        auto bn = bn_bwd(src_md, static_cast<float>(eps), flags);
        Tensor new_dx = make_output(x.shape(), bn->pd.diff_src_desc());
        Tensor new_dgamma = Tensor::empty(Shape{c});
        Tensor new_dbeta = Tensor::empty(Shape{c});
        // oneDNN 2.6 validates a SHIFT argument for backward with use_shift although the
        // gradients do not depend on beta; hand it zeros.
        const Tensor unused_shift = Tensor::zeros(Shape{c});
        execute(bn->prim, {{DNNL_ARG_SRC, mem_over(x, src_md)},
                           {DNNL_ARG_DIFF_DST, as_md(dy, bn->pd.diff_dst_desc())},
                           {DNNL_ARG_MEAN, as_md(mean, bn->pd.mean_desc())},
                           {DNNL_ARG_VARIANCE, as_md(var, bn->pd.variance_desc())},
                           {DNNL_ARG_SCALE, as_md(gamma, vec_md(c))},
                           {DNNL_ARG_SHIFT, mem_over(unused_shift, vec_md(c))},
                           {DNNL_ARG_DIFF_SRC, mem_over(new_dx, bn->pd.diff_src_desc())},
                           {DNNL_ARG_DIFF_SCALE, mem_over(new_dgamma, vec_md(c))},
                           {DNNL_ARG_DIFF_SHIFT, mem_over(new_dbeta, vec_md(c))}});
        dx = new_dx;
        dgamma = new_dgamma;
        dbeta = new_dbeta;
      });
}

}  // namespace resnet::ops::onednn
