// Parameter initializers with Keras's names and formulas (tf.keras.initializers).
#include <fmt/format.h>

#include <cmath>
#include <string>

#include "resnet/layers.h"

namespace resnet {

namespace {

// Keras divides the stddev of its truncated normals by the stddev of a unit normal truncated to
// [-2, 2], so the truncated draw ends with the intended variance.
constexpr double kTruncatedStddevCorrection = 0.87962566103423978;

Initializer make(Initializer::Kind kind, double a, double b, std::optional<uint64_t> seed) {
  Initializer init;
  init.kind = kind;
  init.a = a;
  init.b = b;
  init.seed = seed;
  return init;
}

template <class Draw>
void fill_with(Tensor& t, Draw draw) {
  float* p = t.f32();
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(draw());
}

}  // namespace

Initializer Initializer::glorot_uniform(std::optional<uint64_t> seed) {
  return make(Kind::GlorotUniform, 0, 0, seed);
}
Initializer Initializer::glorot_normal(std::optional<uint64_t> seed) {
  return make(Kind::GlorotNormal, 0, 0, seed);
}
Initializer Initializer::he_uniform(std::optional<uint64_t> seed) {
  return make(Kind::HeUniform, 0, 0, seed);
}
Initializer Initializer::he_normal(std::optional<uint64_t> seed) {
  return make(Kind::HeNormal, 0, 0, seed);
}
Initializer Initializer::random_uniform(double minval, double maxval,
                                        std::optional<uint64_t> seed) {
  return make(Kind::RandomUniform, minval, maxval, seed);
}
Initializer Initializer::random_normal(double mean, double stddev, std::optional<uint64_t> seed) {
  return make(Kind::RandomNormal, mean, stddev, seed);
}
Initializer Initializer::zeros() { return make(Kind::Zeros, 0, 0, {}); }
Initializer Initializer::ones() { return make(Kind::Ones, 0, 0, {}); }
Initializer Initializer::constant(double value) { return make(Kind::Constant, value, 0, {}); }

Initializer Initializer::from_name(std::string_view name) {
  // Both the Keras function names and the class names (as in a saved model_config).
  if (name == "glorot_uniform" || name == "GlorotUniform") return glorot_uniform();
  if (name == "glorot_normal" || name == "GlorotNormal") return glorot_normal();
  if (name == "he_uniform" || name == "HeUniform") return he_uniform();
  if (name == "he_normal" || name == "HeNormal") return he_normal();
  if (name == "random_uniform" || name == "RandomUniform") return random_uniform();
  if (name == "random_normal" || name == "RandomNormal") return random_normal();
  if (name == "zeros" || name == "Zeros") return zeros();
  if (name == "ones" || name == "Ones") return ones();
  if (name == "constant" || name == "Constant") return constant(0.0);
  throw ConfigError(fmt::format(
      "unknown initializer '{}' (expected glorot_uniform, glorot_normal, he_uniform, he_normal, "
      "random_uniform, random_normal, zeros, ones or constant)",
      name));
}

std::string Initializer::keras_class_name() const {
  switch (kind) {
    case Kind::GlorotUniform:
      return "GlorotUniform";
    case Kind::GlorotNormal:
      return "GlorotNormal";
    case Kind::HeUniform:
      return "HeUniform";
    case Kind::HeNormal:
      return "HeNormal";
    case Kind::RandomUniform:
      return "RandomUniform";
    case Kind::RandomNormal:
      return "RandomNormal";
    case Kind::Zeros:
      return "Zeros";
    case Kind::Ones:
      return "Ones";
    case Kind::Constant:
      return "Constant";
  }
  return "Unknown";
}

void Initializer::fill(Tensor& t, int64_t fan_in, int64_t fan_out) const {
  if (t.dtype() != DType::F32 || !t.is_plain()) {
    throw ConfigError(fmt::format("initializer {} needs a plain f32 tensor, got {}",
                                  keras_class_name(), t.str()));
  }
  switch (kind) {
    case Kind::Zeros:
      t.fill(0.0f);
      return;
    case Kind::Ones:
      t.fill(1.0f);
      return;
    case Kind::Constant:
      t.fill(static_cast<float>(a));
      return;
    default:
      break;
  }
  // Keras: fans of at least 1 (a zero-size dimension must not divide by zero).
  const double fi = static_cast<double>(std::max<int64_t>(fan_in, 1));
  const double fo = static_cast<double>(std::max<int64_t>(fan_out, 1));
  std::optional<Rng> own;
  if (seed) own.emplace(*seed);
  Rng& rng = own ? *own : global_rng();
  switch (kind) {
    case Kind::GlorotUniform: {
      const double limit = std::sqrt(6.0 / (fi + fo));
      fill_with(t, [&] { return rng.uniform(-limit, limit); });
      break;
    }
    case Kind::HeUniform: {
      const double limit = std::sqrt(6.0 / fi);
      fill_with(t, [&] { return rng.uniform(-limit, limit); });
      break;
    }
    case Kind::GlorotNormal: {
      const double stddev = std::sqrt(2.0 / (fi + fo)) / kTruncatedStddevCorrection;
      fill_with(t, [&] { return rng.truncated_normal(0.0, stddev); });
      break;
    }
    case Kind::HeNormal: {
      const double stddev = std::sqrt(2.0 / fi) / kTruncatedStddevCorrection;
      fill_with(t, [&] { return rng.truncated_normal(0.0, stddev); });
      break;
    }
    case Kind::RandomUniform:
      fill_with(t, [&] { return rng.uniform(a, b); });
      break;
    case Kind::RandomNormal:
      fill_with(t, [&] { return rng.normal(a, b); });
      break;
    default:
      break;
  }
  t.bump_version();
}

}  // namespace resnet
