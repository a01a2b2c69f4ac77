// The Keras training loop (compile, train_step, fit, evaluate) in Trainer, and Model's training
// methods as thin calls to it.
#include "train/trainer.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <unordered_map>

#include "dist/comm.h"
#include "dist/data_parallel.h"
#include "graph/usage.h"
#include "ops/ops.h"
#include "resnet/dist.h"
#include "resnet/model.h"

namespace resnet {

namespace {
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool is_terminal(std::ostream* out) { return out == &std::cout && ::isatty(::fileno(stdout)); }

// Metric key order as Keras prints it: loss, then metrics, then the validation counterparts.
std::vector<std::string> key_order(const Trainer& st, bool with_val) {
  std::vector<std::string> keys = {"loss"};
  if (st.accuracy) keys.push_back("accuracy");
  if (st.top_k) keys.push_back("top_k_categorical_accuracy");
  if (st.mae) keys.push_back("mae");
  if (with_val) {
    const size_t n = keys.size();
    for (size_t i = 0; i < n; ++i) keys.push_back("val_" + keys[i]);
  }
  return keys;
}

std::vector<int64_t> iota_order(int64_t n) {
  std::vector<int64_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}
}  // namespace

Trainer::Trainer(const Model& model, CompileOptions o) {
  optimizer = o.optimizer ? o.optimizer : make_optimizer("rmsprop");
  loss = loss_from_name(o.loss);
  for (const std::string& m : o.metrics) {
    if (m == "accuracy" || m == "acc" || m == "categorical_accuracy" ||
        m == "sparse_categorical_accuracy") {
      accuracy = true;
    } else if (m == "top_k_categorical_accuracy" || m == "top5") {
      top_k = true;
    } else if (m == "mae" || m == "mean_absolute_error") {
      mae = true;
    } else {
      throw ConfigError(
          fmt::format("model '{}': unknown metric '{}' (accuracy, "
                      "top_k_categorical_accuracy, mae)",
                      model.name(), m));
    }
  }
  const std::vector<std::string> outputs = model.output_names();
  if (outputs.size() != 1) {
    throw ConfigError(fmt::format("model '{}': training supports one output, it has {}",
                                  model.name(), outputs.size()));
  }
  Layer& out = model.layer(outputs[0]);
  const bool ce =
      loss == LossKind::CategoricalCrossentropy || loss == LossKind::SparseCategoricalCrossentropy;
  if (ce && out.ends_in_softmax()) softmax_output = &out;
  options = std::move(o);
  options.optimizer = optimizer;
}

namespace {
// Loss of a batch from the model's output, through the logits when the output is a softmax.
// `logits`: the softmax layer's, of this forward (undefined: none).
LossValue batch_loss(const Trainer& st, const Tensor& output, const Tensor& targets,
                     const Tensor& logits) {
  if (st.softmax_output != nullptr && logits.defined()) {
    return compute_loss(st.loss, ops::plain(logits), targets, /*from_logits=*/true);
  }
  return compute_loss(st.loss, output, targets, false);
}

// The same after a Training-mode forward, whose logits the softmax layer keeps.
LossValue batch_loss(const Trainer& st, const Tensor& output, const Tensor& targets) {
  return batch_loss(st, output, targets,
                    st.softmax_output != nullptr ? st.softmax_output->softmax_logits() : Tensor());
}

void add_metrics(const Trainer& st, const Tensor& output, const Tensor& targets, Logs& sums) {
  if (st.accuracy) sums["accuracy"] += count_correct(output, targets);
  if (st.top_k) sums["top_k_categorical_accuracy"] += count_top_k(output, targets, 5);
  if (st.mae) sums["mae"] += sum_absolute_error(output, targets);
}
}  // namespace

double Trainer::train_step(Model& model, const Tensor& x, const Tensor& targets,
                           Logs* metric_sums) {
  Trainer& st = *this;
  Tensor out = model.forward(x, Mode::Training);
  LossValue lv = batch_loss(st, out, targets);
  const std::vector<Param*> params = model.trainable_params();
  // Without clipping (which needs every gradient first), each layer's params are updated as soon
  // as backward has finished with the layer, and their gradients released: the gradients of the
  // whole model never exist at once. The update is the same as apply() after backward (a layer's
  // weights are not used by backward once it is past them). The updater is the last grad-ready
  // hook, so hooks added before it see every gradient before it changes the weights.
  const bool per_layer = st.optimizer->updates_per_param();
  std::unordered_map<const Param*, size_t> index;
  Model::HookId updater = 0;
  if (per_layer) {
    st.optimizer->begin_step(params);
    for (size_t i = 0; i < params.size(); ++i) index.emplace(params[i], i);
    updater = model.add_grad_ready_hook([&](Layer& layer) {
      for (Param& p : layer.params()) {
        auto it = index.find(&p);
        if (it == index.end()) continue;
        st.optimizer->update_param(it->second);
        p.grad = Tensor();
      }
    });
  }
  auto restore = [&] {
    if (st.softmax_output != nullptr) st.softmax_output->set_softmax_bypass(false);
    if (per_layer) model.remove_grad_ready_hook(updater);
  };
  if (st.softmax_output != nullptr) st.softmax_output->set_softmax_bypass(true);
  try {
    model.backward(lv.grad);
  } catch (...) {
    restore();
    throw;
  }
  restore();
  if (per_layer) {
    st.optimizer->end_step();
  } else {
    st.optimizer->apply(params);
    for (Param* p : params) p->grad = Tensor();  // recomputed by the next backward
  }
  if (metric_sums != nullptr) add_metrics(st, out, targets, *metric_sums);
  return lv.loss;
}

Logs Trainer::evaluate(Model& model, const Dataset& data, const EvaluateOptions& o) {
  data.validate();
  // A loss of 0 over nothing would read as a perfect model.
  if (data.size() == 0) {
    throw IoError(fmt::format("evaluate: '{}' holds no samples", data.source));
  }
  if (o.batch_size < 1)
    throw ConfigError(fmt::format("batch size must be positive, got {}", o.batch_size));
  std::ostream* out = o.out ? o.out : &std::cout;
  BatchLoader loader(data, o.batch_size, o.preprocess, AugmentOptions{}, 0, 1);
  loader.start_epoch(iota_order(data.size()), 0);
  const int64_t steps = loader.batches_in_epoch();
  const auto t0 = Clock::now();
  Logs sums;
  double loss_sum = 0;
  int64_t seen = 0, step = 0;
  Batch b;
  while (loader.next(b)) {
    Tensor logits;
    Tensor y = model.infer({b.x}, softmax_output, &logits)[0];
    const int64_t n = b.x.shape()[0];
    loss_sum += batch_loss(*this, y, b.y, logits).loss * n;
    add_metrics(*this, y, b.y, sums);
    seen += n;
    ++step;
  }
  Logs logs;
  logs["loss"] = loss_sum / std::max<int64_t>(seen, 1);
  for (const auto& [k, v] : sums) logs[k] = v / std::max<int64_t>(seen, 1);
  if (o.verbose > 0) {
    *out << progress_line(steps, steps, seconds_since(t0), logs, key_order(*this, false), false)
         << "\n";
    out->flush();
  }
  return logs;
}

History Trainer::fit(Model& model, const Dataset& train, const FitOptions& o) {
  if (o.batch_size < 1)
    throw ConfigError(fmt::format("batch size must be positive, got {}", o.batch_size));
  if (o.validation_split < 0 || o.validation_split >= 1) {
    throw ConfigError(
        fmt::format("validation_split must be in [0, 1), got {}", o.validation_split));
  }
  train.validate();
  Trainer& st = *this;
  // Data-parallel fit (docs/distributed.md): rank 0 prints and writes, the others stay quiet.
  std::unique_ptr<dist::detail::DataParallel> dp;
  if (dist::active()) {
    if (o.batch_size < dist::size()) {
      throw ConfigError(
          fmt::format("fit: the global batch size {} is smaller than the number of "
                      "ranks {}; every rank needs at least one sample per batch",
                      o.batch_size, dist::size()));
    }
    dp = std::make_unique<dist::detail::DataParallel>(model, o.sync_bn);
    dp->broadcast_parameters();
  }
  std::ostream quiet(nullptr);
  std::ostream* out = dist::rank() != 0 ? &quiet : o.out ? o.out : &std::cout;
  const int verbose = dist::rank() != 0 ? 0 : o.verbose;
  const bool tty = is_terminal(out);

  Dataset train_part = train;
  Dataset split_val;
  const Dataset* val = o.validation_data;
  if (o.validation_split > 0) {
    auto parts = train.split_last(o.validation_split);
    train_part = std::move(parts.first);
    split_val = std::move(parts.second);
    val = &split_val;
  }
  if (train_part.size() == 0) throw ConfigError("fit: no training samples");
  if (val != nullptr) val->validate();
  if (val != nullptr && val->size() == 0) {
    throw IoError(fmt::format("fit: the validation data '{}' holds no samples{}", val->source,
                              o.validation_split > 0 ? " (validation_split too small)" : ""));
  }

  // Each rank loads batches of its shard size (the first batch_size % ranks ranks take one more).
  int64_t local_batch = o.batch_size;
  if (dp) {
    const auto [lo, hi] = dist::detail::shard_range(o.batch_size, dist::rank(), dist::size());
    local_batch = hi - lo;
  }
  BatchLoader loader(train_part, local_batch, o.preprocess, o.augment, o.seed, o.data_workers);
  int64_t steps_per_epoch = loader.batches_in_epoch();
  if (dp) {
    const int64_t n = train_part.size();
    steps_per_epoch = n / o.batch_size + (n % o.batch_size >= dist::size() ? 1 : 0);
  }
  TrainContext ctx{.model = &model,
                   .optimizer = st.optimizer.get(),
                   .epochs = o.epochs,
                   .steps_per_epoch = steps_per_epoch,
                   .out = out,
                   .write_files = dist::rank() == 0};
  // One synchronous data-parallel step: local forward/backward on this rank's shard with the loss
  // gradient weighted by the shard's share, gradients averaged over ranks (overlapped with
  // backward), the same update everywhere; returns the global mean loss, adds the global metric
  // sums and sets `n` to the global batch size.
  std::vector<Param*> dp_params;
  std::unordered_map<const Param*, size_t> dp_index;
  auto dp_step = [&](const Batch& b, int64_t global_n, Logs& sums, int64_t& n) {
    Tensor output = model.forward(b.x, Mode::Training);
    LossValue lv = batch_loss(st, output, b.y);
    const double scale = dp->grad_scale(global_n);
    if (scale != 1.0) {
      Tensor g = ops::plain(lv.grad).clone();
      for (float& v : g.span<float>()) v = static_cast<float>(v * scale);
      lv.grad = g;
    }
    if (st.softmax_output != nullptr) st.softmax_output->set_softmax_bypass(true);
    dp->reducer().begin_step();
    try {
      model.backward(lv.grad);
    } catch (...) {
      if (st.softmax_output != nullptr) st.softmax_output->set_softmax_bypass(false);
      throw;
    }
    if (st.softmax_output != nullptr) st.softmax_output->set_softmax_bypass(false);
    // Without clipping, each parameter is updated as soon as its averaged gradient is in place
    // (the same update as apply() afterwards), and its gradient released.
    if (dp_params.empty()) dp_params = model.trainable_params();
    if (st.optimizer->updates_per_param()) {
      if (dp_index.empty()) {
        for (size_t i = 0; i < dp_params.size(); ++i) dp_index.emplace(dp_params[i], i);
      }
      st.optimizer->begin_step(dp_params);
      dp->reducer().finish([&](Param& p) {
        auto it = dp_index.find(&p);
        if (it == dp_index.end()) return;
        st.optimizer->update_param(it->second);
        p.grad = Tensor();
      });
      st.optimizer->end_step();
    } else {
      dp->reducer().finish();
      st.optimizer->apply(dp_params);
      for (Param* p : dp_params) p->grad = Tensor();
    }
    Logs local;
    add_metrics(st, output, b.y, local);
    std::vector<double> v = {lv.loss * static_cast<double>(n), static_cast<double>(n)};
    for (const auto& [k, x] : local) v.push_back(x);
    dp->sum_stats(v);
    size_t i = 2;
    for (const auto& [k, x] : local) sums[k] += v[i++];
    n = static_cast<int64_t>(v[1]);
    return v[0] / v[1];
  };
  for (auto& cb : o.callbacks) cb->on_train_begin(ctx);

  History history;
  const std::vector<std::string> order = key_order(st, val != nullptr);
  for (int epoch = o.initial_epoch; epoch < o.epochs && !ctx.stop_training; ++epoch) {
    std::vector<int64_t> idx = iota_order(train_part.size());
    if (o.shuffle) {
      // Fisher-Yates from a generator derived from (seed, epoch): reproducible per epoch.
      Rng rng(o.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1);
      for (int64_t i = static_cast<int64_t>(idx.size()) - 1; i > 0; --i) {
        std::swap(idx[i], idx[rng.below(i + 1)]);
      }
    }
    for (auto& cb : o.callbacks) cb->on_epoch_begin(epoch, ctx);
    std::vector<int64_t> global_sizes;  // data-parallel: the global size of every batch
    if (dp) idx = dp->shard_order(idx, o.batch_size, global_sizes);
    loader.start_epoch(std::move(idx), epoch);
    const int64_t steps =
        dp ? static_cast<int64_t>(global_sizes.size()) : loader.batches_in_epoch();
    if (verbose > 0) {
      *out << "Epoch " << epoch + 1 << "/" << o.epochs << "\n";
      out->flush();
    }
    const auto t0 = Clock::now();
    auto last_draw = t0;
    double loss_sum = 0;
    Logs sums;
    int64_t seen = 0, step = 0;
    Logs logs;
    Batch b;
    while (loader.next(b)) {
      int64_t n = b.x.shape()[0];
      const double loss =
          dp ? dp_step(b, global_sizes.at(step), sums, n) : train_step(model, b.x, b.y, &sums);
      loss_sum += loss * n;
      seen += n;
      ++step;
      logs.clear();
      logs["loss"] = loss_sum / seen;
      for (const auto& [k, v] : sums) logs[k] = v / seen;
      if (!std::isfinite(loss)) logs["loss"] = loss;
      for (auto& cb : o.callbacks) cb->on_batch_end(epoch, step, logs, ctx);
      if (ctx.stop_training) break;
      if (verbose == 1 && tty && step < steps &&
          std::chrono::duration<double>(Clock::now() - last_draw).count() > 0.2) {
        *out << "\r" << progress_line(step, steps, seconds_since(t0), logs, order, true)
             << std::flush;
        last_draw = Clock::now();
      }
    }
    const double elapsed = seconds_since(t0);
    if (dp) dp->average_buffers();  // per-rank BN moving statistics -> one model on every rank
    if (o.update_bn && !ctx.stop_training) {
      update_bn(
          model, train_part,
          {.batch_size = o.batch_size, .preprocess = o.preprocess, .data_workers = o.data_workers});
    }
    if (val != nullptr && !ctx.stop_training) {
      Logs v = evaluate(model, *val,
                        {.batch_size = o.batch_size, .verbose = 0, .preprocess = o.preprocess});
      for (const auto& [k, x] : v) logs["val_" + k] = x;
    }
    if (verbose == 1) {
      *out << (tty ? "\r" : "") << progress_line(step, steps, elapsed, logs, order, false)
           << (tty ? "\x1b[K" : "") << "\n";
      out->flush();
    } else if (verbose == 2) {
      std::string line = fmt::format("{}/{} - {:.0f}s", step, steps, elapsed);
      for (const std::string& k : order) {
        if (logs.count(k)) line += fmt::format(" - {}: {}", k, format_metric(logs.at(k)));
      }
      *out << line
           << fmt::format(" - {:.0f}s/epoch - {:.0f}ms/step\n", elapsed,
                          1000 * elapsed / std::max<int64_t>(step, 1));
      out->flush();
    }
    logs["lr"] = st.optimizer->learning_rate();
    for (auto& cb : o.callbacks) cb->on_epoch_end(epoch, logs, ctx);
    history.epochs.push_back(epoch);
    for (const auto& [k, v] : logs) history.values[k].push_back(v);
  }
  for (auto& cb : o.callbacks) cb->on_train_end(ctx);
  return history;
}

namespace {
// Wraps Keras-style (x, y) arrays into a Dataset with int64 labels.
Dataset arrays_to_dataset(const Tensor& x, const Tensor& y, int64_t classes) {
  if (!x.defined() || !y.defined() || x.rank() < 2 || y.shape()[0] != x.shape()[0]) {
    throw ShapeError(fmt::format("fit/evaluate: x {} and y {} must have the same number of samples",
                                 x.defined() ? x.shape().str() : "undefined",
                                 y.defined() ? y.shape().str() : "undefined"));
  }
  Dataset d;
  d.x = ops::plain(x).to_f32();
  d.source = "arrays";
  d.num_classes = classes;
  const int64_t n = x.shape()[0];
  d.y = Tensor::empty({n}, DType::I64);
  if (y.dtype() == DType::I64 && y.rank() == 1) {
    std::copy_n(y.data<int64_t>(), n, d.y.data<int64_t>());
  } else if (y.rank() == 2 && y.dtype() == DType::F32) {
    const int64_t c = y.shape()[1];
    for (int64_t i = 0; i < n; ++i) {
      int64_t hot = -1, ones = 0;
      for (int64_t j = 0; j < c; ++j) {
        const float v = y.f32()[i * c + j];
        if (v == 1.0f) {
          hot = j;
          ++ones;
        } else if (v != 0.0f) {
          ones = -1;
          break;
        }
      }
      if (ones != 1) {
        throw ConfigError(
            fmt::format("fit/evaluate: row {} of y is not one-hot; soft labels are "
                        "not supported here",
                        i));
      }
      d.y.data<int64_t>()[i] = hot;
    }
  } else {
    throw ShapeError(
        fmt::format("fit/evaluate: y must be (N,) int64 labels or (N, C) float32 "
                    "one-hot rows, got {} {}",
                    dtype_name(y.dtype()), y.shape().str()));
  }
  return d;
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Model's Keras training methods: thin calls to its Trainer.

void Model::TrainerDeleter::operator()(Trainer* t) const { delete t; }

void Model::compile(CompileOptions o) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive, "compile");
  train_ = std::unique_ptr<Trainer, TrainerDeleter>(new Trainer(*this, std::move(o)));
}

bool Model::compiled() const { return train_ != nullptr; }

Trainer& Model::trainer(const char* what) const {
  if (!train_) throw ConfigError(fmt::format("model '{}': call compile() before {}", name_, what));
  return *train_;
}

Optimizer& Model::optimizer() { return *trainer("optimizer()").optimizer; }

const CompileOptions& Model::compile_options() const {
  return trainer("compile_options()").options;
}

double Model::train_step(const Tensor& x, const Tensor& targets, Logs* metric_sums) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive, "train_step");
  return trainer("training").train_step(*this, x, targets, metric_sums);
}

Logs Model::evaluate(const Dataset& data, const EvaluateOptions& o) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Shared, "evaluate");
  return trainer("evaluate").evaluate(*this, data, o);
}

History Model::fit(const Dataset& train, const FitOptions& o) {
  graph_detail::ModelUse use(*this, graph_detail::ModelUse::Kind::Exclusive, "fit");
  return trainer("fit").fit(*this, train, o);
}

History Model::fit(const Tensor& x, const Tensor& y, FitOptions o) {
  o.preprocess.mode = Preprocess::Mode::None;
  return fit(arrays_to_dataset(x, y, output_shapes()[0][-1]), o);
}

Logs Model::evaluate(const Tensor& x, const Tensor& y, EvaluateOptions o) {
  o.preprocess.mode = Preprocess::Mode::None;
  return evaluate(arrays_to_dataset(x, y, output_shapes()[0][-1]), o);
}

}  // namespace resnet
