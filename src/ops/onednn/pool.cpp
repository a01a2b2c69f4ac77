// Max and average pooling in the input's layout. Max-pool forward always runs in training mode so
// it can hand its argmax workspace to backward (ops.h has no mode argument; the workspace is
// small: one byte or int per output element).
#include <fmt/format.h>

#include "ops/onednn/common.h"
#include "ops/onednn/onednn.h"

namespace resnet::ops::onednn {
namespace {

using dnnl::algorithm;
using dnnl::pooling_backward;
using dnnl::pooling_forward;
using dnnl::prop_kind;

struct PoolDims {
  memory::dims dst, strides, kernel, pad_l, pad_r;
};

PoolDims pool_dims(const PoolGeom& g) {
  return {{g.n, g.c, g.oh, g.ow},
          {g.sh, g.sw},
          {g.kh, g.kw},
          {g.pad.top, g.pad.left},
          {g.pad.bottom, g.pad.right}};
}

// Avg excludes padded cells from the count (Keras/TensorFlow 'same' average pooling).
algorithm pool_alg(const PoolGeom& g) {
  return g.kind == PoolKind::Max ? algorithm::pooling_max : algorithm::pooling_avg_exclude_padding;
}

Key pool_key(const char* op, const PoolGeom& g, const memory::desc& src_md) {
  Key k(op);
  k << static_cast<int64_t>(g.kind) << g.n << g.h << g.w << g.c << g.kh << g.kw << g.sh << g.sw
    << g.pad.top << g.pad.bottom << g.pad.left << g.pad.right << g.oh << g.ow << src_md;
  return k;
}

struct PoolFwd {
  pooling_forward::primitive_desc pd;
  pooling_forward prim;
};
struct PoolBwd {
  pooling_backward::primitive_desc pd;
  pooling_backward prim;
};

std::shared_ptr<const PoolFwd> pool_fwd(const PoolGeom& g, const memory::desc& src_md) {
  return cached<PoolFwd>(pool_key("pool_fwd", g, src_md), [&] {
    const PoolDims d = pool_dims(g);
    const prop_kind kind =
        g.kind == PoolKind::Max ? prop_kind::forward_training : prop_kind::forward_inference;
    pooling_forward::desc desc(kind, pool_alg(g), src_md, any_md(d.dst), d.strides, d.kernel,
                               d.pad_l, d.pad_r);
    pooling_forward::primitive_desc pd(desc, user_scratchpad(), engine());
    return PoolFwd{pd, pooling_forward(pd)};
  });
}

std::shared_ptr<const PoolBwd> pool_bwd(const PoolGeom& g, const memory::desc& src_md) {
  return cached<PoolBwd>(pool_key("pool_bwd", g, src_md), [&] {
    const PoolDims d = pool_dims(g);
    auto fwd = pool_fwd(g, src_md);
    pooling_backward::desc desc(pool_alg(g), src_md, fwd->pd.dst_desc(), d.strides, d.kernel,
                                d.pad_l, d.pad_r);
    pooling_backward::primitive_desc pd(desc, user_scratchpad(), engine(), fwd->pd);
    return PoolBwd{pd, pooling_backward(pd)};
  });
}

// A workspace is carried as a U8 tensor of its byte size whose Layout is the workspace md.
bool workspace_matches(const Tensor& ws, const memory::desc& ws_md) {
  return ws.defined() && ws.layout() && ws.layout()->md == ws_md;
}

std::string context(const PoolGeom& g, const Tensor& a, const Tensor& b = Tensor()) {
  return fmt::format("{} {} {}", g.str(), describe(a), describe(b));
}

}  // namespace

Tensor pool_forward(const Tensor& x, const PoolGeom& g, Tensor& workspace) {
  const char* op = "pool_forward";
  expect_shape(op, "input", x, Shape{g.n, g.h, g.w, g.c});
  return guarded(
      op, [&] { return context(g, x); },
      [&] {
        const memory::desc src_md = md_of(x);
        auto pool = pool_fwd(g, src_md);
        Tensor y = make_output(Shape{g.n, g.oh, g.ow, g.c}, pool->pd.dst_desc());
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mem_over(x, src_md)},
                                             {DNNL_ARG_DST, mem_over(y, pool->pd.dst_desc())}};
        Tensor ws;
        const memory::desc ws_md = pool->pd.workspace_desc();
        if (!ws_md.is_zero()) {
          const size_t bytes = ws_md.get_size();
          ws = Tensor::with_layout(Shape{static_cast<int64_t>(bytes)}, DType::U8, layout_of(ws_md),
                                   bytes);
          args.emplace(DNNL_ARG_WORKSPACE, mem_over(ws, ws_md));
        }
        execute(pool->prim, args);
        workspace = ws;
        return y;
      });
}

Tensor pool_backward(const Tensor& dy, const Tensor& x, const Tensor& workspace,
                     const PoolGeom& g) {
  const char* op = "pool_backward";
  const Shape x_shape{g.n, g.h, g.w, g.c};
  expect_shape(op, "output gradient", dy, Shape{g.n, g.oh, g.ow, g.c});
  if (x.defined()) expect_shape(op, "input", x, x_shape);
  return guarded(
      op, [&] { return context(g, dy, x); },
      [&] {
        // Average pooling needs only x's layout; without x, use the logical one.
        const memory::desc src_md = x.defined() ? md_of(x) : plain_md(x_shape);
        auto pool = pool_bwd(g, src_md);
        Tensor dx = make_output(x_shape, pool->pd.diff_src_desc());
        std::unordered_map<int, memory> args{
            {DNNL_ARG_DIFF_DST, as_md(dy, pool->pd.diff_dst_desc())},
            {DNNL_ARG_DIFF_SRC, mem_over(dx, pool->pd.diff_src_desc())}};
        const memory::desc ws_md = pool->pd.workspace_desc();
        if (!ws_md.is_zero()) {
          if (workspace_matches(workspace, ws_md)) {
            args.emplace(DNNL_ARG_WORKSPACE, mem_over(workspace, ws_md));
          } else {
            // No (usable) workspace from forward: recompute it. Costs one forward pass.
            if (!x.defined()) {
              throw ShapeError(
                  fmt::format("oneDNN {}: max pooling backward needs x or the "
                              "forward workspace ({})",
                              op, g.str()));
            }
            auto fwd = pool_fwd(g, src_md);
            memory ws_mem = temp_memory(ws_md);
            memory dst_mem = temp_memory(fwd->pd.dst_desc());
            execute(fwd->prim, {{DNNL_ARG_SRC, mem_over(x, src_md)},
                                {DNNL_ARG_DST, dst_mem},
                                {DNNL_ARG_WORKSPACE, ws_mem}});
            args.emplace(DNNL_ARG_WORKSPACE, ws_mem);
          }
        }
        execute(pool->prim, args);
        return dx;
      });
}

}  // namespace resnet::ops::onednn
