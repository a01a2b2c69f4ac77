// Learning-rate schedules (Keras semantics). `step` is the optimizer's iteration count (0-based).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "resnet/error.h"
#include "resnet/optim.h"
#include "train/schedule_impl.h"

namespace resnet {
namespace {

void check_rate(const char* what, double v) {
  if (!std::isfinite(v) || v < 0) {
    throw ConfigError(
        fmt::format("{}: the learning rate must be finite and >= 0, got {}", what, v));
  }
}

// lr = initial * gamma^floor(step / step_size)
class StepDecay final : public train::KerasSchedule {
 public:
  StepDecay(double initial, double gamma, int64_t step_size)
      : initial_(initial), gamma_(gamma), step_size_(step_size) {}
  double operator()(int64_t step) const override {
    const int64_t k = std::max<int64_t>(step, 0) / step_size_;
    return initial_ * std::pow(gamma_, static_cast<double>(k));
  }
  std::string describe() const override {
    return fmt::format("StepDecay(initial={}, gamma={}, step_size={})", initial_, gamma_,
                       step_size_);
  }
  // Keras has no step decay class; it is ExponentialDecay with staircase=True.
  nlohmann::ordered_json keras_config() const override {
    return {{"class_name", "ExponentialDecay"},
            {"config",
             {{"initial_learning_rate", initial_},
              {"decay_steps", step_size_},
              {"decay_rate", gamma_},
              {"staircase", true},
              {"name", nullptr}}}};
  }

 private:
  double initial_, gamma_;
  int64_t step_size_;
};

// lr = initial * rate^(step / decay_steps), the exponent floored when staircase.
class ExponentialDecay final : public train::KerasSchedule {
 public:
  ExponentialDecay(double initial, int64_t decay_steps, double rate, bool staircase)
      : initial_(initial), decay_steps_(decay_steps), rate_(rate), staircase_(staircase) {}
  double operator()(int64_t step) const override {
    double p = static_cast<double>(step) / static_cast<double>(decay_steps_);
    if (staircase_) p = std::floor(p);
    return initial_ * std::pow(rate_, p);
  }
  std::string describe() const override {
    return fmt::format("ExponentialDecay(initial={}, decay_steps={}, rate={}, staircase={})",
                       initial_, decay_steps_, rate_, staircase_);
  }
  nlohmann::ordered_json keras_config() const override {
    return {{"class_name", "ExponentialDecay"},
            {"config",
             {{"initial_learning_rate", initial_},
              {"decay_steps", decay_steps_},
              {"decay_rate", rate_},
              {"staircase", staircase_},
              {"name", nullptr}}}};
  }

 private:
  double initial_;
  int64_t decay_steps_;
  double rate_;
  bool staircase_;
};

// Keras CosineDecay with warm-up. With s = min(step, warmup + decay_steps):
//   s <  warmup:  lr = initial + (target - initial) * s / warmup
//   s >= warmup:  lr = target * ((1 - alpha) * 0.5 * (1 + cos(pi * (s - warmup) / decay_steps))
//                                + alpha)
// where target = warmup_target, or `initial` when warmup_target < 0 (no warm-up target).
class CosineDecay final : public train::KerasSchedule {
 public:
  CosineDecay(double initial, int64_t decay_steps, double alpha, int64_t warmup_steps,
              double warmup_target)
      : initial_(initial),
        decay_steps_(decay_steps),
        alpha_(alpha),
        warmup_steps_(warmup_steps),
        warmup_target_(warmup_target) {}
  double operator()(int64_t step) const override {
    const double peak = warmup_target_ < 0 ? initial_ : warmup_target_;
    const int64_t s = std::clamp<int64_t>(step, 0, warmup_steps_ + decay_steps_);
    if (s < warmup_steps_) {
      return initial_ +
             (peak - initial_) * static_cast<double>(s) / static_cast<double>(warmup_steps_);
    }
    const double fraction =
        static_cast<double>(s - warmup_steps_) / static_cast<double>(decay_steps_);
    const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * fraction));
    return peak * ((1.0 - alpha_) * cosine + alpha_);
  }
  std::string describe() const override {
    std::string s = fmt::format("CosineDecay(initial={}, decay_steps={}, alpha={}", initial_,
                                decay_steps_, alpha_);
    if (warmup_steps_ > 0) {
      s += fmt::format(", warmup_steps={}, warmup_target={}", warmup_steps_,
                       warmup_target_ < 0 ? initial_ : warmup_target_);
    }
    return s + ")";
  }
  nlohmann::ordered_json keras_config() const override {
    nlohmann::ordered_json target = nullptr;
    if (warmup_target_ >= 0) target = warmup_target_;
    return {{"class_name", "CosineDecay"},
            {"config",
             {{"initial_learning_rate", initial_},
              {"decay_steps", decay_steps_},
              {"alpha", alpha_},
              {"name", nullptr},
              {"warmup_target", target},
              {"warmup_steps", warmup_steps_}}}};
  }

 private:
  double initial_;
  int64_t decay_steps_;
  double alpha_;
  int64_t warmup_steps_;
  double warmup_target_;
};

}  // namespace

std::shared_ptr<LearningRateSchedule> step_decay(double initial, double gamma, int64_t step_size) {
  check_rate("step_decay", initial);
  if (step_size <= 0) {
    throw ConfigError(fmt::format("step_decay: step_size must be > 0, got {}", step_size));
  }
  if (!std::isfinite(gamma) || gamma < 0) {
    throw ConfigError(fmt::format("step_decay: gamma must be finite and >= 0, got {}", gamma));
  }
  return std::make_shared<StepDecay>(initial, gamma, step_size);
}

std::shared_ptr<LearningRateSchedule> exponential_decay(double initial, int64_t decay_steps,
                                                        double rate, bool staircase) {
  check_rate("exponential_decay", initial);
  if (decay_steps <= 0) {
    throw ConfigError(
        fmt::format("exponential_decay: decay_steps must be > 0, got {}", decay_steps));
  }
  if (!std::isfinite(rate) || rate <= 0) {
    throw ConfigError(fmt::format("exponential_decay: rate must be finite and > 0, got {}", rate));
  }
  return std::make_shared<ExponentialDecay>(initial, decay_steps, rate, staircase);
}

std::shared_ptr<LearningRateSchedule> cosine_decay(double initial, int64_t decay_steps,
                                                   double alpha, int64_t warmup_steps,
                                                   double warmup_target) {
  check_rate("cosine_decay", initial);
  if (decay_steps <= 0) {
    throw ConfigError(fmt::format("cosine_decay: decay_steps must be > 0, got {}", decay_steps));
  }
  if (warmup_steps < 0) {
    throw ConfigError(fmt::format("cosine_decay: warmup_steps must be >= 0, got {}", warmup_steps));
  }
  if (!std::isfinite(alpha) || alpha < 0 || alpha > 1) {
    throw ConfigError(fmt::format("cosine_decay: alpha must be in [0, 1], got {}", alpha));
  }
  if (!std::isfinite(warmup_target)) {
    throw ConfigError(
        fmt::format("cosine_decay: warmup_target must be finite, got {}", warmup_target));
  }
  return std::make_shared<CosineDecay>(initial, decay_steps, alpha, warmup_steps, warmup_target);
}

}  // namespace resnet
