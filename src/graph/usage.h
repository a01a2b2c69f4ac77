// Who is using a Model: the check behind the concurrency contract (docs/concurrency.md).
//
// Reading calls (predict, evaluate, forward in Inference mode, saving, export_onnx) take a shared
// use and may run on any number of threads at once; calls that change the model (training,
// loading weights, compile, hooks, the plan and recomputation settings) take an exclusive use.
// A use that conflicts with one running on another thread is refused at once with a ConfigError
// naming both calls: nothing waits, and no call computes with weights that change under it. On the
// thread that holds a use, nested uses pass (fit's validation evaluate, its checkpoint saves);
// only an exclusive use inside a shared one is refused (a hook of predict calling fit).
//
// A use also applies the model's intra-op thread count (Model::set_intra_op_threads) to the
// calling thread for the duration of the outermost use there.
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "ops/ops.h"
#include "resnet/model.h"

namespace resnet {

struct Model::Concurrency {
  std::mutex mu;
  int shared = 0;                // shared uses running, on any thread
  const char* shared_what = "";  // the call of the latest one
  std::thread::id owner;         // thread of the exclusive use
  int exclusive = 0;             // its nesting depth (0: none)
  const char* exclusive_what = "";
  std::atomic<int> intra_op_threads{0};
  std::once_flag plan_once;  // Model::plan()
  std::atomic<int64_t> peak_live{0};
};

namespace graph_detail {

class ModelUse {
 public:
  enum class Kind { Shared, Exclusive };
  ModelUse(const Model& model, Kind kind, const char* what);
  ~ModelUse();
  ModelUse(const ModelUse&) = delete;
  ModelUse& operator=(const ModelUse&) = delete;

 private:
  Model::Concurrency* c_;
  Kind kind_;
  bool counted_ = false;  // false: nested in this thread's exclusive use
  std::optional<ops::NumThreadsScope> threads_;
};

}  // namespace graph_detail
}  // namespace resnet
