// ONNX import (include/resnet/onnx.h, docs/onnx.md): the nodes, in their (topological) order,
// become layers of a Model taking NHWC input. Every value keeps what it is in ONNX terms (an
// NCHW feature map, a pooled (N, C, 1, 1) map, a flat (N, D) vector) next to its symbolic tensor.
#include "io/onnx/import.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "resnet/error.h"
#include "resnet/onnx.h"

#ifdef RESNET_HAVE_ONNX

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "ops/ops.h"
#include "resnet/layers.h"

namespace resnet {

namespace {

constexpr int64_t kMinOpset = 11;
constexpr int64_t kMaxOpset = 21;
constexpr int64_t kMaxDim = int64_t{1} << 16;       // an input height, width or channel count
constexpr int64_t kMaxElements = int64_t{1} << 31;  // one initializer, or one input sample

enum class Kind { Map, Pooled, Vector };

// An ONNX value: what it is in ONNX terms and the model's symbolic tensor for it.
struct Val {
  Kind kind = Kind::Map;
  SymTensor t;
  // Map: ONNX (N, c, h, w), the model's (N, h, w, c). Pooled: ONNX (N, c, 1, 1), the model's
  // (N, c). Vector: ONNX (N, c), the model's (N, c).
  int64_t c = 0, h = 1, w = 1;
  // Vector only: ONNX flattened a (C, H, W) map in CHW order where the model's Flatten is HWC;
  // ONNX element chw_index(r) is the model's element r.
  bool chw = false;
  std::array<int64_t, 3> chw_dims{};
  bool nonneg = false;  // known to be >= 0 (a ReLU output): zero padding then acts as -inf for max
  bool is_input = false;

  int64_t features() const { return c * h * w; }
  // The ONNX index of the model's flat element r.
  int64_t onnx_index(int64_t r) const {
    if (!chw) return r;
    const auto [cc, hh, ww] = chw_dims;
    const int64_t ci = r % cc, wi = (r / cc) % ww, hi = r / (cc * ww);
    return (ci * hh + hi) * ww + wi;
  }
};

// A decoded initializer or Constant.
struct Const {
  std::vector<int64_t> dims;
  bool is_float = false;
  std::vector<float> f;
  std::vector<int64_t> i;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
};

std::string sanitize(const std::string& s) {
  std::string out;
  for (char ch : s) {
    const bool ok =
        std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-';
    out += ok ? ch : '_';
  }
  while (!out.empty() && (out.front() == '_' || out.front() == '.')) out.erase(out.begin());
  if (out.size() > 200) out.resize(200);
  return out;
}

class Importer {
 public:
  Importer(const std::string& file) : file_(file) {}

  Model run(std::string_view bytes) {
    if (bytes.size() >= static_cast<size_t>(std::numeric_limits<int>::max())) {
      throw IoError(fmt::format("{}: {} bytes is larger than an ONNX file can be (2 GiB)", file_,
                                bytes.size()));
    }
    onnx::ModelProto mp;
    if (!mp.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      throw IoError(
          fmt::format("{}: not a valid ONNX file (the protobuf does not parse: corrupt, "
                      "truncated or another format)",
                      file_));
    }
    check_opset(mp);
    if (!mp.has_graph() || mp.graph().node_size() == 0) {
      throw IoError(fmt::format("{}: the ONNX model has no graph (or no nodes)", file_));
    }
    const onnx::GraphProto& g = mp.graph();
    for (const onnx::TensorProto& t : g.initializer()) {
      if (t.name().empty()) throw IoError(fmt::format("{}: an initializer has no name", file_));
      if (!inits_.emplace(t.name(), &t).second) {
        throw IoError(fmt::format("{}: initializer '{}' is defined twice", file_, t.name()));
      }
    }
    SymTensor input = read_input(g);
    for (int i = 0; i < g.node_size(); ++i) {
      const onnx::NodeProto& n = g.node(i);
      node_ = &n;
      node_label_ = n.name().empty() ? fmt::format("#{}", i) : n.name();
      try {
        convert(n, i);
      } catch (const IoError&) {
        throw;
      } catch (const Error& e) {
        fail(e.what());
      }
    }
    node_ = nullptr;
    std::vector<SymTensor> outputs;
    if (g.output_size() == 0) throw IoError(fmt::format("{}: the graph has no outputs", file_));
    for (const auto& o : g.output()) {
      const auto it = values_.find(o.name());
      if (it == values_.end()) {
        throw IoError(
            fmt::format("{}: graph output '{}' is not produced by any node", file_, o.name()));
      }
      const Val& v = it->second;
      if (v.is_input) {
        throw IoError(fmt::format("{}: graph output '{}' is the input itself", file_, o.name()));
      }
      if (v.kind == Kind::Vector && v.chw) {
        throw IoError(fmt::format(
            "{}: graph output '{}' is a flattened feature map (CHW order in ONNX, HWC in "
            "resnet.cpp); only flattened maps that feed Gemm or BatchNormalization are supported",
            file_, o.name()));
      }
      outputs.push_back(v.t);
    }
    std::string name = sanitize(g.name());
    if (name.empty()) name = "onnx_model";
    try {
      return Model({input}, outputs, name);
    } catch (const Error& e) {
      throw IoError(fmt::format("{}: cannot build the model: {}", file_, e.what()));
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    if (node_ != nullptr) {
      throw IoError(
          fmt::format("{}: node '{}' ({}): {}", file_, node_label_, node_->op_type(), what));
    }
    throw IoError(fmt::format("{}: {}", file_, what));
  }

  void check_opset(const onnx::ModelProto& mp) {
    bool found = false;
    for (const auto& o : mp.opset_import()) {
      if (o.domain().empty() || o.domain() == "ai.onnx") {
        opset_ = o.version();
        found = true;
      }
    }
    if (!found) opset_ = 1;  // IR version 1 models had no opset_import
    if (opset_ < kMinOpset || opset_ > kMaxOpset) {
      throw IoError(fmt::format("{}: ONNX opset {} is not supported (opsets {} to {} are)", file_,
                                opset_, kMinOpset, kMaxOpset));
    }
  }

  // --- initializers and constants ---------------------------------------------------------

  Const decode(const onnx::TensorProto& t, const std::string& what) const {
    auto bad = [&](const std::string& why) -> IoError {
      return IoError(fmt::format("{}: {} '{}': {}", file_, what, t.name(), why));
    };
    if (t.data_location() == onnx::TensorProto::EXTERNAL) {
      throw bad("external data files are not supported");
    }
    Const c;
    int64_t numel = 1;
    for (int64_t d : t.dims()) {
      if (d < 0 || d > kMaxElements) throw bad(fmt::format("invalid dimension {}", d));
      c.dims.push_back(d);
      if (d != 0 && numel > kMaxElements / d) throw bad("absurd size (more than 2^31 elements)");
      numel *= d;
    }
    const std::string& raw = t.raw_data();
    if (t.data_type() == onnx::TensorProto::FLOAT) {
      c.is_float = true;
      if (t.has_raw_data()) {
        if (raw.size() != static_cast<size_t>(numel) * sizeof(float)) {
          throw bad(fmt::format("{} bytes of data for shape {}", raw.size(), Shape(c.dims).str()));
        }
        c.f.resize(static_cast<size_t>(numel));
        std::memcpy(c.f.data(), raw.data(), raw.size());
      } else {
        if (t.float_data_size() != numel) {
          throw bad(
              fmt::format("{} values for shape {}", t.float_data_size(), Shape(c.dims).str()));
        }
        c.f.assign(t.float_data().begin(), t.float_data().end());
      }
      for (size_t k = 0; k < c.f.size(); ++k) {
        if (!std::isfinite(c.f[k])) {
          throw bad(fmt::format("value {} at index {} is not finite", c.f[k], k));
        }
      }
    } else if (t.data_type() == onnx::TensorProto::INT64) {
      if (t.has_raw_data()) {
        if (raw.size() != static_cast<size_t>(numel) * sizeof(int64_t)) {
          throw bad(fmt::format("{} bytes of data for shape {}", raw.size(), Shape(c.dims).str()));
        }
        c.i.resize(static_cast<size_t>(numel));
        std::memcpy(c.i.data(), raw.data(), raw.size());
      } else {
        if (t.int64_data_size() != numel) {
          throw bad(
              fmt::format("{} values for shape {}", t.int64_data_size(), Shape(c.dims).str()));
        }
        c.i.assign(t.int64_data().begin(), t.int64_data().end());
      }
    } else {
      throw bad(
          fmt::format("element type {} is not supported (float32 weights and int64 "
                      "shapes are)",
                      onnx::TensorProto::DataType_Name(
                          static_cast<onnx::TensorProto::DataType>(t.data_type()))));
    }
    return c;
  }

  bool is_const(const std::string& name) const {
    return consts_.count(name) || inits_.count(name) || ints_.count(name);
  }

  // A small int64 vector (or scalar) of the shape arithmetic PyTorch emits for
  // `x.view(x.size(0), -1)` (Shape -> Gather -> Unsqueeze -> Concat -> Reshape): the known
  // entries, with kBatch for the batch size, which is only known at run time.
  static constexpr int64_t kBatch = std::numeric_limits<int64_t>::min();
  struct Ints {
    std::vector<int64_t> v;
    bool scalar = false;
  };
  Ints ints(const std::string& name, const char* role) {
    const auto it = ints_.find(name);
    if (it != ints_.end()) return it->second;
    const Const& c = constant(name, role);
    if (c.is_float || c.dims.size() > 1 || c.i.size() > 64) {
      fail(fmt::format("the {} '{}' must be an int64 scalar or a short 1-D tensor", role, name));
    }
    return {c.i, c.dims.empty()};
  }
  void define_ints(const onnx::NodeProto& n, Ints v) {
    if (n.output_size() < 1 || n.output(0).empty()) fail("the node has no output");
    if (values_.count(n.output(0)) || is_const(n.output(0))) {
      fail(fmt::format("output '{}' is defined twice", n.output(0)));
    }
    ints_[n.output(0)] = std::move(v);
  }

  // The constant input `name` (an initializer or a Constant node's output).
  const Const& constant(const std::string& name, const char* role) {
    if (name.empty()) fail(fmt::format("the {} input is missing", role));
    auto it = consts_.find(name);
    if (it != consts_.end()) return it->second;
    const auto in = inits_.find(name);
    if (in == inits_.end()) {
      if (values_.count(name)) {
        fail(
            fmt::format("the {} '{}' is computed by the graph; only initializers and Constant "
                        "nodes are supported there",
                        role, name));
      }
      fail(
          fmt::format("the {} '{}' is neither an initializer nor the output of an earlier node "
                      "(missing initializer)",
                      role, name));
    }
    return consts_.emplace(name, decode(*in->second, "initializer")).first->second;
  }

  const Const& float_const(const std::string& name, const char* role,
                           const std::vector<int64_t>& dims) {
    const Const& c = constant(name, role);
    if (!c.is_float) fail(fmt::format("the {} '{}' is not float32", role, name));
    if (c.dims != dims) {
      fail(fmt::format("the {} '{}' has shape {}, expected {}", role, name, Shape(c.dims).str(),
                       Shape(dims).str()));
    }
    return c;
  }

  // --- values -------------------------------------------------------------------------------

  const Val& value(const std::string& name, const char* role = "data") {
    if (name.empty()) fail(fmt::format("the {} input is missing", role));
    const auto it = values_.find(name);
    if (it == values_.end()) {
      if (is_const(name)) {
        fail(
            fmt::format("the {} input '{}' is a constant; operations on constant tensors are not "
                        "supported",
                        role, name));
      }
      fail(
          fmt::format("input '{}' is not defined by an earlier node (the graph is not sorted, or "
                      "the tensor is missing)",
                      name));
    }
    return it->second;
  }

  const Val& map_value(const std::string& name) {
    const Val& v = value(name);
    if (v.kind != Kind::Map)
      fail(fmt::format("input '{}' must be a 4-D (N, C, H, W) tensor", name));
    return v;
  }

  void define(const onnx::NodeProto& n, Val v) {
    if (n.output_size() < 1 || n.output(0).empty()) fail("the node has no output");
    // Only the first output is produced (BatchNormalization's training outputs, MaxPool's
    // indices and Dropout's mask stay undefined, so a node using them fails clearly).
    if (values_.count(n.output(0)) || is_const(n.output(0))) {
      fail(fmt::format("output '{}' is defined twice", n.output(0)));
    }
    values_[n.output(0)] = std::move(v);
  }
  // Reads the graph input (the only one that is not an initializer).
  SymTensor read_input(const onnx::GraphProto& g) {
    const onnx::ValueInfoProto* in = nullptr;
    for (const auto& vi : g.input()) {
      if (inits_.count(vi.name())) continue;
      if (in != nullptr) {
        throw IoError(
            fmt::format("{}: more than one graph input ('{}', '{}'); resnet.cpp imports "
                        "single-input models",
                        file_, in->name(), vi.name()));
      }
      in = &vi;
    }
    if (in == nullptr) throw IoError(fmt::format("{}: the graph has no input", file_));
    auto bad = [&](const std::string& why) {
      return IoError(fmt::format("{}: graph input '{}': {}", file_, in->name(), why));
    };
    if (!in->type().has_tensor_type() ||
        in->type().tensor_type().elem_type() != onnx::TensorProto::FLOAT) {
      throw bad("not a float32 tensor");
    }
    const auto& shape = in->type().tensor_type().shape();
    if (shape.dim_size() != 4) {
      throw bad(fmt::format("rank {}; an image input (N, C, H, W) is expected", shape.dim_size()));
    }
    int64_t d[3];
    for (int k = 1; k < 4; ++k) {
      const auto& dim = shape.dim(k);
      if (!dim.has_dim_value()) {
        throw bad(
            fmt::format("dimension {} is symbolic ('{}'); C, H and W must be fixed "
                        "(export with a fixed image size)",
                        k, dim.dim_param()));
      }
      if (dim.dim_value() < 1 || dim.dim_value() > kMaxDim) {
        throw bad(
            fmt::format("dimension {} is {} (1 to {} supported)", k, dim.dim_value(), kMaxDim));
      }
      d[k - 1] = dim.dim_value();
    }
    if (d[0] * d[1] * d[2] > kMaxElements) throw bad("absurd size");
    const std::string name =
        unique_name(sanitize(in->name()).empty() ? "input" : sanitize(in->name()));
    SymTensor t = Input({d[1], d[2], d[0]}, name);
    Val v;
    v.kind = Kind::Map;
    v.t = t;
    v.c = d[0];
    v.h = d[1];
    v.w = d[2];
    v.is_input = true;
    values_[in->name()] = v;
    return t;
  }

  std::string unique_name(std::string base) {
    if (base.empty()) base = "layer";
    std::string name = base;
    for (int k = 1; used_names_.count(name); ++k) name = fmt::format("{}_{}", base, k);
    used_names_.insert(name);
    return name;
  }
  // A layer name for the current node (+ suffix).
  std::string layer_name(const std::string& suffix = "") {
    // PyTorch names nodes like "/layer1/layer1.0/conv1/Conv": the module path is the name.
    std::string raw = node_->name();
    const std::string op_suffix = "/" + node_->op_type();
    if (raw.size() > op_suffix.size() && raw.ends_with(op_suffix)) {
      raw.resize(raw.size() - op_suffix.size());
    }
    std::string base = sanitize(raw);
    if (base.empty()) {
      base = node_->op_type();
      std::transform(base.begin(), base.end(), base.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      base = sanitize(base);
    }
    return unique_name(base + suffix);
  }

  // --- attributes ---------------------------------------------------------------------------

  const onnx::AttributeProto* attr(const char* name) const {
    for (const auto& a : node_->attribute()) {
      if (a.name() == name) return &a;
    }
    return nullptr;
  }
  int64_t attr_int(const char* name, int64_t def) const {
    const auto* a = attr(name);
    if (a == nullptr) return def;
    if (a->type() != onnx::AttributeProto::INT)
      fail(fmt::format("attribute '{}' is not an int", name));
    return a->i();
  }
  float attr_float(const char* name, float def) const {
    const auto* a = attr(name);
    if (a == nullptr) return def;
    if (a->type() != onnx::AttributeProto::FLOAT) {
      fail(fmt::format("attribute '{}' is not a float", name));
    }
    if (!std::isfinite(a->f())) fail(fmt::format("attribute '{}' is not finite", name));
    return a->f();
  }
  std::string attr_string(const char* name, const std::string& def) const {
    const auto* a = attr(name);
    if (a == nullptr) return def;
    if (a->type() != onnx::AttributeProto::STRING) {
      fail(fmt::format("attribute '{}' is not a string", name));
    }
    return a->s();
  }
  std::vector<int64_t> attr_ints(const char* name, std::vector<int64_t> def, size_t size) const {
    const auto* a = attr(name);
    if (a == nullptr) return def;
    if (a->type() != onnx::AttributeProto::INTS || static_cast<size_t>(a->ints_size()) != size) {
      fail(fmt::format("attribute '{}' must be a list of {} ints", name, size));
    }
    return {a->ints().begin(), a->ints().end()};
  }

  // --- window geometry ----------------------------------------------------------------------

  struct Window {
    std::array<int64_t, 2> k{}, s{1, 1}, d{1, 1};
    std::array<int64_t, 4> pads{};  // top, left, bottom, right
  };

  // kernel/strides/dilations/pads/auto_pad of a Conv or pooling node on an (h, w) input.
  Window window(const Val& x, std::array<int64_t, 2> k, bool has_dilations) const {
    Window win;
    win.k = k;
    const auto s = attr_ints("strides", {1, 1}, 2);
    win.s = {s[0], s[1]};
    if (has_dilations) {
      const auto d = attr_ints("dilations", {1, 1}, 2);
      win.d = {d[0], d[1]};
    } else if (attr("dilations") != nullptr &&
               attr_ints("dilations", {1, 1}, 2) != std::vector<int64_t>{1, 1}) {
      fail("dilated pooling is not supported");
    }
    for (int a = 0; a < 2; ++a) {
      if (win.k[a] < 1 || win.k[a] > kMaxDim || win.s[a] < 1 || win.s[a] > kMaxDim ||
          win.d[a] < 1 || win.d[a] > kMaxDim) {
        fail(fmt::format("invalid kernel {}x{}, strides {}x{} or dilations {}x{}", win.k[0],
                         win.k[1], win.s[0], win.s[1], win.d[0], win.d[1]));
      }
    }
    const std::string auto_pad = attr_string("auto_pad", "NOTSET");
    if (auto_pad == "NOTSET") {
      const auto p = attr_ints("pads", {0, 0, 0, 0}, 4);
      for (int a = 0; a < 4; ++a) {
        if (p[a] < 0 || p[a] > kMaxDim) fail(fmt::format("invalid pads ({})", fmt::join(p, ", ")));
      }
      win.pads = {p[0], p[1], p[2], p[3]};
    } else if (auto_pad == "VALID") {
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const std::array<int64_t, 2> in = {x.h, x.w};
      for (int a = 0; a < 2; ++a) {
        auto [lo, hi] = ops::same_padding(in[a], win.k[a], win.s[a], win.d[a]);
        if (auto_pad == "SAME_LOWER") std::swap(lo, hi);
        win.pads[a] = lo;
        win.pads[a + 2] = hi;
      }
    } else {
      fail(fmt::format("unknown auto_pad '{}'", auto_pad));
    }
    return win;
  }

  // Whether `win` pads exactly as TensorFlow's 'same' does for this input.
  static bool is_same(const Val& x, const Window& win) {
    const auto [t, b] = ops::same_padding(x.h, win.k[0], win.s[0], win.d[0]);
    const auto [l, r] = ops::same_padding(x.w, win.k[1], win.s[1], win.d[1]);
    return win.pads == std::array<int64_t, 4>{t, l, b, r};
  }
  static bool no_pads(const Window& win) { return win.pads == std::array<int64_t, 4>{0, 0, 0, 0}; }

  SymTensor zero_pad(const SymTensor& x, const std::array<int64_t, 4>& p) {
    return ZeroPadding2D({.padding = {p[0], p[2], p[1], p[3]}, .name = layer_name("_pad")})(x);
  }

  Val map_of(const SymTensor& t, bool nonneg) const {
    Val v;
    v.kind = Kind::Map;
    v.t = t;
    v.h = t.shape()[0];
    v.w = t.shape()[1];
    v.c = t.shape()[2];
    v.nonneg = nonneg;
    return v;
  }

  // --- ops ----------------------------------------------------------------------------------

  void convert(const onnx::NodeProto& n, int index) {
    const std::string& op = n.op_type();
    if (!n.domain().empty() && n.domain() != "ai.onnx") {
      fail(fmt::format("op '{}' of domain '{}' is not supported", op, n.domain()));
    }
    std::set<std::string> attr_names;
    for (const auto& a : n.attribute()) {
      if (!attr_names.insert(a.name()).second) {
        fail(fmt::format("attribute '{}' is given twice", a.name()));
      }
    }
    // One converter per ONNX op type.
    using Converter = void (Importer::*)(const onnx::NodeProto&);
    static const std::map<std::string, Converter, std::less<>> converters = {
        {"Constant", &Importer::convert_constant},
        {"Conv", &Importer::convert_conv},
        {"BatchNormalization", &Importer::convert_bn},
        {"Relu", &Importer::convert_activation},
        {"Sigmoid", &Importer::convert_activation},
        {"Tanh", &Importer::convert_activation},
        {"LeakyRelu", &Importer::convert_leaky_relu},
        {"Softmax", &Importer::convert_softmax},
        {"Add", &Importer::convert_add},
        {"Sum", &Importer::convert_add},
        {"MaxPool", &Importer::convert_pool},
        {"AveragePool", &Importer::convert_pool},
        {"GlobalAveragePool", &Importer::convert_global_pool},
        {"GlobalMaxPool", &Importer::convert_global_pool},
        {"Flatten", &Importer::convert_flatten},
        {"Reshape", &Importer::convert_reshape},
        {"Shape", &Importer::convert_shape_arithmetic},
        {"Gather", &Importer::convert_shape_arithmetic},
        {"Unsqueeze", &Importer::convert_shape_arithmetic},
        {"Concat", &Importer::convert_shape_arithmetic},
        {"Gemm", &Importer::convert_gemm},
        {"Pad", &Importer::convert_pad},
        {"Identity", &Importer::convert_identity},
        {"Dropout", &Importer::convert_dropout},
    };
    auto it = converters.find(op);
    if (it == converters.end()) fail(fmt::format("unsupported op type '{}'", op));
    (this->*(it->second))(n);
  }

  void convert_identity(const onnx::NodeProto& n) { define(n, need_input(n, 0)); }

  void convert_dropout(const onnx::NodeProto& n) {
    if (n.input_size() >= 3 && !n.input(2).empty()) {
      const Const& tm = constant(n.input(2), "training_mode");
      if (tm.i.size() != 1 || tm.i[0] != 0) fail("training_mode must be false");
    }
    define(n, need_input(n, 0));
  }

  void convert_leaky_relu(const onnx::NodeProto& n) {
    const Val x = need_input(n, 0);
    const float alpha = attr_float("alpha", 0.01f);  // ONNX's default
    if (alpha < 0.0f)
      fail(fmt::format("LeakyRelu with a negative alpha ({}) is not supported", alpha));
    Val out = x;
    out.is_input = false;
    out.nonneg = x.nonneg;
    out.t = LeakyReLU({.negative_slope = alpha, .name = layer_name()})(x.t);
    define(n, out);
  }

  Val need_input(const onnx::NodeProto& n, int k) {
    if (n.input_size() <= k) fail(fmt::format("input {} is missing", k));
    return value(n.input(k));
  }

  void convert_constant(const onnx::NodeProto& n) {
    const auto* a = attr("value");
    if (a == nullptr || a->type() != onnx::AttributeProto::TENSOR) {
      fail("only Constant nodes with a 'value' tensor are supported");
    }
    if (n.output_size() < 1 || n.output(0).empty()) fail("the node has no output");
    if (values_.count(n.output(0)) || is_const(n.output(0))) {
      fail(fmt::format("output '{}' is defined twice", n.output(0)));
    }
    onnx::TensorProto t = a->t();
    t.set_name(n.output(0));
    consts_.emplace(n.output(0), decode(t, "constant"));
  }

  void convert_conv(const onnx::NodeProto& n) {
    if (n.input_size() < 2) fail("Conv needs X and W");
    const Val x = map_value(n.input(0));
    const Const& wc = constant(n.input(1), "weight");
    if (!wc.is_float || wc.dims.size() != 4)
      fail(fmt::format("the weight '{}' must be a float32 (O, I, kH, kW) tensor", n.input(1)));
    const int64_t o = wc.dims[0], ci = wc.dims[1], kh = wc.dims[2], kw = wc.dims[3];
    const int64_t group = attr_int("group", 1);
    if (group != 1)
      fail(fmt::format(
          "group = {} (grouped or depthwise convolution) is not supported; only group = 1", group));
    if (ci != x.c) {
      fail(fmt::format("the weight '{}' has shape {} for an input of {} channels", n.input(1),
                       Shape(wc.dims).str(), x.c));
    }
    if (o < 1 || kh < 1 || kw < 1) fail(fmt::format("empty weight shape {}", Shape(wc.dims).str()));
    if (attr("kernel_shape") != nullptr &&
        attr_ints("kernel_shape", {}, 2) != std::vector<int64_t>{kh, kw}) {
      fail(fmt::format("kernel_shape does not match the weight shape {}", Shape(wc.dims).str()));
    }
    const Window win = window(x, {kh, kw}, true);
    const bool has_bias = n.input_size() >= 3 && !n.input(2).empty();
    const Const* bc = has_bias ? &float_const(n.input(2), "bias", {o}) : nullptr;
    SymTensor in = x.t;
    Padding padding = Padding::Valid;
    if (!no_pads(win)) {
      if (is_same(x, win)) {
        padding = Padding::Same;
      } else {
        in = zero_pad(in, win.pads);
      }
    }
    auto conv = Conv2D({.filters = o,
                        .kernel = {kh, kw},
                        .strides = win.s,
                        .padding = padding,
                        .dilation = win.d,
                        .use_bias = has_bias,
                        .name = layer_name()});
    SymTensor y = conv(in);
    Tensor k(Shape{kh, kw, ci, o});
    float* kp = k.f32();
    for (int64_t oo = 0; oo < o; ++oo)
      for (int64_t cc = 0; cc < ci; ++cc)
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j)
            kp[((i * kw + j) * ci + cc) * o + oo] = wc.f[((oo * ci + cc) * kh + i) * kw + j];
    conv.layer().param("kernel").value.copy_from(k);
    if (bc != nullptr) conv.layer().param("bias").value.copy_from(Tensor::from_vector({o}, bc->f));
    define(n, map_of(y, false));
  }

  void convert_bn(const onnx::NodeProto& n) {
    if (n.input_size() < 5) fail("BatchNormalization needs X, scale, B, mean and var");
    if (attr_int("training_mode", 0) != 0)
      fail("training_mode = 1 is not supported (inference only)");
    // Training-mode outputs (running mean and variance) stay undefined: using them fails.
    const Val x = value(n.input(0));
    const int64_t c = x.c;
    const char* roles[] = {"scale", "B", "mean", "var"};
    std::vector<const Const*> p;
    for (int k = 0; k < 4; ++k) p.push_back(&float_const(n.input(k + 1), roles[k], {c}));
    const float eps = attr_float("epsilon", 1e-5f);
    const float momentum = attr_float("momentum", 0.9f);
    if (!(eps > 0.0f)) fail(fmt::format("epsilon {} must be positive", eps));
    if (momentum < 0.0f || momentum > 1.0f)
      fail(fmt::format("momentum {} is not in [0, 1]", momentum));
    for (size_t i = 0; i < p[3]->f.size(); ++i) {
      if (p[3]->f[i] < 0.0f) {
        fail(
            fmt::format("var '{}' has a negative value {} at index {}", n.input(4), p[3]->f[i], i));
      }
    }
    auto bn = BatchNormalization({.momentum = momentum, .epsilon = eps, .name = layer_name()});
    SymTensor y = bn(x.t);
    const char* names[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    for (int k = 0; k < 4; ++k) {
      std::vector<float> v(static_cast<size_t>(c));
      for (int64_t r = 0; r < c; ++r) v[r] = p[k]->f[x.onnx_index(r)];
      bn.layer().param(names[k]).value.copy_from(Tensor::from_vector({c}, v));
    }
    Val out = x;
    out.t = y;
    out.nonneg = false;
    out.is_input = false;
    define(n, out);
  }

  void convert_activation(const onnx::NodeProto& n) {
    const Val x = need_input(n, 0);
    Val out = x;
    out.is_input = false;
    if (n.op_type() == "Relu") {
      out.t = ReLU({.name = layer_name()})(x.t);
      out.nonneg = true;
    } else if (n.op_type() == "Sigmoid") {
      out.t = Activation("sigmoid", layer_name())(x.t);
      out.nonneg = true;
    } else {
      out.t = Activation("tanh", layer_name())(x.t);
      out.nonneg = false;
    }
    define(n, out);
  }

  void convert_softmax(const onnx::NodeProto& n) {
    const Val x = need_input(n, 0);
    const int rank = x.kind == Kind::Vector ? 2 : 4;
    int64_t axis = attr_int("axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    // The channel axis: the model's last axis. Opsets before 13 flatten from `axis` on, which is
    // the channel axis only for (N, C) inputs; a flattened vector's order does not matter.
    const bool ok = axis == 1 && (x.kind != Kind::Map || opset_ >= 13);
    if (!ok)
      fail(fmt::format("softmax over axis {} of a rank-{} tensor is not supported", axis, rank));
    Val out = x;
    out.is_input = false;
    out.nonneg = true;
    out.t = Activation("softmax", layer_name())(x.t);
    define(n, out);
  }

  void convert_add(const onnx::NodeProto& n) {
    if (n.input_size() < 1) fail("no inputs");
    std::vector<Val> xs;
    for (const auto& in : n.input()) xs.push_back(value(in));
    if (n.op_type() == "Add" && xs.size() != 2) fail("Add needs two inputs");
    bool nonneg = true;
    for (const Val& v : xs) {
      const Val& a = xs[0];
      if (v.kind != a.kind || v.c != a.c || v.h != a.h || v.w != a.w || v.chw != a.chw ||
          v.chw_dims != a.chw_dims) {
        fail("the inputs have different shapes (broadcasting is not supported)");
      }
      nonneg = nonneg && v.nonneg;
    }
    if (xs.size() == 1) return define(n, xs[0]);
    std::vector<SymTensor> ts;
    for (const Val& v : xs) ts.push_back(v.t);
    Val out = xs[0];
    out.is_input = false;
    out.nonneg = nonneg;
    out.t = resnet::Add({.name = layer_name()})(ts);
    define(n, out);
  }

  void convert_pool(const onnx::NodeProto& n) {
    const bool max = n.op_type() == "MaxPool";
    const Val x = map_value(n.input_size() > 0 ? n.input(0) : std::string());
    const auto k = attr_ints("kernel_shape", {}, 2);
    if (k.empty()) fail("kernel_shape is required");
    Window win = window(x, {k[0], k[1]}, false);
    if (max && attr_int("storage_order", 0) != 0) fail("storage_order = 1 is not supported");
    const bool include_pad = !max && attr_int("count_include_pad", 0) != 0;
    if (attr_int("ceil_mode", 0) != 0) {
      // Output sizes rounded up: extra padding at the bottom/right gives the same windows.
      const std::array<int64_t, 2> in = {x.h, x.w};
      for (int a = 0; a < 2; ++a) {
        const int64_t span = in[a] + win.pads[a] + win.pads[a + 2] - win.k[a];
        if (span < 0) fail("the window is larger than the padded input");
        int64_t out = (span + win.s[a] - 1) / win.s[a] + 1;
        // ONNX/PyTorch: the last window must start inside the input or the begin padding.
        if ((out - 1) * win.s[a] >= in[a] + win.pads[a]) --out;
        const int64_t need =
            (out - 1) * win.s[a] + win.k[a] - (in[a] + win.pads[a] + win.pads[a + 2]);
        if (need > 0) {
          if (!max)
            fail("ceil_mode = 1 that changes the output size is not supported for AveragePool");
          win.pads[a + 2] += need;
        }
      }
    }
    for (int a = 0; a < 4; ++a) {
      if (win.pads[a] >= win.k[a % 2]) fail("pads must be smaller than the kernel");
    }
    SymTensor in = x.t;
    Padding padding = Padding::Valid;
    if (!no_pads(win)) {
      if (is_same(x, win) && !include_pad) {
        padding = Padding::Same;  // padded cells ignored by max, left out of the average's count
      } else if (include_pad || x.nonneg) {
        // Zero padding: counted by AveragePool(count_include_pad = 1); for a max over values
        // known to be >= 0 a zero never wins over the window's real cells.
        in = zero_pad(in, win.pads);
      } else if (max) {
        fail(
            fmt::format("padding ({}) that is not TensorFlow's 'same' is supported only on "
                        "non-negative inputs (after a Relu)",
                        fmt::join(win.pads, ", ")));
      } else {
        fail(
            fmt::format("padding ({}) with count_include_pad = 0 that is not TensorFlow's "
                        "'same' is not supported",
                        fmt::join(win.pads, ", ")));
      }
    }
    const Pool2DOptions po{
        .pool_size = win.k, .strides = win.s, .padding = padding, .name = layer_name()};
    SymTensor y = max ? MaxPooling2D(po)(in) : AveragePooling2D(po)(in);
    define(n, map_of(y, x.nonneg));
  }

  void convert_global_pool(const onnx::NodeProto& n) {
    const bool max = n.op_type() == "GlobalMaxPool";
    const Val x = need_input(n, 0);
    if (x.kind == Kind::Pooled) return define(n, x);
    if (x.kind != Kind::Map) fail("the input must be a 4-D (N, C, H, W) tensor");
    Val out;
    out.kind = Kind::Pooled;
    out.c = x.c;
    out.nonneg = x.nonneg;
    out.t = max ? GlobalMaxPooling2D({.name = layer_name()})(x.t)
                : GlobalAveragePooling2D({.name = layer_name()})(x.t);
    define(n, out);
  }

  // A (N, C*H*W) vector of the map x.
  Val flatten(const Val& x) {
    if (x.kind == Kind::Pooled || x.kind == Kind::Vector) {
      Val v = x;
      v.kind = Kind::Vector;
      v.c = x.features();
      v.h = v.w = 1;
      return v;
    }
    Val v;
    v.kind = Kind::Vector;
    v.c = x.features();
    v.nonneg = x.nonneg;
    v.t = Flatten({.name = layer_name()})(x.t);
    if (x.h * x.w > 1) {
      v.chw = true;
      v.chw_dims = {x.c, x.h, x.w};
    }
    return v;
  }

  void convert_flatten(const onnx::NodeProto& n) {
    const Val x = need_input(n, 0);
    const int rank = x.kind == Kind::Vector ? 2 : 4;
    int64_t axis = attr_int("axis", 1);
    if (axis < 0) axis += rank;
    if (axis != 1 && !(axis == rank - 1 && x.kind == Kind::Pooled)) {
      if (!(x.kind == Kind::Vector && axis == 1)) {
        fail(fmt::format("Flatten with axis {} of a rank-{} tensor is not supported (axis 1 is)",
                         axis, rank));
      }
    }
    define(n, flatten(x));
  }

  void convert_reshape(const onnx::NodeProto& n) {
    if (n.input_size() < 2) fail("Reshape needs data and shape");
    const Val x = value(n.input(0));
    const Ints s = ints(n.input(1), "shape");
    if (s.scalar) fail("the shape must be a 1-D int64 tensor");
    std::vector<int64_t> d = s.v;
    // The batch size (from Shape) in front means "keep dimension 0", as 0 does.
    if (!d.empty() && d[0] == kBatch) d[0] = 0;
    for (size_t k = 1; k < d.size(); ++k) {
      if (d[k] == kBatch) fail("the batch size is used beyond the first dimension of the shape");
    }
    const int64_t f = x.features();
    // (0 or -1, F) and (0, -1) flatten; so does (B, -1) or (B, F) with a batch size B baked in by
    // an export without a dynamic batch axis: the model stays batch-agnostic.
    if (d.size() == 2 && (d[0] >= 0 || d[0] == -1) && (d[1] == f || (d[1] == -1 && d[0] != -1))) {
      return define(n, flatten(x));
    }
    if (d.size() == 4 && (d[0] == 0 || d[0] == -1) && d[2] == 1 && d[3] == 1 && d[1] == f &&
        x.kind != Kind::Map && !x.chw) {
      Val v = x;
      v.kind = Kind::Pooled;
      return define(n, v);
    }
    fail(fmt::format("Reshape of {} features to ({}) is not supported (only flattening to (N, {}))",
                     f, fmt::join(d, ", "), f));
  }

  void convert_shape_arithmetic(const onnx::NodeProto& n) {
    const std::string& op = n.op_type();
    if (op != "Shape" && n.input_size() > 0 && values_.count(n.input(0))) {
      fail(fmt::format("{} of a feature tensor is not supported (only of shape vectors)", op));
    }
    if (op == "Shape") {
      const Val x = need_input(n, 0);
      std::vector<int64_t> dims = {kBatch, x.c};
      if (x.kind != Kind::Vector) dims.insert(dims.end(), {x.h, x.w});
      const int64_t r = static_cast<int64_t>(dims.size());
      int64_t start = attr_int("start", 0), end = attr_int("end", r);
      if (start < 0) start += r;
      if (end < 0) end += r;
      start = std::clamp<int64_t>(start, 0, r);
      end = std::clamp<int64_t>(end, start, r);
      return define_ints(n, {{dims.begin() + start, dims.begin() + end}, false});
    }
    if (op == "Gather") {
      if (n.input_size() < 2) fail("Gather needs data and indices");
      const Ints data = ints(n.input(0), "data");
      const Ints idx = ints(n.input(1), "indices");
      if (data.scalar || attr_int("axis", 0) != 0) fail("only axis 0 of a 1-D shape is supported");
      Ints out{{}, idx.scalar};
      const int64_t size = static_cast<int64_t>(data.v.size());
      for (int64_t i : idx.v) {
        if (i < -size || i >= size)
          fail(fmt::format("index {} is out of range for {} values", i, size));
        out.v.push_back(data.v[static_cast<size_t>(i < 0 ? i + size : i)]);
      }
      return define_ints(n, out);
    }
    if (op == "Unsqueeze") {
      const Ints data = ints(n.input_size() > 0 ? n.input(0) : std::string(), "data");
      const std::vector<int64_t> axes =
          opset_ >= 13 ? (n.input_size() > 1 ? ints(n.input(1), "axes").v : std::vector<int64_t>{})
                       : attr_ints("axes", {}, 1);
      if (!data.scalar || axes.size() != 1 || (axes[0] != 0 && axes[0] != -1)) {
        fail("only a scalar unsqueezed to one dimension is supported");
      }
      return define_ints(n, {data.v, false});
    }
    // Concat of 1-D int64 vectors.
    if (attr_int("axis", 0) != 0 && attr_int("axis", 0) != -1) fail("only axis 0 is supported");
    Ints out;
    for (const auto& in : n.input()) {
      const Ints part = ints(in, "input");
      if (part.scalar) fail("Concat of scalars");
      out.v.insert(out.v.end(), part.v.begin(), part.v.end());
      if (out.v.size() > 64) fail("the shape vector is too long");
    }
    return define_ints(n, out);
  }

  void convert_gemm(const onnx::NodeProto& n) {
    if (n.input_size() < 2) fail("Gemm needs A and B");
    const Val x = value(n.input(0));
    if (x.kind != Kind::Vector)
      fail(fmt::format("input '{}' must be a 2-D (N, K) tensor", n.input(0)));
    if (attr_int("transA", 0) != 0) fail("transA = 1 is not supported");
    const int64_t trans_b = attr_int("transB", 0);
    const float alpha = attr_float("alpha", 1.0f), beta = attr_float("beta", 1.0f);
    const Const& b = constant(n.input(1), "B");
    if (!b.is_float || b.dims.size() != 2)
      fail(fmt::format("B '{}' must be a 2-D float32 tensor", n.input(1)));
    const int64_t kin = trans_b ? b.dims[1] : b.dims[0];
    const int64_t units = trans_b ? b.dims[0] : b.dims[1];
    if (kin != x.c) {
      fail(fmt::format("B '{}' has shape {} (transB = {}) for an input of {} features", n.input(1),
                       Shape(b.dims).str(), trans_b, x.c));
    }
    if (units < 1) fail(fmt::format("B '{}' has no output units", n.input(1)));
    std::vector<float> bias;
    if (n.input_size() >= 3 && !n.input(2).empty()) {
      const Const& c = constant(n.input(2), "C");
      const bool shape_ok =
          c.is_float && (c.dims == std::vector<int64_t>{units} ||
                         c.dims == std::vector<int64_t>{1, units} || c.numel() == 1);
      if (!shape_ok) {
        fail(fmt::format("C '{}' of shape {} is not a bias of {} units", n.input(2),
                         Shape(c.dims).str(), units));
      }
      bias.resize(static_cast<size_t>(units));
      for (int64_t u = 0; u < units; ++u) bias[u] = beta * c.f[c.numel() == 1 ? 0 : u];
    }
    auto dense = Dense({.units = units, .use_bias = !bias.empty(), .name = layer_name()});
    SymTensor y = dense(x.t);
    Tensor k(Shape{kin, units});
    float* kp = k.f32();
    for (int64_t r = 0; r < kin; ++r) {
      const int64_t i = x.onnx_index(r);
      for (int64_t u = 0; u < units; ++u) {
        kp[r * units + u] = alpha * (trans_b ? b.f[u * kin + i] : b.f[i * units + u]);
      }
    }
    dense.layer().param("kernel").value.copy_from(k);
    if (!bias.empty())
      dense.layer().param("bias").value.copy_from(Tensor::from_vector({units}, bias));
    Val out;
    out.kind = Kind::Vector;
    out.c = units;
    out.t = y;
    define(n, out);
  }

  void convert_pad(const onnx::NodeProto& n) {
    if (n.input_size() < 2) fail("Pad needs data and pads");
    const Val x = map_value(n.input(0));
    if (attr_string("mode", "constant") != "constant") {
      fail(fmt::format("mode '{}' is not supported (constant zero padding is)",
                       attr_string("mode", "")));
    }
    const Const& p = constant(n.input(1), "pads");
    if (p.is_float || p.i.size() != 8)
      fail("pads must be 8 int64 values (N, C, H, W begin and end)");
    if (n.input_size() >= 3 && !n.input(2).empty()) {
      const Const& v = constant(n.input(2), "constant_value");
      if (!v.is_float || v.f.size() != 1 || v.f[0] != 0.0f) fail("only zero padding is supported");
    }
    if (n.input_size() >= 4 && !n.input(3).empty()) fail("the axes input is not supported");
    const auto& q = p.i;
    if (q[0] != 0 || q[1] != 0 || q[4] != 0 || q[5] != 0) fail("padding N or C is not supported");
    for (int64_t v : q) {
      if (v < 0 || v > kMaxDim)
        fail(fmt::format("pads ({}) must be 0 to {}", fmt::join(q, ", "), kMaxDim));
    }
    if (q[2] == 0 && q[3] == 0 && q[6] == 0 && q[7] == 0) return define(n, x);
    SymTensor y = ZeroPadding2D({.padding = {q[2], q[6], q[3], q[7]}, .name = layer_name()})(x.t);
    define(n, map_of(y, x.nonneg));
  }

  const std::string& file_;
  int64_t opset_ = 0;
  std::map<std::string, const onnx::TensorProto*> inits_;
  std::map<std::string, Const> consts_;
  std::map<std::string, Ints> ints_;
  std::map<std::string, Val> values_;
  std::set<std::string> used_names_;
  const onnx::NodeProto* node_ = nullptr;
  std::string node_label_;
};

}  // namespace

Model import_onnx_bytes(std::string_view bytes, const std::string& file) {
  GOOGLE_PROTOBUF_VERIFY_VERSION;
  return Importer(file).run(bytes);
}

Model import_onnx(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw IoError(fmt::format("{}: cannot read: no such file (or not a regular file)", path));
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot read: {}", path, ec.message()));
  if (size >= static_cast<uintmax_t>(std::numeric_limits<int>::max())) {
    throw IoError(
        fmt::format("{}: {} bytes is larger than an ONNX file can be (2 GiB)", path, size));
  }
  std::ifstream f(path, std::ios::binary);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (!f || !f.read(bytes.data(), static_cast<std::streamsize>(size))) {
    throw IoError(fmt::format("{}: cannot read the file", path));
  }
  return import_onnx_bytes(bytes, path);
}

}  // namespace resnet

#else  // no ONNX support in this build

namespace resnet {

Model import_onnx_bytes(std::string_view, const std::string& file) {
  throw ConfigError(
      fmt::format("import_onnx {}: resnet.cpp was built without ONNX support "
                  "(install libonnx-dev and libprotobuf-dev and rebuild)",
                  file));
}

Model import_onnx(const std::string& path) { return import_onnx_bytes({}, path); }

}  // namespace resnet

#endif
