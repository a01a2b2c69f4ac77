// Reading torch.save files: the two container formats, the storages, the tensors and where in the
// saved object the state_dict is (include/resnet/io.h).
#include "io/torch/torch_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "io/torch/pickle.h"
#include "io/zip/zip.h"
#include "resnet/error.h"

namespace resnet {

const TorchTensorEntry* TorchStateDict::find(const std::string& name) const {
  for (const TorchTensorEntry& e : tensors) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

namespace torch_detail {

namespace {
using K = PyObject::Kind;
constexpr int kMaxRank = 8;
constexpr int kMaxModuleDepth = 200;

// The 10 little-endian bytes of the legacy format's magic number 0x1950a86a20f9469cfc6c.
constexpr unsigned char kLegacyMagic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                            0x20, 0x6a, 0xa8, 0x50, 0x19};

struct StorageType {
  const char* global;
  const char* dtype;
  int size;
};
constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", "float32", 4}, {"torch.DoubleStorage", "float64", 8},
    {"torch.HalfStorage", "float16", 2},  {"torch.BFloat16Storage", "bfloat16", 2},
    {"torch.LongStorage", "int64", 8},    {"torch.IntStorage", "int32", 4},
    {"torch.ShortStorage", "int16", 2},   {"torch.CharStorage", "int8", 1},
    {"torch.ByteStorage", "uint8", 1},    {"torch.BoolStorage", "bool", 1},
    {"torch.UntypedStorage", "uint8", 1},
};

// A storage referenced by a persistent id: its key, element type and element count.
struct StorageRef {
  std::string key;
  const StorageType* type = nullptr;
  int64_t numel = 0;
  int64_t view_offset = 0;  // legacy storage views: elements into the root storage
};

// A tensor as the pickle describes it, before its data is read.
struct TensorRef {
  StorageRef storage;
  int64_t offset = 0;
  std::vector<int64_t> sizes, strides;
};

class Reader {
 public:
  Reader(std::string name, const TorchLoadOptions& options)
      : name_(std::move(name)), options_(options), pickle_(name_) {}

  TorchStateDict read_zip(zip_detail::ZipReader& zip);
  TorchStateDict read_legacy(const std::string& bytes);

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw IoError(fmt::format("{}: {}", name_, msg));
  }
  std::optional<StorageRef> storage_of(const PyObject* persistent);
  std::optional<TensorRef> tensor_of(const PyObject* o, const std::string& where);
  TorchStateDict collect(const PyObject* root);
  void flatten_module(const PyObject* module, const std::string& prefix, int depth,
                      std::vector<std::pair<std::string, TensorRef>>& out);
  bool holds_tensors(const PyObject* o, int depth = 0);
  TorchTensorEntry materialize(const std::string& key, const TensorRef& t);
  void note_placeholders(const PyObject* o);

  std::string name_;
  TorchLoadOptions options_;
  Unpickler pickle_;
  bool big_endian_ = false;
  // Storage bytes by key, read on first use (zip) or all at once (legacy).
  std::function<std::string(const StorageRef&)> fetch_;
  std::map<std::string, std::shared_ptr<const std::string>> storages_;
  std::vector<std::string> placeholders_;
};

std::string int_list(const std::vector<int64_t>& v) {
  return fmt::format("({})", fmt::join(v, ", "));
}

bool is_int(const PyObject* o) { return o != nullptr && o->kind == K::Int && !o->big_integer; }

std::optional<StorageRef> Reader::storage_of(const PyObject* p) {
  if (p == nullptr || p->kind != K::Persistent || p->items.empty()) return std::nullopt;
  const PyObject* id = p->items[0];
  // ('storage', storage_type, key, location, numel[, view_metadata])
  if (id->kind != K::Tuple || id->items.size() < 5 || id->items[0]->kind != K::Str ||
      id->items[0]->text != "storage") {
    fail(fmt::format("unknown persistent id ({}): not a tensor storage", describe(id)));
  }
  const PyObject* type = id->items[1];
  StorageRef s;
  for (const StorageType& t : kStorageTypes) {
    if (type->is_global(t.global)) s.type = &t;
  }
  if (s.type == nullptr) {
    fail(
        fmt::format("storage of unsupported type {} (float, double, half, bfloat16 and integer "
                    "storages are read)",
                    describe(type)));
  }
  if (id->items[2]->kind != K::Str || !is_int(id->items[4]) || id->items[4]->integer < 0) {
    fail("damaged storage id (key or size)");
  }
  s.key = id->items[2]->text;
  s.numel = id->items[4]->integer;
  if (id->items.size() >= 6 && id->items[5]->kind == K::Tuple) {
    // Legacy views: (view_key, offset, view_size) into the storage `key`.
    const PyObject* v = id->items[5];
    if (v->items.size() != 3 || !is_int(v->items[1]) || !is_int(v->items[2]) ||
        v->items[1]->integer < 0 || v->items[2]->integer < 0) {
      fail("damaged storage view");
    }
    s.view_offset = v->items[1]->integer;
    s.numel = v->items[2]->integer;
  }
  return s;
}

// The tensor an object rebuilds, if it is one; fails when it claims to be one but is damaged.
std::optional<TensorRef> Reader::tensor_of(const PyObject* o, const std::string& where) {
  if (o == nullptr || o->kind != K::Object || o->callable == nullptr) return std::nullopt;
  const PyObject* f = o->callable;
  if (f->is_global("torch._utils._rebuild_parameter") ||
      f->is_global("torch._utils._rebuild_parameter_with_state")) {
    if (o->items.empty()) fail(fmt::format("'{}': parameter without its data", where));
    return tensor_of(o->items[0], where);
  }
  if (f->is_global("torch._tensor._rebuild_from_type_v2")) {
    // (func, type, args, state): func(*args) is the tensor.
    if (o->items.size() < 3 || o->items[2]->kind != K::Tuple) {
      fail(fmt::format("'{}': damaged _rebuild_from_type_v2", where));
    }
    PyObject inner;
    inner.kind = K::Object;
    inner.callable = o->items[0];
    inner.items = o->items[2]->items;
    return tensor_of(&inner, where);
  }
  if (!f->is_global("torch._utils._rebuild_tensor_v2") &&
      !f->is_global("torch._utils._rebuild_tensor")) {
    return std::nullopt;
  }
  // (storage, storage_offset, size, stride, ...)
  if (o->items.size() < 4) fail(fmt::format("'{}': damaged tensor record", where));
  std::optional<StorageRef> s = storage_of(o->items[0]);
  if (!s) fail(fmt::format("'{}': tensor without a storage ({})", where, describe(o->items[0])));
  TensorRef t;
  t.storage = *s;
  if (!is_int(o->items[1]) || o->items[1]->integer < 0) {
    fail(fmt::format("'{}': damaged storage offset", where));
  }
  t.offset = o->items[1]->integer;
  const PyObject* size = o->items[2];
  const PyObject* stride = o->items[3];
  if (size->kind != K::Tuple || stride->kind != K::Tuple ||
      size->items.size() != stride->items.size() ||
      size->items.size() > static_cast<size_t>(kMaxRank)) {
    fail(fmt::format("'{}': damaged size or stride", where));
  }
  for (size_t i = 0; i < size->items.size(); ++i) {
    const PyObject* d = size->items[i];
    const PyObject* st = stride->items[i];
    if (!is_int(d) || !is_int(st) || d->integer < 0 || st->integer < 0) {
      fail(fmt::format("'{}': damaged size or stride", where));
    }
    t.sizes.push_back(d->integer);
    t.strides.push_back(st->integer);
  }
  return t;
}

bool Reader::holds_tensors(const PyObject* o, int depth) {
  if (o == nullptr || depth > 2) return false;
  if (o->kind == K::Dict) {
    for (const auto& [k, v] : o->entries) {
      if (tensor_of(v, k->kind == K::Str ? k->text : "?")) return true;
    }
    return false;
  }
  if (o->kind == K::Object && o->state != nullptr && o->state->kind == K::Dict) {
    return o->state->get("_parameters") != nullptr || o->state->get("_modules") != nullptr;
  }
  return false;
}

void Reader::note_placeholders(const PyObject* o) {
  // Only the top level and one level below: enough to say what was kept inert.
  auto note = [&](const PyObject* v) {
    if (v != nullptr && v->kind == K::Object && v->callable != nullptr &&
        v->callable->kind == K::Global && !tensor_of(v, "?")) {
      if (std::find(placeholders_.begin(), placeholders_.end(), v->callable->text) ==
          placeholders_.end()) {
        placeholders_.push_back(v->callable->text);
      }
    }
  };
  note(o);
  if (o != nullptr && o->kind == K::Dict) {
    for (const auto& [k, v] : o->entries) note(v);
  }
}

// nn.Module pickles: state {"_parameters": {...}, "_buffers": {...}, "_modules": {...}}.
void Reader::flatten_module(const PyObject* module, const std::string& prefix, int depth,
                            std::vector<std::pair<std::string, TensorRef>>& out) {
  if (depth > kMaxModuleDepth) fail("modules nested too deeply");
  if (module == nullptr || module->kind != K::Object || module->state == nullptr ||
      module->state->kind != K::Dict) {
    return;  // None (an absent submodule) or something that is not a module
  }
  const PyObject* state = module->state;
  std::vector<std::string> non_persistent;
  if (const PyObject* np = state->get("_non_persistent_buffers_set")) {
    const PyObject* set = np;
    if (set->kind == K::Object && !set->items.empty()) set = set->items[0];  // builtins.set(list)
    if (set->kind == K::List) {
      for (const PyObject* n : set->items) {
        if (n->kind == K::Str) non_persistent.push_back(n->text);
      }
    }
  }
  for (const char* group : {"_parameters", "_buffers"}) {
    const PyObject* d = state->get(group);
    if (d == nullptr || d->kind != K::Dict) continue;
    for (const auto& [k, v] : d->entries) {
      if (k->kind != K::Str || v->kind == K::None) continue;
      if (std::string(group) == "_buffers" &&
          std::find(non_persistent.begin(), non_persistent.end(), k->text) !=
              non_persistent.end()) {
        continue;
      }
      const std::string key = prefix + k->text;
      std::optional<TensorRef> t = tensor_of(v, key);
      if (!t) fail(fmt::format("'{}' is {}, not a tensor", key, describe(v)));
      out.emplace_back(key, *t);
    }
  }
  if (const PyObject* children = state->get("_modules"); children && children->kind == K::Dict) {
    for (const auto& [k, v] : children->entries) {
      if (k->kind == K::Str) flatten_module(v, prefix + k->text + ".", depth + 1, out);
    }
  }
}

TorchStateDict Reader::collect(const PyObject* root) {
  TorchStateDict sd;
  const PyObject* holder = root;
  if (!options_.key.empty()) {
    if (root->kind != K::Dict) {
      fail(fmt::format("the saved object is {}, not a dict with a '{}' entry", describe(root),
                       options_.key));
    }
    holder = root->get(options_.key);
    if (holder == nullptr) fail(fmt::format("the checkpoint has no entry '{}'", options_.key));
    sd.key = options_.key;
  } else {
    // A checkpoint dict's usual entries first (it may hold a lone tensor such as best_acc1 beside
    // them), then the saved object itself, then the only entry with tensors.
    holder = nullptr;
    if (root->kind == K::Dict) {
      for (const char* k :
           {"state_dict", "model_state_dict", "model", "net", "network", "module"}) {
        const PyObject* v = root->get(k);
        if (v != nullptr && holds_tensors(v)) {
          holder = v;
          sd.key = k;
          break;
        }
      }
    }
    if (holder == nullptr && holds_tensors(root)) holder = root;
    if (holder == nullptr && root->kind == K::Dict) {
      std::vector<std::string> with;
      for (const auto& [k, v] : root->entries) {
        if (k->kind == K::Str && holds_tensors(v)) {
          with.push_back(k->text);
          holder = v;
        }
      }
      if (with.size() > 1) {
        fail(
            fmt::format("the checkpoint holds several dicts of tensors ({}); choose one with "
                        "the key option (--torch-key)",
                        fmt::join(with, ", ")));
      }
      if (holder != nullptr) sd.key = with[0];
    }
    if (holder == nullptr) {
      if (root->kind == K::Dict) {
        std::vector<std::string> keys;
        for (const auto& [k, v] : root->entries) keys.push_back(describe(k));
        fail(fmt::format(
            "no state_dict found: the saved dict has no tensors (entries: {})",
            keys.empty() ? std::string("none") : fmt::format("{}", fmt::join(keys, ", "))));
      }
      fail(fmt::format("no state_dict found: the saved object is {}", describe(root)));
    }
  }
  // The tensors, in order.
  std::vector<std::pair<std::string, TensorRef>> refs;
  if (holder->kind == K::Dict) {
    for (const auto& [k, v] : holder->entries) {
      if (k->kind != K::Str) continue;
      if (std::optional<TensorRef> t = tensor_of(v, k->text)) {
        refs.emplace_back(k->text, *t);
      } else if (v->kind == K::Object && v->callable && v->callable->kind == K::Global &&
                 v->callable->text.rfind("torch.", 0) == 0) {
        fail(fmt::format("'{}' is {}: not a tensor this reader understands", k->text, describe(v)));
      }
    }
  } else if (holder->kind == K::Object) {
    flatten_module(holder, "", 0, refs);
  } else {
    fail(fmt::format("'{}' is {}, not a state_dict", sd.key, describe(holder)));
  }
  if (refs.empty()) fail("the state_dict holds no tensors");
  // DataParallel / torch.compile prefixes, when every key has them.
  for (const char* prefix : {"module.", "_orig_mod."}) {
    const std::string p = prefix;
    const bool all = std::all_of(refs.begin(), refs.end(), [&](const auto& r) {
      return r.first.size() > p.size() && r.first.compare(0, p.size(), p) == 0;
    });
    if (all) {
      for (auto& r : refs) r.first.erase(0, p.size());
      sd.stripped_prefix += p;
    }
  }
  for (const auto& [key, ref] : refs) {
    if (sd.find(key) != nullptr) fail(fmt::format("key '{}' appears twice", key));
    sd.tensors.push_back(materialize(key, ref));
  }
  // Numbers beside the state_dict.
  if (holder != root && root->kind == K::Dict) {
    for (const auto& [k, v] : root->entries) {
      if (k->kind != K::Str || v == holder) continue;
      if (is_int(v)) sd.scalars[k->text] = static_cast<double>(v->integer);
      if (v->kind == K::Float) sd.scalars[k->text] = v->real;
      if (v->kind == K::Bool) sd.scalars[k->text] = v->boolean ? 1 : 0;
      if (std::optional<TensorRef> t = tensor_of(v, k->text)) {
        int64_t n = 1;
        for (int64_t d : t->sizes) n *= d;
        if (n == 1) {
          TorchTensorEntry e = materialize(k->text, *t);
          sd.scalars[k->text] = e.value.to_f32().f32()[0];
        }
      }
    }
  }
  note_placeholders(root);
  sd.placeholders = placeholders_;
  return sd;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

TorchTensorEntry Reader::materialize(const std::string& key, const TensorRef& t) {
  const StorageType& type = *t.storage.type;
  int64_t numel = 1;
  int64_t last = t.offset;  // the largest element index used
  for (size_t i = 0; i < t.sizes.size(); ++i) {
    if (t.sizes[i] == 0) {
      numel = 0;
      break;
    }
    if (numel > (int64_t{1} << 40) / t.sizes[i]) fail(fmt::format("'{}': absurd size", key));
    numel *= t.sizes[i];
    if (t.strides[i] > (int64_t{1} << 40) / t.sizes[i])
      fail(fmt::format("'{}': absurd stride", key));
    last += (t.sizes[i] - 1) * t.strides[i];
  }
  // A view that repeats elements (stride 0) may hold more elements than its storage; a small one
  // is read, a huge one is refused before anything is allocated.
  if (numel > t.storage.numel && numel > (int64_t{1} << 20)) {
    fail(fmt::format("'{}': the tensor {} has {} elements, more than its storage of {}", key,
                     int_list(t.sizes), numel, t.storage.numel));
  }
  if (numel > 0 && last >= t.storage.numel) {
    fail(fmt::format("'{}': the tensor {} at offset {} reaches element {} of a storage of {}", key,
                     int_list(t.sizes), t.offset, last, t.storage.numel));
  }
  auto it = storages_.find(t.storage.key);
  if (it == storages_.end()) {
    it = storages_.emplace(t.storage.key, std::make_shared<const std::string>(fetch_(t.storage)))
             .first;
  }
  const std::string& bytes = *it->second;
  const uint64_t need = static_cast<uint64_t>(t.storage.view_offset + t.storage.numel) * type.size;
  if (bytes.size() < need) {
    fail(
        fmt::format("'{}': storage '{}' holds {} bytes, fewer than the {} its {} {} elements "
                    "need",
                    key, t.storage.key, bytes.size(), need, t.storage.numel, type.dtype));
  }
  const char* base = bytes.data() + static_cast<size_t>(t.storage.view_offset) * type.size;
  TorchTensorEntry e;
  e.name = key;
  e.dtype = type.dtype;
  const std::string dtype = type.dtype;
  DType out = DType::F32;
  if (dtype == "float64") out = DType::F64;
  if (dtype == "int64") out = DType::I64;
  if (dtype == "int32" || dtype == "int16" || dtype == "int8") out = DType::I32;
  if (dtype == "uint8" || dtype == "bool") out = DType::U8;
  e.value = Tensor::empty(Shape(t.sizes), out);
  auto* dst = static_cast<unsigned char*>(e.value.raw());
  const size_t out_size = dtype_size(out);
  const int rank = static_cast<int>(t.sizes.size());
  // Contiguous data of the same element type, in this machine's (little-endian) order: one copy.
  bool contiguous = true;
  int64_t expect = 1;
  for (int d = rank - 1; d >= 0; --d) {
    if (t.sizes[d] != 1 && t.strides[d] != expect) contiguous = false;
    expect *= t.sizes[d];
  }
  if (contiguous && !big_endian_ && static_cast<size_t>(type.size) == out_size &&
      dtype != "float16" && dtype != "bfloat16") {
    if (numel > 0) std::memcpy(dst, base + t.offset * type.size, numel * out_size);
    return e;
  }
  std::vector<int64_t> idx(rank, 0);
  unsigned char elem[8];
  for (int64_t n = 0; n < numel; ++n) {
    int64_t src = t.offset;
    for (int d = 0; d < rank; ++d) src += idx[d] * t.strides[d];
    std::memcpy(elem, base + src * type.size, type.size);
    if (big_endian_) std::reverse(elem, elem + type.size);
    unsigned char* o = dst + n * out_size;
    if (dtype == "float16" || dtype == "bfloat16") {
      uint16_t h;
      std::memcpy(&h, elem, 2);
      float f;
      if (dtype == "float16") {
        f = half_to_float(h);
      } else {
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&f, &bits, 4);
      }
      std::memcpy(o, &f, 4);
    } else if (dtype == "int16" || dtype == "int8") {
      int32_t v = 0;
      if (dtype == "int16") {
        int16_t s;
        std::memcpy(&s, elem, 2);
        v = s;
      } else {
        v = static_cast<int8_t>(elem[0]);
      }
      std::memcpy(o, &v, 4);
    } else {
      std::memcpy(o, elem, out_size);
    }
    for (int d = rank - 1; d >= 0; --d) {
      if (++idx[d] < t.sizes[d]) break;
      idx[d] = 0;
    }
  }
  return e;
}

TorchStateDict Reader::read_zip(zip_detail::ZipReader& zip) {
  std::string prefix;
  for (const zip_detail::ZipMember& m : zip.members()) {
    const size_t slash = m.name.find('/');
    if (slash != std::string::npos && m.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      prefix = m.name.substr(0, slash + 1);
      break;
    }
  }
  if (prefix.empty()) {
    for (const zip_detail::ZipMember& m : zip.members()) {
      if (m.name.find("constants.pkl") != std::string::npos ||
          m.name.find("/code/") != std::string::npos) {
        fail(
            "a TorchScript archive (torch.jit.save), not a torch.save file: save the "
            "state_dict with torch.save(model.state_dict(), path)");
      }
      if (m.name == "config.json" || m.name == "model.weights.h5") {
        fail("a Keras .keras archive, not a PyTorch file");
      }
    }
    fail("a zip archive without <name>/data.pkl: not a torch.save file");
  }
  if (const zip_detail::ZipMember* b = zip.find(prefix + "byteorder")) {
    const std::string order = zip.read(*b);
    if (order != "little" && order != "big") {
      fail(fmt::format("member '{}byteorder' says '{}'", prefix, order.substr(0, 20)));
    }
    big_endian_ = order == "big";
  }
  const std::string pkl = zip.read(prefix + "data.pkl");
  size_t pos = 0;
  const PyObject* root = pickle_.load(pkl, pos);
  fetch_ = [&zip, prefix](const StorageRef& s) { return zip.read(prefix + "data/" + s.key); };
  TorchStateDict sd = collect(root);
  sd.format = "zip";
  return sd;
}

TorchStateDict Reader::read_legacy(const std::string& bytes) {
  size_t pos = 0;
  const PyObject* magic = pickle_.load(bytes, pos);
  if (magic->kind != K::Int || !magic->big_integer || magic->text.size() != 10 ||
      std::memcmp(magic->text.data(), kLegacyMagic, 10) != 0) {
    fail("not a PyTorch file (no torch.save magic number)");
  }
  const PyObject* protocol = pickle_.load(bytes, pos);
  if (!is_int(protocol) || protocol->integer != 1001) {
    fail(fmt::format("unsupported legacy protocol ({})", describe(protocol)));
  }
  const PyObject* info = pickle_.load(bytes, pos);
  if (info->kind == K::Dict) {
    if (const PyObject* le = info->get("little_endian"); le && le->kind == K::Bool) {
      big_endian_ = !le->boolean;
    }
  }
  const PyObject* root = pickle_.load(bytes, pos);
  const PyObject* keys = pickle_.load(bytes, pos);
  if (keys->kind != K::List) fail("damaged legacy file: no list of storage keys");
  // The raw storages follow in the order of `keys`: an int64 element count, then the data. The
  // element size comes from the storage type the object pickle gave each key.
  std::map<std::string, int> elem_size;
  std::function<void(const PyObject*, int)> scan = [&](const PyObject* o, int depth) {
    if (o == nullptr || depth > 400) return;
    if (o->kind == K::Persistent) {
      if (std::optional<StorageRef> s = storage_of(o)) elem_size[s->key] = s->type->size;
      return;
    }
    for (const PyObject* i : o->items) scan(i, depth + 1);
    for (const auto& [k, v] : o->entries) scan(v, depth + 1);
    scan(o->state, depth + 1);
  };
  scan(root, 0);
  std::map<std::string, std::pair<size_t, size_t>> spans;  // key -> (offset, bytes)
  for (const PyObject* k : keys->items) {
    if (k->kind != K::Str) fail("damaged legacy file: a storage key is not a string");
    auto es = elem_size.find(k->text);
    if (es == elem_size.end()) {
      fail(fmt::format("damaged legacy file: storage '{}' is not used by any tensor", k->text));
    }
    if (bytes.size() - pos < 8) fail(fmt::format("truncated file (storage '{}')", k->text));
    unsigned char c[8];
    std::memcpy(c, bytes.data() + pos, 8);
    if (big_endian_) std::reverse(c, c + 8);
    int64_t count;
    std::memcpy(&count, c, 8);
    pos += 8;
    if (count < 0 || static_cast<uint64_t>(count) > (bytes.size() - pos) / es->second) {
      fail(fmt::format("truncated file (storage '{}' of {} elements)", k->text, count));
    }
    spans[k->text] = {pos, static_cast<size_t>(count) * es->second};
    pos += static_cast<size_t>(count) * es->second;
  }
  fetch_ = [this, &bytes, spans](const StorageRef& s) {
    auto it = spans.find(s.key);
    if (it == spans.end()) fail(fmt::format("storage '{}' is missing from the file", s.key));
    return bytes.substr(it->second.first, it->second.second);
  };
  TorchStateDict sd = collect(root);
  sd.format = "legacy";
  return sd;
}

TorchStateDict read_any(std::string bytes, const std::string& name,
                        std::unique_ptr<zip_detail::ZipReader> zip,
                        const TorchLoadOptions& options) {
  Reader r(name, options);
  if (zip) return r.read_zip(*zip);
  if (bytes.size() > 262 && bytes.compare(257, 5, "ustar") == 0) {
    throw IoError(fmt::format(
        "{}: a tar checkpoint of PyTorch before 0.4 is not supported: load it in that PyTorch and "
        "save the state_dict again with torch.save",
        name));
  }
  if (bytes.size() < 2 || static_cast<unsigned char>(bytes[0]) != 0x80) {
    throw IoError(fmt::format("{}: not a PyTorch file (neither a zip archive nor a pickle)", name));
  }
  return r.read_legacy(bytes);
}
}  // namespace

TorchStateDict read_torch_bytes(std::string bytes, const std::string& name,
                                const TorchLoadOptions& options) {
  if (zip_detail::looks_like_zip(bytes)) {
    auto zip = std::make_unique<zip_detail::ZipReader>(std::move(bytes), name);
    TorchStateDict sd = read_any({}, name, std::move(zip), options);
    sd.source = name;
    return sd;
  }
  TorchStateDict sd = read_any(std::move(bytes), name, nullptr, options);
  sd.source = name;
  return sd;
}

}  // namespace torch_detail

TorchStateDict load_torch_state_dict(const std::string& path, const TorchLoadOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw IoError(fmt::format("{}: is a folder, not a file", path));
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    const int err = errno;
    if (!std::filesystem::exists(path, ec)) throw IoError(fmt::format("{}: no such file", path));
    throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(err)));
  }
  char head[4] = {};
  f.read(head, 4);
  if (zip_detail::looks_like_zip(std::string_view(head, static_cast<size_t>(f.gcount())))) {
    f.close();
    auto zip = std::make_unique<zip_detail::ZipReader>(path);
    TorchStateDict sd = torch_detail::read_any({}, path, std::move(zip), options);
    sd.source = path;
    return sd;
  }
  f.clear();
  f.seekg(0);
  std::ostringstream ss;
  ss << f.rdbuf();
  TorchStateDict sd = torch_detail::read_any(ss.str(), path, nullptr, options);
  sd.source = path;
  return sd;
}

}  // namespace resnet
