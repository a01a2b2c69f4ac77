// Dataset slicing and validation, preprocessing modes and one-hot labels.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "data/data_util.h"
#include "resnet/data.h"
#include "resnet/error.h"

namespace resnet {

namespace data_detail {

int64_t checked_numel(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return -1;
    if (d == 0) return 0;
    if (n > kMaxElements / d) return -1;
    n *= d;
  }
  return n;
}

void finish_dataset(Dataset& d) {
  int64_t classes = static_cast<int64_t>(d.class_names.size());
  if (d.y.defined() && d.y.dtype() == DType::I64) {
    for (int64_t label : d.y.span<int64_t>()) classes = std::max(classes, label + 1);
  }
  d.num_classes = std::max(d.num_classes, classes);
  if (!d.class_names.empty()) {
    for (auto i = static_cast<int64_t>(d.class_names.size()); i < d.num_classes; ++i) {
      d.class_names.push_back(std::to_string(i));
    }
  }
  d.validate();
}

}  // namespace data_detail

namespace {

// Copies the rows `indices` of `t` (first dimension) into a new tensor, in that order.
Tensor gather_rows(const Tensor& t, const std::vector<int64_t>& indices) {
  Shape shape = t.shape();
  const size_t row_bytes = static_cast<size_t>(shape.drop_front().numel()) * dtype_size(t.dtype());
  shape[0] = static_cast<int64_t>(indices.size());
  Tensor out = Tensor::empty(shape, t.dtype());
  const auto* src = static_cast<const uint8_t*>(t.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (size_t k = 0; k < indices.size(); ++k) {
    std::memcpy(dst + k * row_bytes, src + static_cast<size_t>(indices[k]) * row_bytes, row_bytes);
  }
  return out;
}

Dataset with_rows(const Dataset& d, const std::vector<int64_t>& indices) {
  Dataset out;
  if (d.x.defined()) out.x = gather_rows(d.x, indices);
  if (d.y.defined()) out.y = gather_rows(d.y, indices);
  out.class_names = d.class_names;
  out.num_classes = d.num_classes;
  out.source = d.source;
  return out;
}

}  // namespace

Dataset Dataset::slice(int64_t begin, int64_t end) const {
  const int64_t n = size();
  if (begin < 0 || end < begin || end > n) {
    throw ConfigError(fmt::format("dataset '{}': slice [{}, {}) is outside its {} samples", source,
                                  begin, end, n));
  }
  std::vector<int64_t> indices(static_cast<size_t>(end - begin));
  for (int64_t i = begin; i < end; ++i) indices[static_cast<size_t>(i - begin)] = i;
  return with_rows(*this, indices);
}

Dataset Dataset::take(const std::vector<int64_t>& indices) const {
  const int64_t n = size();
  for (int64_t i : indices) {
    if (i < 0 || i >= n) {
      throw ConfigError(
          fmt::format("dataset '{}': sample index {} is outside its {} samples", source, i, n));
    }
  }
  return with_rows(*this, indices);
}

std::pair<Dataset, Dataset> Dataset::split_last(double fraction) const {
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    throw ConfigError(fmt::format("validation split {} is not in [0, 1]", fraction));
  }
  const int64_t n = size();
  // Keras: split_at = int(n * (1 - v)), truncation toward zero.
  const auto split_at = static_cast<int64_t>(std::floor(static_cast<double>(n) * (1.0 - fraction)));
  return {slice(0, split_at), slice(split_at, n)};
}

void Dataset::validate() const {
  const std::string where = source.empty() ? std::string("dataset") : "'" + source + "'";
  if (!x.defined() || x.rank() != 4) {
    throw IoError(fmt::format("{}: images must be 4-D (N, H, W, C), got {}", where,
                              x.defined() ? x.shape().str() : std::string("none")));
  }
  if (x.dtype() != DType::U8 && x.dtype() != DType::F32) {
    throw IoError(
        fmt::format("{}: images must be uint8 or float32, got {}", where, dtype_name(x.dtype())));
  }
  if (!y.defined() || y.rank() != 1 || y.dtype() != DType::I64) {
    throw IoError(fmt::format("{}: labels must be (N,) int64, got {}", where,
                              y.defined() ? y.str() : std::string("none")));
  }
  if (y.shape()[0] != x.shape()[0]) {
    throw IoError(fmt::format("{}: {} images but {} labels", where, x.shape()[0], y.shape()[0]));
  }
  if (!class_names.empty() && static_cast<int64_t>(class_names.size()) != num_classes) {
    throw IoError(
        fmt::format("{}: {} class names for {} classes", where, class_names.size(), num_classes));
  }
  const int64_t* labels = y.data<int64_t>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes) {
      throw IoError(fmt::format("{}: label {} of sample {} is outside [0, {})", where, labels[i], i,
                                num_classes));
    }
  }
}

// --- Preprocess

Preprocess Preprocess::from_name(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  Preprocess p;
  if (lower == "none") {
    p.mode = Mode::None;
    p.scale = 1.0f;
  } else if (lower == "rescale") {
    p.mode = Mode::Rescale;
  } else if (lower == "caffe") {
    p.mode = Mode::Caffe;
    p.scale = 1.0f;
  } else if (lower == "tf") {
    p.mode = Mode::TF;
  } else if (lower == "torch") {
    p.mode = Mode::Torch;
  } else {
    throw ConfigError(fmt::format(
        "unknown preprocessing '{}' (expected none, rescale, caffe, tf or torch)", name));
  }
  return p;
}

void Preprocess::apply(Tensor& batch) const {
  if (mode == Mode::None) return;
  if (batch.dtype() != DType::F32 || batch.rank() < 1) {
    throw ConfigError("preprocessing needs a float32 (N, H, W, C) batch, got " + batch.str());
  }
  float* p = batch.f32();
  const int64_t n = batch.numel();
  const int64_t c = batch.shape()[-1];
  // Per-channel affine map x -> x * a[ch] + b[ch], filled per mode; Caffe also swaps R and B.
  std::vector<float> a(static_cast<size_t>(c), 1.0f), b(static_cast<size_t>(c), 0.0f);
  auto need_rgb = [&](const char* what) {
    if (c != 3) {
      throw ConfigError(fmt::format("preprocessing '{}' needs 3 channels (RGB), got {} in {}", what,
                                    c, batch.shape().str()));
    }
  };
  switch (mode) {
    case Mode::None:
      return;
    case Mode::Rescale:
      std::fill(a.begin(), a.end(), scale);
      break;
    case Mode::MeanStd:
      for (int64_t ch = 0; ch < c; ++ch) {
        auto pick = [&](const std::vector<float>& v, float dflt, const char* what) {
          if (v.empty()) return dflt;
          if (v.size() == 1) return v[0];
          if (static_cast<int64_t>(v.size()) != c) {
            throw ConfigError(fmt::format("preprocessing MeanStd: {} {} values for {} channels",
                                          v.size(), what, c));
          }
          return v[static_cast<size_t>(ch)];
        };
        const float m = pick(mean, 0.0f, "mean");
        const float s = pick(std, 1.0f, "std");
        if (s == 0.0f) throw ConfigError("preprocessing MeanStd: a std of 0");
        a[static_cast<size_t>(ch)] = scale / s;
        b[static_cast<size_t>(ch)] = -m / s;
      }
      break;
    case Mode::Caffe: {
      need_rgb("caffe");
      for (int64_t i = 0; i < n; i += 3) std::swap(p[i], p[i + 2]);
      const float bgr_mean[3] = {103.939f, 116.779f, 123.68f};
      for (int ch = 0; ch < 3; ++ch) b[static_cast<size_t>(ch)] = -bgr_mean[ch];
      break;
    }
    case Mode::TF:
      std::fill(a.begin(), a.end(), 1.0f / 127.5f);
      std::fill(b.begin(), b.end(), -1.0f);
      break;
    case Mode::Torch: {
      need_rgb("torch");
      const float m[3] = {0.485f, 0.456f, 0.406f};
      const float s[3] = {0.229f, 0.224f, 0.225f};
      for (int ch = 0; ch < 3; ++ch) {
        a[static_cast<size_t>(ch)] = 1.0f / (255.0f * s[ch]);
        b[static_cast<size_t>(ch)] = -m[ch] / s[ch];
      }
      break;
    }
  }
  for (int64_t i = 0; i < n; i += c) {
    for (int64_t ch = 0; ch < c; ++ch) {
      p[i + ch] = p[i + ch] * a[static_cast<size_t>(ch)] + b[static_cast<size_t>(ch)];
    }
  }
}

Tensor one_hot(const Tensor& labels, int64_t classes) {
  if (classes <= 0) throw ConfigError(fmt::format("one_hot: {} classes", classes));
  if (labels.rank() != 1 || labels.dtype() != DType::I64) {
    throw ConfigError("one_hot needs (N,) int64 labels, got " + labels.str());
  }
  const int64_t n = labels.numel();
  Tensor out(Shape{n, classes});
  const int64_t* l = labels.data<int64_t>();
  float* o = out.f32();
  for (int64_t i = 0; i < n; ++i) {
    if (l[i] < 0 || l[i] >= classes) {
      throw ConfigError(
          fmt::format("one_hot: label {} of sample {} is outside [0, {})", l[i], i, classes));
    }
    o[i * classes + l[i]] = 1.0f;
  }
  return out;
}

}  // namespace resnet
