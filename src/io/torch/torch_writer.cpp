// Writing state_dicts as torch.save does (zip format, pickle protocol 2), using only what
// torch.load(weights_only=True) accepts: collections.OrderedDict, torch._utils._rebuild_tensor_v2
// and the Float/Long storage types.
#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "io/torch/torch_file.h"
#include "io/zip/zip.h"
#include "resnet/error.h"
#include "resnet/io.h"

namespace resnet {

namespace {
constexpr const char* kPrefix = "archive/";
constexpr const char* kAttributes = "resnet_attributes.json";

class PickleWriter {
 public:
  void proto() { out_ += "\x80\x02"; }
  void global(const std::string& module, const std::string& name) {
    out_ += 'c';
    out_ += module + "\n" + name + "\n";
  }
  void unicode(const std::string& s) {
    out_ += 'X';
    u32(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      out_ += 'K';
      out_ += static_cast<char>(v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      out_ += 'J';
      u32(static_cast<uint32_t>(static_cast<int32_t>(v)));
    } else {
      out_ += "\x8a\x08";  // LONG1, 8 bytes little-endian
      for (int i = 0; i < 8; ++i)
        out_ += static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
    }
  }
  void int_tuple(const std::vector<int64_t>& v) {
    out_ += '(';
    for (int64_t x : v) integer(x);
    out_ += 't';
  }
  void op(char c) { out_ += c; }
  void op(const char* s) { out_ += s; }
  const std::string& bytes() const { return out_; }

 private:
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  std::string out_;
};

// _rebuild_tensor_v2(storage, 0, size, contiguous stride, False, OrderedDict())
void write_tensor(PickleWriter& p, const std::string& storage_type, const std::string& key,
                  const std::vector<int64_t>& size) {
  std::vector<int64_t> stride(size.size());
  int64_t numel = 1;
  for (size_t i = size.size(); i-- > 0;) {
    stride[i] = numel;
    numel *= size[i];
  }
  p.global("torch._utils", "_rebuild_tensor_v2");
  p.op('(');
  p.op('(');
  p.unicode("storage");
  p.global("torch", storage_type);
  p.unicode(key);
  p.unicode("cpu");
  p.integer(numel);
  p.op('t');
  p.op('Q');  // BINPERSID
  p.integer(0);
  p.int_tuple(size);
  p.int_tuple(stride);
  p.op('\x89');  // False: requires_grad
  p.global("collections", "OrderedDict");
  p.op(')');
  p.op('R');
  p.op('t');
  p.op('R');
}

// resnet.cpp's layout -> PyTorch's: Conv2D HWIO -> OIHW, Dense (in, out) -> (out, in).
std::pair<std::vector<int64_t>, std::string> to_torch(const Layer& l, const Param& p) {
  const Tensor v = p.value.to_f32();
  const Shape& s = v.shape();
  std::string bytes(static_cast<size_t>(v.numel()) * 4, '\0');
  auto* dst = reinterpret_cast<float*>(bytes.data());
  const float* src = v.f32();
  if (p.name == "kernel" && s.rank() == 4) {
    const int64_t h = s[0], w = s[1], i = s[2], o = s[3];
    for (int64_t a = 0; a < o; ++a)
      for (int64_t b = 0; b < i; ++b)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x) *dst++ = src[((y * w + x) * i + b) * o + a];
    return {{o, i, h, w}, bytes};
  }
  if (p.name == "kernel" && s.rank() == 2 && l.class_name() == "Dense") {
    const int64_t i = s[0], o = s[1];
    for (int64_t a = 0; a < o; ++a)
      for (int64_t b = 0; b < i; ++b) dst[a * i + b] = src[b * o + a];
    return {{o, i}, bytes};
  }
  std::memcpy(dst, src, bytes.size());
  return {s.dims(), bytes};
}
// PyTorch's CIFAR ResNet code calls the head "linear" and the projections "shortcut";
// torchvision says "fc" and "downsample". A CIFAR ResNet has a 3x3 stem convolution "conv1_conv".
bool cifar_style(const Model& model) {
  for (const auto& l : model.layers()) {
    if (l->name() == "conv1_conv" && !l->params().empty()) {
      return l->params()[0].value.shape()[0] == 3;
    }
  }
  return false;
}
}  // namespace

namespace torch_detail {

void save_torch_state_dict(const Model& model, const std::string& path,
                           const std::map<std::string, std::string>& attributes) {
  const bool cifar = cifar_style(model);
  const std::string head = cifar ? "linear" : "fc";
  const std::string projection = cifar ? "shortcut" : "downsample";
  PickleWriter p;
  zip_detail::ZipWriter zip;
  std::vector<std::pair<std::string, std::string>> storages;
  p.proto();
  p.global("collections", "OrderedDict");
  p.op(')');
  p.op('R');
  p.op('(');
  std::map<std::string, bool> seen;
  for (const auto& l : model.layers()) {
    if (torch_parameter_free(*l)) continue;
    std::string bn_module;
    for (const Param& param : l->params()) {
      const std::string key =
          torch_key_for(l->name(), l->class_name(), param.name, head, projection);
      if (seen[key]) {
        throw IoError(fmt::format("{}: two weights map to the PyTorch key '{}'", path, key));
      }
      seen[key] = true;
      auto [size, bytes] = to_torch(*l, param);
      const std::string storage = std::to_string(storages.size());
      p.unicode(key);
      write_tensor(p, "FloatStorage", storage, size);
      storages.emplace_back(storage, std::move(bytes));
      bn_module = key.substr(0, key.rfind('.'));
    }
    if (l->class_name() == "BatchNormalization" && !bn_module.empty()) {
      // BatchNorm2d's counter, as PyTorch saves it (0: resnet.cpp keeps no count).
      const std::string storage = std::to_string(storages.size());
      p.unicode(bn_module + ".num_batches_tracked");
      write_tensor(p, "LongStorage", storage, {});
      storages.emplace_back(storage, std::string(8, '\0'));
    }
  }
  p.op('u');  // SETITEMS
  p.op('.');
  zip.add(std::string(kPrefix) + "data.pkl", p.bytes());
  zip.add(std::string(kPrefix) + "byteorder", "little");
  for (const auto& [key, bytes] : storages) zip.add(std::string(kPrefix) + "data/" + key, bytes);
  if (!attributes.empty()) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& [k, v] : attributes) j[k] = v;
    zip.add(std::string(kPrefix) + kAttributes, j.dump(1));
  }
  zip.add(std::string(kPrefix) + "version", "3\n");
  write_file_atomic(path, zip.finish());
}

std::map<std::string, std::string> read_torch_attributes(const std::string& path) {
  std::map<std::string, std::string> out;
  {
    std::ifstream f(path, std::ios::binary);
    char head[4] = {};
    f.read(head, 4);
    if (!zip_detail::looks_like_zip(std::string_view(head, static_cast<size_t>(f.gcount())))) {
      return out;  // the legacy format has no place for them
    }
  }
  zip_detail::ZipReader zip(path, uint64_t{1} << 24);
  for (const zip_detail::ZipMember& m : zip.members()) {
    const size_t slash = m.name.find('/');
    if (slash == std::string::npos ||
        m.name.compare(slash + 1, std::string::npos, kAttributes) != 0) {
      continue;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(zip.read(m));
    } catch (const nlohmann::json::exception& e) {
      throw IoError(fmt::format("{}: member '{}' is not JSON: {}", path, m.name, e.what()));
    }
    if (!j.is_object())
      throw IoError(fmt::format("{}: member '{}' is not a JSON object", path, m.name));
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
    }
  }
  return out;
}

}  // namespace torch_detail
}  // namespace resnet
