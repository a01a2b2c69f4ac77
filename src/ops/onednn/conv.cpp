// Convolution: forward, backward data, backward weights (+ bias).
//
// Primitives are created with format_tag::any for src, weights and dst, so oneDNN picks its
// blocked layouts; activations are returned in those layouts and weights are reordered from the
// Keras HWIO layout once per optimizer update (cached_weights).
#include <fmt/format.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "ops/onednn/common.h"
#include "ops/onednn/onednn.h"
#include "ops/onednn/small_conv.h"
#include "ops/onednn/winograd.h"
#include "resnet/runtime.h"

namespace resnet::ops::onednn {
namespace {

using dnnl::convolution_backward_data;
using dnnl::convolution_backward_weights;
using dnnl::convolution_forward;

// The record behind conv_kernels_used(): (kind, kernel) -> the geometries that chose it.
struct KernelRecord {
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, std::set<std::string>> uses;
};
KernelRecord& kernel_record() {
  static KernelRecord r;
  return r;
}

void note_kernel(const char* kind, std::string kernel, const ConvGeom& g) {
  KernelRecord& r = kernel_record();
  std::lock_guard<std::mutex> lock(r.mu);
  r.uses[{kind, std::move(kernel)}].insert(g.str());
}

template <class Pd>
void note_primitive(const char* kind, const Pd& pd, const ConvGeom& g) {
  note_kernel(kind, pd.impl_info_str(), g);
}

struct ConvDims {
  memory::dims src, weights, bias, dst, strides, dilates, pad_l, pad_r;
};

ConvDims conv_dims(const ConvGeom& g) {
  return {{g.n, g.c, g.h, g.w},
          {g.f, g.c, g.kh, g.kw},
          {g.f},
          {g.n, g.f, g.oh, g.ow},
          {g.sh, g.sw},
          {g.dh - 1, g.dw - 1},
          {g.pad.top, g.pad.left},
          {g.pad.bottom, g.pad.right}};
}

Key conv_key(const char* op, const ConvGeom& g, bool with_bias) {
  Key k(op);
  k << g.n << g.h << g.w << g.c << g.kh << g.kw << g.f << g.sh << g.sw << g.dh << g.dw << g.pad.top
    << g.pad.bottom << g.pad.left << g.pad.right << g.oh << g.ow << int64_t{with_bias};
  return k;
}

// Keras kernels are (KH, KW, C, F) row-major: oneDNN dims {F, C, KH, KW} in format hwio.
memory::desc user_weights_md(const Tensor& w, const ConvGeom& g) {
  if (w.layout()) return w.layout()->md;
  return tagged_md({g.f, g.c, g.kh, g.kw}, tag::hwio);
}

struct ConvFwd {
  convolution_forward::primitive_desc pd;
  convolution_forward prim;
};

std::shared_ptr<const ConvFwd> conv_fwd(const ConvGeom& g, bool with_bias) {
  return cached<ConvFwd>(conv_key("conv_fwd", g, with_bias), [&] {
    const ConvDims d = conv_dims(g);
    const memory::desc bias_md = with_bias ? tagged_md(d.bias, tag::x) : memory::desc();
    convolution_forward::desc desc(
        dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, any_md(d.src),
        any_md(d.weights), bias_md, any_md(d.dst), d.strides, d.dilates, d.pad_l, d.pad_r);
    convolution_forward::primitive_desc pd(desc, user_scratchpad(), engine());
    note_primitive("forward", pd, g);
    return ConvFwd{pd, convolution_forward(pd)};
  });
}

// Inference convolution with post-ops: [sum(1)] then [relu]. The sum post-op adds what dst holds
// before the call (the residual, copied or reused there).
std::shared_ptr<const ConvFwd> conv_fwd_fused(const ConvGeom& g, bool with_bias, bool sum,
                                              bool relu, bool winograd = false) {
  Key key = conv_key("conv_fwd_fused", g, with_bias);
  key << int64_t{sum} << int64_t{relu} << int64_t{winograd};
  return cached<ConvFwd>(key, [&] {
    const ConvDims d = conv_dims(g);
    const memory::desc bias_md = with_bias ? tagged_md(d.bias, tag::x) : memory::desc();
    convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference,
        winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct,
        any_md(d.src), any_md(d.weights), bias_md, any_md(d.dst), d.strides, d.dilates, d.pad_l,
        d.pad_r);
    dnnl::post_ops po;
    if (sum) po.append_sum(1.0f);
    if (relu) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    dnnl::primitive_attr attr = user_scratchpad();
    attr.set_post_ops(po);
    convolution_forward::primitive_desc pd(desc, attr, engine());
    note_primitive("forward inference", pd, g);
    return ConvFwd{pd, convolution_forward(pd)};
  });
}

struct ConvBwdData {
  convolution_backward_data::primitive_desc pd;
  convolution_backward_data prim;
};

std::shared_ptr<const ConvBwdData> conv_bwd_data(const ConvGeom& g) {
  return cached<ConvBwdData>(conv_key("conv_bwd_data", g, false), [&] {
    const ConvDims d = conv_dims(g);
    convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, any_md(d.src),
                                         any_md(d.weights), any_md(d.dst), d.strides, d.dilates,
                                         d.pad_l, d.pad_r);
    convolution_backward_data::primitive_desc pd(desc, user_scratchpad(), engine(),
                                                 conv_fwd(g, false)->pd);
    note_primitive("backward data", pd, g);
    return ConvBwdData{pd, convolution_backward_data(pd)};
  });
}

struct ConvBwdWeights {
  convolution_backward_weights::primitive_desc pd;
  convolution_backward_weights prim;
};

std::shared_ptr<const ConvBwdWeights> conv_bwd_weights(const ConvGeom& g, bool with_bias) {
  return cached<ConvBwdWeights>(conv_key("conv_bwd_weights", g, with_bias), [&] {
    const ConvDims d = conv_dims(g);
    const memory::desc bias_md = with_bias ? tagged_md(d.bias, tag::x) : memory::desc();
    convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, any_md(d.src),
                                            any_md(d.weights), bias_md, any_md(d.dst), d.strides,
                                            d.dilates, d.pad_l, d.pad_r);
    convolution_backward_weights::primitive_desc pd(desc, user_scratchpad(), engine(),
                                                    conv_fwd(g, with_bias)->pd);
    note_primitive("backward weights", pd, g);
    return ConvBwdWeights{pd, convolution_backward_weights(pd)};
  });
}

Shape x_shape(const ConvGeom& g) { return {g.n, g.h, g.w, g.c}; }
Shape w_shape(const ConvGeom& g) { return {g.kh, g.kw, g.c, g.f}; }
Shape y_shape(const ConvGeom& g) { return {g.n, g.oh, g.ow, g.f}; }

}  // namespace

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g) {
  const char* op = "conv2d_forward";
  expect_shape(op, "input", x, x_shape(g));
  expect_shape(op, "kernel", w, w_shape(g));
  if (b.defined()) expect_shape(op, "bias", b, Shape{g.f});
  return guarded(
      op,
      [&] {
        return fmt::format("{} x={} w={} b={}", g.str(), describe(x), describe(w), describe(b));
      },
      [&] {
        auto conv = conv_fwd(g, b.defined());
        memory src_mem = as_md(x, conv->pd.src_desc());
        memory weights_mem = cached_weights(w, user_weights_md(w, g), conv->pd.weights_desc());
        Tensor y = make_output(y_shape(g), conv->pd.dst_desc());
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_mem},
                                             {DNNL_ARG_WEIGHTS, weights_mem},
                                             {DNNL_ARG_DST, mem_over(y, conv->pd.dst_desc())}};
        if (b.defined()) args.emplace(DNNL_ARG_BIAS, as_md(b, conv->pd.bias_desc()));
        execute(conv->prim, args);
        return y;
      });
}

Tensor conv2d_forward_fused(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g,
                            const Tensor& residual, bool relu, bool reuse_residual) {
  const char* op = "conv2d_forward_fused";
  expect_shape(op, "input", x, x_shape(g));
  expect_shape(op, "kernel", w, w_shape(g));
  if (b.defined()) expect_shape(op, "bias", b, Shape{g.f});
  if (residual.defined()) expect_shape(op, "residual", residual, y_shape(g));
  return guarded(
      op,
      [&] {
        return fmt::format("{} x={} w={} b={} residual={} relu={}", g.str(), describe(x),
                           describe(w), describe(b), describe(residual), relu);
      },
      [&] {
        auto conv = conv_fwd_fused(g, b.defined(), residual.defined(), relu);
        const memory::desc dst_md = conv->pd.dst_desc();
        memory src_mem = as_md(x, conv->pd.src_desc());
        memory weights_mem = cached_weights(w, user_weights_md(w, g), conv->pd.weights_desc());
        Tensor y;
        if (residual.defined() && reuse_residual && md_of(residual) == dst_md) {
          y = residual;  // handed over by the caller: accumulate in place
        } else {
          y = make_output(y_shape(g), dst_md);
          if (residual.defined()) reorder(mem_over(residual, md_of(residual)), mem_over(y, dst_md));
        }
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_mem},
                                             {DNNL_ARG_WEIGHTS, weights_mem},
                                             {DNNL_ARG_DST, mem_over(y, dst_md)}};
        if (b.defined()) args.emplace(DNNL_ARG_BIAS, as_md(b, conv->pd.bias_desc()));
        execute(conv->prim, args);
        return y;
      });
}

namespace {
std::atomic<bool>& winograd_setting() {
  static std::atomic<bool> on{runtime_options().winograd};
  return on;
}

// 3x3 stride-1 convolutions with enough output pixels for the Winograd tiles to pay for the
// layout reorders around them (nChw16c; the 1x1 convolutions use NHWC). Measured with oneDNN
// 2.6 on AVX-512: 1.3-2.3x faster than direct at batch 32 for 4x4 to 56x56 outputs (2x2: slower);
// at batch 1, 1.1-1.5x for 56x56 to 14x14 outputs, where the reorders eat the gain unless there
// are 512 pixels or 256+ channels (15x15x64 of the tutorial ResNet-50 at 64x64: slower overall).
bool winograd_pays(const ConvGeom& g) {
  const int64_t pixels = g.oh * g.ow;
  return winograd_setting().load() && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 &&
         g.dh == 1 && g.dw == 1 &&
         ((pixels >= 16 && g.n * pixels >= 512) || (pixels >= 100 && g.c >= 256));
}

// Our AVX2 Winograd (winograd.h), measured against oneDNN's AVX2 direct convolutions on a 2-core
// Zen 2 (2 threads, per layer in the inference plan). F(4x4): 1.5-3.5x faster for 4x4+ outputs
// at batch 8 and 32 (tutorial ResNet-50 @64) and 1.6-2.7x at batch 1 for ResNet-50 @224's 56x56
// to 7x7 maps; slower at batch 1 on 15x15x64 (16 tiles of 64 channels: too little work per
// call). F(2x2) for 2x2 and 3x3 outputs (the tutorial's last stage at batch 2 and more; batch 1
// goes to the small-output kernels).
bool own_winograd_pays(const ConvGeom& g) {
  if (g.oh >= 4 && g.ow >= 4) return g.n * g.oh * g.ow >= 512 || g.c >= 128;
  return g.oh >= 2 && g.ow >= 2 && g.c >= 128;
}

struct PreparedConvImpl {
  std::shared_ptr<const SmallConv> small;    // set: the streaming kernel, none of the rest
  std::shared_ptr<const WinogradConv> wino;  // set: our AVX2 Winograd, none of the rest
  std::shared_ptr<const ConvFwd> conv;
  bool winograd = false;
  ConvGeom g;
  memory::desc src_md, dst_md;
  std::shared_ptr<const detail::Layout> src_layout, dst_layout;  // null: plain
  std::shared_ptr<void> weights_storage;
  memory weights, bias;
  Tensor b;
};
}  // namespace

std::shared_ptr<const void> prepare_conv2d_fused(const Tensor& w, const Tensor& b,
                                                 const ConvGeom& g, bool residual, bool relu) {
  const char* op = "prepare_conv2d_fused";
  expect_shape(op, "kernel", w, w_shape(g));
  if (b.defined()) expect_shape(op, "bias", b, Shape{g.f});
  return guarded(
      op, [&] { return fmt::format("{} w={} b={}", g.str(), describe(w), describe(b)); },
      [&] {
        auto p = std::make_shared<PreparedConvImpl>();
        p->g = g;
        p->small = prepare_small_conv(w, b, g, relu);
        if (p->small) {
          note_kernel(
              "forward inference",
              std::string("small-conv ") + small_conv_isa_name(small_conv_isa_of(*p->small)), g);
          return std::shared_ptr<const void>(std::move(p));
        }
        if (winograd_conv_applies(g) && own_winograd_pays(g)) {
          p->wino = prepare_winograd_conv(w, b, g, relu);
          note_kernel("forward inference", winograd_conv_kernel(*p->wino), g);
          return std::shared_ptr<const void>(std::move(p));
        }
        if (winograd_pays(g)) {
          try {
            p->conv = conv_fwd_fused(g, b.defined(), residual, relu, true);
            p->winograd = true;
          } catch (const dnnl::error&) {
            // No Winograd kernel for this CPU (oneDNN has them for AVX-512 only): direct.
          }
        }
        if (!p->conv) p->conv = conv_fwd_fused(g, b.defined(), residual, relu);
        p->src_md = p->conv->pd.src_desc();
        p->dst_md = p->conv->pd.dst_desc();
        if (p->src_md != plain_md(x_shape(g))) p->src_layout = layout_of(p->src_md);
        if (p->dst_md != plain_md(y_shape(g))) p->dst_layout = layout_of(p->dst_md);
        const memory::desc want = p->conv->pd.weights_desc();
        p->weights_storage = detail::shared_block(want.get_size());
        p->weights = memory(want, engine(), p->weights_storage.get());
        reorder(mem_over(w, user_weights_md(w, g)), p->weights);
        if (b.defined()) {
          p->b = b;
          p->bias = mem_over(b, p->conv->pd.bias_desc());
        }
        return std::shared_ptr<const void>(std::move(p));
      });
}

std::string prepared_conv2d_kernel(const std::shared_ptr<const void>& prepared) {
  const auto& p = *static_cast<const PreparedConvImpl*>(prepared.get());
  if (p.small) return std::string("small-conv ") + small_conv_isa_name(small_conv_isa_of(*p.small));
  if (p.wino) return winograd_conv_kernel(*p.wino);
  return p.winograd ? "onednn winograd" : "onednn";
}

Tensor run_prepared_conv2d(const std::shared_ptr<const void>& prepared, const Tensor& x,
                           const Tensor& residual, bool reuse_residual) {
  const auto& p = *static_cast<const PreparedConvImpl*>(prepared.get());
  const char* op = "conv2d_forward_fused";
  expect_shape(op, "input", x, x_shape(p.g));
  if (residual.defined()) expect_shape(op, "residual", residual, y_shape(p.g));
  return guarded(
      op,
      [&] {
        return fmt::format("{} x={} residual={} (prepared)", p.g.str(), describe(x),
                           describe(residual));
      },
      [&] {
        if (p.small) return run_small_conv(*p.small, x, residual, reuse_residual);
        if (p.wino) return run_winograd_conv(*p.wino, x, residual, reuse_residual);
        // The input as the primitive wants it: a view when it already is (the output of the
        // previous convolution), else a reordered copy. Layouts are compared by their shared
        // Layout objects rather than through descriptors made per call (conv2d_forward_fused's
        // way), to keep per-call work small on the batch-1 path.
        const bool src_ok = p.src_layout ? x.layout() == p.src_layout : x.is_plain();
        memory src_mem = src_ok ? memory(p.src_md, engine(), x.raw()) : as_md(x, p.src_md);
        Tensor y;
        const bool residual_ok =
            residual.defined() &&
            (p.dst_layout ? residual.layout() == p.dst_layout : residual.is_plain());
        if (residual_ok && reuse_residual) {
          y = residual;  // handed over by the caller: accumulate in place
        } else {
          y = p.dst_layout
                  ? Tensor::with_layout(y_shape(p.g), DType::F32, p.dst_layout, p.dst_md.get_size())
                  : Tensor::empty(y_shape(p.g));
          if (residual.defined())
            reorder(mem_over(residual, md_of(residual)), mem_over(y, p.dst_md));
        }
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_mem},
                                             {DNNL_ARG_WEIGHTS, p.weights},
                                             {DNNL_ARG_DST, memory(p.dst_md, engine(), y.raw())}};
        if (p.bias) args.emplace(DNNL_ARG_BIAS, p.bias);
        execute(p.conv->prim, args);
        return y;
      });
}

void set_inference_winograd(bool on) { winograd_setting().store(on); }

std::vector<ConvKernelUse> conv_kernels_used() {
  KernelRecord& r = kernel_record();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<ConvKernelUse> out;
  for (const auto& [key, geoms] : r.uses) {
    const std::string& k = key.second;
    const char* algorithm = k.rfind("small-conv", 0) == 0         ? "small-output"
                            : k.find("wino") != std::string::npos ? "winograd"
                            : k.find("gemm") != std::string::npos ? "gemm"
                                                                  : "direct";
    out.push_back({key.first, k, algorithm, static_cast<int64_t>(geoms.size())});
  }
  return out;
}

void reset_conv_kernels_used() {
  KernelRecord& r = kernel_record();
  std::lock_guard<std::mutex> lock(r.mu);
  r.uses.clear();
}

bool winograd_available() {
  static const bool available = [] {
    ConvGeom g;
    g.n = 1;
    g.h = g.w = 16;
    g.c = g.f = 16;
    g.kh = g.kw = 3;
    g.pad = {1, 1, 1, 1};
    g.finish();
    try {
      conv_fwd_fused(g, true, false, true, true);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return available;
}
bool inference_winograd() { return winograd_setting().load(); }

Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const ConvGeom& g) {
  const char* op = "conv2d_backward_data";
  expect_shape(op, "output gradient", dy, y_shape(g));
  expect_shape(op, "kernel", w, w_shape(g));
  return guarded(
      op, [&] { return fmt::format("{} dy={} w={}", g.str(), describe(dy), describe(w)); },
      [&] {
        auto conv = conv_bwd_data(g);
        memory diff_dst_mem = as_md(dy, conv->pd.diff_dst_desc());
        memory weights_mem = cached_weights(w, user_weights_md(w, g), conv->pd.weights_desc());
        Tensor dx = make_output(x_shape(g), conv->pd.diff_src_desc());
        execute(conv->prim, {{DNNL_ARG_DIFF_DST, diff_dst_mem},
                             {DNNL_ARG_WEIGHTS, weights_mem},
                             {DNNL_ARG_DIFF_SRC, mem_over(dx, conv->pd.diff_src_desc())}});
        return dx;
      });
}

void conv2d_backward_weights(const Tensor& x, const Tensor& dy, const ConvGeom& g, bool with_bias,
                             Tensor& dw, Tensor& db) {
  const char* op = "conv2d_backward_weights";
  expect_shape(op, "input", x, x_shape(g));
  expect_shape(op, "output gradient", dy, y_shape(g));
  guarded(
      op, [&] { return fmt::format("{} x={} dy={}", g.str(), describe(x), describe(dy)); },
      [&] {
        auto conv = conv_bwd_weights(g, with_bias);
        memory src_mem = as_md(x, conv->pd.src_desc());
        memory diff_dst_mem = as_md(dy, conv->pd.diff_dst_desc());
        Tensor new_dw = Tensor::empty(w_shape(g));
        PlainOutput diff_weights(new_dw, tagged_md({g.f, g.c, g.kh, g.kw}, tag::hwio),
                                 conv->pd.diff_weights_desc());
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src_mem},
                                             {DNNL_ARG_DIFF_DST, diff_dst_mem},
                                             {DNNL_ARG_DIFF_WEIGHTS, diff_weights.mem()}};
        Tensor new_db;
        if (with_bias) {
          new_db = Tensor::empty(Shape{g.f});
          args.emplace(DNNL_ARG_DIFF_BIAS, mem_over(new_db, conv->pd.diff_bias_desc()));
        }
        execute(conv->prim, args);
        diff_weights.commit();
        dw = new_dw;
        db = new_db;  // undefined without bias, as in the ref backend
      });
}

}  // namespace resnet::ops::onednn
