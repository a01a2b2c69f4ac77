// Concurrent inference on one Model (docs/concurrency.md): many threads calling predict (and
// evaluate) must each get exactly what a single caller gets, bit for bit, with the same intra-op
// thread count; training while inference runs, and inference while training runs, is refused
// with an error naming both calls. scripts/tsan.sh runs this executable under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ops/ops.h"
#include "resnet/io.h"
#include "resnet/models.h"
#include "resnet/onnx.h"
#include "resnet/optim.h"
#include "support/allclose.h"
#include "support/temp_dir.h"

namespace resnet {
namespace {

using testing::random_tensor;

// Calls per thread: RESNET_CONCURRENCY_CALLS (the ThreadSanitizer run uses fewer), else `dflt`.
int calls_per_thread(int dflt) {
  const char* v = std::getenv("RESNET_CONCURRENCY_CALLS");
  return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : dflt;
}

// Elements that differ bit for bit (all of them when the shapes differ).
int64_t differing(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return std::max(a.numel(), b.numel()) + 1;
  int64_t d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d += std::memcmp(a.f32() + i, b.f32() + i, 4) != 0;
  return d;
}

// One kind of call: its input, batch size and what a single caller got.
struct Case {
  Tensor x;
  int64_t batch;
  Tensor expected;
};

// `threads` callers, `calls` predicts each, thread t running case t % cases.size(); every result
// must equal its case's single-caller output bit for bit.
void hammer(Model& m, const std::vector<Case>& cases, int threads, int calls) {
  std::atomic<int> wrong{0}, failed{0}, done{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const Case& c = cases[t % cases.size()];
      for (int k = 0; k < calls; ++k) {
        try {
          if (differing(m.predict(c.x, c.batch), c.expected) != 0) ++wrong;
          ++done;
        } catch (const std::exception& e) {
          std::lock_guard lock(mu);
          if (failed++ == 0) first_error = e.what();
        }
      }
    });
  }
  for (std::thread& t : pool) t.join();
  EXPECT_EQ(wrong.load(), 0) << "of " << threads * calls << " calls differ from a single caller's";
  EXPECT_EQ(failed.load(), 0) << first_error;
  EXPECT_EQ(done.load(), threads * calls);
}

// Cases for `m`: batches of `batches` random inputs of its input shape; expected outputs from
// one caller, computed before any thread starts.
std::vector<Case> cases_for(Model& m, const std::vector<int64_t>& batches, uint64_t seed) {
  std::vector<Case> cases;
  for (int64_t b : batches) {
    std::vector<int64_t> dims = m.input_shapes()[0].dims();
    dims.insert(dims.begin(), b);
    Case c{random_tensor(Shape(dims), seed++), b, Tensor()};
    c.expected = m.predict(c.x, c.batch);
    cases.push_back(std::move(c));
  }
  return cases;
}

TEST(ConcurrentPredict, CifarResNet20FromFourThreads) {
  Model m = cifar_resnet(20);
  hammer(m, cases_for(m, {8}, 1), 4, calls_per_thread(20));
}

TEST(ConcurrentPredict, TutorialResNet50AtBatch1And8AtOnce) {
  // Batch 1 and batch 8 callers share the model: the plan keeps a prepared convolution per input
  // shape, and the small-output kernels run at batch 1.
  Model m = resnet50_tutorial({64, 64, 3}, 6);
  hammer(m, cases_for(m, {1, 8}, 7), 4, calls_per_thread(6));
}

TEST(ConcurrentPredict, UnfusedModelFromFourThreads) {
  // Every layer on its own (the reference path): the layers' inference forward keeps no state.
  Model m = cifar_resnet(8);
  m.set_inference_fusion(false);
  hammer(m, cases_for(m, {4, 3}, 11), 4, calls_per_thread(10));
}

TEST(ConcurrentPredict, ImportedOnnxModelFromFourThreads) {
  if (!onnx_available()) GTEST_FAIL() << "this build has no ONNX support; the suite needs it";
  testing::TempDir dir;
  Model original = cifar_resnet(8, {16, 16, 3}, 5);
  const std::string path = (dir.path() / "model.onnx").string();
  export_onnx(original, path);
  Model m = import_onnx(path);
  hammer(m, cases_for(m, {2, 5}, 21), 4, calls_per_thread(10));
}

TEST(ConcurrentPredict, IntraOpThreadsPerModel) {
  // One intra-op thread per call (what 2 clients on 2 cores should use): the outputs equal a
  // single caller's with the same count, and the calling threads' own counts are left alone.
  Model m = cifar_resnet(8);
  m.set_intra_op_threads(1);
  EXPECT_EQ(m.intra_op_threads(), 1);
  const int before = ops::num_threads();
  hammer(m, cases_for(m, {4}, 31), 3, calls_per_thread(10));
  EXPECT_EQ(ops::num_threads(), before);
  EXPECT_THROW(m.set_intra_op_threads(-1), ConfigError);
}

TEST(ConcurrentPredict, EvaluateFromManyThreadsMatchesOneCaller) {
  Model m = cifar_resnet(8, {16, 16, 3}, 4);
  m.compile();
  const Tensor x = random_tensor(Shape{10, 16, 16, 3}, 41);
  Tensor y = Tensor::empty(Shape{10}, DType::I64);
  for (int64_t i = 0; i < 10; ++i) y.data<int64_t>()[i] = i % 4;
  EvaluateOptions o;
  o.verbose = 0;
  o.batch_size = 4;
  const Logs expected = m.evaluate(x, y, o);
  ASSERT_GT(expected.at("loss"), 0.0);
  std::atomic<int> wrong{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 3; ++t) {
    pool.emplace_back([&] {
      for (int k = 0; k < calls_per_thread(5); ++k) {
        if (m.evaluate(x, y, o) != expected) ++wrong;
      }
    });
  }
  for (std::thread& t : pool) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A gate that a layer hook waits at: the call holding the model stays inside it until the test
// opens the gate, so the conflicting call is made while the first one surely runs.
class Gate {
 public:
  void arrive_and_wait() {
    std::unique_lock lock(mu_);
    arrived_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void wait_arrived() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return arrived_; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool arrived_ = false, open_ = false;
};

// Runs `first` on a thread that stops in `m`'s first layer hook call, then `second` here.
void while_running(Model& m, const std::function<void()>& first,
                   const std::function<void()>& second) {
  Gate gate;
  std::once_flag once;
  const Model::HookId hook = m.add_layer_hook(
      [&](const Layer&, bool, double) { std::call_once(once, [&] { gate.arrive_and_wait(); }); });
  std::thread runner(first);
  gate.wait_arrived();
  try {
    second();
  } catch (...) {
    gate.open();
    runner.join();
    m.remove_layer_hook(hook);
    throw;
  }
  gate.open();
  runner.join();
  m.remove_layer_hook(hook);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConcurrentPredict, TrainingDuringPredictIsRefused) {
  Model m = cifar_resnet(8, {8, 8, 3}, 3);
  m.compile();
  const Tensor x = random_tensor(Shape{2, 8, 8, 3}, 51);
  Tensor labels = Tensor::empty(Shape{2}, DType::I64);
  labels.data<int64_t>()[0] = 0;
  labels.data<int64_t>()[1] = 2;
  const Tensor before = m.predict(x, 2);
  std::string train_error, fit_error, load_error;
  Tensor during;
  while_running(
      m, [&] { during = m.predict(x, 2); },
      [&] {
        train_error = error_of([&] { m.train_step(x, labels); });
        FitOptions fo;
        fo.epochs = 1;
        fo.verbose = 0;
        fit_error = error_of([&] { m.fit(x, labels, fo); });
        load_error = error_of([&] { load_weights(m, "/nonexistent/weights.rnw"); });
      });
  EXPECT_NE(train_error.find("train_step called while 1 call(s) of predict run"), std::string::npos)
      << train_error;
  EXPECT_NE(train_error.find("model '"), std::string::npos) << train_error;
  EXPECT_NE(fit_error.find("fit called while"), std::string::npos) << fit_error;
  EXPECT_NE(load_error.find("load_weights called while"), std::string::npos) << load_error;
  // Nothing was trained: the predict that ran meanwhile, and one after, give the same output.
  EXPECT_EQ(differing(during, before), 0);
  EXPECT_EQ(differing(m.predict(x, 2), before), 0);
  // Once predict returned, training runs.
  EXPECT_NO_THROW(m.train_step(x, labels));
}

TEST(ConcurrentPredict, PredictDuringTrainingIsRefused) {
  Model m = cifar_resnet(8, {8, 8, 3}, 3);
  m.compile();
  const Tensor x = random_tensor(Shape{2, 8, 8, 3}, 61);
  Tensor labels = Tensor::empty(Shape{2}, DType::I64);
  labels.data<int64_t>()[0] = 1;
  labels.data<int64_t>()[1] = 0;
  std::string predict_error, evaluate_error, save_error, second_train_error;
  testing::TempDir dir;
  while_running(
      m, [&] { m.train_step(x, labels); },
      [&] {
        predict_error = error_of([&] { m.predict(x, 2); });
        EvaluateOptions eo;
        eo.verbose = 0;
        evaluate_error = error_of([&] { m.evaluate(x, labels, eo); });
        save_error = error_of([&] { save_model(m, (dir.path() / "m.h5").string()); });
        second_train_error = error_of([&] { m.train_step(x, labels); });
      });
  EXPECT_NE(predict_error.find("predict called while train_step runs on it in another thread"),
            std::string::npos)
      << predict_error;
  EXPECT_NE(evaluate_error.find("evaluate called while train_step"), std::string::npos)
      << evaluate_error;
  EXPECT_NE(save_error.find("save_model called while train_step"), std::string::npos) << save_error;
  EXPECT_NE(second_train_error.find("train_step called while train_step"), std::string::npos)
      << second_train_error;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "m.h5"));
  EXPECT_NO_THROW(m.predict(x, 2));
}

TEST(ConcurrentPredict, NestedUsesOnOneThreadPass) {
  // fit evaluates its validation data and saves checkpoints on its own thread: nested uses of
  // the model on the thread that holds it pass. Training from a hook of predict does not.
  Model m = cifar_resnet(8, {8, 8, 3}, 3);
  m.compile();
  const Tensor x = random_tensor(Shape{4, 8, 8, 3}, 71);
  Tensor labels = Tensor::empty(Shape{4}, DType::I64);
  for (int64_t i = 0; i < 4; ++i) labels.data<int64_t>()[i] = i % 3;
  FitOptions fo;
  fo.epochs = 1;
  fo.verbose = 0;
  fo.validation_split = 0.5;
  EXPECT_NO_THROW(m.fit(x, labels, fo));
  std::string inner;
  bool called = false;
  const Model::HookId hook = m.add_layer_hook([&](const Layer&, bool, double) {
    if (called) return;
    called = true;
    inner = error_of([&] { m.train_step(x, labels); });
  });
  m.predict(x, 4);
  m.remove_layer_hook(hook);
  EXPECT_NE(inner.find("train_step called while 1 call(s) of predict run"), std::string::npos)
      << inner;
}

}  // namespace
}  // namespace resnet
