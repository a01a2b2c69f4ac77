#include "layers/batch_normalization.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "layers/config_json.h"
#include "layers/layer_util.h"

namespace resnet::layers {

BatchNormalization::BatchNormalization(BatchNormalizationOptions o)
    : Layer("BatchNormalization", o.name), o_(std::move(o)) {
  if (!(o_.epsilon > 0.0)) {
    throw ConfigError(fmt::format("{}: epsilon must be positive, got {}", where(), o_.epsilon));
  }
  if (!(o_.momentum >= 0.0 && o_.momentum <= 1.0)) {
    throw ConfigError(fmt::format("{}: momentum must be in [0, 1], got {}", where(), o_.momentum));
  }
  trainable_ = o_.trainable;
}

Shape BatchNormalization::infer(const std::vector<Shape>& inputs) const {
  const Shape& s = inputs[0];
  if (s.rank() < 1) {
    throw ShapeError(
        fmt::format("{}: expects an input with a channel axis, got {}", where(), s.keras_str()));
  }
  // Keras counts the batch axis: the last axis of a (None, H, W, C) input is 3 (or -1).
  if (o_.axis != -1 && o_.axis != s.rank()) {
    throw ConfigError(fmt::format(
        "{}: only the last (channel) axis is supported: axis -1 or {} for input {}, got {}",
        where(), s.rank(), s.keras_str(), o_.axis));
  }
  return s;
}

void BatchNormalization::build(const std::vector<Shape>& inputs) {
  const int64_t c = inputs[0][-1];
  batched_rank_ = inputs[0].rank() + 1;
  const Shape s{c};
  add_param("gamma", s, o_.scale ? o_.gamma_initializer : Initializer::ones(), c, c, o_.scale);
  add_param("beta", s, o_.center ? o_.beta_initializer : Initializer::zeros(), c, c, o_.center);
  add_param("moving_mean", s, o_.moving_mean_initializer, c, c, false);
  add_param("moving_variance", s, o_.moving_variance_initializer, c, c, false);
}

Tensor BatchNormalization::forward(const std::vector<Tensor>& inputs, Mode mode) {
  const Tensor& x = inputs[0];
  const int64_t c = param("gamma").value.numel();
  if (x.rank() < 2 || x.shape()[-1] != c) {
    throw ShapeError(
        fmt::format("{}: expects a batch (N, ..., {}), got {}", where(), c, x.shape().str()));
  }
  const Tensor& gamma = param("gamma").value;
  const Tensor& beta = param("beta").value;
  Param& moving_mean = param("moving_mean");
  Param& moving_var = param("moving_variance");

  const bool batch_stats = mode == Mode::Training && trainable_;
  Tensor y, mean, var;
  if (mode == Mode::Training) synced_ = false;
  if (batch_stats) {
    double m = static_cast<double>(x.numel() / c);
    if (sync_) {
      y = forward_synced(x, mean, var);
      m = sync_count_;
      synced_ = true;
    } else {
      y = ops::batchnorm_forward_training(x, gamma, beta, o_.epsilon, mean, var);
      mean = ops::plain(mean);
      var = ops::plain(var);
    }
    // Keras: moving -= (moving - batch) * (1 - momentum), with the unbiased batch variance.
    // A replayed forward (recomputation for backward) leaves them alone: they moved once.
    if (!replaying_) {
      const double bessel = m > 1 ? static_cast<double>(m) / static_cast<double>(m - 1) : 1.0;
      const float decay = static_cast<float>(1.0 - o_.momentum);
      if (!moving_mean.value.is_plain()) moving_mean.value = ops::plain(moving_mean.value).clone();
      if (!moving_var.value.is_plain()) moving_var.value = ops::plain(moving_var.value).clone();
      float* mm = moving_mean.value.f32();
      float* mv = moving_var.value.f32();
      const float* bm = mean.f32();
      const float* bv = var.f32();
      for (int64_t i = 0; i < c; ++i) {
        mm[i] -= (mm[i] - bm[i]) * decay;
        mv[i] -= (mv[i] - static_cast<float>(bv[i] * bessel)) * decay;
      }
      moving_mean.value.bump_version();
      moving_var.value.bump_version();
    }
  } else {
    mean = moving_mean.value;
    var = moving_var.value;
    y = ops::batchnorm_forward_inference(x, gamma, beta, mean, var, o_.epsilon);
  }
  if (mode == Mode::Training) {
    x_ = x;
    // The moving statistics are copied: an update of them must not change what backward uses.
    mean_ = batch_stats ? mean : mean.clone();
    var_ = batch_stats ? var : var.clone();
    stats_fixed_ = !batch_stats;
  }
  return y;
}

std::vector<Tensor> BatchNormalization::backward(const Tensor& dy,
                                                 const std::vector<bool>& need_dx) {
  require_saved(x_.defined(), where());
  if (synced_ && !stats_fixed_) return backward_synced(dy, need_dx);
  Tensor dx, dgamma, dbeta;
  ops::batchnorm_backward(dy, x_, param("gamma").value, mean_, var_, o_.epsilon, stats_fixed_, dx,
                          dgamma, dbeta);
  if (trainable_) {
    Param& gamma = param("gamma");
    Param& beta = param("beta");
    if (gamma.trainable) store_grad(gamma, dgamma);
    if (beta.trainable) store_grad(beta, dbeta);
  }
  std::vector<Tensor> out(1);
  if (needs_dx(need_dx, 0)) out[0] = dx;
  return out;
}

// SyncBN forward: per-channel mean and M2 of this process's samples (double precision), combined
// over every process by the BatchNormSync, then normalized with those global statistics.
Tensor BatchNormalization::forward_synced(const Tensor& x, Tensor& mean, Tensor& var) {
  const Tensor xp = ops::plain(x);
  const int64_t c = param("gamma").value.numel();
  const int64_t m = xp.numel() / c;
  const float* px = xp.f32();
  std::vector<double> mu(c, 0.0), m2(c, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < c; ++j) mu[j] += px[i * c + j];
  }
  for (int64_t j = 0; j < c; ++j) mu[j] /= static_cast<double>(std::max<int64_t>(m, 1));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      const double d = px[i * c + j] - mu[j];
      m2[j] += d * d;
    }
  }
  double count = static_cast<double>(m);
  sync_->combine_moments(count, mu, m2);
  if (!(count > 0)) throw ShapeError(fmt::format("{}: synchronized batch of no samples", where()));
  mean = Tensor::empty(Shape{c});
  var = Tensor::empty(Shape{c});
  for (int64_t j = 0; j < c; ++j) {
    mean.f32()[j] = static_cast<float>(mu[j]);
    var.f32()[j] = static_cast<float>(m2[j] / count);
  }
  sync_count_ = count;
  return ops::batchnorm_forward_inference(x, param("gamma").value, param("beta").value, mean, var,
                                          o_.epsilon);
}

// SyncBN backward: with xhat = (x - mean) * invstd over the global batch of N samples,
//   dx = gamma * invstd * (dy - sum(dy) / N - xhat * sum(dy * xhat) / N)
// where both sums run over every process; dgamma and dbeta keep this process's sums (the
// gradient reduction of the data-parallel step adds them up).
std::vector<Tensor> BatchNormalization::backward_synced(const Tensor& dy,
                                                        const std::vector<bool>& need_dx) {
  const Tensor xp = ops::plain(x_);
  const Tensor dyp = ops::plain(dy);
  const Tensor gamma_t = ops::plain(param("gamma").value);
  const int64_t c = gamma_t.numel();
  const int64_t m = xp.numel() / c;
  const float* px = xp.f32();
  const float* pdy = dyp.f32();
  const float* gm = gamma_t.f32();
  std::vector<double> invstd(c), sums(2 * c, 0.0);
  for (int64_t j = 0; j < c; ++j) invstd[j] = 1.0 / std::sqrt(double(var_.f32()[j]) + o_.epsilon);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < c; ++j) {
      const double g = pdy[i * c + j];
      sums[j] += g;
      sums[c + j] += g * (px[i * c + j] - mean_.f32()[j]) * invstd[j];
    }
  }
  Tensor dbeta = Tensor::empty(Shape{c});
  Tensor dgamma = Tensor::empty(Shape{c});
  for (int64_t j = 0; j < c; ++j) {
    dbeta.f32()[j] = static_cast<float>(sums[j]);
    dgamma.f32()[j] = static_cast<float>(sums[c + j]);
  }
  sync_->sum(sums);
  std::vector<Tensor> out(1);
  if (needs_dx(need_dx, 0)) {
    Tensor dx = Tensor::empty(xp.shape());
    float* pdx = dx.f32();
    const double n = sync_count_;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < c; ++j) {
        const double xhat = (px[i * c + j] - mean_.f32()[j]) * invstd[j];
        pdx[i * c + j] = static_cast<float>(
            gm[j] * invstd[j] * (pdy[i * c + j] - sums[j] / n - xhat * sums[c + j] / n));
      }
    }
    out[0] = dx;
  }
  if (trainable_) {
    Param& gamma = param("gamma");
    Param& beta = param("beta");
    if (gamma.trainable) store_grad(gamma, dgamma);
    if (beta.trainable) store_grad(beta, dbeta);
  }
  return out;
}

void BatchNormalization::clear_saved() {
  x_ = Tensor();
  mean_ = Tensor();
  var_ = Tensor();
}

}  // namespace resnet::layers

namespace resnet {

LayerRef<layers::BatchNormalization> BatchNormalization(BatchNormalizationOptions o) {
  return LayerRef<layers::BatchNormalization>(
      std::make_shared<layers::BatchNormalization>(std::move(o)));
}

}  // namespace resnet

namespace resnet::layers {

Config BatchNormalization::config() const {
  Config c = Layer::config();
  // Keras stores the normalized (non-negative) axis of the batched input: 3 for images.
  const int64_t axis = o_.axis < 0 && batched_rank_ > 0 ? batched_rank_ + o_.axis : o_.axis;
  c.set("axis", std::vector<int64_t>{axis})
      .set("momentum", o_.momentum)
      .set("epsilon", o_.epsilon)
      .set("center", o_.center)
      .set("scale", o_.scale)
      .set("beta_initializer", initializer_config(o_.beta_initializer))
      .set("gamma_initializer", initializer_config(o_.gamma_initializer))
      .set("moving_mean_initializer", initializer_config(o_.moving_mean_initializer))
      .set("moving_variance_initializer", initializer_config(o_.moving_variance_initializer));
  for (const char* key :
       {"beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"}) {
    c.set_null(key);
  }
  return c;
}

std::shared_ptr<Layer> BatchNormalization::from_config(const Config& c) {
  BatchNormalizationOptions o;
  if (c.has("axis")) {
    const std::vector<int64_t> axes = c.get_ints("axis");
    if (axes.size() != 1) throw ConfigError("normalization over several axes is not supported");
    o.axis = axes[0];
  }
  o.momentum = c.get_double("momentum", o.momentum);
  o.epsilon = c.get_double("epsilon", o.epsilon);
  o.center = c.get_bool("center", o.center);
  o.scale = c.get_bool("scale", o.scale);
  o.beta_initializer = config_initializer(c, "beta_initializer", o.beta_initializer);
  o.gamma_initializer = config_initializer(c, "gamma_initializer", o.gamma_initializer);
  o.moving_mean_initializer =
      config_initializer(c, "moving_mean_initializer", o.moving_mean_initializer);
  o.moving_variance_initializer =
      config_initializer(c, "moving_variance_initializer", o.moving_variance_initializer);
  o.name = config_name(c);
  o.trainable = config_trainable(c);
  return std::make_shared<BatchNormalization>(std::move(o));
}

double BatchNormalization::params_needed(const std::vector<Shape>& inputs) const {
  if (inputs.empty() || inputs[0].rank() == 0) return 0;
  return 4.0 * static_cast<double>(inputs[0][-1]);
}

}  // namespace resnet::layers
