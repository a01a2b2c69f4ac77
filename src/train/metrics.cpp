// Accuracy metrics, summed over a batch (Keras semantics).
//
// output (N, C) (any rank: C = numel / N); targets (N,) or (N, 1) class indices (any dtype) or
// float32 of the output's shape (the class is the argmax of the row).
//   C > 1:  correct when argmax(output row) == class (ties: the first maximum, as tf.argmax)
//   C == 1: binary accuracy, correct when (output > 0.5) == target
//   top-k:  correct when fewer than k classes score strictly higher than the target class
//           (tf.math.in_top_k: ties at the boundary count as inside)
#include <fmt/format.h>

#include <cmath>

#include "ops/ops.h"
#include "resnet/error.h"
#include "resnet/optim.h"

namespace resnet {
namespace {

struct Batch {
  Tensor output;  // plain F32
  int64_t n = 0;
  int64_t c = 0;
  Tensor targets;  // plain F32 of the output's shape, or plain (N,) / (N, 1) of any dtype
  bool sparse = false;
};

Batch read_batch(const char* what, const Tensor& output, const Tensor& targets) {
  if (!output.defined() || !targets.defined()) {
    throw ShapeError(fmt::format("{}: undefined output or targets", what));
  }
  Batch b;
  b.output = ops::plain(output);
  if (b.output.dtype() != DType::F32) b.output = b.output.to_f32();
  const Shape& os = b.output.shape();
  if (os.rank() < 1 || os[0] == 0) {
    b.n = os.rank() < 1 ? 0 : os[0];
    b.c = 0;
  } else {
    b.n = os[0];
    b.c = os.numel() / b.n;
  }
  b.targets = ops::plain(targets);
  const Shape& ts = b.targets.shape();
  const bool label_shape = os.rank() >= 1 && ts.rank() >= 1 && ts[0] == b.n &&
                           (ts.rank() == 1 || (ts.rank() == 2 && ts[1] == 1));
  if (label_shape && b.c > 1) {
    b.sparse = true;
  } else if (!(ts == os || (b.c == 1 && label_shape))) {
    throw ShapeError(
        fmt::format("{}: output {} and targets {} do not match", what, os.str(), ts.str()));
  }
  if (b.targets.dtype() != DType::I64 && b.targets.dtype() != DType::F32) {
    b.targets = b.targets.to_f32();
  }
  return b;
}

double target_value(const Tensor& t, int64_t i) {
  return t.dtype() == DType::I64 ? static_cast<double>(t.data<int64_t>()[i])
                                 : static_cast<double>(t.f32()[i]);
}

int64_t argmax(const float* row, int64_t c) {
  int64_t best = 0;
  for (int64_t j = 1; j < c; ++j) {
    if (row[j] > row[best]) best = j;
  }
  return best;
}

// The class of row i of the targets (-1 when it is not a valid class index).
int64_t target_class(const Batch& b, int64_t i) {
  if (!b.sparse) return argmax(b.targets.f32() + i * b.c, b.c);
  const double v = target_value(b.targets, i);
  if (std::floor(v) != v || v < 0 || v >= static_cast<double>(b.c)) return -1;
  return static_cast<int64_t>(v);
}

}  // namespace

double count_correct(const Tensor& output, const Tensor& targets) {
  const Batch b = read_batch("accuracy", output, targets);
  const float* o = b.output.f32();
  double correct = 0.0;
  if (b.c == 1) {
    // Keras binary_accuracy: cast(y_pred > 0.5) == y_true.
    for (int64_t i = 0; i < b.n; ++i) {
      const double pred = o[i] > 0.5f ? 1.0 : 0.0;
      if (pred == target_value(b.targets, i)) correct += 1.0;
    }
    return correct;
  }
  for (int64_t i = 0; i < b.n; ++i) {
    if (argmax(o + i * b.c, b.c) == target_class(b, i)) correct += 1.0;
  }
  return correct;
}

double sum_absolute_error(const Tensor& output, const Tensor& targets) {
  Tensor o = ops::plain(output);
  if (o.dtype() != DType::F32) o = o.to_f32();
  Tensor t = ops::plain(targets);
  if (t.dtype() != DType::F32) t = t.to_f32();
  const int64_t n = o.shape().rank() < 1 ? 0 : o.shape()[0];
  if (t.numel() != o.numel() || n == 0) {
    if (n == 0 && t.numel() == 0) return 0;
    throw ShapeError(fmt::format("mae: output {} and targets {} do not match", o.shape().str(),
                                 t.shape().str()));
  }
  const int64_t per = o.numel() / n;
  double sum = 0;
  for (int64_t i = 0; i < o.numel(); ++i) sum += std::abs(o.f32()[i] - t.f32()[i]);
  return sum / static_cast<double>(per);
}

double count_top_k(const Tensor& output, const Tensor& targets, int k) {
  if (k <= 0) throw ConfigError(fmt::format("top_k_accuracy: k must be > 0, got {}", k));
  const Batch b = read_batch("top_k_accuracy", output, targets);
  const float* o = b.output.f32();
  double correct = 0.0;
  for (int64_t i = 0; i < b.n; ++i) {
    const int64_t label = target_class(b, i);
    if (label < 0) continue;
    const float* row = o + i * b.c;
    const float v = row[label];
    if (!std::isfinite(v)) continue;
    int64_t higher = 0;
    for (int64_t j = 0; j < b.c; ++j) higher += row[j] > v ? 1 : 0;
    if (higher < k) correct += 1.0;
  }
  return correct;
}

}  // namespace resnet
