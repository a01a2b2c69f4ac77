// Element-wise activations, softmax and the n-ary sum. All of them work in the layout of their
// input (blocked activations stay blocked); gradients are reordered to it when they differ.
#include <fmt/format.h>

#include "ops/onednn/common.h"
#include "ops/onednn/onednn.h"

namespace resnet::ops::onednn {
namespace {

using dnnl::algorithm;
using dnnl::prop_kind;

struct EltwiseAlg {
  algorithm alg;
  float alpha, beta;
};

// Algorithm for `e`; `use_dst` selects the variant whose backward reads the output y
// (sigmoid and tanh) so the caller can pass y instead of recomputing from x.
EltwiseAlg eltwise_alg(Eltwise e, bool use_dst, double alpha) {
  switch (e) {
    case Eltwise::Linear:
      return {algorithm::eltwise_linear, 1.0f, 0.0f};
    case Eltwise::Relu:
      return {use_dst ? algorithm::eltwise_relu_use_dst_for_bwd : algorithm::eltwise_relu,
              static_cast<float>(alpha), 0.0f};
    case Eltwise::Sigmoid:
      return {use_dst ? algorithm::eltwise_logistic_use_dst_for_bwd : algorithm::eltwise_logistic,
              0.0f, 0.0f};
    case Eltwise::Tanh:
      return {use_dst ? algorithm::eltwise_tanh_use_dst_for_bwd : algorithm::eltwise_tanh, 0.0f,
              0.0f};
  }
  throw BackendError("oneDNN eltwise: unknown activation");
}

struct EltFwd {
  dnnl::eltwise_forward::primitive_desc pd;
  dnnl::eltwise_forward prim;
};
struct EltBwd {
  dnnl::eltwise_backward::primitive_desc pd;
  dnnl::eltwise_backward prim;
};

dnnl::eltwise_forward::primitive_desc make_elt_fwd_pd(const EltwiseAlg& a, const memory::desc& md) {
  return {dnnl::eltwise_forward::desc(prop_kind::forward_training, a.alg, md, a.alpha, a.beta),
          user_scratchpad(), engine()};
}

std::shared_ptr<const EltFwd> elt_fwd(const EltwiseAlg& a, const memory::desc& md) {
  Key key("eltwise_fwd");
  key << static_cast<int64_t>(a.alg) << static_cast<double>(a.alpha) << static_cast<double>(a.beta)
      << md;
  return cached<EltFwd>(key, [&] {
    auto pd = make_elt_fwd_pd(a, md);
    return EltFwd{pd, dnnl::eltwise_forward(pd)};
  });
}

std::shared_ptr<const EltBwd> elt_bwd(const EltwiseAlg& a, const memory::desc& md) {
  Key key("eltwise_bwd");
  key << static_cast<int64_t>(a.alg) << static_cast<double>(a.alpha) << static_cast<double>(a.beta)
      << md;
  return cached<EltBwd>(key, [&] {
    dnnl::eltwise_backward::desc desc(a.alg, md, md, a.alpha, a.beta);
    dnnl::eltwise_backward::primitive_desc pd(desc, user_scratchpad(), engine(),
                                              make_elt_fwd_pd(a, md));
    return EltBwd{pd, dnnl::eltwise_backward(pd)};
  });
}

struct SmFwd {
  dnnl::softmax_forward::primitive_desc pd;
  dnnl::softmax_forward prim;
};
struct SmBwd {
  dnnl::softmax_backward::primitive_desc pd;
  dnnl::softmax_backward prim;
};

// The logical last axis (channels) is oneDNN axis 1 for every rank >= 2.
int softmax_axis(const Tensor& t) { return t.rank() >= 2 ? 1 : 0; }

dnnl::softmax_forward::primitive_desc make_sm_fwd_pd(const memory::desc& md, int axis) {
  return {dnnl::softmax_forward::desc(prop_kind::forward_training, md, axis), user_scratchpad(),
          engine()};
}

}  // namespace

Tensor eltwise_forward(Eltwise e, const Tensor& x, double alpha) {
  const char* op = "eltwise_forward";
  return guarded(
      op, [&] { return fmt::format("{} x={}", eltwise_name(e), describe(x)); },
      [&] {
        const memory::desc src_md = md_of(x);
        auto elt = elt_fwd(eltwise_alg(e, false, alpha), src_md);
        Tensor y = make_output(x.shape(), src_md);
        execute(elt->prim,
                {{DNNL_ARG_SRC, mem_over(x, src_md)}, {DNNL_ARG_DST, mem_over(y, src_md)}});
        return y;
      });
}

Tensor eltwise_backward(Eltwise e, const Tensor& dy, const Tensor& x, const Tensor& y,
                        double alpha) {
  const char* op = "eltwise_backward";
  // Sigmoid and tanh differentiate from y (x when y is not given); relu from x (or from y:
  // relu'(x) = [y > 0]); linear needs neither, only the layout of one of them.
  bool use_dst = false;
  switch (e) {
    case Eltwise::Sigmoid:
    case Eltwise::Tanh:
      use_dst = y.defined();
      break;
    case Eltwise::Relu:
      use_dst = !x.defined();
      break;
    case Eltwise::Linear:
      break;
  }
  const Tensor& data = use_dst || !x.defined() ? y : x;
  if (!data.defined()) {
    throw ShapeError(fmt::format("oneDNN {} ({}): needs x or y", op, eltwise_name(e)));
  }
  expect_shape(op, "output gradient", dy, data.shape());
  return guarded(
      op,
      [&] {
        return fmt::format("{} dy={} x={} y={}", eltwise_name(e), describe(dy), describe(x),
                           describe(y));
      },
      [&] {
        const EltwiseAlg a = eltwise_alg(e, use_dst, alpha);
        const memory::desc data_md = md_of(data);
        auto elt = elt_bwd(a, data_md);
        Tensor dx = make_output(data.shape(), data_md);
        execute(elt->prim, {{use_dst ? DNNL_ARG_DST : DNNL_ARG_SRC, mem_over(data, data_md)},
                            {DNNL_ARG_DIFF_DST, as_md(dy, data_md)},
                            {DNNL_ARG_DIFF_SRC, mem_over(dx, data_md)}});
        return dx;
      });
}

Tensor softmax_forward(const Tensor& x) {
  const char* op = "softmax_forward";
  return guarded(
      op, [&] { return fmt::format("x={}", describe(x)); },
      [&] {
        const memory::desc src_md = md_of(x);
        const int axis = softmax_axis(x);
        auto sm = cached<SmFwd>(Key(op) << src_md << int64_t{axis}, [&] {
          auto pd = make_sm_fwd_pd(src_md, axis);
          return SmFwd{pd, dnnl::softmax_forward(pd)};
        });
        Tensor y = make_output(x.shape(), src_md);
        execute(sm->prim,
                {{DNNL_ARG_SRC, mem_over(x, src_md)}, {DNNL_ARG_DST, mem_over(y, src_md)}});
        return y;
      });
}

Tensor softmax_backward(const Tensor& dy, const Tensor& y) {
  const char* op = "softmax_backward";
  expect_shape(op, "output gradient", dy, y.defined() ? y.shape() : Shape{});
  return guarded(
      op, [&] { return fmt::format("dy={} y={}", describe(dy), describe(y)); },
      [&] {
        const memory::desc dst_md = md_of(y);
        const int axis = softmax_axis(y);
        auto sm = cached<SmBwd>(Key(op) << dst_md << int64_t{axis}, [&] {
          dnnl::softmax_backward::desc desc(dst_md, dst_md, axis);
          dnnl::softmax_backward::primitive_desc pd(desc, user_scratchpad(), engine(),
                                                    make_sm_fwd_pd(dst_md, axis));
          return SmBwd{pd, dnnl::softmax_backward(pd)};
        });
        Tensor dx = make_output(y.shape(), dst_md);
        execute(sm->prim, {{DNNL_ARG_DST, mem_over(y, dst_md)},
                           {DNNL_ARG_DIFF_DST, as_md(dy, dst_md)},
                           {DNNL_ARG_DIFF_SRC, mem_over(dx, dst_md)}});
        return dx;
      });
}

Tensor add(const std::vector<Tensor>& xs) {
  const char* op = "add";
  if (xs.empty()) throw ShapeError("oneDNN add: no inputs");
  for (size_t i = 1; i < xs.size(); ++i) {
    if (!xs[i].defined() || !xs[0].defined() || xs[i].shape() != xs[0].shape()) {
      throw ShapeError(fmt::format("oneDNN add: input {} has shape {}, input 0 has {}", i,
                                   describe(xs[i]), describe(xs[0])));
    }
  }
  return guarded(
      op,
      [&] {
        std::string s;
        for (const Tensor& x : xs) s += (s.empty() ? "" : ", ") + describe(x);
        return s;
      },
      [&] {
        // Everything in the first input's layout: in a residual block that is the main path's
        // (blocked) layout, and the shortcut is reordered only if it differs.
        const memory::desc md = md_of(xs[0]);
        Tensor y = make_output(xs[0].shape(), md);
        if (xs.size() == 1) {
          reorder(mem_over(xs[0], md), mem_over(y, md));
          return y;
        }
        const int64_t count = static_cast<int64_t>(xs.size());
        auto sum = cached<dnnl::sum>(Key(op) << count << md, [&] {
          std::vector<memory::desc> src_mds(xs.size(), md);
          std::vector<float> scales(xs.size(), 1.0f);
          return dnnl::sum(
              dnnl::sum::primitive_desc(md, scales, src_mds, engine(), user_scratchpad()));
        });
        std::unordered_map<int, memory> args{{DNNL_ARG_DST, mem_over(y, md)}};
        for (size_t i = 0; i < xs.size(); ++i) {
          args.emplace(DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i), as_md(xs[i], md));
        }
        execute(*sum, args);
        return y;
      });
}

}  // namespace resnet::ops::onednn
