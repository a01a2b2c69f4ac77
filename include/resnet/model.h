// Model: a frozen graph of layers, and the executor that runs it forward and backward.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "resnet/layers.h"
#include "resnet/train.h"

namespace resnet {

class Trainer;
namespace graph_detail {
class ModelUse;
}

// Threads (docs/concurrency.md): the calls that only read the model (predict, evaluate,
// forward in Inference mode, save_model, save_weights, export_onnx, summary, to_dot) may run on
// any number of threads at once, each getting what a single caller gets. The calls that change it
// (fit, train_step, forward in Training mode, backward, compile, load_weights, freeze_until, hooks,
// set_recompute, set_inference_fusion, set_intra_op_threads) need it to themselves: one started
// while another call runs on a different thread throws ConfigError naming both calls. Nothing
// waits. Moving or destroying a Model while any call runs on it is undefined.
class Model {
 public:
  // Freezes the graph between `inputs` and `outputs`. Layer order is Keras's (by depth from the
  // outputs, ties in discovery order), so summaries list layers as Keras does. Throws ConfigError
  // on duplicate layer names or an output not reachable from the inputs, naming the layers.
  Model(std::vector<SymTensor> inputs, std::vector<SymTensor> outputs, std::string name = "model");
  Model(SymTensor input, SymTensor output, std::string name = "model");
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  const std::string& name() const { return name_; }
  // Every layer, in execution (topological) order, inputs first.
  const std::vector<std::shared_ptr<Layer>>& layers() const { return layers_; }
  // Throws ConfigError when there is no such layer.
  Layer& layer(std::string_view name) const;
  // Names of the layers feeding `layer` (in input order); empty for inputs.
  std::vector<std::string> inbound(const Layer& layer) const;
  // Per-sample shapes.
  std::vector<Shape> input_shapes() const;
  std::vector<Shape> output_shapes() const;
  // Names of the layers whose outputs are the model's outputs, in output order (Keras
  // model.output_names).
  std::vector<std::string> output_names() const;
  Shape output_shape(const Layer& layer) const;

  // Every parameter, layer by layer (trainable and not).
  std::vector<Param*> params();
  // Parameters an optimizer updates: trainable parameters of trainable layers.
  std::vector<Param*> trainable_params();
  int64_t count_params() const;
  int64_t count_trainable_params() const;
  int64_t count_non_trainable_params() const { return count_params() - count_trainable_params(); }

  // The Keras summary table (KERAS.md §5): Model: "name", one row per layer with output shape,
  // parameter count and (for non-sequential graphs) the inbound layers, then the totals.
  std::string summary() const;
  // Graphviz DOT text of the graph: one node per layer (name and type, and with `show_shapes`
  // the output shape), one edge per connection.
  std::string to_dot(bool show_shapes = false) const;

  // Freezes layers: every layer up to and including `name` (in layer order) becomes
  // non-trainable.
  void freeze_until(std::string_view name);

  // Runs the graph. Inputs are batched (N, ...per-sample shape); outputs come back plain.
  // In Training mode the layers keep what backward needs.
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs, Mode mode);
  Tensor forward(const Tensor& input, Mode mode);
  // Back-propagates output gradients through the last Training-mode forward: fills every
  // trainable parameter's grad (overwritten, not accumulated). Returns the input gradients when
  // `input_grads` is true (else undefined tensors).
  std::vector<Tensor> backward(const std::vector<Tensor>& output_grads, bool input_grads = false);
  Tensor backward(const Tensor& output_grad, bool input_grad = false);

  // --- Training, as Keras (thin calls to the Trainer of src/train/trainer.h). compile() fixes
  // optimizer, loss and metrics; with a cross-entropy loss and a softmax output layer, the loss is
  // computed from the logits (fused, numerically stable), as Keras does inside fit.
  void compile(CompileOptions o = {});
  bool compiled() const;
  Optimizer& optimizer();
  const CompileOptions& compile_options() const;
  // Trains on `train` (uint8 or float images, int64 labels).
  History fit(const Dataset& train, const FitOptions& o = {});
  // Keras fit(x, y): float32 inputs used as given (no preprocessing, as Keras), targets as (N,)
  // int64 labels or (N, C) one-hot float rows. Throws ConfigError on soft labels.
  History fit(const Tensor& x, const Tensor& y, FitOptions o = {});
  // Loss and metrics over `data` ({"loss": ..., "accuracy": ...}).
  Logs evaluate(const Dataset& data, const EvaluateOptions& o = {});
  Logs evaluate(const Tensor& x, const Tensor& y, EvaluateOptions o = {});
  // Outputs for float32 inputs (N, ...) in inference mode, in batches. May run on many threads at
  // once on one model, each call getting exactly what a single caller gets (docs/concurrency.md).
  Tensor predict(const Tensor& x, int64_t batch_size = 32);
  // One optimizer step on a batch: forward (Training), loss, backward, update. Returns the
  // batch loss and fills `metrics` with per-batch metric sums (for fit and for tests).
  double train_step(const Tensor& x, const Tensor& targets, Logs* metric_sums = nullptr);

  // Hooks. Several may be installed at once (profiling, data-parallel training, train_step's
  // per-layer updates, the user's own); each add returns an id that removes it, and hooks run in
  // the order they were added. A hook must not add or remove hooks. None installed costs nothing.
  using HookId = int64_t;
  // Profiling: called after every layer's forward (backward = false) and backward (backward =
  // true, including the executor's sum of the gradients it returns) with the seconds it took.
  // Used by `resnet bench --profile`.
  using LayerHook = std::function<void(const Layer& layer, bool backward, double seconds)>;
  HookId add_layer_hook(LayerHook hook);
  void remove_layer_hook(HookId id);
  // Gradients ready: backward calls it once per layer, in backward order, as soon as that
  // layer's parameter gradients are final (also for layers backward skips), so their reduction
  // (data-parallel training, src/dist/) or their update (train_step) can start while backward
  // goes on.
  using GradReadyHook = std::function<void(Layer& layer)>;
  HookId add_grad_ready_hook(GradReadyHook hook);
  void remove_grad_ready_hook(HookId id);

  // Inference plan (src/graph/inference_plan.cpp): in Mode::Inference, forward runs each
  // Conv2D -> BatchNormalization [-> Add] [-> ReLU] chain as one oneDNN convolution, with the
  // batch norm folded into its weights (refolded whenever one of the weights changed) and the add
  // and ReLU as post-ops; other layers run as usual. On by default; off runs every layer on its
  // own (the reference the plan is tested against).
  void set_inference_fusion(bool on);
  bool inference_fusion() const { return fuse_inference_; }

  // Recomputation (activation checkpointing). Gradients and updates are the same in every mode
  // (the same kernels on the same inputs); the modes trade memory for compute:
  // - Recompute::Pointwise (the default): 1x1 Conv2D -> BatchNormalization pairs do not keep
  //   the convolution's output (the batch norm's input) from forward to backward; backward runs
  //   the pair again from the convolution's input, which the layer before it keeps anyway. In
  //   bottleneck blocks these are the widest activations: ResNet-50 at 224x224 trains in
  //   about a third less memory for computing the 1x1 convolutions twice (~10-15% of a step).
  // - Recompute::Full (`--recompute`): a Training-mode forward keeps only
  //   the tensors at the model's cut points (where the graph narrows to a single tensor, such as
  //   a residual block's output) and drops what the layers between two cuts saved for backward;
  //   backward runs that stretch forward again, from the kept tensor, just before it needs it:
  //   activation memory falls to the cut tensors plus one stretch, for about one more forward
  //   pass of compute.
  // - Recompute::Off: every layer keeps what its backward needs.
  // Stretches with a non-replayable layer (Dropout, SyncBN) are kept as usual.
  enum class Recompute { Off, Pointwise, Full };
  void set_recompute(Recompute mode);
  Recompute recompute() const { return recompute_; }

  // Peak number of live activation tensors kept by the last forward/backward (for tests of buffer
  // release).
  int64_t last_peak_live_tensors() const;

  // Intra-op threads (as ONNX Runtime's intra_op_num_threads): every call on this model runs its
  // kernels on `n` threads (n >= 1), whatever the calling thread's own count; 0 (the default)
  // uses the calling thread's count (ops::set_num_threads, OMP_NUM_THREADS, else every core).
  // With N threads predicting at once, cores / N each keeps the cores from being oversubscribed.
  void set_intra_op_threads(int n);
  int intra_op_threads() const;

 private:
  struct Step {
    Layer* layer;
    std::vector<int> inputs;  // step indices of the producing layers
    int consumers = 0;        // number of (step, input slot) uses of this step's output
  };
  std::string name_;
  std::vector<std::shared_ptr<Layer>> layers_;
  std::vector<Step> steps_;    // parallel to layers_
  std::vector<Shape> shapes_;  // per-sample output shape per step
  std::vector<int> input_steps_;
  std::vector<int> output_steps_;
  std::vector<bool> needs_grad_;  // whether a step's output gradient is needed in backward
  bool has_forward_ = false;      // a Training-mode forward awaits its backward
  // Who is using the model right now, the intra-op thread count, the last peak of live tensors
  // (src/graph/usage.h).
  struct Concurrency;
  std::unique_ptr<Concurrency> concurrency_;
  friend class graph_detail::ModelUse;
  friend class Trainer;
  // Inference-mode forward, safe on many threads at once. When `logits_of` (a layer that
  // ends_in_softmax) is given, `logits` receives its pre-softmax values (evaluate's loss).
  std::vector<Tensor> infer(const std::vector<Tensor>& inputs, const Layer* logits_of = nullptr,
                            Tensor* logits = nullptr);
  void check_inputs(const std::vector<Tensor>& inputs) const;
  // What compile() set up: the Trainer (src/train/trainer.h), deleted where it is defined so the
  // graph code needs no training header.
  struct TrainerDeleter {
    void operator()(Trainer* t) const;
  };
  std::unique_ptr<Trainer, TrainerDeleter> train_;
  Trainer& trainer(const char* what) const;  // throws ConfigError when not compiled
  std::vector<std::pair<HookId, LayerHook>> layer_hooks_;
  std::vector<std::pair<HookId, GradReadyHook>> grad_ready_hooks_;
  HookId next_hook_id_ = 1;
  bool timing_layers() const { return !layer_hooks_.empty(); }
  void layer_timed(const Layer& layer, bool backward, double seconds);
  void grad_ready(Layer& layer);
  struct InferencePlan;
  std::vector<Tensor> forward_fused(const std::vector<Tensor>& inputs, const Layer* logits_of,
                                    Tensor* logits);
  InferencePlan& plan();  // built on first use, under concurrency_'s lock
  std::shared_ptr<InferencePlan> plan_;
  // Drops the plan's folded and reordered weights (training changes them; the next inference
  // forward makes them again), so they do not add to the memory of training between evaluations.
  void release_plan_weights();
  bool fuse_inference_ = true;
  // Recomputation: stretches of steps (first, last] between two cut points whose saved state is
  // dropped after forward and rebuilt in backward from the output of step `first`.
  struct Stretch {
    int first, last;
    Tensor input;  // the output of step `first`, kept from forward to backward
  };
  void plan_recompute();  // fills stretches_ (empty before)
  // The Conv2D -> BatchNormalization pairs (graph/conv_bn.h) as (conv, bn) step indices, found on
  // first use: the graph is static, and the recompute planner runs every training forward.
  const std::vector<std::pair<int, int>>& conv_bn_steps();
  std::vector<std::pair<int, int>> conv_bn_steps_;
  bool conv_bn_found_ = false;
  void replay(Stretch& st);
  // layer.forward, timed for the layer hook when one is set.
  Tensor timed_forward(Layer& layer, const std::vector<Tensor>& inputs, Mode mode);
  // Step i's forward on the values of its inputs (`ins`; an input step takes its tensor from the
  // model's `inputs`).
  Tensor run_step(int i, const std::vector<Tensor>& ins, const std::vector<Tensor>& inputs,
                  Mode mode, const Layer* logits_of = nullptr, Tensor* logits = nullptr);
  Recompute recompute_ = Recompute::Pointwise;
  std::vector<Stretch> stretches_;
};

}  // namespace resnet
