// Driver of the data-parallel tests (tests/dist/dist_test.sh runs it under mpirun and alone).
//
//   dist_driver train --bn none|local|sync [--batch B] [--samples S] [--epochs E]
//                     [--params FILE] [--save FILE] [--resume FILE]
//                     [--kill-rank R --kill-step S [--fault kill|stop]]
//     Trains a small residual CNN on deterministic synthetic data (seed fixed). With several ranks
//     it checks that every parameter is bit-identical across ranks (a hash of all parameter bytes,
//     gathered) and fails otherwise. Rank 0 writes the parameters as text (--params) and a
//     resumable weights file with optimizer state (--save); --resume loads such a file first.
//     --kill-rank/--kill-step: fault injection by a callback of the driver's own: rank R kills
//     itself with SIGKILL after training step S (--fault stop: stops with SIGSTOP, a hanging rank).
//   dist_driver compare A B TOL
//     Fails when two --params files differ by more than TOL (absolute) anywhere.
#include <fmt/format.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "resnet/dist.h"
#include "resnet/io.h"
#include "resnet/model.h"
#include "resnet/optim.h"
#include "resnet/train.h"

using namespace resnet;

namespace {

struct Args {
  std::string bn = "none";
  int64_t batch = 16;
  int64_t samples = 64;
  int epochs = 1;
  std::string params, save, resume;
  int kill_rank = -1;
  int64_t kill_step = -1;
  std::string fault = "kill";
};

// Kills (or stops) this process after the given training step when it is the given rank.
class FaultInjection : public Callback {
 public:
  FaultInjection(int rank, int64_t step, bool stop) : rank_(rank), step_(step), stop_(stop) {}
  void on_batch_end(int, int64_t, const Logs&, TrainContext&) override {
    if (++steps_ != step_ || dist::rank() != rank_) return;
    std::fprintf(stderr, "dist_driver: fault injection: rank %d %s after step %lld\n", rank_,
                 stop_ ? "stops (hangs)" : "kills itself", static_cast<long long>(steps_));
    std::fflush(stderr);
    std::raise(stop_ ? SIGSTOP : SIGKILL);
  }

 private:
  int rank_;
  int64_t step_;
  bool stop_;
  int64_t steps_ = 0;
};

Model build(const std::string& bn) {
  set_global_seed(7);
  reset_name_counters();
  auto norm = [&](SymTensor x, const std::string& name) {
    return bn == "none" ? x : BatchNormalization({.momentum = 0.9, .name = name})(x);
  };
  SymTensor in = Input({8, 8, 3});
  SymTensor x =
      Conv2D({.filters = 8, .kernel = {3, 3}, .padding = Padding::Same, .name = "c1"})(in);
  x = ReLU()(norm(x, "bn1"));
  SymTensor y = Conv2D({.filters = 8, .kernel = {3, 3}, .padding = Padding::Same, .name = "c2"})(x);
  y = norm(y, "bn2");
  x = ReLU()(Add()({x, y}));
  x = Conv2D(
      {.filters = 16, .kernel = {3, 3}, .strides = {2, 2}, .padding = Padding::Same, .name = "c3"})(
      x);
  x = ReLU()(norm(x, "bn3"));
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = 4, .activation = "softmax", .name = "fc"})(x);
  return Model(in, x, "dist_net");
}

// Images whose class shows in their mean brightness per channel, so training makes progress.
Dataset synthetic(int64_t n) {
  Dataset d;
  d.x = Tensor::empty({n, 8, 8, 3});
  d.y = Tensor::empty({n}, DType::I64);
  d.num_classes = 4;
  d.source = "synthetic";
  Rng rng(1234);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t label = static_cast<int64_t>(rng.below(4));
    d.y.data<int64_t>()[i] = label;
    for (int64_t k = 0; k < 8 * 8 * 3; ++k) {
      const double noise = static_cast<double>(rng.below(1000)) / 1000.0 - 0.5;
      d.x.f32()[i * 192 + k] =
          static_cast<float>(noise + (k % 3 == label % 3 ? 0.5 : 0.0) + (label >= 3 ? 0.3 : 0.0));
    }
  }
  return d;
}

uint64_t hash_params(Model& m) {
  uint64_t h = 1469598103934665603ULL;
  for (Param* p : m.params()) {
    const Tensor v = p->value.is_plain() ? p->value : Tensor();
    if (!v.defined()) throw Error("dist_driver: a parameter is not in the plain layout");
    const auto* bytes = reinterpret_cast<const unsigned char*>(v.f32());
    for (size_t i = 0; i < static_cast<size_t>(v.numel()) * sizeof(float); ++i) {
      h = (h ^ bytes[i]) * 1099511628211ULL;
    }
  }
  return h;
}

std::string params_text(Model& m) {
  std::string s;
  for (const auto& l : m.layers()) {
    for (const Param& p : l->params()) {
      s += fmt::format("{}/{} {}", l->name(), p.name, p.value.numel());
      for (int64_t i = 0; i < p.value.numel(); ++i) s += fmt::format(" {:.9g}", p.value.f32()[i]);
      s += "\n";
    }
  }
  return s;
}

int train(const Args& a) {
  Model model = build(a.bn);
  model.compile({.optimizer = SGD({.common = {.learning_rate = 0.05}, .momentum = 0.9}),
                 .loss = "sparse_categorical_crossentropy",
                 .metrics = {"accuracy"}});
  int initial_epoch = 0;
  if (!a.resume.empty()) {
    auto attrs = load_weights(model, a.resume);
    initial_epoch = std::stoi(attrs.at("epoch"));
    if (dist::rank() == 0) fmt::print("resumed from {} at epoch {}\n", a.resume, initial_epoch);
  }
  Dataset data = synthetic(a.samples);
  FitOptions fo{.epochs = initial_epoch + a.epochs,
                .batch_size = a.batch,
                .initial_epoch = initial_epoch,
                .verbose = 2,
                .preprocess = {.mode = Preprocess::Mode::None},
                .seed = 3,
                .data_workers = 1,
                .sync_bn = a.bn == "sync"};
  if (a.kill_rank >= 0) {
    fo.callbacks.push_back(
        std::make_shared<FaultInjection>(a.kill_rank, a.kill_step, a.fault == "stop"));
  }
  History h = model.fit(data, fo);
  const std::vector<uint64_t> all = dist::all_gather(hash_params(model));
  for (size_t r = 1; r < all.size(); ++r) {
    if (all[r] != all[0]) {
      std::fprintf(
          stderr, "dist_driver: parameters differ: rank 0 hash %016llx, rank %zu %016llx\n",
          static_cast<unsigned long long>(all[0]), r, static_cast<unsigned long long>(all[r]));
      return 1;
    }
  }
  if (dist::rank() == 0) {
    fmt::print("parameters identical on {} rank(s): hash {:016x}; final loss {:.6f}\n", all.size(),
               all[0], h.values["loss"].empty() ? 0.0 : h.values["loss"].back());
    if (!a.params.empty()) write_file_atomic(a.params, params_text(model));
    if (!a.save.empty()) {
      save_weights(model, a.save,
                   {.include_optimizer = true,
                    .attributes = {{"epoch", std::to_string(initial_epoch + a.epochs)}}});
    }
  }
  return 0;
}

std::map<std::string, std::vector<double>> read_params(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw IoError("dist_driver: cannot read " + path);
  std::map<std::string, std::vector<double>> m;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ss(line);
    std::string name;
    int64_t n = 0;
    ss >> name >> n;
    std::vector<double> v(n);
    for (double& x : v) ss >> x;
    if (!ss) throw IoError(fmt::format("dist_driver: {}: bad line for {}", path, name));
    m[name] = std::move(v);
  }
  return m;
}

int compare(const std::string& a, const std::string& b, double tol) {
  auto pa = read_params(a), pb = read_params(b);
  if (pa.size() != pb.size() || pa.empty()) {
    std::fprintf(stderr, "dist_driver: %s and %s hold different parameter sets\n", a.c_str(),
                 b.c_str());
    return 1;
  }
  double worst = 0;
  std::string where;
  for (const auto& [name, va] : pa) {
    const auto it = pb.find(name);
    if (it == pb.end() || it->second.size() != va.size()) {
      std::fprintf(stderr, "dist_driver: %s missing or resized in %s\n", name.c_str(), b.c_str());
      return 1;
    }
    for (size_t i = 0; i < va.size(); ++i) {
      const double d = std::fabs(va[i] - it->second[i]);
      if (!(d <= worst)) {
        worst = d;
        where = fmt::format("{}[{}]: {} vs {}", name, i, va[i], it->second[i]);
      }
    }
  }
  fmt::print("max abs difference {:.3g} (tolerance {:.3g}) at {}\n", worst, tol, where);
  return worst <= tol ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    dist::init(&argc, &argv);
    int rc = 2;
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "compare" && args.size() == 4) {
      rc = compare(args[1], args[2], std::stod(args[3]));
    } else if (!args.empty() && args[0] == "train") {
      Args a;
      for (size_t i = 1; i + 1 < args.size(); i += 2) {
        const std::string& k = args[i];
        const std::string& v = args[i + 1];
        if (k == "--bn")
          a.bn = v;
        else if (k == "--batch")
          a.batch = std::stoll(v);
        else if (k == "--samples")
          a.samples = std::stoll(v);
        else if (k == "--epochs")
          a.epochs = std::stoi(v);
        else if (k == "--params")
          a.params = v;
        else if (k == "--save")
          a.save = v;
        else if (k == "--resume")
          a.resume = v;
        else if (k == "--kill-rank")
          a.kill_rank = std::stoi(v);
        else if (k == "--kill-step")
          a.kill_step = std::stoll(v);
        else if (k == "--fault")
          a.fault = v;
        else
          throw ConfigError("dist_driver: unknown option " + k);
      }
      if (a.bn != "none" && a.bn != "local" && a.bn != "sync")
        throw ConfigError("--bn none|local|sync");
      rc = train(a);
    } else {
      std::fprintf(stderr, "usage: dist_driver train [options] | compare A B TOL\n");
    }
    if (rc != 0 && dist::active()) dist::abort(rc);
    dist::finalize();
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_driver: error: %s\n", e.what());
    std::fflush(stderr);
    if (dist::active()) dist::abort(1);
    return 1;
  }
}
