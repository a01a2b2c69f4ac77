// resnet.cpp's own weights file (see io.h for the layout). Every size read from the file is checked
// against the bytes that remain before anything is allocated.
#include "io/rnw/rnw.h"

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "resnet/error.h"
#include "resnet/io.h"

namespace resnet {

namespace {
constexpr char kMagic[4] = {'R', 'N', 'W', 'T'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxRank = 8;
constexpr uint32_t kMaxName = 4096;

class Writer {
 public:
  void u32(uint32_t v) { raw(&v, 4); }
  void i64(int64_t v) { raw(&v, 8); }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void tensor(const std::string& name, const Tensor& t) {
    str(name);
    u32(static_cast<uint32_t>(t.rank()));
    for (int64_t d : t.shape().dims()) i64(d);
    raw(t.f32(), t.numel() * sizeof(float));
  }
  void raw(const void* p, size_t n) { buf_.append(static_cast<const char*>(p), n); }
  const std::string& bytes() const { return buf_; }

 private:
  std::string buf_;
};

class Reader {
 public:
  Reader(std::string path, std::string data) : path_(std::move(path)), data_(std::move(data)) {}
  uint32_t u32(const char* what) {
    uint32_t v;
    raw(&v, 4, what);
    return v;
  }
  int64_t i64(const char* what) {
    int64_t v;
    raw(&v, 8, what);
    return v;
  }
  std::string str(const char* what) {
    const uint32_t n = u32(what);
    if (n > kMaxName) fail(fmt::format("{} of {} bytes is too long", what, n));
    std::string s(n, '\0');
    raw(s.data(), n, what);
    return s;
  }
  std::pair<std::string, Tensor> tensor() {
    std::string name = str("tensor name");
    const uint32_t rank = u32("rank");
    if (rank > kMaxRank) fail(fmt::format("tensor '{}' has rank {}", name, rank));
    std::vector<int64_t> dims;
    int64_t count = 1;
    for (uint32_t i = 0; i < rank; ++i) {
      const int64_t d = i64("dimension");
      if (d < 0 || (d > 0 && count > static_cast<int64_t>(remaining() / 4) / d)) {
        fail(fmt::format("tensor '{}' claims more data than the file holds", name));
      }
      dims.push_back(d);
      count *= d;
    }
    if (static_cast<size_t>(count) * 4 > remaining()) {
      fail(fmt::format("tensor '{}' is truncated", name));
    }
    Tensor t = Tensor::empty(Shape(dims));
    raw(t.raw(), count * 4, "tensor data");
    return {std::move(name), std::move(t)};
  }
  size_t remaining() const { return data_.size() - pos_; }
  [[noreturn]] void fail(const std::string& msg) const {
    throw IoError(fmt::format("{}: {}", path_, msg));
  }

 private:
  void raw(void* p, size_t n, const char* what) {
    if (n > remaining()) fail(fmt::format("truncated file (reading {})", what));
    std::memcpy(p, data_.data() + pos_, n);
    pos_ += n;
  }
  std::string path_;
  std::string data_;
  size_t pos_ = 0;
};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError(fmt::format("{}: cannot open", path));
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Reader open_reader(const std::string& path, std::map<std::string, std::string>& attrs) {
  Reader r(path, read_all(path));
  char magic[4];
  if (r.remaining() < 8) r.fail("not a resnet.cpp weights file (too short)");
  const uint32_t m = r.u32("magic");
  std::memcpy(magic, &m, 4);
  if (std::memcmp(magic, kMagic, 4) != 0) r.fail("not a resnet.cpp weights file (bad magic)");
  const uint32_t version = r.u32("version");
  if (version != kVersion) r.fail(fmt::format("unsupported version {}", version));
  const uint32_t n = r.u32("attribute count");
  if (n > 10000) r.fail(fmt::format("absurd attribute count {}", n));
  for (uint32_t i = 0; i < n; ++i) {
    std::string k = r.str("attribute name");
    attrs[k] = r.str("attribute value");
  }
  return r;
}

std::string param_key(const Layer& l, const Param& p) { return l.name() + "/" + p.name; }
}  // namespace

namespace rnw_detail {

void save_rnw(Model& model, const std::string& path,
              const std::map<std::string, std::string>& attributes, bool include_optimizer) {
  Writer w;
  w.raw(kMagic, 4);
  w.u32(kVersion);
  std::map<std::string, std::string> attrs = attributes;
  attrs["model_name"] = model.name();
  const bool with_opt = include_optimizer && model.compiled();
  if (with_opt) {
    attrs["optimizer"] = model.optimizer().class_name();
    attrs["optimizer_iterations"] = std::to_string(model.optimizer().iterations());
  }
  w.u32(static_cast<uint32_t>(attrs.size()));
  for (const auto& [k, v] : attrs) {
    w.str(k);
    w.str(v);
  }
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& l : model.layers()) {
    for (const Param& p : l->params()) tensors.emplace_back(param_key(*l, p), p.value);
  }
  if (with_opt) {
    const auto params = model.trainable_params();
    const auto& slots = model.optimizer().slots();
    for (size_t i = 0; i < slots.size() && i < params.size(); ++i) {
      // The slot index keeps the optimizer's slot order through the sorted map of the reader.
      for (size_t j = 0; j < slots[i].size(); ++j) {
        tensors.emplace_back(fmt::format("optimizer/{}/{:02d}_{}", i, j, slots[i][j].name),
                             slots[i][j].value);
      }
    }
  }
  w.u32(static_cast<uint32_t>(tensors.size()));
  for (const auto& [name, t] : tensors) w.tensor(name, t);
  write_file_atomic(path, w.bytes());
}

std::map<std::string, std::string> read_rnw_attributes(const std::string& path) {
  std::map<std::string, std::string> attrs;
  open_reader(path, attrs);
  return attrs;
}

std::map<std::string, std::string> load_rnw(Model& model, const std::string& path,
                                            bool restore_optimizer, LoadWeightsReport& report) {
  std::map<std::string, std::string> attrs;
  Reader r = open_reader(path, attrs);
  const uint32_t n = r.u32("tensor count");
  if (n > 1000000) r.fail(fmt::format("absurd tensor count {}", n));
  std::map<std::string, Tensor> tensors;
  for (uint32_t i = 0; i < n; ++i) {
    auto [name, t] = r.tensor();
    for (float v : t.span<float>()) {
      if (!std::isfinite(v)) r.fail(fmt::format("tensor '{}' holds NaN or infinite values", name));
    }
    if (!tensors.emplace(name, std::move(t)).second) {
      r.fail(fmt::format("tensor '{}' appears twice", name));
    }
  }
  if (r.remaining() != 0)
    r.fail(fmt::format("{} unexpected bytes after the last tensor", r.remaining()));
  // Check everything before changing anything, so a bad file leaves the model as it was.
  for (const auto& l : model.layers()) {
    for (const Param& p : l->params()) {
      const std::string key = param_key(*l, p);
      auto it = tensors.find(key);
      if (it == tensors.end()) r.fail(fmt::format("no weights for '{}'", key));
      if (it->second.shape() != p.value.shape()) {
        r.fail(fmt::format("'{}' has shape {} in the file but {} in model '{}'", key,
                           it->second.shape().str(), p.value.shape().str(), model.name()));
      }
    }
  }
  for (const auto& l : model.layers()) {
    for (Param& p : l->params()) {
      p.value.copy_from(tensors.at(param_key(*l, p)));
      p.value.bump_version();
    }
    if (!l->params().empty()) report.loaded.push_back(l->name());
  }
  if (restore_optimizer && model.compiled() && attrs.count("optimizer_iterations") &&
      attrs["optimizer"] == model.optimizer().class_name()) {
    const auto params = model.trainable_params();
    std::vector<std::vector<Optimizer::Slot>> slots(params.size());
    bool complete = true;
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string prefix = fmt::format("optimizer/{}/", i);
      for (auto it = tensors.lower_bound(prefix);
           it != tensors.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
        if (it->second.shape() != params[i]->value.shape()) complete = false;
        slots[i].push_back({it->first.substr(prefix.size() + 3), it->second});
      }
      if (slots[i].empty()) complete = false;
    }
    if (complete) {
      model.optimizer().slots() = std::move(slots);
      model.optimizer().set_iterations(std::stoll(attrs["optimizer_iterations"]));
      report.optimizer_restored = true;
    }
  }
  return attrs;
}

}  // namespace rnw_detail

}  // namespace resnet
