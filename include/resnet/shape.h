// Shape: the dimensions of a tensor, outermost first (NHWC for images).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace resnet {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  int64_t rank() const { return static_cast<int64_t>(dims_.size()); }
  // Dimension i; negative i counts from the end (-1 is the last). Throws ShapeError when out of
  // range.
  int64_t operator[](int64_t i) const;
  int64_t& operator[](int64_t i);
  // Product of all dimensions (1 for a scalar shape).
  int64_t numel() const;
  const std::vector<int64_t>& dims() const { return dims_; }

  // A new shape with `d` put in front: the batch dimension added to a per-sample shape.
  Shape prepend(int64_t d) const;
  // The shape without its first dimension.
  Shape drop_front() const;

  // "(2, 3, 4)"; a rank-1 shape prints "(5,)" as in Python.
  std::string str() const;
  // Keras style with a symbolic batch: "(None, 15, 15, 64)" for the per-sample shape (15, 15, 64).
  std::string keras_str() const;

  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }

 private:
  std::vector<int64_t> dims_;
};

}  // namespace resnet
