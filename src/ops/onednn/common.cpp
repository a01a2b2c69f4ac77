#include "ops/onednn/common.h"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>

#include "core/allocator.h"
#include "ops/onednn/onednn.h"

namespace resnet::ops::onednn {

const dnnl::engine& engine() {
  static const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& stream() {
  thread_local dnnl::stream s(engine());
  return s;
}

namespace {

// This thread's scratchpad: grown to the largest any primitive asked for, kept for the thread.
struct Scratchpad {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~Scratchpad() { std::free(ptr); }
};

void* scratchpad_of_size(size_t bytes) {
  thread_local Scratchpad s;
  if (s.bytes < bytes) {
    std::free(s.ptr);
    s.bytes = 0;
    s.ptr = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (s.ptr == nullptr) throw BackendError("oneDNN backend: out of memory for a scratchpad");
    s.bytes = bytes;
  }
  return s.ptr;
}

}  // namespace

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

void execute(const dnnl::primitive& p, const std::unordered_map<int, memory>& args) {
  const dnnl_memory_desc_t* scratch =
      dnnl_primitive_desc_query_md(p.get_primitive_desc(), dnnl_query_scratchpad_md, 0);
  const size_t bytes = scratch != nullptr ? dnnl_memory_desc_get_size(scratch) : 0;
  if (bytes == 0) {
    p.execute(stream(), args);
  } else {
    std::unordered_map<int, memory> with = args;
    with.emplace(DNNL_ARG_SCRATCHPAD,
                 memory(memory::desc(*scratch), engine(), scratchpad_of_size(bytes)));
    p.execute(stream(), with);
  }
  stream().wait();
}

void set_num_threads(int n) { omp_set_num_threads(n > 0 ? n : omp_get_num_procs()); }

int num_threads() { return omp_get_max_threads(); }

namespace {
// The bits of oneDNN's ISA values (dnnl_cpu_isa_t is a bit set: avx2 = 0x7 includes sse41 and
// avx, avx512_core = 0x27 includes those).
unsigned effective_isa_bits() {
  static const unsigned bits = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  return bits;
}
bool has_bits(unsigned want) { return (effective_isa_bits() & want) == want; }
}  // namespace

bool isa_allowed(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar:
      return true;
    case CpuIsa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             has_bits(dnnl_cpu_isa_avx2);
    case CpuIsa::Avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") &&
             has_bits(dnnl_cpu_isa_avx512_core);
  }
  return false;
}

CpuIsa best_isa() {
  if (isa_allowed(CpuIsa::Avx512)) return CpuIsa::Avx512;
  if (isa_allowed(CpuIsa::Avx2)) return CpuIsa::Avx2;
  return CpuIsa::Scalar;
}

const char* isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Scalar:
      return "scalar";
    case CpuIsa::Avx2:
      return "avx2";
    case CpuIsa::Avx512:
      return "avx512";
  }
  return "?";
}

std::string onednn_isa_name() {
  switch (static_cast<dnnl_cpu_isa_t>(effective_isa_bits())) {
    case dnnl_cpu_isa_all:
      return "all";
    case dnnl_cpu_isa_sse41:
      return "sse41";
    case dnnl_cpu_isa_avx:
      return "avx";
    case dnnl_cpu_isa_avx2:
      return "avx2";
    case dnnl_cpu_isa_avx2_vnni:
      return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic:
      return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops:
      return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core:
      return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx:
      return "avx512_core_amx";
  }
  return fmt::format("0x{:x}", effective_isa_bits());
}

// ---------------------------------------------------------------------------------------------
// Descriptors.

memory::dims dnnl_dims(const Shape& s) {
  const auto& d = s.dims();
  if (d.empty()) return {1};
  if (d.size() <= 2) return memory::dims(d.begin(), d.end());
  // Channels last -> channels second: (N, S1, ..., Sk, C) -> {N, C, S1, ..., Sk}.
  memory::dims out;
  out.reserve(d.size());
  out.push_back(d.front());
  out.push_back(d.back());
  out.insert(out.end(), d.begin() + 1, d.end() - 1);
  return out;
}

memory::desc plain_md(const Shape& s) {
  switch (s.rank()) {
    case 0:
    case 1:
      return tagged_md(dnnl_dims(s), tag::x);
    case 2:
      return tagged_md(dnnl_dims(s), tag::nc);
    case 3:
      return tagged_md(dnnl_dims(s), tag::nwc);
    case 4:
      return tagged_md(dnnl_dims(s), tag::nhwc);
    case 5:
      return tagged_md(dnnl_dims(s), tag::ndhwc);
    default:
      // Only element-wise ops see higher ranks; for them the flat view is exact.
      return tagged_md({s.numel()}, tag::x);
  }
}

memory::desc md_of(const Tensor& t) {
  if (!t.defined()) throw BackendError("oneDNN backend: an input tensor is undefined");
  if (t.layout()) return t.layout()->md;
  if (t.dtype() != DType::F32) {
    throw BackendError(fmt::format("oneDNN backend: expected an f32 tensor, got {}", t.str()));
  }
  return plain_md(t.shape());
}

memory mem_over(const Tensor& t, const memory::desc& md) { return memory(md, engine(), t.raw()); }

namespace {

// Process-wide caches. Entries are immutable once inserted; the mutex guards the maps only.
struct Caches {
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<const void>> prims;
  std::unordered_map<std::string, std::shared_ptr<const detail::Layout>> layouts;
  struct Weights {
    uint64_t version;
    memory mem;
    std::shared_ptr<void> storage;  // the arena block `mem` lives in (huge pages when granted)
  };
  std::unordered_map<std::string, Weights> weights;
  size_t weight_bytes = 0;
};

Caches& caches() {
  static Caches c;
  return c;
}

// Reordered weights of tensors that no longer exist stay cached until this bound is reached;
// then the whole cache is dropped (the live ones are re-made on their next use).
constexpr size_t kMaxCachedWeightBytes = size_t{1} << 30;

}  // namespace

namespace {
std::string with_threads(const std::string& key) {
  std::string k = key;
  const int threads = omp_get_max_threads();
  k.append("|threads=").append(std::to_string(threads));
  return k;
}
}  // namespace

std::shared_ptr<const void> cache_find(const std::string& key) {
  const std::string k = with_threads(key);
  Caches& c = caches();
  std::lock_guard lock(c.mu);
  auto it = c.prims.find(k);
  return it == c.prims.end() ? nullptr : it->second;
}

std::shared_ptr<const void> cache_insert(const std::string& key, std::shared_ptr<const void> v) {
  const std::string k = with_threads(key);
  Caches& c = caches();
  std::lock_guard lock(c.mu);
  // A concurrent miss may have inserted first: keep that one so all callers share one object.
  return c.prims.try_emplace(k, std::move(v)).first->second;
}

std::shared_ptr<const detail::Layout> layout_of(const memory::desc& md) {
  const std::string key = (Key("layout") << md).str();
  Caches& c = caches();
  std::lock_guard lock(c.mu);
  auto& slot = c.layouts[key];
  if (!slot) slot = std::make_shared<const detail::Layout>(detail::Layout{md});
  return slot;
}

Tensor make_output(const Shape& shape, const memory::desc& md) {
  if (md == plain_md(shape)) return Tensor::empty(shape);
  return Tensor::with_layout(shape, DType::F32, layout_of(md), md.get_size());
}

namespace {

struct TempBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~TempBuffer() { std::free(ptr); }
  TempBuffer() = default;
  TempBuffer(const TempBuffer&) = delete;
  TempBuffer& operator=(const TempBuffer&) = delete;
};

struct TempStack {
  std::vector<std::unique_ptr<TempBuffer>> buffers;
  size_t top = 0;  // buffers[0, top) are in use
  int scopes = 0;  // nesting depth of TempScope on this thread
  // Cached weight copies handed out in the outermost scope: held until it ends, so that another
  // thread dropping the cache meanwhile cannot free them under this thread's primitive.
  std::vector<std::shared_ptr<void>> held;
};

TempStack& temp_stack() {
  thread_local TempStack s;
  return s;
}

}  // namespace

TempScope::TempScope() : mark_(temp_stack().top) { ++temp_stack().scopes; }

TempScope::~TempScope() {
  TempStack& s = temp_stack();
  s.top = mark_;
  if (--s.scopes == 0) s.held.clear();
}

namespace {
// Keeps `storage` alive until the outermost TempScope of this thread ends (see TempStack::held).
void hold(const std::shared_ptr<void>& storage) {
  TempStack& s = temp_stack();
  if (s.scopes > 0) s.held.push_back(storage);
}
}  // namespace

memory temp_memory(const memory::desc& md) {
  TempStack& s = temp_stack();
  if (s.scopes == 0) return memory(md, engine());
  // 64-byte multiple: aligned_alloc's requirement, and oneDNN's preferred alignment.
  const size_t bytes = std::max<size_t>(64, (md.get_size() + 63) / 64 * 64);
  if (s.top == s.buffers.size()) s.buffers.push_back(std::make_unique<TempBuffer>());
  TempBuffer& b = *s.buffers[s.top++];
  if (b.bytes < bytes) {
    std::free(b.ptr);
    b.ptr = std::aligned_alloc(64, bytes);
    if (b.ptr == nullptr) {
      b.bytes = 0;
      throw BackendError("oneDNN backend: out of memory for a temporary buffer");
    }
    b.bytes = bytes;
  }
  return memory(md, engine(), b.ptr);
}

void reorder(const memory& src, const memory& dst) {
  profile::Scope timed("reorder");
  const memory::desc src_md = src.get_desc(), dst_md = dst.get_desc();
  struct Reorder {
    dnnl::reorder prim;
    bool serial;  // made with the default attributes: runs on one thread at a time
  };
  auto r = cached<Reorder>(Key("reorder") << src_md << dst_md, [&] {
    try {
      return Reorder{dnnl::reorder(src, dst, user_scratchpad()), false};
    } catch (const dnnl::error&) {
      // oneDNN 2.6's reorder into Winograd weight formats takes no attributes.
      return Reorder{dnnl::reorder(src, dst), true};
    }
  });
  if (r->serial) {
    static std::mutex serial_mu;
    std::lock_guard lock(serial_mu);
    execute(r->prim, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
  } else {
    execute(r->prim, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}});
  }
}

memory as_md(const Tensor& t, const memory::desc& want) {
  const memory::desc have = md_of(t);
  memory src = mem_over(t, have);
  if (have == want) return src;
  memory dst = temp_memory(want);
  reorder(src, dst);
  return dst;
}

memory cached_weights(const Tensor& w, const memory::desc& user_md, const memory::desc& want) {
  if (user_md == want) return mem_over(w, user_md);
  const std::string key =
      (Key("weights") << static_cast<int64_t>(w.storage_id()) << user_md << want).str();
  const uint64_t version = w.version();
  Caches& c = caches();
  bool cache_it = !TransientWeightsScope::active();
  if (cache_it) {
    std::lock_guard lock(c.mu);
    auto it = c.weights.find(key);
    if (it != c.weights.end()) {
      if (it->second.version == version && it->second.mem) {
        hold(it->second.storage);
        return it->second.mem;
      }
      if (it->second.version != version) {
        // The weights changed since their last use (training: every step). A cached copy would
        // be used once and cost resident memory (for ResNet-50, ~100 MB per weight layout), so
        // reorder into a temporary and leave a marker; a second use at the same version (the
        // weights stopped changing: evaluation, inference) caches again.
        c.weight_bytes -= it->second.mem ? it->second.mem.get_desc().get_size() : 0;
        it->second = Caches::Weights{version, memory()};
        cache_it = false;
      }
    }
  }
  if (!cache_it) {
    memory tmp = temp_memory(want);
    reorder(mem_over(w, user_md), tmp);
    return tmp;
  }
  // In the tensor arena rather than oneDNN's own allocation: inference at batch 1 streams every
  // weight once per image, and huge pages spare that stream most of its TLB misses.
  std::shared_ptr<void> storage = detail::shared_block(want.get_size());
  memory dst(want, engine(), storage.get());
  reorder(mem_over(w, user_md), dst);
  std::lock_guard lock(c.mu);
  auto it = c.weights.find(key);
  if (it != c.weights.end()) {
    c.weight_bytes -= it->second.mem ? it->second.mem.get_desc().get_size() : 0;
    c.weights.erase(it);
  }
  if (c.weight_bytes + want.get_size() > kMaxCachedWeightBytes) {
    c.weights.clear();
    c.weight_bytes = 0;
  }
  c.weights.emplace(key, Caches::Weights{version, dst, storage});
  c.weight_bytes += want.get_size();
  hold(storage);
  return dst;
}

PlainOutput::PlainOutput(Tensor& out, const memory::desc& user_md, const memory::desc& prim_md)
    : user_(mem_over(out, user_md)) {
  if (user_md == prim_md) {
    prim_ = user_;
  } else {
    prim_ = temp_memory(prim_md);
    reorder_ = true;
  }
}

void PlainOutput::commit() {
  if (reorder_) reorder(prim_, user_);
}

// ---------------------------------------------------------------------------------------------
// Keys.

Key& Key::operator<<(int64_t v) {
  s_.append(reinterpret_cast<const char*>(&v), sizeof v);
  return *this;
}

Key& Key::operator<<(double v) {
  s_.append(reinterpret_cast<const char*>(&v), sizeof v);
  return *this;
}

Key& Key::operator<<(const Shape& s) {
  *this << s.rank();
  for (int64_t d : s.dims()) *this << d;
  return *this;
}

Key& Key::operator<<(const memory::desc& md) {
  // Canonical fields only: the raw struct has unused union bytes and reserved space.
  const dnnl_memory_desc_t& d = md.data;
  const int nd = d.ndims;
  *this << int64_t{nd} << static_cast<int64_t>(d.data_type) << static_cast<int64_t>(d.format_kind)
        << d.offset0;
  for (int i = 0; i < nd; ++i) *this << d.dims[i] << d.padded_dims[i] << d.padded_offsets[i];
  if (d.format_kind == dnnl_blocked) {
    const dnnl_blocking_desc_t& b = d.format_desc.blocking;
    for (int i = 0; i < nd; ++i) *this << b.strides[i];
    *this << int64_t{b.inner_nblks};
    for (int i = 0; i < b.inner_nblks; ++i) *this << b.inner_blks[i] << b.inner_idxs[i];
  } else if (d.format_kind != dnnl_format_kind_any && d.format_kind != dnnl_format_kind_undef) {
    s_.append(reinterpret_cast<const char*>(&d.format_desc), sizeof d.format_desc);
  }
  *this << static_cast<int64_t>(d.extra.flags);
  return *this;
}

// ---------------------------------------------------------------------------------------------
// Errors.

namespace {

// A short format name such as "nChw16c" or "acdb" for a blocked descriptor.
std::string format_name(const memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.format_kind != dnnl_blocked) return "opaque";
  static const char kLetters4[] = "nchw";
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  std::vector<int> order(d.ndims);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int x, int y) { return b.strides[x] > b.strides[y]; });
  auto letter = [&](int i) { return d.ndims == 4 ? kLetters4[i] : static_cast<char>('a' + i); };
  std::string s;
  for (int i : order) {
    bool blocked = false;
    for (int k = 0; k < b.inner_nblks; ++k) blocked |= b.inner_idxs[k] == i;
    s.push_back(blocked ? static_cast<char>(letter(i) - 'a' + 'A') : letter(i));
  }
  for (int k = 0; k < b.inner_nblks; ++k) {
    s += std::to_string(b.inner_blks[k]);
    s.push_back(letter(static_cast<int>(b.inner_idxs[k])));
  }
  return s;
}

}  // namespace

std::string describe(const Tensor& t) {
  if (!t.defined()) return "undefined";
  if (!t.layout()) return t.shape().str();
  return fmt::format("{} {}", t.shape().str(), format_name(t.layout()->md));
}

void throw_backend_error(const char* op, const std::string& context, const std::string& what) {
  throw BackendError(fmt::format("oneDNN {} failed for {}: {}", op, context, what));
}

void expect_shape(const char* op, const char* what, const Tensor& t, const Shape& want) {
  if (!t.defined() || t.shape() != want) {
    throw ShapeError(fmt::format("oneDNN {}: {} has shape {}, expected {}", op, what,
                                 t.defined() ? t.shape().str() : "undefined", want.str()));
  }
}

// ---------------------------------------------------------------------------------------------
// Layout conversion.

Tensor to_plain(const Tensor& t) {
  if (!t.defined() || t.is_plain()) return t;
  if (t.dtype() != DType::F32) {
    throw BackendError(
        fmt::format("oneDNN to_plain: {} is a backend workspace, not data", t.str()));
  }
  return guarded(
      "to_plain", [&] { return describe(t); },
      [&] {
        Tensor out = Tensor::empty(t.shape());
        reorder(mem_over(t, t.layout()->md), mem_over(out, plain_md(t.shape())));
        return out;
      });
}

}  // namespace resnet::ops::onednn
