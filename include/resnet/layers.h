// Layers and the Keras-like functional API.
//
// Build a graph by calling layers on symbolic tensors, then freeze it with Model (model.h):
//
//   auto input = Input({64, 64, 3});
//   auto x = ZeroPadding2D({.padding = {3, 3, 3, 3}})(input);
//   x = Conv2D({.filters = 64, .kernel = {7, 7}, .strides = {2, 2}, .name = "conv1"})(x);
//   x = BatchNormalization({.name = "bn_conv1"})(x);
//   x = Activation("relu")(x);
//
// Shapes are per sample (no batch dimension) in the graph, and printed Keras style as
// (None, H, W, C). They are inferred and checked when a layer is connected: a mismatch throws
// ShapeError naming the layer and the shapes. Parameters are created (and initialized from the
// global seed, or the initializer's own seed) at that moment too.
//
// Layer contract (every subclass):
//   infer(inputs)          pure shape function; throws ShapeError
//   build(inputs, rng)     creates the named parameters
//   forward(inputs, mode)  returns the output; in Training mode keeps what backward needs
//   backward(dy, need_dx)  returns one input gradient per input (undefined where need_dx is
//                          false) and OVERWRITES the grad of every trainable parameter
//   config()               its Keras config (get_config); a factory registered under its class
//                          name creates it again from that (resnet/config.h)
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "resnet/config.h"
#include "resnet/error.h"
#include "resnet/tensor.h"

namespace resnet {

enum class Mode { Training, Inference };
enum class Padding { Valid, Same };

// Seeds the generator that initializes parameters created from now on (tf.random.set_seed).
void set_global_seed(uint64_t seed);
Rng& global_rng();
// Resets the automatic layer-name counters (keras.backend.clear_session()).
void reset_name_counters();
// "conv2d", "conv2d_1", ... for a prefix; thread-safe.
std::string unique_layer_name(const std::string& prefix);

// The same values in the plain row-major layout (Keras's logical layout). The tensors a layer's
// forward and backward receive may be in a backend's blocked layout; a layer of your own that
// reads elements calls this first. Returns `t` itself when it is plain.
Tensor to_plain(const Tensor& t);

// Parameter initializers (Keras names and semantics). fan_in/fan_out include the receptive field.
struct Initializer {
  enum class Kind {
    GlorotUniform,
    GlorotNormal,
    HeUniform,
    HeNormal,
    RandomUniform,
    RandomNormal,
    Zeros,
    Ones,
    Constant
  };
  Kind kind = Kind::GlorotUniform;
  double a = 0.0;  // RandomUniform: minval (default -0.05); RandomNormal: mean; Constant: value
  double b = 0.0;  // RandomUniform: maxval (default 0.05); RandomNormal: stddev (default 0.05)
  std::optional<uint64_t> seed;  // own generator when set, the global one otherwise

  static Initializer glorot_uniform(std::optional<uint64_t> seed = {});
  static Initializer glorot_normal(std::optional<uint64_t> seed = {});
  static Initializer he_uniform(std::optional<uint64_t> seed = {});
  static Initializer he_normal(std::optional<uint64_t> seed = {});
  static Initializer random_uniform(double minval = -0.05, double maxval = 0.05,
                                    std::optional<uint64_t> seed = {});
  static Initializer random_normal(double mean = 0.0, double stddev = 0.05,
                                   std::optional<uint64_t> seed = {});
  static Initializer zeros();
  static Initializer ones();
  static Initializer constant(double value);
  // By Keras name: "glorot_uniform", "he_normal", "zeros", ... Throws ConfigError.
  static Initializer from_name(std::string_view name);

  // Keras class name: "GlorotUniform", "Zeros", ...
  std::string keras_class_name() const;
  // Fills `t` (plain F32). Truncated normals redraw beyond two standard deviations, as Keras does.
  void fill(Tensor& t, int64_t fan_in, int64_t fan_out) const;
};

// A named parameter: its value and gradient (same shape), and whether training updates it.
// Non-trainable parameters (BatchNormalization moving statistics) have no gradient; the gradient
// of a trainable one is undefined until a backward sets it (Model::train_step releases it again
// once the optimizer has used it, as PyTorch's zero_grad(set_to_none=True)).
struct Param {
  std::string name;  // "kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance"
  Tensor value;
  Tensor grad;
  bool trainable = true;
};

class Layer;
struct Node;

// The output of a layer in a graph under construction (a KerasTensor).
class SymTensor {
 public:
  SymTensor() = default;
  explicit SymTensor(std::shared_ptr<Node> node) : node_(std::move(node)) {}
  const Shape& shape() const;  // per sample
  Layer& layer() const;
  const std::shared_ptr<Node>& node() const { return node_; }
  bool defined() const { return node_ != nullptr; }

 private:
  friend struct Node;
  std::shared_ptr<Node> node_;
};

// A layer applied once in a graph: the layer, the symbolic inputs and the inferred output shape.
struct Node {
  std::shared_ptr<Layer> layer;
  std::vector<SymTensor> inputs;
  Shape shape;  // per-sample output shape
  // Releases the chain of inputs iteratively, so a graph thousands of layers deep does not
  // overflow the stack when its last tensor goes away.
  ~Node();
};

class Layer : public std::enable_shared_from_this<Layer> {
 public:
  Layer(std::string class_name, std::string name);
  virtual ~Layer();
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  // Keras class name: "Conv2D", "BatchNormalization", ...
  const std::string& class_name() const { return class_name_; }

  // Non-trainable layers keep their parameters fixed (their grads are not computed); a
  // non-trainable BatchNormalization also runs in inference mode, as in Keras.
  bool trainable() const { return trainable_; }
  virtual void set_trainable(bool t);

  // Accepted number of inputs.
  virtual int min_inputs() const { return 1; }
  virtual int max_inputs() const { return 1; }

  virtual Shape infer(const std::vector<Shape>& inputs) const = 0;
  virtual void build(const std::vector<Shape>& inputs) { (void)inputs; }
  // An Inference-mode forward must leave the layer unchanged: it runs on several threads at once
  // when they predict with one model (docs/concurrency.md). A Training-mode forward keeps what
  // backward needs.
  virtual Tensor forward(const std::vector<Tensor>& inputs, Mode mode) = 0;
  virtual std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) = 0;
  // Drops what forward kept for backward.
  virtual void clear_saved() {}

  // Keras get_config: {"name", "trainable", "dtype"} here; every subclass adds its own fields,
  // in the order Keras writes them, so that layer_from_config(class_name(), config()) builds an
  // equal layer.
  virtual Config config() const;
  // How many parameter values build() would create for inputs of these shapes, saturating
  // (a double: hostile configs ask for more than int64 holds). File readers check it against
  // what the file can hold before anything is allocated.
  virtual double params_needed(const std::vector<Shape>& inputs) const { return 0; }

  // Recomputation (Model::set_recompute): whether a second Training-mode forward on the same
  // inputs, with set_replaying(true), saves exactly what the first one saved and changes no
  // other state. False for random layers (Dropout) and for SyncBN (collective calls).
  virtual bool replayable() const { return true; }
  // While replaying_ (set by the executor), a Training-mode forward only recomputes what backward
  // needs: no state changes (BatchNormalization leaves its moving statistics alone).

  // Fused softmax cross-entropy (what Keras does inside fit after a softmax): a layer whose
  // output is a softmax says so, returns the pre-softmax logits of its last Training forward, and
  // while softmax_bypass_ (set by the training step) takes the gradient with respect to those
  // logits in backward.
  virtual bool ends_in_softmax() const { return false; }
  virtual Tensor softmax_logits() const { return {}; }
  // An Inference-mode forward that also returns the pre-softmax logits in `logits` (evaluate's
  // loss), keeping neither; the default returns no logits.
  virtual Tensor forward_with_logits(const std::vector<Tensor>& inputs, Tensor& logits) {
    logits = Tensor();
    return forward(inputs, Mode::Inference);
  }

  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  // Throws ConfigError naming the layer when absent.
  Param& param(std::string_view name);
  const Param& param(std::string_view name) const;
  int64_t count_params() const;
  int64_t count_trainable_params() const;
  bool built() const { return built_; }

  // Connects the layer: checks the input count and shapes (infer), builds it on first use, and
  // returns the symbolic output. A layer can be connected once.
  SymTensor operator()(const SymTensor& x);
  SymTensor operator()(const std::vector<SymTensor>& xs);

 protected:
  // Creates a parameter initialized by `init` (for weights of layers that are trainable_).
  Param& add_param(const std::string& name, Shape shape, const Initializer& init, int64_t fan_in,
                   int64_t fan_out, bool trainable);
  // "layer 'conv1' (Conv2D)": the prefix of every error message about this layer.
  std::string where() const;

  std::vector<Param> params_;
  bool trainable_ = true;
  bool softmax_bypass_ = false;
  bool replaying_ = false;

 private:
  // The executor's switches (replaying_, softmax_bypass_): set only by Model and, for the fused
  // softmax cross-entropy, its Trainer.
  friend class Model;
  friend class Trainer;
  void set_replaying(bool replaying) { replaying_ = replaying; }
  void set_softmax_bypass(bool bypass) { softmax_bypass_ = bypass; }
  std::string class_name_;
  std::string name_;
  bool built_ = false;
  bool connected_ = false;
};

// Typed handle returned by the layer factories: callable like a Keras layer, and gives access to
// the concrete layer.
// The concrete layer type may be incomplete where the handle is used: calls go through the base.
template <class L>
class LayerRef {
 public:
  // Instantiated by the factories, where L is complete.
  explicit LayerRef(std::shared_ptr<L> p) : base_(p), p_(std::move(p)) {}
  SymTensor operator()(const SymTensor& x) const { return (*base_)(x); }
  SymTensor operator()(const std::vector<SymTensor>& xs) const { return (*base_)(xs); }
  L* operator->() const { return p_.get(); }
  L& operator*() const { return *p_; }
  const std::shared_ptr<L>& ptr() const { return p_; }
  Layer& layer() const { return *base_; }

 private:
  std::shared_ptr<Layer> base_;
  std::shared_ptr<L> p_;
};

// ----------------------------------------------------------------------------------------------
// Options. Defaults are Keras's. `name` empty means automatic (Keras style: conv2d, conv2d_1, ...).

struct Conv2DOptions {
  int64_t filters = 0;
  std::array<int64_t, 2> kernel = {3, 3};
  std::array<int64_t, 2> strides = {1, 1};
  Padding padding = Padding::Valid;
  std::array<int64_t, 2> dilation = {1, 1};
  std::string activation = "linear";  // fused activation: linear, relu, sigmoid, tanh, softmax
  bool use_bias = true;
  Initializer kernel_initializer = Initializer::glorot_uniform();
  Initializer bias_initializer = Initializer::zeros();
  std::string name;
  bool trainable = true;
};

struct BatchNormalizationOptions {
  int64_t axis = -1;  // only the channel (last) axis is supported; 3 is accepted for 4-D inputs
  double momentum = 0.99;
  double epsilon = 1e-3;
  bool center = true;  // learn beta
  bool scale = true;   // learn gamma
  Initializer beta_initializer = Initializer::zeros();
  Initializer gamma_initializer = Initializer::ones();
  Initializer moving_mean_initializer = Initializer::zeros();
  Initializer moving_variance_initializer = Initializer::ones();
  std::string name;
  bool trainable = true;
};

struct Pool2DOptions {
  std::array<int64_t, 2> pool_size = {2, 2};
  std::array<int64_t, 2> strides = {0, 0};  // {0, 0}: the pool size (Keras strides=None)
  Padding padding = Padding::Valid;
  std::string name;
};

struct ZeroPadding2DOptions {
  std::array<int64_t, 4> padding = {1, 1, 1, 1};  // top, bottom, left, right
  std::string name;
};

struct DenseOptions {
  int64_t units = 0;
  std::string activation = "linear";  // linear, relu, sigmoid, tanh, softmax
  bool use_bias = true;
  Initializer kernel_initializer = Initializer::glorot_uniform();
  Initializer bias_initializer = Initializer::zeros();
  std::string name;
  bool trainable = true;
};

struct DropoutOptions {
  double rate = 0.5;
  std::optional<uint64_t> seed;  // drawn from the global generator when unset
  std::string name;
};

struct NamedOptions {
  std::string name;
};

struct LeakyReLUOptions {
  double negative_slope = 0.3;  // Keras's default (Keras 2: `alpha`); >= 0
  std::string name;
};

namespace layers {
class InputLayer;
class Conv2D;
class BatchNormalization;
class Activation;
class ReLU;
class LeakyReLU;
class Add;
class MaxPooling2D;
class AveragePooling2D;
class GlobalAveragePooling2D;
class GlobalMaxPooling2D;
class ZeroPadding2D;
class Flatten;
class Dense;
class Dropout;
}  // namespace layers

// A graph input of the given per-sample shape (an InputLayer named input_1, input_2, ...).
SymTensor Input(Shape shape, std::string name = "");

LayerRef<layers::Conv2D> Conv2D(Conv2DOptions o);
LayerRef<layers::BatchNormalization> BatchNormalization(BatchNormalizationOptions o = {});
// kind: relu, softmax, sigmoid, tanh, linear.
LayerRef<layers::Activation> Activation(std::string kind, std::string name = "");
LayerRef<layers::ReLU> ReLU(NamedOptions o = {});
// y = x for x > 0, negative_slope * x otherwise.
LayerRef<layers::LeakyReLU> LeakyReLU(LeakyReLUOptions o = {});
LayerRef<layers::Add> Add(NamedOptions o = {});
LayerRef<layers::MaxPooling2D> MaxPooling2D(Pool2DOptions o = {});
LayerRef<layers::AveragePooling2D> AveragePooling2D(Pool2DOptions o = {});
LayerRef<layers::GlobalAveragePooling2D> GlobalAveragePooling2D(NamedOptions o = {});
LayerRef<layers::GlobalMaxPooling2D> GlobalMaxPooling2D(NamedOptions o = {});
LayerRef<layers::ZeroPadding2D> ZeroPadding2D(ZeroPadding2DOptions o = {});
LayerRef<layers::Flatten> Flatten(NamedOptions o = {});
LayerRef<layers::Dense> Dense(DenseOptions o);
LayerRef<layers::Dropout> Dropout(DropoutOptions o = {});

}  // namespace resnet
