// The inference plan of Model: forward in Mode::Inference with convolution chains fused.
//
// Built once per model (the graph is static; shapes only change the primitives, which the ops
// cache per shape). A group is a Conv2D (linear or relu activation) followed, each link being the
// only consumer of the previous one and not a model output, by
//   [BatchNormalization] then [ReLU | Activation('relu')]            or
//   [BatchNormalization] then Add (two inputs) then [ReLU | Activation('relu')]
// and runs as one ops::conv2d_forward_fused call: the batch norm folded into the kernel and bias
// (ops::fold_batchnorm, redone whenever one of the six source tensors changed: storage or
// version), the Add as a sum post-op on the other input (the residual), the ReLU as an eltwise
// post-op. A group runs at the position of its last layer, when the residual is ready too. The
// residual's buffer is reused for the output when the group is its last consumer and it is the
// output of another group (a fresh buffer nobody else holds). Every other layer runs as in
// Model::forward.
//
// Many threads may run the plan at once (docs/concurrency.md): it is built once (std::call_once),
// a call keeps its activations in locals, and the per-group caches (folded weights, prepared
// convolutions) are looked up and filled under the plan's lock, then run outside it. Refolding
// makes fresh tensors rather than overwriting, so a convolution another thread still runs keeps
// the weights it was prepared with.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "graph/conv_bn.h"
#include "graph/executor.h"
#include "graph/usage.h"
#include "layers/activation.h"
#include "layers/batch_normalization.h"
#include "layers/conv2d.h"
#include "ops/ops.h"
#include "resnet/model.h"

namespace resnet {

// (storage id, version) of up to six tensors; unused entries stay (0, 0).
using Signatures = std::array<std::pair<uint64_t, uint64_t>, 6>;

struct Model::InferencePlan {
  struct Group {
    int conv = -1, bn = -1, add = -1, relu = -1;  // step indices, -1 when absent
    int residual = -1;                            // step feeding the Add's other input
    bool relu_post = false;
    layers::Conv2D* conv_layer = nullptr;
    layers::BatchNormalization* bn_layer = nullptr;
    // The params, looked up once (a layer's params do not move after it is built).
    Param *kernel = nullptr, *bias = nullptr;
    Param *gamma = nullptr, *beta = nullptr, *mean = nullptr, *var = nullptr;
    Tensor w, b;             // folded kernel and bias (with bn)
    Signatures folded_from;  // (storage id, version) of the sources
    // The convolution resolved per input shape and intra-op thread count (callers of several
    // batch sizes or thread counts each keep theirs), for the current weights.
    struct Prepared {
      Shape input;
      int threads = 0;
      Signatures from;  // the (folded) weights it holds
      ops::PreparedConv conv;
    };
    std::vector<Prepared> prepared;
  };
  static constexpr size_t kMaxPrepared = 8;  // per group; the oldest goes first
  std::mutex mu;                             // guards the groups' caches
  std::vector<Group> groups;
  std::vector<int> group_at;   // step -> index of the group that runs there (its last layer)
  std::vector<bool> absorbed;  // step runs inside a group
};

namespace {

bool is_relu(const Layer& l) {
  if (l.class_name() == "ReLU") return true;  // ReLU() without options: max(x, 0)
  if (const auto* a = dynamic_cast<const layers::Activation*>(&l)) {
    return a->kind() == layers::ActivationKind::Relu;
  }
  return false;
}

std::pair<uint64_t, uint64_t> signature(const Tensor& t) {
  return t.defined() ? std::pair<uint64_t, uint64_t>{t.storage_id(), t.version()}
                     : std::pair<uint64_t, uint64_t>{0, 0};
}

}  // namespace

void Model::release_plan_weights() {
  if (!plan_) return;
  std::lock_guard lock(plan_->mu);
  for (InferencePlan::Group& g : plan_->groups) {
    g.w = Tensor();
    g.b = Tensor();
    g.folded_from = {};
    g.prepared.clear();
  }
}

Model::InferencePlan& Model::plan() {
  std::call_once(concurrency_->plan_once, [&] {
    const size_t n = steps_.size();
    auto plan = std::make_shared<InferencePlan>();
    plan->group_at.assign(n, -1);
    plan->absorbed.assign(n, false);
    std::vector<std::vector<int>> consumers(n);
    for (size_t i = 0; i < n; ++i) {
      for (int p : steps_[i].inputs) consumers[p].push_back(static_cast<int>(i));
    }
    std::vector<bool> is_output(n, false);
    for (int o : output_steps_) is_output[o] = true;
    // The single consumer of step i, when i is not a model output and feeds exactly one input
    // slot of one step that no group has taken yet; else -1.
    auto sole_consumer = [&](int i) {
      if (is_output[i] || consumers[i].size() != 1) return -1;
      const int c = consumers[i][0];
      return plan->absorbed[c] ? -1 : c;
    };
    std::vector<int> bn_of(n, -1);  // the batch norm of a convolution (graph/conv_bn.h)
    for (const auto& [conv, bn] : conv_bn_steps()) bn_of[conv] = bn;
    for (size_t i = 0; i < n; ++i) {
      auto* conv = dynamic_cast<layers::Conv2D*>(steps_[i].layer);
      if (conv == nullptr || plan->absorbed[i]) continue;
      const std::string& act = conv->options().activation;
      if (act != "linear" && act != "relu") continue;
      InferencePlan::Group g;
      g.conv = static_cast<int>(i);
      g.conv_layer = conv;
      int cur = g.conv;
      if (act == "relu") {
        g.relu_post = true;
      } else {
        if (bn_of[i] >= 0) {
          g.bn = bn_of[i];
          g.bn_layer = dynamic_cast<layers::BatchNormalization*>(steps_[g.bn].layer);
          cur = g.bn;
        }
        const int c = sole_consumer(cur);
        if (c >= 0 && is_relu(*steps_[c].layer)) {
          g.relu = c;
          g.relu_post = true;
          cur = c;
        } else if (c >= 0 && steps_[c].layer->class_name() == "Add" &&
                   steps_[c].inputs.size() == 2) {
          g.add = c;
          g.residual = steps_[c].inputs[0] == cur ? steps_[c].inputs[1] : steps_[c].inputs[0];
          cur = c;
          const int r = sole_consumer(cur);
          if (r >= 0 && is_relu(*steps_[r].layer)) {
            g.relu = r;
            g.relu_post = true;
            cur = r;
          }
        }
      }
      if (g.bn < 0 && g.add < 0 && !g.relu_post) continue;  // a lone convolution: run as is
      for (int s : {g.conv, g.bn, g.add, g.relu}) {
        if (s >= 0) plan->absorbed[s] = true;
      }
      g.kernel = &conv->param("kernel");
      if (conv->options().use_bias) g.bias = &conv->param("bias");
      if (g.bn_layer != nullptr) {
        g.gamma = &g.bn_layer->param("gamma");
        g.beta = &g.bn_layer->param("beta");
        g.mean = &g.bn_layer->param("moving_mean");
        g.var = &g.bn_layer->param("moving_variance");
      }
      plan->group_at[cur] = static_cast<int>(plan->groups.size());
      plan->groups.push_back(std::move(g));
    }
    plan_ = std::move(plan);
  });
  return *plan_;
}

std::vector<Tensor> Model::forward_fused(const std::vector<Tensor>& inputs, const Layer* logits_of,
                                         Tensor* logits) {
  const size_t n = steps_.size();
  InferencePlan& plan = this->plan();

  std::vector<Tensor> values(n);
  std::vector<int> uses(n);
  for (size_t i = 0; i < n; ++i) uses[i] = steps_[i].consumers;
  for (int o : output_steps_) uses[o]++;

  // A group runs at its last step and consumes the convolution's input and the residual; the
  // other steps of a group do not run; every other step runs as in Model::forward.
  std::vector<std::vector<int>> group_inputs(plan.groups.size());
  for (size_t k = 0; k < plan.groups.size(); ++k) {
    const InferencePlan::Group& g = plan.groups[k];
    group_inputs[k].push_back(steps_[g.conv].inputs[0]);
    if (g.residual >= 0) group_inputs[k].push_back(g.residual);
  }
  auto inputs_of = [&](int i) -> const std::vector<int>* {
    if (plan.group_at[i] >= 0) return &group_inputs[plan.group_at[i]];
    return plan.absorbed[i] ? nullptr : &steps_[i].inputs;
  };
  auto run = [&](int i, std::vector<Tensor>& ins) -> Tensor {
    const int gi = plan.group_at[i];
    if (gi < 0) return run_step(i, ins, inputs, Mode::Inference, logits_of, logits);
    const auto t0 = timing_layers() ? std::chrono::steady_clock::now()
                                    : std::chrono::steady_clock::time_point{};
    InferencePlan::Group& g = plan.groups[gi];
    layers::Conv2D& conv = *g.conv_layer;
    const int xin = steps_[g.conv].inputs[0];
    const Tensor& x = ins[0];
    const ops::ConvGeom geom = conv.geometry(x.shape()[0], x.shape().drop_front());
    Tensor residual;
    bool reuse = false;
    if (g.residual >= 0) {
      residual = ins[1];
      reuse = uses[g.residual] == 1 && plan.group_at[g.residual] >= 0 && g.residual != xin;
    }
    ops::PreparedConv prepared;
    {
      std::lock_guard lock(plan.mu);
      const Tensor& kernel = g.kernel->value;
      const Tensor bias = g.bias != nullptr ? g.bias->value : Tensor();
      Tensor w = kernel, b = bias;
      if (g.bn >= 0) {
        const Tensor& gamma = g.gamma->value;
        const Tensor& beta = g.beta->value;
        const Tensor& mean = g.mean->value;
        const Tensor& var = g.var->value;
        const Signatures from = {signature(kernel), signature(bias), signature(gamma),
                                 signature(beta),   signature(mean), signature(var)};
        if (from != g.folded_from || !g.w.defined()) {
          Tensor fw, fb;  // fresh, not over the old ones (see the top of this file)
          ops::fold_batchnorm(kernel, bias, gamma, beta, mean, var, g.bn_layer->options().epsilon,
                              fw, fb);
          g.w = fw;
          g.b = fb;
          g.folded_from = from;
        }
        w = g.w;
        b = g.b;
      }
      // Remade when the (folded) weights changed; weights that change every call (inference
      // between training steps without batch norm) are prepared every call.
      const Signatures from = {signature(w), signature(b)};
      const int threads = ops::num_threads();
      auto& cache = g.prepared;
      cache.erase(
          std::remove_if(cache.begin(), cache.end(),
                         [&](const InferencePlan::Group::Prepared& p) { return p.from != from; }),
          cache.end());
      auto hit = std::find_if(cache.begin(), cache.end(), [&](const auto& p) {
        return p.input == x.shape() && p.threads == threads;
      });
      if (hit == cache.end()) {
        if (cache.size() >= InferencePlan::kMaxPrepared) cache.erase(cache.begin());
        cache.push_back({x.shape(), threads, from,
                         ops::PreparedConv(w, b, geom, g.residual >= 0, g.relu_post)});
        hit = cache.end() - 1;
      }
      prepared = hit->conv;
    }
    Tensor y = prepared(x, residual, reuse);
    if (timing_layers()) {
      layer_timed(conv, false,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return y;
  };
  graph_detail::LiveCount count;
  graph_detail::run_steps(
      0, static_cast<int>(n), 0, values, uses, inputs_of, run, [](int) {}, count);
  concurrency_->peak_live.store(count.peak);
  std::vector<Tensor> outs;
  for (int o : output_steps_) outs.push_back(ops::plain(values[o]));
  return outs;
}

}  // namespace resnet
