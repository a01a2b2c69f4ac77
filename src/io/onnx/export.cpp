// ONNX export (include/resnet/onnx.h, docs/onnx.md): one pass over the layers in execution order,
// emitting ONNX nodes on NCHW tensors.
#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "resnet/error.h"
#include "resnet/onnx.h"

#ifdef RESNET_HAVE_ONNX

#include <onnx/onnx_pb.h>

#include <climits>

#include "core/atomic_file.h"
#include "graph/conv_bn.h"
#include "graph/usage.h"
#include "layers/activation.h"
#include "layers/batch_normalization.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/dropout.h"
#include "layers/input_layer.h"
#include "layers/leaky_re_lu.h"
#include "layers/pooling2d.h"
#include "layers/zero_padding2d.h"
#include "ops/ops.h"
#include "resnet/io.h"

namespace resnet {

namespace {

constexpr int64_t kOpset = 13;
constexpr int64_t kIrVersion = 7;  // the IR version of opset 13 (ONNX 1.8)

// A value of the exported graph.
struct Value {
  std::string name;  // ONNX value name
  int rank = 0;      // per-sample rank in the model: 3 (H, W, C) is NCHW in ONNX; 1 is (N, D)
  // A flat vector made by flattening an (H, W, C) map with H*W > 1 is in CHW order in ONNX (the
  // model's Flatten is HWC): chw = {C, H, W}. Dense permutes its kernel rows to match.
  bool chw_order = false;
  std::array<int64_t, 3> chw{};
  // The ONNX index of the model's flat element r.
  int64_t onnx_index(int64_t r) const {
    if (!chw_order) return r;
    const auto [c, h, w] = chw;
    const int64_t ci = r % c, wi = (r / c) % w, hi = r / (c * w);
    return (ci * h + hi) * w + wi;
  }
};

class Exporter {
 public:
  Exporter(Model& model, const std::string& path, const OnnxExportOptions& o)
      : model_(model), path_(path), o_(o) {}

  std::string run() {
    onnx::ModelProto mp;
    mp.set_ir_version(kIrVersion);
    mp.set_producer_name("resnet.cpp");
    mp.set_model_version(1);
    auto* opset = mp.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpset);
    g_ = mp.mutable_graph();
    g_->set_name(o_.graph_name.empty() ? model_.name() : o_.graph_name);

    const auto& layers = model_.layers();
    // The Conv2D -> BN pairs to fold: those the inference plan fuses (graph/conv_bn.h).
    if (o_.fold_bn) {
      for (const graph_detail::ConvBn& p : graph_detail::conv_bn_pairs(model_)) {
        bn_of_[layers[p.conv].get()] =
            dynamic_cast<const layers::BatchNormalization*>(layers[p.bn].get());
      }
    }
    used_.insert("input");
    used_.insert("output");
    int n_inputs = 0;
    for (const auto& l : layers) {
      std::vector<Value> xs;
      for (const std::string& in : model_.inbound(*l)) xs.push_back(values_.at(in));
      if (l->class_name() == "InputLayer") {
        values_[l->name()] = add_input(*l, n_inputs++);
      } else {
        values_[l->name()] = export_layer(*l, xs);
      }
    }
    finish_outputs();
    if (mp.ByteSizeLong() >= static_cast<size_t>(INT_MAX)) {
      throw IoError(
          fmt::format("{}: the model is too large for one ONNX file ({} bytes; "
                      "protobuf's limit is 2 GiB)",
                      path_, mp.ByteSizeLong()));
    }
    std::string bytes;
    if (!mp.SerializeToString(&bytes)) {
      throw IoError(fmt::format("{}: cannot serialize the ONNX model", path_));
    }
    return bytes;
  }

 private:
  [[noreturn]] void unsupported(const Layer& l, const std::string& why) const {
    throw ConfigError(fmt::format("export_onnx {}: layer '{}' ({}) cannot be exported to ONNX: {}",
                                  path_, l.name(), l.class_name(), why));
  }

  std::string fresh(const std::string& base) {
    std::string name = base;
    for (int i = 1; used_.count(name); ++i) name = fmt::format("{}__{}", base, i);
    used_.insert(name);
    return name;
  }

  onnx::NodeProto* node(const std::string& op, const std::string& name,
                        const std::vector<std::string>& inputs, const std::string& output) {
    onnx::NodeProto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& in : inputs) n->add_input(in);
    n->add_output(output);
    return n;
  }
  static void attr_int(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr_float(onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr_ints(onnx::NodeProto* n, const std::string& name,
                        const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  std::string add_init(const std::string& base, const std::vector<int64_t>& dims,
                       const std::vector<float>& data) {
    const std::string name = fresh(base);
    onnx::TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(
        std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float)));
    return name;
  }
  std::string add_init_i64(const std::string& base, const std::vector<int64_t>& data) {
    const std::string name = fresh(base);
    onnx::TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<int64_t>(data.size()));
    t->set_raw_data(
        std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(int64_t)));
    return name;
  }

  static std::vector<float> values_of(const Layer& l, const char* param) {
    return ops::plain(l.param(param).value).to_vector();
  }

  static void set_shape(onnx::ValueInfoProto* vi, const std::vector<int64_t>& dims) {
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(onnx::TensorProto::FLOAT);
    auto* shape = tt->mutable_shape();
    shape->add_dim()->set_dim_param("N");
    for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
  }
  // Per-sample model shape -> ONNX dims without the batch: (H, W, C) -> (C, H, W).
  static std::vector<int64_t> onnx_dims(const Shape& s) {
    if (s.rank() == 3) return {s[2], s[0], s[1]};
    return s.dims();
  }

  Value add_input(const Layer& l, int index) {
    const Shape s = model_.output_shape(l);
    if (s.rank() != 3 && s.rank() != 1) {
      throw ConfigError(
          fmt::format("export_onnx {}: input '{}' of shape {} is neither an image "
                      "(H, W, C) nor a vector",
                      path_, l.name(), s.keras_str()));
    }
    const std::string name = index == 0 ? "input" : fresh(fmt::format("input_{}", index));
    auto* vi = g_->add_input();
    vi->set_name(name);
    set_shape(vi, onnx_dims(s));
    return {name, static_cast<int>(s.rank())};
  }

  // A flat value in HWC order (the model's), reordering a CHW-ordered one.
  Value hwc(const Value& v, const std::string& layer) {
    if (!v.chw_order) return v;
    const auto [c, h, w] = v.chw;
    const std::string shape = add_init_i64(layer + "/unflatten_shape", {-1, c, h, w});
    const std::string a = fresh(layer + "/unflatten");
    node("Reshape", a, {v.name, shape}, a);
    const std::string b = fresh(layer + "/to_nhwc");
    attr_ints(node("Transpose", b, {a}, b), "perm", {0, 2, 3, 1});
    const std::string f = fresh(layer + "/flatten_hwc");
    attr_int(node("Flatten", f, {b}, f), "axis", 1);
    return {f, 1};
  }

  // Applies a fused activation ("linear", "relu", ...) to `v`, producing `out`.
  Value activation(const Layer& l, Value v, const std::string& kind, const std::string& out) {
    const layers::ActivationKind k = layers::parse_activation(kind, l.name());
    std::string op;
    switch (k) {
      case layers::ActivationKind::Linear:
        op = "Identity";
        break;
      case layers::ActivationKind::Relu:
        op = "Relu";
        break;
      case layers::ActivationKind::Sigmoid:
        op = "Sigmoid";
        break;
      case layers::ActivationKind::Tanh:
        op = "Tanh";
        break;
      case layers::ActivationKind::Softmax:
        op = "Softmax";
        break;
    }
    auto* n = node(op, out, {v.name}, out);
    // Softmax over the channels: axis 1 of NCHW, the last axis of (N, D). Over a whole flat
    // vector the order of its elements does not matter.
    if (k == layers::ActivationKind::Softmax) attr_int(n, "axis", v.rank == 3 ? 1 : -1);
    v.name = out;
    return v;
  }

  // Pads [top, left, bottom, right] of TensorFlow's 'same' padding for a window op.
  static std::vector<int64_t> same_pads(const Shape& in, std::array<int64_t, 2> k,
                                        std::array<int64_t, 2> s, std::array<int64_t, 2> d) {
    const auto [t, b] = ops::same_padding(in[0], k[0], s[0], d[0]);
    const auto [l, r] = ops::same_padding(in[1], k[1], s[1], d[1]);
    return {t, l, b, r};
  }

  Shape in_shape(const Layer& l, size_t i = 0) const {
    return model_.output_shape(model_.layer(model_.inbound(l)[i]));
  }

  // The BatchNormalization this Conv2D folds into (fold_bn), or null.
  const layers::BatchNormalization* foldable_bn(const layers::Conv2D& conv) const {
    const auto it = bn_of_.find(&conv);
    return it == bn_of_.end() ? nullptr : it->second;
  }

  Value export_conv(const layers::Conv2D& conv, const Value& x) {
    const auto& co = conv.options();
    const Shape in = in_shape(conv);
    Tensor kt = ops::plain(conv.param("kernel").value);
    const Shape ks = kt.shape();  // (KH, KW, C, F)
    const int64_t kh = ks[0], kw = ks[1], c = ks[2], f = ks[3];
    std::vector<float> bias(static_cast<size_t>(f), 0.0f);
    if (co.use_bias) bias = values_of(conv, "bias");
    const layers::BatchNormalization* bn = foldable_bn(conv);
    if (bn != nullptr) {
      // The fold the inference plan uses, so exported and in-process outputs agree.
      Tensor folded_kernel, folded_bias;
      ops::fold_batchnorm(kt, co.use_bias ? conv.param("bias").value : Tensor(),
                          bn->param("gamma").value, bn->param("beta").value,
                          bn->param("moving_mean").value, bn->param("moving_variance").value,
                          bn->options().epsilon, folded_kernel, folded_bias);
      kt = folded_kernel;
      bias = folded_bias.to_vector();
      folded_.insert(bn->name());
    }
    const float* k = kt.f32();
    // HWIO -> OIHW.
    std::vector<float> w(static_cast<size_t>(kt.numel()));
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j)
        for (int64_t ci = 0; ci < c; ++ci)
          for (int64_t o = 0; o < f; ++o)
            w[((o * c + ci) * kh + i) * kw + j] = k[((i * kw + j) * c + ci) * f + o];
    const std::string wname = add_init(conv.name() + "/kernel", {f, c, kh, kw}, w);
    std::vector<std::string> inputs = {x.name, wname};
    if (co.use_bias || bn != nullptr) inputs.push_back(add_init(conv.name() + "/bias", {f}, bias));
    const bool fused_act = co.activation != "linear";
    const std::string out = fresh(bn != nullptr ? bn->name() : conv.name());
    const std::string conv_out = fused_act ? fresh(conv.name() + "/conv") : out;
    auto* n = node("Conv", conv_out, inputs, conv_out);
    attr_ints(n, "kernel_shape", {kh, kw});
    attr_ints(n, "strides", {co.strides[0], co.strides[1]});
    attr_ints(n, "dilations", {co.dilation[0], co.dilation[1]});
    attr_ints(n, "pads",
              co.padding == Padding::Same ? same_pads(in, {kh, kw}, co.strides, co.dilation)
                                          : std::vector<int64_t>{0, 0, 0, 0});
    attr_int(n, "group", 1);
    Value v{conv_out, 3};
    if (fused_act) v = activation(conv, v, co.activation, out);
    if (bn != nullptr) values_[bn->name()] = v;
    return v;
  }

  Value export_dense(const layers::Dense& dense, const Value& x) {
    const auto& d = dense.options();
    const Tensor kt = ops::plain(dense.param("kernel").value);
    const int64_t kin = kt.shape()[0], units = kt.shape()[1];
    const float* k = kt.f32();
    // B (units, in) for transB = 1; row r of the kernel is ONNX input index perm[r].
    std::vector<float> b(static_cast<size_t>(kt.numel()));
    for (int64_t r = 0; r < kin; ++r) {
      const int64_t i = x.onnx_index(r);
      for (int64_t u = 0; u < units; ++u) b[u * kin + i] = k[r * units + u];
    }
    std::vector<std::string> inputs = {x.name, add_init(dense.name() + "/kernel", {units, kin}, b)};
    if (d.use_bias)
      inputs.push_back(add_init(dense.name() + "/bias", {units}, values_of(dense, "bias")));
    const bool fused_act = d.activation != "linear";
    const std::string out = fresh(dense.name());
    const std::string gemm_out = fused_act ? fresh(dense.name() + "/gemm") : out;
    auto* n = node("Gemm", gemm_out, inputs, gemm_out);
    attr_int(n, "transB", 1);
    Value v{gemm_out, 1};
    if (fused_act) v = activation(dense, v, d.activation, out);
    return v;
  }

  Value export_pool(const layers::Pooling2D& p, const Value& x, bool max) {
    const auto& po = p.options();
    const std::string out = fresh(p.name());
    auto* n = node(max ? "MaxPool" : "AveragePool", out, {x.name}, out);
    attr_ints(n, "kernel_shape", {po.pool_size[0], po.pool_size[1]});
    attr_ints(n, "strides", {po.strides[0], po.strides[1]});
    attr_ints(n, "pads",
              po.padding == Padding::Same ? same_pads(in_shape(p), po.pool_size, po.strides, {1, 1})
                                          : std::vector<int64_t>{0, 0, 0, 0});
    // 'same' average pooling leaves the padded cells out of the count (TensorFlow).
    if (!max) attr_int(n, "count_include_pad", 0);
    return {out, 3};
  }

  // One converter per layer class (the table in export_layer). Each gets the layer and the
  // values of its inputs (at least one) and returns the value of its output.
  using Converter = Value (Exporter::*)(const Layer& l, const std::vector<Value>& xs);

  Value export_layer(const Layer& l, const std::vector<Value>& xs) {
    static const std::map<std::string, Converter, std::less<>> converters = {
        {"Conv2D", &Exporter::convert_conv},
        {"Dense", &Exporter::convert_dense},
        {"BatchNormalization", &Exporter::convert_bn},
        {"ReLU", &Exporter::convert_relu},
        {"LeakyReLU", &Exporter::convert_leaky_relu},
        {"Activation", &Exporter::convert_activation},
        {"Dropout", &Exporter::convert_identity},
        {"Add", &Exporter::convert_add},
        {"MaxPooling2D", &Exporter::convert_max_pool},
        {"AveragePooling2D", &Exporter::convert_avg_pool},
        {"GlobalAveragePooling2D", &Exporter::convert_global_pool},
        {"GlobalMaxPooling2D", &Exporter::convert_global_pool},
        {"ZeroPadding2D", &Exporter::convert_zero_padding},
        {"Flatten", &Exporter::convert_flatten},
    };
    if (xs.empty()) unsupported(l, "it has no inputs");
    auto it = converters.find(l.class_name());
    if (it == converters.end()) unsupported(l, "no ONNX mapping for this layer type");
    return (this->*(it->second))(l, xs);
  }

  Value convert_conv(const Layer& l, const std::vector<Value>& xs) {
    return export_conv(dynamic_cast<const layers::Conv2D&>(l), xs[0]);
  }
  Value convert_dense(const Layer& l, const std::vector<Value>& xs) {
    return export_dense(dynamic_cast<const layers::Dense&>(l), xs[0]);
  }

  Value convert_bn(const Layer& l, const std::vector<Value>& xs) {
    if (folded_.count(l.name())) return values_.at(l.name());
    const Value& x = xs[0];
    const auto& bn = dynamic_cast<const layers::BatchNormalization&>(l);
    // On a CHW-ordered vector the per-feature parameters are permuted the same way.
    std::vector<std::string> inputs = {x.name};
    for (const char* p : {"gamma", "beta", "moving_mean", "moving_variance"}) {
      const auto v = values_of(bn, p);
      std::vector<float> o(v.size());
      for (size_t r = 0; r < v.size(); ++r) o[x.onnx_index(static_cast<int64_t>(r))] = v[r];
      inputs.push_back(add_init(l.name() + "/" + p, {static_cast<int64_t>(v.size())}, o));
    }
    Value v = x;
    v.name = fresh(l.name());
    auto* n = node("BatchNormalization", v.name, inputs, v.name);
    attr_float(n, "epsilon", static_cast<float>(bn.options().epsilon));
    attr_float(n, "momentum", static_cast<float>(bn.options().momentum));
    return v;
  }

  Value convert_relu(const Layer& l, const std::vector<Value>& xs) {
    return activation(l, xs[0], "relu", fresh(l.name()));
  }

  Value convert_leaky_relu(const Layer& l, const std::vector<Value>& xs) {
    Value v = xs[0];
    v.name = fresh(l.name());
    auto* n = node("LeakyRelu", v.name, {xs[0].name}, v.name);
    attr_float(n, "alpha",
               static_cast<float>(dynamic_cast<const layers::LeakyReLU&>(l).negative_slope()));
    return v;
  }

  Value convert_activation(const Layer& l, const std::vector<Value>& xs) {
    const auto& a = dynamic_cast<const layers::Activation&>(l);
    return activation(l, xs[0], a.kind_name(), fresh(l.name()));
  }

  Value convert_identity(const Layer& l, const std::vector<Value>& xs) {
    Value v = xs[0];
    v.name = fresh(l.name());
    node("Identity", v.name, {xs[0].name}, v.name);
    return v;
  }

  Value convert_add(const Layer& l, const std::vector<Value>& xs) {
    bool any_chw = false;
    for (const Value& v : xs) any_chw = any_chw || v.chw_order;
    std::vector<std::string> names;
    for (const Value& v : xs) names.push_back(any_chw ? hwc(v, l.name()).name : v.name);
    const std::string out = fresh(l.name());
    node(xs.size() == 2 ? "Add" : "Sum", out, names, out);
    return {out, xs[0].rank};
  }

  Value convert_max_pool(const Layer& l, const std::vector<Value>& xs) {
    return export_pool(dynamic_cast<const layers::Pooling2D&>(l), xs[0], true);
  }
  Value convert_avg_pool(const Layer& l, const std::vector<Value>& xs) {
    return export_pool(dynamic_cast<const layers::Pooling2D&>(l), xs[0], false);
  }

  Value convert_global_pool(const Layer& l, const std::vector<Value>& xs) {
    const std::string pooled = fresh(l.name() + "/pool");
    node(l.class_name() == "GlobalMaxPooling2D" ? "GlobalMaxPool" : "GlobalAveragePool", pooled,
         {xs[0].name}, pooled);
    const std::string out = fresh(l.name());
    attr_int(node("Flatten", out, {pooled}, out), "axis", 1);
    return {out, 1};
  }

  Value convert_zero_padding(const Layer& l, const std::vector<Value>& xs) {
    const auto& p = dynamic_cast<const layers::ZeroPadding2D&>(l).options().padding;
    const std::string pads = add_init_i64(l.name() + "/pads", {0, 0, p[0], p[2], 0, 0, p[1], p[3]});
    const std::string out = fresh(l.name());
    node("Pad", out, {xs[0].name, pads}, out);
    return {out, 3};
  }

  Value convert_flatten(const Layer& l, const std::vector<Value>& xs) {
    const Value& x = xs[0];
    const std::string out = fresh(l.name());
    if (x.rank != 3) {
      node("Identity", out, {x.name}, out);
      Value v = x;
      v.name = out;
      return v;
    }
    attr_int(node("Flatten", out, {x.name}, out), "axis", 1);
    const Shape s = in_shape(l);
    Value v{out, 1};
    if (s[0] * s[1] > 1) {
      v.chw_order = true;
      v.chw = {s[2], s[0], s[1]};
    }
    return v;
  }

  void finish_outputs() {
    std::vector<const Layer*> sinks;
    for (const std::string& name : model_.output_names()) sinks.push_back(&model_.layer(name));
    const auto shapes = model_.output_shapes();
    for (size_t i = 0; i < sinks.size(); ++i) {
      Value v = values_.at(sinks[i]->name());
      v = hwc(v, sinks[i]->name());
      const std::string name = i == 0 ? "output" : fresh(fmt::format("output_{}", i));
      // Rename the value to the output name everywhere (a graph input stays as it is: the output
      // is then an Identity of it).
      bool renamed = false;
      for (auto& n : *g_->mutable_node()) {
        for (auto& out : *n.mutable_output()) {
          if (out == v.name) {
            out = name;
            renamed = true;
          }
        }
        for (auto& in : *n.mutable_input()) {
          if (in == v.name) in = name;
        }
      }
      if (!renamed) node("Identity", name, {v.name}, name);
      set_shape(g_->add_output(), onnx_dims(shapes[i]));
      g_->mutable_output(g_->output_size() - 1)->set_name(name);
    }
  }

  Model& model_;
  const std::string& path_;
  const OnnxExportOptions& o_;
  onnx::GraphProto* g_ = nullptr;
  std::map<std::string, Value> values_;
  std::map<const Layer*, const layers::BatchNormalization*> bn_of_;
  std::set<std::string> used_;
  std::set<std::string> folded_;
};

}  // namespace

bool onnx_available() { return true; }

void export_onnx(Model& model, const std::string& path, const OnnxExportOptions& o) {
  graph_detail::ModelUse use(model, graph_detail::ModelUse::Kind::Shared, "export_onnx");
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  const std::string bytes = Exporter(model, path, o).run();
  write_file_atomic(path, bytes);
}

}  // namespace resnet

#else  // no ONNX support in this build

namespace resnet {

bool onnx_available() { return false; }

void export_onnx(Model&, const std::string& path, const OnnxExportOptions&) {
  throw ConfigError(
      fmt::format("export_onnx {}: resnet.cpp was built without ONNX support "
                  "(install libonnx-dev and libprotobuf-dev and rebuild)",
                  path));
}

}  // namespace resnet

#endif
