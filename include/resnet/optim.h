// Optimizers, learning-rate schedules, losses and metrics (Keras semantics).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "resnet/layers.h"

namespace resnet {

// ---------------------------------------------------------------------------------------------
// Learning-rate schedules: the rate for a given optimizer step (0-based), as Keras schedules.
class LearningRateSchedule {
 public:
  virtual ~LearningRateSchedule() = default;
  virtual double operator()(int64_t step) const = 0;
  virtual std::string describe() const = 0;
};
// initial * gamma^floor(step / step_size).
std::shared_ptr<LearningRateSchedule> step_decay(double initial, double gamma, int64_t step_size);
// Keras ExponentialDecay: initial * rate^(step / decay_steps) (floored exponent when staircase).
std::shared_ptr<LearningRateSchedule> exponential_decay(double initial, int64_t decay_steps,
                                                        double rate, bool staircase = false);
// Keras CosineDecay with warm-up: linear from `initial` to `warmup_target` over warmup_steps,
// then cosine from the peak down to alpha * peak over decay_steps.
std::shared_ptr<LearningRateSchedule> cosine_decay(double initial, int64_t decay_steps,
                                                   double alpha = 0.0, int64_t warmup_steps = 0,
                                                   double warmup_target = -1.0);

// ---------------------------------------------------------------------------------------------
// Options shared by every optimizer.
struct OptimizerCommon {
  double learning_rate = 0.001;
  std::shared_ptr<LearningRateSchedule> schedule;  // overrides learning_rate when set
  double weight_decay = 0.0;     // L2 coupled into the gradient: g += wd * w (AdamW: decoupled)
  double clipnorm = 0.0;         // per tensor: g *= clipnorm / max(||g||, clipnorm)
  double global_clipnorm = 0.0;  // over all tensors together
  double clipvalue = 0.0;        // g = clamp(g, -clipvalue, clipvalue)
};

class Optimizer {
 public:
  explicit Optimizer(OptimizerCommon common) : common_(std::move(common)) {}
  virtual ~Optimizer() = default;

  // One update of every param from its grad (grads are read, not modified; params get
  // bump_version()). Slots are created on first use, per param, in the order given.
  void apply(const std::vector<Param*>& params);

  // The same update, one param at a time as soon as its gradient is final (Model::train_step
  // uses it during backward, so gradients need not all exist at once). begin_step checks the
  // params and creates their slots; update_param(i) updates params[i] from its gradient (one
  // without a gradient is left as is, as Keras skips variables without gradients); end_step
  // counts the iteration. Not with clipping, which needs every gradient first.
  bool updates_per_param() const;
  void begin_step(const std::vector<Param*>& params);
  void update_param(size_t i);
  void end_step();

  virtual std::string class_name() const = 0;  // "Adam", "SGD", "AdamW", "RMSprop"
  // Keras optimizer config as JSON text (for training_config).
  virtual std::string config_json() const = 0;

  // Current rate (from the schedule when set) at the current iteration.
  double learning_rate() const;
  // Sets the constant rate (ReduceLROnPlateau, LearningRateScheduler); drops any schedule.
  void set_learning_rate(double lr);
  int64_t iterations() const { return iterations_; }
  void set_iterations(int64_t it) { iterations_ = it; }

  // Optimizer state for saving/resuming: for each param (in apply order) its named slots
  // ("m", "v", "momentum", "rms", ...). Slot tensors are plain F32 of the param's shape.
  struct Slot {
    std::string name;
    Tensor value;
  };
  std::vector<std::vector<Slot>>& slots() { return slots_; }
  const std::vector<std::vector<Slot>>& slots() const { return slots_; }

 protected:
  // Updates `w` from the (decayed, clipped) gradient `g`, both plain F32 of n elements; `slots`
  // are this param's slots; `lr` the current rate; `t` = iterations + 1.
  virtual void update(float* w, const float* g, int64_t n, std::vector<Slot>& slots, double lr,
                      int64_t t) = 0;
  virtual std::vector<std::string> slot_names() const = 0;
  // AdamW applies weight decay itself (decoupled); the others get it folded into g.
  virtual bool decoupled_weight_decay() const { return false; }
  void prepare_slots(const std::vector<Param*>& params);
  void update_one(Param* p, const float* g, bool g_is_copy, size_t i, double lr, int64_t t);

  OptimizerCommon common_;
  int64_t iterations_ = 0;
  std::vector<std::vector<Slot>> slots_;

 private:
  std::vector<float> decay_buffer_;  // g + wd * w for one param (coupled weight decay)
  std::vector<Param*> step_params_;  // between begin_step and end_step
  double step_lr_ = 0.0;
};

struct SGDOptions {
  OptimizerCommon common = {.learning_rate = 0.01};
  double momentum = 0.0;
  bool nesterov = false;
};
struct AdamOptions {
  OptimizerCommon common = {.learning_rate = 0.001};
  double beta_1 = 0.9;
  double beta_2 = 0.999;
  double epsilon = 1e-7;
  bool amsgrad = false;
};
struct RMSpropOptions {
  OptimizerCommon common = {.learning_rate = 0.001};
  double rho = 0.9;
  double momentum = 0.0;
  double epsilon = 1e-7;
  bool centered = false;
};
std::shared_ptr<Optimizer> SGD(SGDOptions o = {});
std::shared_ptr<Optimizer> Adam(AdamOptions o = {});
// Adam with decoupled weight decay: w -= lr * weight_decay * w before the Adam step
// (o.common.weight_decay, Keras default 0.004).
std::shared_ptr<Optimizer> AdamW(AdamOptions o = {
                                     .common = {.learning_rate = 0.001, .weight_decay = 0.004}});
std::shared_ptr<Optimizer> RMSprop(RMSpropOptions o = {});
// "sgd", "adam", "adamw", "rmsprop" with Keras defaults and the given rate (<= 0: default).
std::shared_ptr<Optimizer> make_optimizer(const std::string& name, double learning_rate = 0);

// ---------------------------------------------------------------------------------------------
// Losses. `targets` are (N,) int64 class indices or (N, C) float32 (one-hot or soft labels);
// `output` is (N, C) probabilities (or logits when from_logits).
enum class LossKind {
  CategoricalCrossentropy,
  SparseCategoricalCrossentropy,
  BinaryCrossentropy,
  MeanSquaredError
};
LossKind loss_from_name(const std::string& name);  // Keras names; throws ConfigError
const char* loss_name(LossKind k);

struct LossValue {
  double loss = 0.0;  // mean over the batch
  Tensor grad;        // dloss/doutput (or dloss/dlogits when from_logits), (N, C)
};
// Keras semantics: from probabilities, categorical cross-entropy normalizes the rows and clips to
// [1e-7, 1 - 1e-7]; from logits, a numerically stable log-softmax (the fused path Keras takes
// after a softmax layer). Binary cross-entropy clips likewise; MSE is mean over all elements.
LossValue compute_loss(LossKind kind, const Tensor& output, const Tensor& targets,
                       bool from_logits = false);

// Metrics, summed over a batch (divide by the sample count for the mean).
// accuracy: argmax(output) == label (categorical or sparse, by the targets' form);
// top-k: the label among the k largest outputs; binary accuracy: (output > 0.5) == target.
double count_correct(const Tensor& output, const Tensor& targets);
double count_top_k(const Tensor& output, const Tensor& targets, int k);
// mean absolute error ("mae"): per sample the mean of |output - target| over its elements,
// summed over the batch. Targets must have the output's element count.
double sum_absolute_error(const Tensor& output, const Tensor& targets);

}  // namespace resnet
