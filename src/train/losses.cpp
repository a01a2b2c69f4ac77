// Losses with Keras semantics: the batch-mean loss and its gradient d(mean loss)/d(output).
//
// Shapes: output (N, C) (any rank >= 1 for binary cross-entropy and MSE: C = numel / N);
// targets (N,) or (N, 1) class indices (int64, int32 or integer-valued float32), or float32 of the
// output's shape (one-hot or soft labels). Class indices with C > 1 stand for one-hot rows; with
// C == 1 (binary cross-entropy, MSE) they are the target values themselves.
//
// Everything is computed in double precision; the gradient is float32 of the output's shape.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "ops/ops.h"
#include "resnet/error.h"
#include "resnet/optim.h"

namespace resnet {
namespace {

constexpr double kEpsilon = 1e-7;  // keras.backend.epsilon()

// The targets of a batch, either as class indices or as dense rows of C values.
struct Targets {
  bool sparse = false;
  std::vector<int64_t> labels;  // sparse: N labels in [0, C) (C == 1: the values)
  std::vector<double> dense;    // dense: N * C values
};

bool is_integer_dtype(DType t) { return t == DType::I64 || t == DType::I32 || t == DType::U8; }

// Reads `targets` against the output (N, C): class indices when C > 1 and the targets are (N,) or
// (N, 1), else dense values of the output's shape ((N,) also for C == 1). Throws ShapeError on a
// shape mismatch, ConfigError on a class index out of range (or, for binary cross-entropy, an
// integer target other than 0 and 1).
Targets read_targets(const char* what, const Shape& os, const Tensor& targets, int64_t n, int64_t c,
                     bool binary_labels) {
  if (!targets.defined()) throw ShapeError(fmt::format("{}: the targets are undefined", what));
  const Tensor tp = ops::plain(targets);
  const Shape& ts = tp.shape();
  const bool label_shape =
      ts.rank() >= 1 && ts[0] == n && (ts.rank() == 1 || (ts.rank() == 2 && ts[1] == 1));
  Targets t;
  if (label_shape && c > 1) {
    t.sparse = true;
    t.labels.resize(static_cast<size_t>(n));
    const Tensor f32 = tp.dtype() == DType::I64 ? Tensor() : tp.to_f32();
    for (int64_t i = 0; i < n; ++i) {
      const double v = f32.defined() ? static_cast<double>(f32.f32()[i])
                                     : static_cast<double>(tp.data<int64_t>()[i]);
      if (!(std::floor(v) == v && v >= 0 && v < static_cast<double>(c))) {
        throw ConfigError(fmt::format("{}: label #{} is {}, outside [0, {}) for output {}", what, i,
                                      v, c, os.str()));
      }
      t.labels[static_cast<size_t>(i)] = static_cast<int64_t>(v);
    }
    return t;
  }
  if (!(ts == os || (c == 1 && label_shape))) {
    throw ShapeError(
        fmt::format("{}: output {} and targets {} do not match", what, os.str(), ts.str()));
  }
  const Tensor f32 = tp.dtype() == DType::F32 ? tp : tp.to_f32();
  t.dense.assign(f32.f32(), f32.f32() + f32.numel());
  if (binary_labels && is_integer_dtype(tp.dtype())) {
    for (size_t i = 0; i < t.dense.size(); ++i) {
      if (t.dense[i] != 0.0 && t.dense[i] != 1.0) {
        throw ConfigError(
            fmt::format("{}: target #{} is {}, expected 0 or 1", what, i, t.dense[i]));
      }
    }
  }
  return t;
}

// Target value y[i][j] (one-hot for class indices).
inline double target_at(const Targets& t, int64_t i, int64_t j, int64_t c) {
  if (t.sparse) return t.labels[static_cast<size_t>(i)] == j ? 1.0 : 0.0;
  return t.dense[static_cast<size_t>(i * c + j)];
}

// Categorical cross-entropy, per row i with y the target row:
// from probabilities (Keras): p = o / sum(o); q = clip(p, eps, 1 - eps); L = -sum_j y_j log q_j.
//   dL/dp_j = a_j = -y_j / p_j where eps <= p_j <= 1 - eps, else 0 (the clip stops it);
//   dL/do_k = (a_k - sum_j a_j p_j) / sum(o).
// from logits: L = sum_j y_j * lse - sum_j y_j z_j with lse = log sum exp z (shifted by max z);
//   dL/dz_k = softmax_k * sum(y) - y_k.
// The batch loss is the mean of L over the rows, so the gradient is divided by N.
double categorical(const float* o, const Targets& t, int64_t n, int64_t c, bool from_logits,
                   float* grad) {
  double total = 0.0;
  std::vector<double> row(static_cast<size_t>(c)), a(static_cast<size_t>(c));
  const double inv_n = 1.0 / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) {
    const float* oi = o + i * c;
    float* gi = grad + i * c;
    double sum_y = 0.0;
    if (from_logits) {
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < c; ++j) mx = std::max(mx, static_cast<double>(oi[j]));
      double se = 0.0;
      for (int64_t j = 0; j < c; ++j) {
        row[j] = std::exp(static_cast<double>(oi[j]) - mx);
        se += row[j];
      }
      const double lse = mx + std::log(se);
      double loss = 0.0;
      for (int64_t j = 0; j < c; ++j) {
        const double y = target_at(t, i, j, c);
        if (y != 0.0) loss -= y * (static_cast<double>(oi[j]) - lse);
        sum_y += y;
      }
      total += loss;
      for (int64_t j = 0; j < c; ++j) {
        gi[j] = static_cast<float>((row[j] / se * sum_y - target_at(t, i, j, c)) * inv_n);
      }
    } else {
      double s = 0.0;
      for (int64_t j = 0; j < c; ++j) s += oi[j];
      double loss = 0.0, ap = 0.0;
      for (int64_t j = 0; j < c; ++j) {
        const double p = oi[j] / s;
        const double q = std::clamp(p, kEpsilon, 1.0 - kEpsilon);
        const double y = target_at(t, i, j, c);
        if (y != 0.0) loss -= y * std::log(q);
        a[j] = (p >= kEpsilon && p <= 1.0 - kEpsilon) ? -y / p : 0.0;
        row[j] = p;
        ap += a[j] * p;
      }
      total += loss;
      for (int64_t j = 0; j < c; ++j) gi[j] = static_cast<float>((a[j] - ap) / s * inv_n);
    }
  }
  return total * inv_n;
}

// Binary cross-entropy, elementwise, mean over all N * C elements:
// from probabilities (Keras backend.binary_crossentropy):
//   q = clip(o, eps, 1 - eps); L = -(y log(q + eps) + (1 - y) log(1 - q + eps))
//   dL/do = -(y / (q + eps) - (1 - y) / (1 - q + eps)) where eps <= o <= 1 - eps, else 0.
// from logits (sigmoid_cross_entropy_with_logits): L = max(z, 0) - z y + log(1 + exp(-|z|));
//   dL/dz = sigmoid(z) - y.
double binary(const float* o, const Targets& t, int64_t n, int64_t c, bool from_logits,
              float* grad) {
  const int64_t count = n * c;
  const double inv = 1.0 / static_cast<double>(count);
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      const int64_t k = i * c + j;
      const double z = o[k];
      const double y = target_at(t, i, j, c);
      if (from_logits) {
        total += std::max(z, 0.0) - z * y + std::log1p(std::exp(-std::abs(z)));
        const double sig = z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
        grad[k] = static_cast<float>((sig - y) * inv);
      } else {
        const double q = std::clamp(z, kEpsilon, 1.0 - kEpsilon);
        total -= y * std::log(q + kEpsilon) + (1.0 - y) * std::log(1.0 - q + kEpsilon);
        const bool inside = z >= kEpsilon && z <= 1.0 - kEpsilon;
        const double d = inside ? -(y / (q + kEpsilon) - (1.0 - y) / (1.0 - q + kEpsilon)) : 0.0;
        grad[k] = static_cast<float>(d * inv);
      }
    }
  }
  return total * inv;
}

// Mean squared error over all N * C elements: L = mean (o - y)^2; dL/do = 2 (o - y) / (N C).
double mean_squared(const float* o, const Targets& t, int64_t n, int64_t c, float* grad) {
  const int64_t count = n * c;
  const double inv = 1.0 / static_cast<double>(count);
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      const int64_t k = i * c + j;
      const double d = static_cast<double>(o[k]) - target_at(t, i, j, c);
      total += d * d;
      grad[k] = static_cast<float>(2.0 * d * inv);
    }
  }
  return total * inv;
}

}  // namespace

LossKind loss_from_name(const std::string& name) {
  std::string key;
  for (char ch : name) {
    if (ch != '_') key += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  if (key == "categoricalcrossentropy") return LossKind::CategoricalCrossentropy;
  if (key == "sparsecategoricalcrossentropy") return LossKind::SparseCategoricalCrossentropy;
  if (key == "binarycrossentropy") return LossKind::BinaryCrossentropy;
  if (key == "meansquarederror" || key == "mse") return LossKind::MeanSquaredError;
  throw ConfigError(fmt::format(
      "unknown loss '{}' (expected categorical_crossentropy, sparse_categorical_crossentropy, "
      "binary_crossentropy or mean_squared_error)",
      name));
}

const char* loss_name(LossKind k) {
  switch (k) {
    case LossKind::CategoricalCrossentropy:
      return "categorical_crossentropy";
    case LossKind::SparseCategoricalCrossentropy:
      return "sparse_categorical_crossentropy";
    case LossKind::BinaryCrossentropy:
      return "binary_crossentropy";
    case LossKind::MeanSquaredError:
      return "mean_squared_error";
  }
  return "unknown";
}

LossValue compute_loss(LossKind kind, const Tensor& output_in, const Tensor& targets,
                       bool from_logits) {
  const char* what = loss_name(kind);
  if (!output_in.defined()) throw ShapeError(fmt::format("{}: the output is undefined", what));
  Tensor output = ops::plain(output_in);
  if (output.dtype() != DType::F32) output = output.to_f32();
  const Shape& os = output.shape();
  const bool categorical_kind =
      kind == LossKind::CategoricalCrossentropy || kind == LossKind::SparseCategoricalCrossentropy;
  if (os.rank() < 1 || os[0] <= 0 || (categorical_kind && os.rank() != 2) || os.numel() == 0) {
    throw ShapeError(fmt::format("{}: output {} must be {} with N > 0", what, os.str(),
                                 categorical_kind ? "(N, C)" : "(N, ...)"));
  }
  const int64_t n = os[0];
  const int64_t c = os.numel() / n;
  const Targets t = read_targets(what, os, targets, n, c, kind == LossKind::BinaryCrossentropy);

  LossValue lv;
  lv.grad = Tensor::empty(os);
  const float* o = output.f32();
  float* g = lv.grad.f32();
  switch (kind) {
    case LossKind::CategoricalCrossentropy:
    case LossKind::SparseCategoricalCrossentropy:
      lv.loss = categorical(o, t, n, c, from_logits, g);
      break;
    case LossKind::BinaryCrossentropy:
      lv.loss = binary(o, t, n, c, from_logits, g);
      break;
    case LossKind::MeanSquaredError:
      lv.loss = mean_squared(o, t, n, c, g);
      break;
  }
  return lv;
}

}  // namespace resnet
