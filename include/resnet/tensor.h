// Tensor: a shaped, typed, reference-counted view of 64-byte aligned storage.
//
// Copies are shallow (they share storage), `clone()` is deep. The logical layout is row-major in
// the order of the shape (NHWC for images, HWIO for conv kernels). A tensor produced by the oneDNN
// backend may instead carry an opaque backend layout (a blocked format such as nChw8c); such a
// tensor is not "plain" and its elements are reached only after `ops::plain()` converts it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "resnet/shape.h"

namespace resnet {

enum class DType { F32, F64, U8, I32, I64 };

const char* dtype_name(DType t);
// Tensor memory stays mapped after it is freed and is reused by later tensors (so repeated
// training steps do not fault fresh pages in); this returns the mapped regions that hold no
// live tensor to the system.
void release_cached_memory();
size_t dtype_size(DType t);

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::F32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::F64;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::U8;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::I32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::I64;
}

namespace detail {
// Backend-specific description of a non-plain memory layout. Defined by the oneDNN backend only.
struct Layout;

// 64-byte aligned heap block, with a version counter that is bumped whenever its content is
// changed in place (an optimizer step), so backends can cache derived data such as reordered
// weights.
struct Storage {
  explicit Storage(size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* ptr = nullptr;
  size_t bytes = 0;
  uint64_t version = 0;
  uint64_t id = 0;  // unique per allocation, never reused
};
}  // namespace detail

class Tensor {
 public:
  Tensor() = default;
  // A zero-filled tensor.
  explicit Tensor(Shape shape, DType dtype = DType::F32);

  static Tensor zeros(Shape shape, DType dtype = DType::F32) {
    return Tensor(std::move(shape), dtype);
  }
  // Uninitialized storage: for outputs that an op overwrites completely.
  static Tensor empty(Shape shape, DType dtype = DType::F32);
  static Tensor full(Shape shape, float value);
  static Tensor from_vector(Shape shape, const std::vector<float>& values);
  // A non-plain tensor: logical `shape`, `bytes` of storage laid out as `layout` describes.
  static Tensor with_layout(Shape shape, DType dtype, std::shared_ptr<const detail::Layout> layout,
                            size_t bytes);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  int64_t numel() const { return shape_.numel(); }
  int64_t rank() const { return shape_.rank(); }
  // Bytes of storage (may exceed numel * dtype size for padded blocked layouts).
  size_t nbytes() const;

  bool is_plain() const { return layout_ == nullptr; }
  const std::shared_ptr<const detail::Layout>& layout() const { return layout_; }

  // Typed element access. Throws Error unless the dtype matches and the tensor is plain.
  template <class T>
  T* data();
  template <class T>
  const T* data() const;
  float* f32() { return data<float>(); }
  const float* f32() const { return data<float>(); }
  template <class T>
  std::span<T> span() {
    return {data<T>(), static_cast<size_t>(numel())};
  }
  template <class T>
  std::span<const T> span() const {
    return {data<T>(), static_cast<size_t>(numel())};
  }
  // Raw storage pointer regardless of layout (for backends).
  void* raw() const;

  // Deep copy (keeps the layout).
  Tensor clone() const;
  // Same storage, new shape with the same element count. Plain tensors only.
  Tensor reshape(Shape shape) const;
  // Copies the elements of `src` (same shape and dtype, both plain) into this tensor.
  void copy_from(const Tensor& src);
  void fill(float value);
  // A float copy (F32) of a plain tensor of any dtype.
  Tensor to_f32() const;
  std::vector<float> to_vector() const;

  // In-place change tracking: call after writing into the storage directly.
  void bump_version();
  uint64_t version() const;
  uint64_t storage_id() const;
  bool shares_storage(const Tensor& o) const { return storage_ == o.storage_; }

  // "Tensor(f32, (2, 3))".
  std::string str() const;

 private:
  std::shared_ptr<detail::Storage> storage_;
  Shape shape_;
  DType dtype_ = DType::F32;
  std::shared_ptr<const detail::Layout> layout_;
};

// Seeded random generator (xoshiro256**), identical on every platform: the only source of
// randomness in the library (initializers, dropout, shuffling, augmentation).
class Rng {
 public:
  explicit Rng(uint64_t seed = 0);
  uint64_t next_u64();
  uint32_t next_u32() { return static_cast<uint32_t>(next_u64() >> 32); }
  // Uniform in [0, 1).
  double uniform01();
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform01(); }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n);
  double normal(double mean = 0.0, double stddev = 1.0);
  // Normal redrawn until within two standard deviations (TensorFlow's truncated_normal).
  double truncated_normal(double mean, double stddev);
  // A new generator derived from this one's stream (for per-layer generators).
  Rng split();

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace resnet
