// Optimizers with Keras semantics: SGD (momentum, Nesterov), Adam (amsgrad), AdamW, RMSprop.
//
// Optimizer::apply runs, for every param (w: plain F32 value, g: its gradient made plain):
//   1. g = clamp(g, -clipvalue, clipvalue)                      (clipvalue > 0)
//   2. g *= clipnorm / max(||g||, clipnorm)                     (clipnorm > 0, per tensor)
//   3. g *= global_clipnorm / max(||(g_1..g_P)||, global_clipnorm)   (over all params)
//   4. weight decay: g += wd * w (SGD, Adam, RMSprop: L2 coupled into the gradient)
//                    w -= lr * wd * w (AdamW: decoupled, before the Adam step)
//   5. update(w, g, slots, lr, t) with t = iterations + 1, then w.bump_version()
// and finally iterations += 1. The gradients themselves are never modified: steps 1-4 work on
// copies, made only when a step is enabled.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "ops/ops.h"
#include "resnet/error.h"
#include "resnet/optim.h"
#include "train/schedule_impl.h"

namespace resnet {
namespace {

using Json = nlohmann::ordered_json;

// Elementwise loops are parallel only when large enough to pay for the threads.
constexpr int64_t kParallelMin = 1 << 15;

double sum_squares(const std::vector<float>& g) {
  double s = 0.0;
  const int64_t n = static_cast<int64_t>(g.size());
#pragma omp parallel for reduction(+ : s) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(g[i]) * g[i];
  return s;
}

void scale(std::vector<float>& g, double factor) {
  const float f = static_cast<float>(factor);
  const int64_t n = static_cast<int64_t>(g.size());
#pragma omp parallel for if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) g[i] *= f;
}

void check_hyper(const std::string& opt, const char* what, double v, double lo, double hi,
                 bool hi_open = false) {
  if (!std::isfinite(v) || v < lo || v > hi || (hi_open && v >= hi)) {
    throw ConfigError(fmt::format("{}: {} must be in [{}, {}{}, got {}", opt, what, lo, hi,
                                  hi_open ? ")" : "]", v));
  }
}

void check_common(const std::string& opt, const OptimizerCommon& c) {
  const double inf = std::numeric_limits<double>::max();
  check_hyper(opt, "learning_rate", c.learning_rate, 0.0, inf);
  check_hyper(opt, "weight_decay", c.weight_decay, 0.0, inf);
  check_hyper(opt, "clipnorm", c.clipnorm, 0.0, inf);
  check_hyper(opt, "global_clipnorm", c.global_clipnorm, 0.0, inf);
  check_hyper(opt, "clipvalue", c.clipvalue, 0.0, inf);
}

// Keras base config: name, learning_rate (a number or a serialized schedule), decay, and the
// clipping options that are set.
Json base_config(const std::string& name, const OptimizerCommon& c) {
  Json cfg;
  cfg["name"] = name;
  if (c.schedule) {
    if (auto* ks = dynamic_cast<const train::KerasSchedule*>(c.schedule.get())) {
      cfg["learning_rate"] = ks->keras_config();
    } else {
      cfg["learning_rate"] = (*c.schedule)(0);
    }
  } else {
    cfg["learning_rate"] = c.learning_rate;
  }
  cfg["decay"] = 0.0;
  if (c.clipnorm > 0) cfg["clipnorm"] = c.clipnorm;
  if (c.global_clipnorm > 0) cfg["global_clipnorm"] = c.global_clipnorm;
  if (c.clipvalue > 0) cfg["clipvalue"] = c.clipvalue;
  if (c.weight_decay > 0) cfg["weight_decay"] = c.weight_decay;
  return cfg;
}

std::string wrap_config(const std::string& class_name, const Json& cfg) {
  Json j;
  j["class_name"] = class_name;
  j["config"] = cfg;
  return j.dump();
}

// ---------------------------------------------------------------------------------------------
// SGD.
//   no momentum:  w -= lr * g
//   momentum:     v = momentum * v - lr * g
//                 w += v                              (nesterov: w += momentum * v - lr * g)
class SGDOptimizer final : public Optimizer {
 public:
  explicit SGDOptimizer(const SGDOptions& o)
      : Optimizer(o.common), momentum_(o.momentum), nesterov_(o.nesterov) {
    check_common("SGD", o.common);
    check_hyper("SGD", "momentum", momentum_, 0.0, 1.0);
  }
  std::string class_name() const override { return "SGD"; }
  std::string config_json() const override {
    Json cfg = base_config("SGD", common_);
    cfg["momentum"] = momentum_;
    cfg["nesterov"] = nesterov_;
    return wrap_config("SGD", cfg);
  }

 protected:
  std::vector<std::string> slot_names() const override {
    if (momentum_ > 0) return {"momentum"};
    return {};
  }
  void update(float* w, const float* g, int64_t n, std::vector<Slot>& slots, double lr,
              int64_t t) override {
    const float lr_f = static_cast<float>(lr);
    if (momentum_ <= 0) {
#pragma omp parallel for if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) w[i] -= lr_f * g[i];
      return;
    }
    const float mu = static_cast<float>(momentum_);
    float* v = slots[0].value.f32();
    if (nesterov_) {
#pragma omp parallel for if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        v[i] = mu * v[i] - lr_f * g[i];
        w[i] += mu * v[i] - lr_f * g[i];
      }
    } else {
#pragma omp parallel for if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        v[i] = mu * v[i] - lr_f * g[i];
        w[i] += v[i];
      }
    }
  }

 private:
  double momentum_;
  bool nesterov_;
};

// ---------------------------------------------------------------------------------------------
// Adam, Keras's "epsilon-hat" form (t = iterations + 1):
//   m = beta_1 * m + (1 - beta_1) * g
//   v = beta_2 * v + (1 - beta_2) * g^2
//   vhat = max(vhat, v)                                  (amsgrad; then v below is vhat)
//   w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)
// AdamW additionally decays first: w -= lr * weight_decay * w.
class AdamOptimizer final : public Optimizer {
 public:
  AdamOptimizer(const AdamOptions& o, bool decoupled)
      : Optimizer(o.common),
        beta_1_(o.beta_1),
        beta_2_(o.beta_2),
        epsilon_(o.epsilon),
        amsgrad_(o.amsgrad),
        decoupled_(decoupled) {
    const std::string name = decoupled ? "AdamW" : "Adam";
    check_common(name, o.common);
    check_hyper(name, "beta_1", beta_1_, 0.0, 1.0, true);
    check_hyper(name, "beta_2", beta_2_, 0.0, 1.0, true);
    check_hyper(name, "epsilon", epsilon_, 0.0, std::numeric_limits<double>::max());
  }
  std::string class_name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  std::string config_json() const override {
    Json cfg = base_config(class_name(), common_);
    if (decoupled_) cfg["weight_decay"] = common_.weight_decay;
    cfg["beta_1"] = beta_1_;
    cfg["beta_2"] = beta_2_;
    cfg["epsilon"] = epsilon_;
    cfg["amsgrad"] = amsgrad_;
    return wrap_config(class_name(), cfg);
  }

 protected:
  std::vector<std::string> slot_names() const override {
    if (amsgrad_) return {"m", "v", "vhat"};
    return {"m", "v"};
  }
  bool decoupled_weight_decay() const override { return decoupled_; }
  void update(float* w, const float* g, int64_t n, std::vector<Slot>& slots, double lr,
              int64_t t) override {
    const double td = static_cast<double>(t);
    const float lr_t = static_cast<float>(lr * std::sqrt(1.0 - std::pow(beta_2_, td)) /
                                          (1.0 - std::pow(beta_1_, td)));
    const float b1 = static_cast<float>(beta_1_), b2 = static_cast<float>(beta_2_);
    const float c1 = static_cast<float>(1.0 - beta_1_), c2 = static_cast<float>(1.0 - beta_2_);
    const float eps = static_cast<float>(epsilon_);
    float* m = slots[0].value.f32();
    float* v = slots[1].value.f32();
    if (amsgrad_) {
      float* vhat = slots[2].value.f32();
#pragma omp parallel for if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        m[i] = b1 * m[i] + c1 * g[i];
        v[i] = b2 * v[i] + c2 * g[i] * g[i];
        vhat[i] = std::max(vhat[i], v[i]);
        w[i] -= lr_t * m[i] / (std::sqrt(vhat[i]) + eps);
      }
    } else {
#pragma omp parallel for if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        m[i] = b1 * m[i] + c1 * g[i];
        v[i] = b2 * v[i] + c2 * g[i] * g[i];
        w[i] -= lr_t * m[i] / (std::sqrt(v[i]) + eps);
      }
    }
  }

 private:
  double beta_1_, beta_2_, epsilon_;
  bool amsgrad_;
  bool decoupled_;
};

// ---------------------------------------------------------------------------------------------
// RMSprop (Keras):
//   rms = rho * rms + (1 - rho) * g^2
//   centered: mg = rho * mg + (1 - rho) * g;  denom = rms - mg^2   (else denom = rms)
//   no momentum: w -= lr * g / (sqrt(denom) + epsilon)
//   momentum:    mom = momentum * mom + lr * g / (sqrt(denom) + epsilon);  w -= mom
// Slots in Keras's creation order: rms, momentum (momentum > 0), mg (centered).
class RMSpropOptimizer final : public Optimizer {
 public:
  explicit RMSpropOptimizer(const RMSpropOptions& o)
      : Optimizer(o.common),
        rho_(o.rho),
        momentum_(o.momentum),
        epsilon_(o.epsilon),
        centered_(o.centered) {
    check_common("RMSprop", o.common);
    check_hyper("RMSprop", "rho", rho_, 0.0, 1.0);
    check_hyper("RMSprop", "momentum", momentum_, 0.0, 1.0);
    check_hyper("RMSprop", "epsilon", epsilon_, 0.0, std::numeric_limits<double>::max());
  }
  std::string class_name() const override { return "RMSprop"; }
  std::string config_json() const override {
    Json cfg = base_config("RMSprop", common_);
    cfg["rho"] = rho_;
    cfg["momentum"] = momentum_;
    cfg["epsilon"] = epsilon_;
    cfg["centered"] = centered_;
    return wrap_config("RMSprop", cfg);
  }

 protected:
  std::vector<std::string> slot_names() const override {
    std::vector<std::string> names = {"rms"};
    if (momentum_ > 0) names.push_back("momentum");
    if (centered_) names.push_back("mg");
    return names;
  }
  void update(float* w, const float* g, int64_t n, std::vector<Slot>& slots, double lr,
              int64_t t) override {
    const float rho = static_cast<float>(rho_), c = static_cast<float>(1.0 - rho_);
    const float lr_f = static_cast<float>(lr), eps = static_cast<float>(epsilon_);
    const float mu = static_cast<float>(momentum_);
    float* rms = slots[0].value.f32();
    float* mom = momentum_ > 0 ? slots[1].value.f32() : nullptr;
    float* mg = centered_ ? slots.back().value.f32() : nullptr;
#pragma omp parallel for if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      rms[i] = rho * rms[i] + c * g[i] * g[i];
      float denom = rms[i];
      if (mg) {
        mg[i] = rho * mg[i] + c * g[i];
        // Rounding can make rms - mg^2 slightly negative; Keras would give NaN there.
        denom = std::max(denom - mg[i] * mg[i], 0.0f);
      }
      const float step = lr_f * g[i] / (std::sqrt(denom) + eps);
      if (mom) {
        mom[i] = mu * mom[i] + step;
        w[i] -= mom[i];
      } else {
        w[i] -= step;
      }
    }
  }

 private:
  double rho_, momentum_, epsilon_;
  bool centered_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Optimizer

double Optimizer::learning_rate() const {
  return common_.schedule ? (*common_.schedule)(iterations_) : common_.learning_rate;
}

void Optimizer::set_learning_rate(double lr) {
  if (!std::isfinite(lr) || lr < 0) {
    throw ConfigError(
        fmt::format("{}: the learning rate must be finite and >= 0, got {}", class_name(), lr));
  }
  common_.learning_rate = lr;
  common_.schedule.reset();
}

namespace {
void check_param(const std::string& opt, const Param* p, size_t i) {
  if (p == nullptr) throw Error(fmt::format("{}: param #{} is null", opt, i));
  if (!p->value.defined() || !p->value.is_plain() || p->value.dtype() != DType::F32) {
    throw Error(fmt::format("{}: param '{}' must be a plain float32 tensor", opt, p->name));
  }
}

// The gradient in plain float32 layout (a handle to the gradient itself when it already is).
Tensor plain_grad(const std::string& opt, const Param* p) {
  if (p->grad.shape() != p->value.shape()) {
    throw Error(fmt::format("{}: param '{}' has shape {} but its gradient has shape {}", opt,
                            p->name, p->value.shape().str(), p->grad.shape().str()));
  }
  Tensor g = ops::plain(p->grad);
  if (g.dtype() != DType::F32) g = g.to_f32();
  return g;
}
}  // namespace

// Slots: created zero-filled on first use, in slot_names() order; loaded slots are kept (and
// reordered by name when needed).
void Optimizer::prepare_slots(const std::vector<Param*>& params) {
  const std::string opt = class_name();
  const std::vector<std::string> names = slot_names();
  if (slots_.size() < params.size()) slots_.resize(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const Param* p = params[i];
    check_param(opt, p, i);
    std::vector<Slot>& s = slots_[i];
    bool ok = s.size() == names.size();
    for (size_t k = 0; ok && k < names.size(); ++k) ok = s[k].name == names[k];
    if (!ok) {
      std::vector<Slot> ordered;
      for (const std::string& name : names) {
        auto it = std::find_if(s.begin(), s.end(), [&](const Slot& x) { return x.name == name; });
        if (it != s.end()) {
          ordered.push_back(*it);
        } else {
          ordered.push_back({name, Tensor::zeros(p->value.shape())});
        }
      }
      s = std::move(ordered);
    }
    for (const Slot& slot : s) {
      if (slot.value.shape() != p->value.shape() || slot.value.dtype() != DType::F32 ||
          !slot.value.is_plain()) {
        throw Error(fmt::format("{}: slot '{}' of param '{}' is {}, expected float32 {}", opt,
                                slot.name, p->name, slot.value.str(), p->value.shape().str()));
      }
    }
  }
}

// Steps 4 and 5 for param i: weight decay (decoupled, or coupled into a copy of g in the reused
// buffer unless g already is a working copy), the update, and the version bump.
void Optimizer::update_one(Param* p, const float* g, bool g_is_copy, size_t i, double lr,
                           int64_t t) {
  float* w = p->value.f32();
  const int64_t n = p->value.numel();
  const double wd = common_.weight_decay;
  if (wd > 0) {
    if (decoupled_weight_decay()) {
      // w -= lr * wd * w
      const float f = static_cast<float>(1.0 - lr * wd);
#pragma omp parallel for if (n >= kParallelMin)
      for (int64_t j = 0; j < n; ++j) w[j] *= f;
    } else {
      // g += wd * w, in place in a working copy, else into the reused buffer
      float* gw = g_is_copy ? const_cast<float*>(g) : nullptr;
      if (gw == nullptr) {
        if (static_cast<int64_t>(decay_buffer_.size()) < n) decay_buffer_.resize(n);
        gw = decay_buffer_.data();
      }
      const float f = static_cast<float>(wd);
#pragma omp parallel for if (n >= kParallelMin)
      for (int64_t j = 0; j < n; ++j) gw[j] = g[j] + f * w[j];
      g = gw;
    }
  }
  update(w, g, n, slots_[i], lr, t);
  p->value.bump_version();
}

void Optimizer::apply(const std::vector<Param*>& params) {
  const std::string opt = class_name();
  for (size_t i = 0; i < params.size(); ++i) {
    check_param(opt, params[i], i);
    if (!params[i]->grad.defined()) {
      throw Error(fmt::format("{}: param '{}' {} has no gradient (run backward first)", opt,
                              params[i]->name, params[i]->value.shape().str()));
    }
  }
  std::vector<Tensor> plain_grads(params.size());
  for (size_t i = 0; i < params.size(); ++i) plain_grads[i] = plain_grad(opt, params[i]);
  prepare_slots(params);

  // Clipping (by value, per-tensor norm, then global norm) needs every gradient changed before
  // the first update: working copies of all of them. Without clipping the update reads the
  // gradients in place (coupled weight decay works in one reused buffer of the largest param's
  // size): no per-step allocation, no page faults of fresh memory.
  const bool clipping = !updates_per_param();
  std::vector<std::vector<float>> clipped;
  if (clipping) {
    clipped.resize(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      const Tensor& g = plain_grads[i];
      clipped[i].assign(g.f32(), g.f32() + g.numel());
    }
  }
  if (common_.clipvalue > 0) {
    const float c = static_cast<float>(common_.clipvalue);
    for (auto& g : clipped) {
      for (float& x : g) x = std::clamp(x, -c, c);
    }
  }
  if (common_.clipnorm > 0) {
    for (auto& g : clipped) {
      const double norm = std::sqrt(sum_squares(g));
      if (norm > common_.clipnorm) scale(g, common_.clipnorm / norm);
    }
  }
  if (common_.global_clipnorm > 0) {
    double total = 0.0;
    for (const auto& g : clipped) total += sum_squares(g);
    const double norm = std::sqrt(total);
    if (norm > common_.global_clipnorm) {
      for (auto& g : clipped) scale(g, common_.global_clipnorm / norm);
    }
  }

  const double lr = learning_rate();
  const int64_t t = iterations_ + 1;
  for (size_t i = 0; i < params.size(); ++i) {
    const float* g = clipping ? clipped[i].data() : plain_grads[i].f32();
    update_one(params[i], g, clipping, i, lr, t);
  }
  ++iterations_;
}

bool Optimizer::updates_per_param() const {
  return common_.clipvalue <= 0 && common_.clipnorm <= 0 && common_.global_clipnorm <= 0;
}

void Optimizer::begin_step(const std::vector<Param*>& params) {
  if (!updates_per_param()) {
    throw Error(fmt::format("{}: clipping needs every gradient first: use apply()", class_name()));
  }
  prepare_slots(params);
  step_params_ = params;
  step_lr_ = learning_rate();
}

void Optimizer::update_param(size_t i) {
  if (i >= step_params_.size()) {
    throw Error(fmt::format("{}: update_param({}) outside begin_step/end_step", class_name(), i));
  }
  Param* p = step_params_[i];
  if (!p->grad.defined()) return;  // no gradient reached it: left as is (Keras skips it too)
  const Tensor g = plain_grad(class_name(), p);
  update_one(p, g.f32(), false, i, step_lr_, iterations_ + 1);
}

void Optimizer::end_step() {
  step_params_.clear();
  ++iterations_;
}

// ---------------------------------------------------------------------------------------------
// Factories

std::shared_ptr<Optimizer> SGD(SGDOptions o) { return std::make_shared<SGDOptimizer>(o); }

std::shared_ptr<Optimizer> Adam(AdamOptions o) {
  return std::make_shared<AdamOptimizer>(o, /*decoupled=*/false);
}

std::shared_ptr<Optimizer> AdamW(AdamOptions o) {
  return std::make_shared<AdamOptimizer>(o, /*decoupled=*/true);
}

std::shared_ptr<Optimizer> RMSprop(RMSpropOptions o) {
  return std::make_shared<RMSpropOptimizer>(o);
}

std::shared_ptr<Optimizer> make_optimizer(const std::string& name, double learning_rate) {
  std::string key;
  for (char c : name) {
    if (c != '_' && c != '-') key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const bool set_lr = learning_rate > 0;
  if (key == "sgd") {
    SGDOptions o;
    if (set_lr) o.common.learning_rate = learning_rate;
    return SGD(o);
  }
  if (key == "adam") {
    AdamOptions o;
    if (set_lr) o.common.learning_rate = learning_rate;
    return Adam(o);
  }
  if (key == "adamw") {
    AdamOptions o{.common = {.learning_rate = 0.001, .weight_decay = 0.004}};
    if (set_lr) o.common.learning_rate = learning_rate;
    return AdamW(o);
  }
  if (key == "rmsprop") {
    RMSpropOptions o;
    if (set_lr) o.common.learning_rate = learning_rate;
    return RMSprop(o);
  }
  throw ConfigError(
      fmt::format("unknown optimizer '{}' (expected sgd, adam, adamw or rmsprop)", name));
}

}  // namespace resnet
