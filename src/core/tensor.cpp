#include "resnet/tensor.h"

#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/allocator.h"
#include "resnet/error.h"

namespace resnet {

namespace {
std::atomic<uint64_t> next_storage_id{1};

void check_shape(const Shape& shape) {
  for (int64_t d : shape.dims()) {
    if (d < 0) throw ShapeError("tensor shape " + shape.str() + " has a negative dimension");
  }
}
}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "float32";
    case DType::F64:
      return "float64";
    case DType::U8:
      return "uint8";
    case DType::I32:
      return "int32";
    case DType::I64:
      return "int64";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F64:
      return 8;
    case DType::U8:
      return 1;
    case DType::I32:
      return 4;
    case DType::I64:
      return 8;
  }
  return 0;
}

void release_cached_memory() { detail::release_free_segments(); }

namespace detail {
Storage::Storage(size_t n) : bytes(n), id(next_storage_id.fetch_add(1)) { ptr = allocate_block(n); }
Storage::~Storage() { release_block(ptr, bytes); }
}  // namespace detail

Tensor::Tensor(Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  check_shape(shape_);
  storage_ = std::make_shared<detail::Storage>(numel() * dtype_size(dtype));
  std::memset(storage_->ptr, 0, storage_->bytes);
}

Tensor Tensor::empty(Shape shape, DType dtype) {
  check_shape(shape);
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<detail::Storage>(t.numel() * dtype_size(dtype));
  return t;
}

Tensor Tensor::full(Shape shape, float value) {
  Tensor t = empty(std::move(shape));
  t.fill(value);
  return t;
}

Tensor Tensor::from_vector(Shape shape, const std::vector<float>& values) {
  if (static_cast<int64_t>(values.size()) != shape.numel()) {
    throw ShapeError(
        fmt::format("{} values do not fill a tensor of shape {}", values.size(), shape.str()));
  }
  Tensor t = empty(std::move(shape));
  std::memcpy(t.raw(), values.data(), values.size() * sizeof(float));
  return t;
}

Tensor Tensor::with_layout(Shape shape, DType dtype, std::shared_ptr<const detail::Layout> layout,
                           size_t bytes) {
  check_shape(shape);
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.layout_ = std::move(layout);
  t.storage_ = std::make_shared<detail::Storage>(bytes);
  return t;
}

size_t Tensor::nbytes() const { return storage_ ? storage_->bytes : 0; }

void* Tensor::raw() const { return storage_ ? storage_->ptr : nullptr; }

template <class T>
T* Tensor::data() {
  return const_cast<T*>(static_cast<const Tensor*>(this)->data<T>());
}

template <class T>
const T* Tensor::data() const {
  if (!storage_) throw Error("access to the data of an undefined tensor");
  if (dtype_ != dtype_of<T>()) {
    throw Error(fmt::format("tensor {} accessed as {}", str(), dtype_name(dtype_of<T>())));
  }
  if (!is_plain()) {
    throw Error(
        fmt::format("tensor {} is in a backend layout; convert it with ops::plain()", str()));
  }
  return static_cast<const T*>(storage_->ptr);
}

template float* Tensor::data<float>();
template double* Tensor::data<double>();
template uint8_t* Tensor::data<uint8_t>();
template int32_t* Tensor::data<int32_t>();
template int64_t* Tensor::data<int64_t>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;
template const uint8_t* Tensor::data<uint8_t>() const;
template const int32_t* Tensor::data<int32_t>() const;
template const int64_t* Tensor::data<int64_t>() const;

Tensor Tensor::clone() const {
  if (!storage_) return {};
  Tensor t;
  t.shape_ = shape_;
  t.dtype_ = dtype_;
  t.layout_ = layout_;
  t.storage_ = std::make_shared<detail::Storage>(storage_->bytes);
  std::memcpy(t.storage_->ptr, storage_->ptr, storage_->bytes);
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  if (shape.numel() != numel()) {
    throw ShapeError(fmt::format("cannot reshape {} to {}: {} elements vs {}", shape_.str(),
                                 shape.str(), numel(), shape.numel()));
  }
  if (!is_plain()) throw Error("reshape of a tensor in a backend layout; call ops::plain() first");
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

void Tensor::copy_from(const Tensor& src) {
  if (src.shape_ != shape_ || src.dtype_ != dtype_) {
    throw ShapeError(fmt::format("copy of {} into {}", src.str(), str()));
  }
  if (!is_plain() || !src.is_plain()) throw Error("copy_from needs plain tensors");
  std::memcpy(raw(), src.raw(), numel() * dtype_size(dtype_));
  bump_version();
}

void Tensor::fill(float value) {
  switch (dtype_) {
    case DType::F32:
      for (float& v : span<float>()) v = value;
      break;
    case DType::F64:
      for (double& v : span<double>()) v = value;
      break;
    case DType::U8:
      for (uint8_t& v : span<uint8_t>()) v = static_cast<uint8_t>(value);
      break;
    case DType::I32:
      for (int32_t& v : span<int32_t>()) v = static_cast<int32_t>(value);
      break;
    case DType::I64:
      for (int64_t& v : span<int64_t>()) v = static_cast<int64_t>(value);
      break;
  }
  bump_version();
}

Tensor Tensor::to_f32() const {
  if (dtype_ == DType::F32) return *this;
  Tensor out = empty(shape_);
  float* o = out.f32();
  const int64_t n = numel();
  switch (dtype_) {
    case DType::F64:
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<float>(data<double>()[i]);
      break;
    case DType::U8:
      for (int64_t i = 0; i < n; ++i) o[i] = data<uint8_t>()[i];
      break;
    case DType::I32:
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<float>(data<int32_t>()[i]);
      break;
    case DType::I64:
      for (int64_t i = 0; i < n; ++i) o[i] = static_cast<float>(data<int64_t>()[i]);
      break;
    case DType::F32:
      break;
  }
  return out;
}

std::vector<float> Tensor::to_vector() const {
  Tensor t = to_f32();
  return std::vector<float>(t.f32(), t.f32() + t.numel());
}

void Tensor::bump_version() {
  if (storage_) ++storage_->version;
}
uint64_t Tensor::version() const { return storage_ ? storage_->version : 0; }
uint64_t Tensor::storage_id() const { return storage_ ? storage_->id : 0; }

std::string Tensor::str() const {
  if (!storage_) return "Tensor(undefined)";
  return fmt::format("Tensor({}, {}{})", dtype_name(dtype_), shape_.str(),
                     is_plain() ? "" : ", backend layout");
}

// ---------------------------------------------------------------------------------------------
// Rng: xoshiro256** seeded through splitmix64 (both public-domain algorithms by Vigna).

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : s_) s = splitmix64(x);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

uint64_t Rng::below(uint64_t n) {
  if (n == 0) throw ConfigError("Rng::below(0)");
  // Rejection sampling removes the modulo bias.
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t r;
  do r = next_u64();
  while (r >= limit);
  return r % n;
}

double Rng::normal(double mean, double stddev) {
  // Box-Muller; the second value of each pair is kept for the next call.
  if (has_spare_) {
    has_spare_ = false;
    return mean + stddev * spare_;
  }
  double u1;
  do u1 = uniform01();
  while (u1 <= 0.0);
  const double u2 = uniform01();
  const double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(2.0 * M_PI * u2);
  has_spare_ = true;
  return mean + stddev * r * std::cos(2.0 * M_PI * u2);
}

double Rng::truncated_normal(double mean, double stddev) {
  double z;
  do z = normal();
  while (std::abs(z) > 2.0);
  return mean + stddev * z;
}

Rng Rng::split() { return Rng(next_u64()); }

}  // namespace resnet
