#include "resnet/shape.h"

#include <fmt/format.h>

#include "resnet/error.h"

namespace resnet {

namespace {
int64_t normalize_axis(int64_t i, int64_t rank, const std::string& shape) {
  int64_t j = i < 0 ? i + rank : i;
  if (j < 0 || j >= rank) {
    throw ShapeError(fmt::format("axis {} is out of range for shape {}", i, shape));
  }
  return j;
}
}  // namespace

int64_t Shape::operator[](int64_t i) const { return dims_[normalize_axis(i, rank(), str())]; }
int64_t& Shape::operator[](int64_t i) { return dims_[normalize_axis(i, rank(), str())]; }

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

Shape Shape::prepend(int64_t d) const {
  std::vector<int64_t> v;
  v.reserve(dims_.size() + 1);
  v.push_back(d);
  v.insert(v.end(), dims_.begin(), dims_.end());
  return Shape(std::move(v));
}

Shape Shape::drop_front() const {
  if (dims_.empty()) throw ShapeError("cannot drop the first dimension of a scalar shape ()");
  return Shape(std::vector<int64_t>(dims_.begin() + 1, dims_.end()));
}

std::string Shape::str() const {
  if (dims_.size() == 1) return fmt::format("({},)", dims_[0]);
  return fmt::format("({})", fmt::join(dims_, ", "));
}

std::string Shape::keras_str() const {
  if (dims_.empty()) return "(None,)";
  return fmt::format("(None, {})", fmt::join(dims_, ", "));
}

}  // namespace resnet
