// Model: freezes a functional graph into an execution plan and runs it forward and backward.
#include "resnet/model.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "graph/conv_bn.h"
#include "graph/executor.h"
#include "graph/usage.h"
#include "ops/ops.h"

namespace resnet {

namespace {

// Keras's layer order (functional._map_graph_network): a depth-first walk from the outputs gives
// each layer a discovery index (pre-order) and a post-order node list; depths are the longest
// distance to an output; layers are sorted by decreasing depth, ties by discovery index. The walk
// is iterative so graphs thousands of layers deep are fine.
struct GraphOrder {
  std::vector<Node*> nodes;  // in final layer order
};

GraphOrder order_graph(const std::vector<SymTensor>& outputs) {
  std::unordered_map<Node*, int> discovery;
  std::unordered_set<Node*> finished;
  std::vector<Node*> post_order;

  struct Frame {
    Node* node;
    size_t next_input;
  };
  for (const SymTensor& out : outputs) {
    std::vector<Frame> stack;
    auto visit = [&](Node* n) {
      if (finished.count(n)) return;
      if (!discovery.count(n)) discovery.emplace(n, static_cast<int>(discovery.size()));
      stack.push_back({n, 0});
    };
    visit(out.node().get());
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.next_input < f.node->inputs.size()) {
        Node* in = f.node->inputs[f.next_input++].node().get();
        visit(in);
        continue;
      }
      Node* done = f.node;
      stack.pop_back();
      if (finished.insert(done).second) post_order.push_back(done);
    }
  }

  std::unordered_map<Node*, int> depth;
  for (auto it = post_order.rbegin(); it != post_order.rend(); ++it) {
    Node* n = *it;
    const int d = depth[n];  // 0 when first seen (an output)
    for (const SymTensor& in : n->inputs) {
      int& pd = depth[in.node().get()];
      pd = std::max(pd, d + 1);
    }
  }
  GraphOrder g;
  g.nodes = post_order;
  std::stable_sort(g.nodes.begin(), g.nodes.end(), [&](Node* a, Node* b) {
    if (depth[a] != depth[b]) return depth[a] > depth[b];
    return discovery[a] < discovery[b];
  });
  return g;
}

}  // namespace

Model::Model(SymTensor input, SymTensor output, std::string name)
    : Model(std::vector<SymTensor>{std::move(input)}, std::vector<SymTensor>{std::move(output)},
            std::move(name)) {}

Model::Model(std::vector<SymTensor> inputs, std::vector<SymTensor> outputs, std::string name)
    : name_(std::move(name)), concurrency_(std::make_unique<Concurrency>()) {
  if (inputs.empty() || outputs.empty()) {
    throw ConfigError(fmt::format("model '{}': needs at least one input and one output", name_));
  }
  for (const SymTensor& t : inputs) {
    if (!t.defined()) throw ConfigError(fmt::format("model '{}': undefined input tensor", name_));
    if (!t.node()->inputs.empty() || t.layer().class_name() != "InputLayer") {
      throw ConfigError(fmt::format("model '{}': input '{}' ({}) is not an Input()", name_,
                                    t.layer().name(), t.layer().class_name()));
    }
  }
  for (const SymTensor& t : outputs) {
    if (!t.defined()) throw ConfigError(fmt::format("model '{}': undefined output tensor", name_));
  }

  GraphOrder order = order_graph(outputs);
  std::unordered_map<Node*, int> index;
  std::map<std::string, const Layer*> by_name;
  for (Node* n : order.nodes) {
    auto [it, fresh] = by_name.emplace(n->layer->name(), n->layer.get());
    if (!fresh) {
      throw ConfigError(fmt::format(
          "model '{}': duplicate layer name '{}' (used by a {} and a {}); layer names must be "
          "unique",
          name_, n->layer->name(), it->second->class_name(), n->layer->class_name()));
    }
    index.emplace(n, static_cast<int>(steps_.size()));
    Step s{n->layer.get(), {}, 0};
    for (const SymTensor& in : n->inputs) s.inputs.push_back(index.at(in.node().get()));
    steps_.push_back(std::move(s));
    layers_.push_back(n->layer);
    shapes_.push_back(n->shape);
  }
  for (Step& s : steps_) {
    for (int p : s.inputs) steps_[p].consumers++;
  }
  for (const SymTensor& t : inputs) {
    auto it = index.find(t.node().get());
    if (it == index.end()) {
      throw ConfigError(fmt::format("model '{}': input '{}' is not connected to any output", name_,
                                    t.layer().name()));
    }
    input_steps_.push_back(it->second);
  }
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i].inputs.empty() && std::find(input_steps_.begin(), input_steps_.end(),
                                              static_cast<int>(i)) == input_steps_.end()) {
      throw ConfigError(fmt::format(
          "model '{}': the outputs depend on input '{}', which is not among the model inputs",
          name_, steps_[i].layer->name()));
    }
  }
  for (const SymTensor& t : outputs) output_steps_.push_back(index.at(t.node().get()));
}

Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Layer& Model::layer(std::string_view name) const {
  for (const auto& l : layers_) {
    if (l->name() == name) return *l;
  }
  throw ConfigError(fmt::format("model '{}' has no layer named '{}'", name_, name));
}

std::vector<std::string> Model::inbound(const Layer& layer) const {
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i].layer != &layer) continue;
    std::vector<std::string> names;
    for (int p : steps_[i].inputs) names.push_back(steps_[p].layer->name());
    return names;
  }
  throw ConfigError(fmt::format("layer '{}' is not part of model '{}'", layer.name(), name_));
}

std::vector<std::string> Model::output_names() const {
  std::vector<std::string> names;
  for (int o : output_steps_) names.push_back(steps_[o].layer->name());
  return names;
}

std::vector<Shape> Model::input_shapes() const {
  std::vector<Shape> v;
  for (int i : input_steps_) v.push_back(shapes_[i]);
  return v;
}

std::vector<Shape> Model::output_shapes() const {
  std::vector<Shape> v;
  for (int i : output_steps_) v.push_back(shapes_[i]);
  return v;
}

Shape Model::output_shape(const Layer& layer) const {
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (steps_[i].layer == &layer) return shapes_[i];
  }
  throw ConfigError(fmt::format("layer '{}' is not part of model '{}'", layer.name(), name_));
}

std::vector<Param*> Model::params() {
  std::vector<Param*> v;
  for (auto& l : layers_) {
    for (Param& p : l->params()) v.push_back(&p);
  }
  return v;
}

std::vector<Param*> Model::trainable_params() {
  std::vector<Param*> v;
  for (auto& l : layers_) {
    if (!l->trainable()) continue;
    for (Param& p : l->params()) {
      if (p.trainable) v.push_back(&p);
    }
  }
  return v;
}

int64_t Model::count_params() const {
  int64_t n = 0;
  for (const auto& l : layers_) n += l->count_params();
  return n;
}

int64_t Model::count_trainable_params() const {
  int64_t n = 0;
  for (const auto& l : layers_) n += l->count_trainable_params();
  return n;
}

void Model::freeze_until(std::string_view name) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive, "freeze_until");
  Layer& last = layer(name);  // throws when absent
  for (auto& l : layers_) {
    l->set_trainable(false);
    if (l.get() == &last) break;
  }
}

// ---------------------------------------------------------------------------------------------
void Model::check_inputs(const std::vector<Tensor>& inputs) const {
  if (inputs.size() != input_steps_.size()) {
    throw ShapeError(fmt::format("model '{}' takes {} input(s), got {}", name_, input_steps_.size(),
                                 inputs.size()));
  }
  for (size_t k = 0; k < inputs.size(); ++k) {
    const int s = input_steps_[k];
    const Tensor& x = inputs[k];
    if (!x.defined() || x.rank() != shapes_[s].rank() + 1 || x.shape().drop_front() != shapes_[s]) {
      throw ShapeError(fmt::format("model '{}': input '{}' expects shape {}, got {}", name_,
                                   steps_[s].layer->name(), shapes_[s].keras_str(),
                                   x.defined() ? x.shape().str() : "undefined"));
    }
    if (x.dtype() != DType::F32) {
      throw ShapeError(fmt::format("model '{}': input '{}' must be float32, got {}", name_,
                                   steps_[s].layer->name(), dtype_name(x.dtype())));
    }
  }
}

// Inference keeps its state in locals (values, uses, the count) and in the plan's caches, which
// are filled under the plan's lock: many threads may run it at once.
std::vector<Tensor> Model::infer(const std::vector<Tensor>& inputs, const Layer* logits_of,
                                 Tensor* logits) {
  check_inputs(inputs);
  if (fuse_inference_) return forward_fused(inputs, logits_of, logits);
  std::vector<Tensor> values(steps_.size());
  std::vector<int> uses(steps_.size());
  for (size_t i = 0; i < steps_.size(); ++i) uses[i] = steps_[i].consumers;
  for (int o : output_steps_) uses[o]++;  // outputs stay alive until returned
  graph_detail::LiveCount count;
  graph_detail::run_steps(
      0, static_cast<int>(steps_.size()), 0, values, uses, [&](int i) { return &steps_[i].inputs; },
      [&](int i, std::vector<Tensor>& ins) {
        return run_step(i, ins, inputs, Mode::Inference, logits_of, logits);
      },
      [](int) {}, count);
  concurrency_->peak_live.store(count.peak);
  std::vector<Tensor> outs;
  for (int o : output_steps_) outs.push_back(ops::plain(values[o]));
  return outs;
}

std::vector<Tensor> Model::forward(const std::vector<Tensor>& inputs, Mode mode) {
  if (mode == Mode::Inference) {
    graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Shared, "forward (inference)");
    return infer(inputs);
  }
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive, "forward (training)");
  check_inputs(inputs);
  std::vector<Tensor> values(steps_.size());
  std::vector<int> uses(steps_.size());
  for (size_t i = 0; i < steps_.size(); ++i) uses[i] = steps_[i].consumers;
  for (int o : output_steps_) uses[o]++;  // outputs stay alive until returned

  // Training: the weights change every step, so their reordered copies are not kept, and the
  // inference plan's folded copies (from an evaluation) are dropped.
  ops::TransientWeightsScope transient_weights;
  release_plan_weights();
  // Recomputation: which stretch, if any, starts (its input) or ends at each step.
  const bool recomputing = recompute_ != Recompute::Off;
  std::vector<int> starts_at, ends_at;
  stretches_.clear();  // (re)planned below when recomputing
  if (recomputing) {
    plan_recompute();
    starts_at.assign(steps_.size(), -1);
    ends_at.assign(steps_.size(), -1);
    for (size_t k = 0; k < stretches_.size(); ++k) {
      starts_at[stretches_[k].first] = static_cast<int>(k);
      ends_at[stretches_[k].last] = static_cast<int>(k);
    }
  }

  graph_detail::LiveCount count;
  graph_detail::run_steps(
      0, static_cast<int>(steps_.size()), 0, values, uses, [&](int i) { return &steps_[i].inputs; },
      [&](int i, std::vector<Tensor>& ins) { return run_step(i, ins, inputs, mode); },
      [&](int i) {
        if (!recomputing) return;
        if (ends_at[i] >= 0) {
          // Drop what the stretch's layers saved; backward replays them from its input.
          const Stretch& st = stretches_[ends_at[i]];
          for (int j = st.first + 1; j <= st.last; ++j) steps_[j].layer->clear_saved();
        }
        if (starts_at[i] >= 0) stretches_[starts_at[i]].input = values[i];
      },
      count);
  concurrency_->peak_live.store(count.peak);
  has_forward_ = true;
  std::vector<Tensor> outs;
  for (int o : output_steps_) outs.push_back(ops::plain(values[o]));
  return outs;
}

int64_t Model::last_peak_live_tensors() const { return concurrency_->peak_live.load(); }

void Model::set_intra_op_threads(int n) {
  if (n < 0) {
    throw ConfigError(fmt::format(
        "model '{}': intra-op threads must be 0 (the caller's) or more, got {}", name_, n));
  }
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive,
                             "set_intra_op_threads");
  concurrency_->intra_op_threads.store(n);
}

int Model::intra_op_threads() const { return concurrency_->intra_op_threads.load(); }

void Model::set_inference_fusion(bool on) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive,
                             "set_inference_fusion");
  fuse_inference_ = on;
}

Tensor Model::predict(const Tensor& x, int64_t batch_size) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Shared, "predict");
  if (batch_size < 1)
    throw ConfigError(fmt::format("batch size must be positive, got {}", batch_size));
  if (!x.defined() || x.rank() < 1)
    throw ShapeError(fmt::format("model '{}': predict needs a batch", name_));
  const int64_t n = x.shape()[0];
  const Tensor xf = ops::plain(x).to_f32();
  const int64_t per = n > 0 ? xf.numel() / n : 0;
  Tensor result;
  for (int64_t b = 0; b < n; b += batch_size) {
    const int64_t e = std::min(n, b + batch_size);
    std::vector<int64_t> dims = xf.shape().dims();
    dims[0] = e - b;
    Tensor chunk = Tensor::empty(Shape(dims));
    std::copy_n(xf.f32() + b * per, (e - b) * per, chunk.f32());
    if (output_steps_.size() != 1) {
      throw ConfigError(
          fmt::format("model '{}' has {} outputs; predict takes one", name_, output_steps_.size()));
    }
    Tensor y = infer({chunk})[0];
    if (!result.defined()) {
      std::vector<int64_t> rd = y.shape().dims();
      rd[0] = n;
      result = Tensor::empty(Shape(rd));
    }
    const int64_t yper = y.numel() / (e - b);
    std::copy_n(y.f32(), y.numel(), result.f32() + b * yper);
  }
  return result;
}

Tensor Model::forward(const Tensor& input, Mode mode) {
  if (output_steps_.size() != 1) {
    throw ConfigError(fmt::format("model '{}' has {} outputs; use the vector form of forward",
                                  name_, output_steps_.size()));
  }
  return forward(std::vector<Tensor>{input}, mode)[0];
}

std::vector<Tensor> Model::backward(const std::vector<Tensor>& output_grads, bool input_grads) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive, "backward");
  if (!has_forward_) {
    throw ConfigError(
        fmt::format("model '{}': backward needs a preceding forward in Training mode", name_));
  }
  if (output_grads.size() != output_steps_.size()) {
    throw ShapeError(fmt::format("model '{}' has {} output(s), got {} gradient(s)", name_,
                                 output_steps_.size(), output_grads.size()));
  }
  const size_t n = steps_.size();
  // up[i]: the gradient of step i's output is needed, because step i or one of its ancestors has
  // parameters to train (or is an input whose gradient was asked for).
  std::vector<bool> up(n, false);
  for (size_t i = 0; i < n; ++i) {
    const Layer& l = *steps_[i].layer;
    bool need = l.trainable() && l.count_trainable_params() > 0;
    if (input_grads && steps_[i].inputs.empty()) need = true;
    for (int p : steps_[i].inputs) need = need || up[p];
    up[i] = need;
  }

  std::vector<Tensor> grads(n);
  for (size_t k = 0; k < output_steps_.size(); ++k) {
    const int o = output_steps_[k];
    const Tensor& g = output_grads[k];
    if (!g.defined() || g.rank() != shapes_[o].rank() + 1 || g.shape().drop_front() != shapes_[o]) {
      throw ShapeError(
          fmt::format("model '{}': gradient for output '{}' must have shape {}, got {}", name_,
                      steps_[o].layer->name(), shapes_[o].keras_str(),
                      g.defined() ? g.shape().str() : "undefined"));
    }
    grads[o] = grads[o].defined() ? ops::add({grads[o], g}) : g;
  }

  ops::TransientWeightsScope transient_weights;
  std::vector<int> ends_at(n, -1);
  for (size_t k = 0; k < stretches_.size(); ++k) ends_at[stretches_[k].last] = static_cast<int>(k);

  std::vector<Tensor> input_results(input_steps_.size());
  for (size_t ii = n; ii-- > 0;) {
    Step& s = steps_[ii];
    if (ends_at[ii] >= 0) {
      // A recomputed stretch: run its forward again when backward goes through it (gradients
      // enter a stretch only through its last step).
      Stretch& st = stretches_[ends_at[ii]];
      if (up[ii] && grads[ii].defined()) replay(st);
      st.input = Tensor();
    }
    if (s.inputs.empty()) {
      const auto it = std::find(input_steps_.begin(), input_steps_.end(), static_cast<int>(ii));
      if (it != input_steps_.end() && input_grads) {
        input_results[it - input_steps_.begin()] = ops::plain(grads[ii]);
      }
      grads[ii] = Tensor();
      s.layer->clear_saved();
      grad_ready(*s.layer);
      continue;
    }
    if (!up[ii] || !grads[ii].defined()) {
      grads[ii] = Tensor();
      s.layer->clear_saved();
      grad_ready(*s.layer);
      continue;
    }
    std::vector<bool> need;
    for (int p : s.inputs) need.push_back(up[p]);
    const auto hook_t0 = timing_layers() ? std::chrono::steady_clock::now()
                                         : std::chrono::steady_clock::time_point{};
    std::vector<Tensor> dx = s.layer->backward(grads[ii], need);
    grads[ii] = Tensor();
    s.layer->clear_saved();
    for (size_t k = 0; k < s.inputs.size(); ++k) {
      if (!need[k]) continue;
      const int p = s.inputs[k];
      if (k >= dx.size() || !dx[k].defined()) {
        throw BackendError(fmt::format("{} '{}' returned no gradient for input {}",
                                       s.layer->class_name(), s.layer->name(), k));
      }
      // A tensor feeding several layers (the residual shortcut) receives the sum of their
      // gradients.
      grads[p] = grads[p].defined() ? ops::add({grads[p], dx[k]}) : dx[k];
    }
    if (timing_layers()) {
      layer_timed(
          *s.layer, true,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - hook_t0).count());
    }
    grad_ready(*s.layer);
  }
  has_forward_ = false;
  stretches_.clear();
  return input_results;
}

Tensor Model::timed_forward(Layer& layer, const std::vector<Tensor>& inputs, Mode mode) {
  if (!timing_layers()) return layer.forward(inputs, mode);
  const auto t0 = std::chrono::steady_clock::now();
  Tensor y = layer.forward(inputs, mode);
  layer_timed(layer, false,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return y;
}

namespace {
template <class Hook>
void remove_hook(std::vector<std::pair<Model::HookId, Hook>>& hooks, Model::HookId id) {
  hooks.erase(
      std::remove_if(hooks.begin(), hooks.end(), [id](const auto& h) { return h.first == id; }),
      hooks.end());
}
}  // namespace

Model::HookId Model::add_layer_hook(LayerHook hook) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive, "add_layer_hook");
  layer_hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}
void Model::remove_layer_hook(HookId id) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive, "remove_layer_hook");
  remove_hook(layer_hooks_, id);
}
Model::HookId Model::add_grad_ready_hook(GradReadyHook hook) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive, "add_grad_ready_hook");
  grad_ready_hooks_.emplace_back(next_hook_id_, std::move(hook));
  return next_hook_id_++;
}
void Model::remove_grad_ready_hook(HookId id) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive,
                             "remove_grad_ready_hook");
  remove_hook(grad_ready_hooks_, id);
}

void Model::layer_timed(const Layer& layer, bool backward, double seconds) {
  for (const auto& [id, hook] : layer_hooks_) hook(layer, backward, seconds);
}
void Model::grad_ready(Layer& layer) {
  for (const auto& [id, hook] : grad_ready_hooks_) hook(layer);
}

void Model::set_recompute(Recompute mode) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive, "set_recompute");
  recompute_ = mode;
  stretches_.clear();
}

// Full: cut points. Step i is a cut when nothing computed before i is used after i, so the
// stretch between two cuts depends on the rest of the graph only through the output of its first
// step. Stretches hold at least kMinStretch steps (a chain of single layers is all cuts); the
// tail after the last stretch (loss-side layers, the outputs) is never recomputed.
// Pointwise: stretches {r, conv, bn} of three consecutive steps where the convolution is 1x1
// and reads only r, and the batch norm reads only the convolution and is its only consumer:
// replaying conv and bn needs only r's output, which r (a ReLU, or the block input) keeps
// anyway, and costs a 1x1 convolution.
void Model::plan_recompute() {
  constexpr int kMinStretch = 6;
  const int n = static_cast<int>(steps_.size());
  std::vector<int> last_use(n, -1);
  for (int j = 0; j < n; ++j) {
    for (int p : steps_[j].inputs) {
      last_use[p] = std::max(last_use[p], j);
    }
  }
  for (int o : output_steps_) last_use[o] = n;  // outputs live to the end
  if (recompute_ == Recompute::Pointwise) {
    // 1x1 convolution -> batch norm pairs (graph/conv_bn.h) that run back to back right after
    // the convolution's input, whose batch norm output is not a model output: the stretch is
    // (input, conv, bn].
    for (const auto& [conv_step, j] : conv_bn_steps()) {
      const Step& conv = steps_[conv_step];
      const Shape& k = conv.layer->param("kernel").value.shape();
      const bool pair = conv_step == j - 1 && j >= 2 && k[0] == 1 && k[1] == 1 && last_use[j] < n &&
                        conv.inputs.size() == 1 && conv.inputs[0] == j - 2 &&
                        conv.layer->replayable() && steps_[j].layer->replayable();
      const bool free = stretches_.empty() || stretches_.back().last < j - 2;
      if (pair && free) stretches_.push_back({j - 2, j, Tensor()});
    }
    return;
  }
  int first = -1, prefix = -1;  // prefix: the latest use of anything before step i
  for (int i = 0; i < n; ++i) {
    if (prefix <= i) {
      if (first < 0) {
        first = i;
      } else if (i - first >= kMinStretch) {
        bool replayable = true;
        for (int j = first + 1; j <= i && replayable; ++j) {
          const Step& s = steps_[j];
          replayable = !s.inputs.empty() && last_use[j] < n && s.layer->replayable();
        }
        if (replayable) stretches_.push_back({first, i, Tensor()});
        first = i;
      }
    }
    prefix = std::max(prefix, last_use[i]);
  }
}

const std::vector<std::pair<int, int>>& Model::conv_bn_steps() {
  if (!conv_bn_found_) {
    for (const graph_detail::ConvBn& p : graph_detail::conv_bn_pairs(*this)) {
      conv_bn_steps_.emplace_back(p.conv, p.bn);
    }
    conv_bn_found_ = true;
  }
  return conv_bn_steps_;
}

void Model::replay(Stretch& st) {
  // Steps (a, b] again from the kept output of step a, in the one forward loop; every step of a
  // stretch takes its inputs from inside it (plan_recompute), and nothing of it is kept but what
  // its layers save for backward (the last step's output is dropped too).
  const int a = st.first, b = st.last;
  std::vector<Tensor> local(b - a + 1);
  std::vector<int> uses(b - a + 1, 0);
  for (int j = a + 1; j <= b; ++j) {
    for (int p : steps_[j].inputs) ++uses[p - a];
  }
  local[0] = std::move(st.input);
  graph_detail::LiveCount count;
  graph_detail::run_steps(
      a + 1, b + 1, a, local, uses, [&](int j) { return &steps_[j].inputs; },
      [&](int j, std::vector<Tensor>& ins) {
        struct Replaying {  // set for this forward only, also when it throws
          Layer& layer;
          explicit Replaying(Layer& l) : layer(l) { layer.set_replaying(true); }
          ~Replaying() { layer.set_replaying(false); }
        } replaying(*steps_[j].layer);
        return timed_forward(*steps_[j].layer, ins, Mode::Training);
      },
      [](int) {}, count);
}

Tensor Model::run_step(int i, const std::vector<Tensor>& ins, const std::vector<Tensor>& inputs,
                       Mode mode, const Layer* logits_of, Tensor* logits) {
  Layer& layer = *steps_[i].layer;
  if (&layer == logits_of && logits != nullptr) {
    const auto t0 = timing_layers() ? std::chrono::steady_clock::now()
                                    : std::chrono::steady_clock::time_point{};
    Tensor y = layer.forward_with_logits(ins, *logits);
    if (timing_layers()) {
      layer_timed(layer, false,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return y;
  }
  if (!steps_[i].inputs.empty()) return timed_forward(layer, ins, mode);
  const auto it = std::find(input_steps_.begin(), input_steps_.end(), i);
  return timed_forward(layer, {inputs[it - input_steps_.begin()]}, mode);
}

Tensor Model::backward(const Tensor& output_grad, bool input_grad) {
  std::vector<Tensor> r = backward(std::vector<Tensor>{output_grad}, input_grad);
  return r.empty() ? Tensor() : r[0];
}

}  // namespace resnet
