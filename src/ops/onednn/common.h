// Internal plumbing of the oneDNN backend: the engine and stream, the mapping between resnet
// tensors and oneDNN memory descriptors, the one reorder helper, and the caches (primitives,
// reordered weights, layouts). Included only by files under src/ops/onednn/.
//
// Dimension order: oneDNN always names dimensions {N, C, spatial...}, whatever the memory format.
// A logical NHWC tensor (N, H, W, C) therefore has oneDNN dims {N, C, H, W} and, when plain,
// format_tag::nhwc; a 2-D (M, C) tensor is {M, C} with format_tag::nc; 1-D is format_tag::x.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>

#include "ops/ops.h"
#include "ops/profile.h"
#include "resnet/error.h"
#include "resnet/tensor.h"

namespace resnet::detail {
// The layout of a non-plain tensor: the oneDNN memory descriptor of its storage.
struct Layout {
  dnnl::memory::desc md;
};
}  // namespace resnet::detail

namespace resnet::ops::onednn {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

const dnnl::engine& engine();
// One stream per thread: a oneDNN CPU stream must not be used by two threads at once.
dnnl::stream& stream();

// Runs `p` on this thread's stream and waits, so that every buffer in `args` may be released
// right after the call. The primitive's scratchpad comes from this thread's buffer (every
// primitive is made with user_scratchpad()), so one primitive may run on several threads at once.
void execute(const dnnl::primitive& p, const std::unordered_map<int, memory>& args);

// The attributes every primitive is made with: scratchpad_mode::user. Under oneDNN's default
// (library-managed scratchpad) a primitive must not run on two threads at once; with a scratchpad
// passed per call (execute()) it may, which concurrent inference needs (docs/concurrency.md).
// A new object each call: dnnl::primitive_attr is a handle, and its copies share one object.
dnnl::primitive_attr user_scratchpad();

// ---------------------------------------------------------------------------------------------
// Descriptors.

// oneDNN dims of a logical shape: (N, H, W, C) -> {N, C, H, W}; ranks 1 and 2 unchanged.
memory::dims dnnl_dims(const Shape& s);
// The descriptor of a plain (logical, row-major) F32 tensor of shape `s`.
memory::desc plain_md(const Shape& s);
// The descriptor of `t` as it is stored: its Layout, or plain_md of its shape. Throws
// BackendError for non-F32 tensors.
memory::desc md_of(const Tensor& t);
inline memory::desc any_md(const memory::dims& dims) { return {dims, dt::f32, tag::any}; }
inline memory::desc tagged_md(const memory::dims& dims, tag t) { return {dims, dt::f32, t}; }

// Memory over the storage of `t`, read or written as `md` (which must describe t's bytes).
memory mem_over(const Tensor& t, const memory::desc& md);

// A new uninitialized tensor for an output of logical shape `shape` stored as `md`: plain when
// `md` is the logical layout, otherwise carrying a Layout.
Tensor make_output(const Shape& shape, const memory::desc& md);
// The shared Layout object for `md` (one per distinct descriptor).
std::shared_ptr<const detail::Layout> layout_of(const memory::desc& md);

// Temporaries of one op call (reordered inputs, outputs in a primitive's layout before they are
// reordered to a plain result). They come from a per-thread stack of buffers that persists across
// calls: fresh memory costs a page fault per 4 KiB on first touch, which on large activations
// costs as much as the kernel. Every public op runs inside a TempScope (see guarded()); buffers
// taken in a scope are reused once it ends.
class TempScope {
 public:
  TempScope();
  ~TempScope();
  TempScope(const TempScope&) = delete;
  TempScope& operator=(const TempScope&) = delete;

 private:
  size_t mark_;
};
// Memory with descriptor `md` valid until the innermost TempScope ends (or owned by the returned
// object when there is no scope).
memory temp_memory(const memory::desc& md);

// THE reorder helper: `t` as memory with descriptor `want`. When t is already stored that way
// this is a view of its storage; otherwise a reordered copy in temp_memory.
memory as_md(const Tensor& t, const memory::desc& want);
// Copies `src` into `dst` (different layouts of the same logical tensor) with a cached reorder.
void reorder(const memory& src, const memory& dst);

// Weights `w` (stored as `user_md`, e.g. hwio) as memory with descriptor `want`. The reordered
// copy is cached per (storage, want) and version: made once while the weights do not change
// (inference, evaluation). Weights found changed since their last use (training: every step)
// are reordered into temp_memory instead, so training keeps no resident copies; a second use at
// the same version caches again.
memory cached_weights(const Tensor& w, const memory::desc& user_md, const memory::desc& want);

// A plain output that a primitive may want in another layout: `mem()` is what the primitive
// writes; `commit()` reorders it into `out` when the layouts differ.
class PlainOutput {
 public:
  PlainOutput(Tensor& out, const memory::desc& user_md, const memory::desc& prim_md);
  const memory& mem() const { return prim_; }
  void commit();

 private:
  memory user_;
  memory prim_;
  bool reorder_ = false;
};

// ---------------------------------------------------------------------------------------------
// Cache keys: the op kind, its geometry and the canonical bytes of the descriptors involved.
class Key {
 public:
  explicit Key(const char* op) : s_(op) { s_.push_back('|'); }
  Key& operator<<(int64_t v);
  Key& operator<<(double v);
  Key& operator<<(const memory::desc& md);
  Key& operator<<(const Shape& s);
  const std::string& str() const { return s_; }

 private:
  std::string s_;
};

// Process-wide cache of immutable objects (primitive descriptors and primitives) by key and the
// calling thread's intra-op thread count (oneDNN fixes a primitive's thread count when it is
// made). `make()` runs only on a miss; in steady state lookups never create primitives.
std::shared_ptr<const void> cache_find(const std::string& key);
std::shared_ptr<const void> cache_insert(const std::string& key, std::shared_ptr<const void> v);

template <class T, class Make>
std::shared_ptr<const T> cached(const Key& key, Make&& make) {
  if (auto hit = cache_find(key.str())) return std::static_pointer_cast<const T>(hit);
  std::shared_ptr<const T> made = std::make_shared<const T>(make());
  return std::static_pointer_cast<const T>(cache_insert(key.str(), made));
}

// ---------------------------------------------------------------------------------------------
// Errors: runs `f`, turning dnnl::error into BackendError naming `op` and `context()` (the
// shapes; built only on failure).
[[noreturn]] void throw_backend_error(const char* op, const std::string& context,
                                      const std::string& what);

template <class F, class Ctx>
auto guarded(const char* op, Ctx&& context, F&& f) -> decltype(f()) {
  try {
    profile::Scope timed(op);
    TempScope temps;
    return f();
  } catch (const dnnl::error& e) {
    throw_backend_error(op, context(), e.what());
  }
}

// "(2, 3)" or "undefined", and "nChw16c"-like layout names, for error messages.
std::string describe(const Tensor& t);

// Throws ShapeError naming `op` unless `t` has shape `want`.
void expect_shape(const char* op, const char* what, const Tensor& t, const Shape& want);

}  // namespace resnet::ops::onednn
