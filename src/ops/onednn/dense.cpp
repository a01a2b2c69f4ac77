// Dense layers as oneDNN inner products. oneDNN names the weights {U, K} ("oi"); the Keras kernel
// (K, U) row-major is exactly that tensor in format `io`, so no transpose is written by hand: the
// reorder into the primitive's layout is cached per weight version like conv weights.
#include <fmt/format.h>

#include "ops/onednn/common.h"
#include "ops/onednn/onednn.h"

namespace resnet::ops::onednn {
namespace {

using dnnl::inner_product_backward_data;
using dnnl::inner_product_backward_weights;
using dnnl::inner_product_forward;
using dnnl::prop_kind;

struct IpFwd {
  inner_product_forward::primitive_desc pd;
  inner_product_forward prim;
};
struct IpBwdData {
  inner_product_backward_data::primitive_desc pd;
  inner_product_backward_data prim;
};
struct IpBwdWeights {
  inner_product_backward_weights::primitive_desc pd;
  inner_product_backward_weights prim;
};

Key ip_key(const char* op, int64_t m, int64_t k, int64_t u, bool with_bias) {
  Key key(op);
  key << m << k << u << int64_t{with_bias};
  return key;
}

memory::desc bias_md(int64_t u) { return tagged_md({u}, tag::x); }
memory::desc user_weights_md(int64_t k, int64_t u) { return tagged_md({u, k}, tag::io); }

std::shared_ptr<const IpFwd> ip_fwd(int64_t m, int64_t k, int64_t u, bool with_bias) {
  return cached<IpFwd>(ip_key("dense_fwd", m, k, u, with_bias), [&] {
    inner_product_forward::desc desc(prop_kind::forward_training, any_md({m, k}), any_md({u, k}),
                                     with_bias ? bias_md(u) : memory::desc(), any_md({m, u}));
    inner_product_forward::primitive_desc pd(desc, user_scratchpad(), engine());
    return IpFwd{pd, inner_product_forward(pd)};
  });
}

std::shared_ptr<const IpBwdData> ip_bwd_data(int64_t m, int64_t k, int64_t u) {
  return cached<IpBwdData>(ip_key("dense_bwd_data", m, k, u, false), [&] {
    inner_product_backward_data::desc desc(any_md({m, k}), any_md({u, k}), any_md({m, u}));
    inner_product_backward_data::primitive_desc pd(desc, user_scratchpad(), engine(),
                                                   ip_fwd(m, k, u, false)->pd);
    return IpBwdData{pd, inner_product_backward_data(pd)};
  });
}

std::shared_ptr<const IpBwdWeights> ip_bwd_weights(int64_t m, int64_t k, int64_t u,
                                                   bool with_bias) {
  return cached<IpBwdWeights>(ip_key("dense_bwd_weights", m, k, u, with_bias), [&] {
    inner_product_backward_weights::desc desc(
        any_md({m, k}), any_md({u, k}), with_bias ? bias_md(u) : memory::desc(), any_md({m, u}));
    inner_product_backward_weights::primitive_desc pd(desc, user_scratchpad(), engine(),
                                                      ip_fwd(m, k, u, with_bias)->pd);
    return IpBwdWeights{pd, inner_product_backward_weights(pd)};
  });
}

void expect_rank2(const char* op, const char* what, const Tensor& t) {
  if (!t.defined() || t.rank() != 2) {
    throw ShapeError(fmt::format("oneDNN {}: {} must be 2-D, got {}", op, what,
                                 t.defined() ? t.shape().str() : "undefined"));
  }
}

}  // namespace

Tensor dense_forward(const Tensor& x, const Tensor& w, const Tensor& b) {
  const char* op = "dense_forward";
  expect_rank2(op, "input", x);
  expect_rank2(op, "kernel", w);
  const int64_t m = x.shape()[0], k = x.shape()[1], u = w.shape()[1];
  expect_shape(op, "kernel", w, Shape{k, u});
  if (b.defined()) expect_shape(op, "bias", b, Shape{u});
  return guarded(
      op, [&] { return fmt::format("x={} w={} b={}", describe(x), describe(w), describe(b)); },
      [&] {
        auto ip = ip_fwd(m, k, u, b.defined());
        Tensor y = make_output(Shape{m, u}, ip->pd.dst_desc());
        std::unordered_map<int, memory> args{
            {DNNL_ARG_SRC, as_md(x, ip->pd.src_desc())},
            {DNNL_ARG_WEIGHTS, cached_weights(w, user_weights_md(k, u), ip->pd.weights_desc())},
            {DNNL_ARG_DST, mem_over(y, ip->pd.dst_desc())}};
        if (b.defined()) args.emplace(DNNL_ARG_BIAS, as_md(b, ip->pd.bias_desc()));
        execute(ip->prim, args);
        return y;
      });
}

Tensor dense_backward_data(const Tensor& dy, const Tensor& w) {
  const char* op = "dense_backward_data";
  expect_rank2(op, "output gradient", dy);
  expect_rank2(op, "kernel", w);
  const int64_t m = dy.shape()[0], k = w.shape()[0], u = w.shape()[1];
  expect_shape(op, "output gradient", dy, Shape{m, u});
  return guarded(
      op, [&] { return fmt::format("dy={} w={}", describe(dy), describe(w)); },
      [&] {
        auto ip = ip_bwd_data(m, k, u);
        Tensor dx = make_output(Shape{m, k}, ip->pd.diff_src_desc());
        execute(ip->prim, {{DNNL_ARG_DIFF_DST, as_md(dy, ip->pd.diff_dst_desc())},
                           {DNNL_ARG_WEIGHTS,
                            cached_weights(w, user_weights_md(k, u), ip->pd.weights_desc())},
                           {DNNL_ARG_DIFF_SRC, mem_over(dx, ip->pd.diff_src_desc())}});
        return dx;
      });
}

void dense_backward_weights(const Tensor& x, const Tensor& dy, bool with_bias, Tensor& dw,
                            Tensor& db) {
  const char* op = "dense_backward_weights";
  expect_rank2(op, "input", x);
  expect_rank2(op, "output gradient", dy);
  const int64_t m = x.shape()[0], k = x.shape()[1], u = dy.shape()[1];
  expect_shape(op, "output gradient", dy, Shape{m, u});
  guarded(
      op, [&] { return fmt::format("x={} dy={}", describe(x), describe(dy)); },
      [&] {
        auto ip = ip_bwd_weights(m, k, u, with_bias);
        Tensor new_dw = Tensor::empty(Shape{k, u});
        PlainOutput diff_weights(new_dw, user_weights_md(k, u), ip->pd.diff_weights_desc());
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, as_md(x, ip->pd.src_desc())},
                                             {DNNL_ARG_DIFF_DST, as_md(dy, ip->pd.diff_dst_desc())},
                                             {DNNL_ARG_DIFF_WEIGHTS, diff_weights.mem()}};
        Tensor new_db;
        if (with_bias) {
          new_db = Tensor::empty(Shape{u});
          args.emplace(DNNL_ARG_DIFF_BIAS, mem_over(new_db, ip->pd.diff_bias_desc()));
        }
        execute(ip->prim, args);
        diff_weights.commit();
        dw = new_dw;
        db = new_db;  // undefined without bias, as in the ref backend
      });
}

}  // namespace resnet::ops::onednn
