// `resnet demo`: builds a small network from the tutorial's blocks and trains it for a few steps
// of plain SGD on synthetic data (each class shifts the image mean), printing the loss. It shows
// the engine working end to end until the full training loop lands.
#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "cli/commands.h"
#include "ops/ops.h"
#include "resnet/model.h"
#include "resnet/models.h"

namespace resnet::cli {

namespace {
struct DemoOptions {
  int steps = 10;
  int batch = 16;
  int size = 32;
  int classes = 4;
  double lr = 0.05;
  uint64_t seed = 1;
  int threads = 0;
  std::string backend = "onednn";
};

void run_demo(const DemoOptions& o) {
  if (o.threads > 0) ops::set_num_threads(o.threads);
  ops::set_backend(o.backend == "ref" ? ops::Backend::Ref : ops::Backend::OneDnn);
  set_global_seed(o.seed);
  reset_name_counters();

  SymTensor input = Input({o.size, o.size, 3});
  SymTensor x = ZeroPadding2D({.padding = {3, 3, 3, 3}})(input);
  x = Conv2D({.filters = 16, .kernel = {7, 7}, .strides = {2, 2}, .name = "conv1"})(x);
  x = BatchNormalization({.axis = 3, .name = "bn_conv1"})(x);
  x = Activation("relu")(x);
  x = MaxPooling2D({.pool_size = {3, 3}, .strides = {2, 2}})(x);
  x = convolutional_block(x, 3, {8, 8, 32}, 2, "a", 1);
  x = identity_block(x, 3, {8, 8, 32}, 2, "b");
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = o.classes, .activation = "softmax", .name = "fc"})(x);
  Model model(input, x, "demo");
  fmt::print("model '{}': {} layers, {} parameters, backend {}, {} threads\n", model.name(),
             model.layers().size(), model.count_params(), ops::backend_name(ops::backend()),
             ops::num_threads());

  Rng rng(o.seed + 1);
  const int64_t n = o.batch, hw = int64_t{o.size} * o.size * 3;
  for (int step = 1; step <= o.steps; ++step) {
    Tensor images = Tensor::empty({n, o.size, o.size, 3});
    std::vector<int64_t> labels(n);
    for (int64_t i = 0; i < n; ++i) {
      labels[i] = static_cast<int64_t>(rng.below(o.classes));
      const double shift = 0.5 * static_cast<double>(labels[i]) - 0.75;
      float* img = images.f32() + i * hw;
      for (int64_t j = 0; j < hw; ++j) img[j] = static_cast<float>(rng.normal(shift, 1.0));
    }
    const auto t0 = std::chrono::steady_clock::now();
    Tensor probs = model.forward(images, Mode::Training);
    // Categorical cross-entropy on the softmax output: L = -mean log p[label].
    Tensor dprobs = Tensor::zeros(probs.shape());
    double loss = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double p = std::max(1e-7, static_cast<double>(probs.f32()[i * o.classes + labels[i]]));
      loss -= std::log(p) / static_cast<double>(n);
      dprobs.f32()[i * o.classes + labels[i]] = static_cast<float>(-1.0 / (p * n));
    }
    model.backward(dprobs);
    for (Param* p : model.trainable_params()) {
      Tensor g = ops::plain(p->grad);
      float* w = p->value.f32();
      const float* gw = g.f32();
      for (int64_t j = 0; j < p->value.numel(); ++j) w[j] -= static_cast<float>(o.lr) * gw[j];
      p->value.bump_version();
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("step {:>3}/{} - loss: {:.4f} - {:.0f}ms\n", step, o.steps, loss, ms);
  }
}
}  // namespace

void add_demo_command(CLI::App& app) {
  auto opts = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Train a small network built from the tutorial's blocks on synthetic data");
  cmd->add_option("--steps", opts->steps, "SGD steps")->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", opts->batch, "images per step")->check(CLI::PositiveNumber);
  cmd->add_option("--size", opts->size, "image height and width")->check(CLI::Range(8, 512));
  cmd->add_option("--classes", opts->classes, "number of classes")->check(CLI::Range(2, 1000));
  cmd->add_option("--lr", opts->lr, "learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--seed", opts->seed, "random seed");
  cmd->add_option("--threads", opts->threads, "compute threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--backend", opts->backend, "compute backend")
      ->check(CLI::IsMember({"onednn", "ref"}));
  cmd->callback([opts] { run_demo(*opts); });
}

}  // namespace resnet::cli
