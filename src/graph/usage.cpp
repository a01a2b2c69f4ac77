#include "graph/usage.h"

#include <fmt/format.h>

namespace resnet::graph_detail {

namespace {
// Uses this thread holds, over all models: the outermost one applies its model's thread count,
// nested ones leave it in place.
thread_local int t_uses = 0;
}  // namespace

ModelUse::ModelUse(const Model& model, Kind kind, const char* what)
    : c_(model.concurrency_.get()), kind_(kind) {
  {
    std::lock_guard lock(c_->mu);
    const bool mine = c_->exclusive > 0 && c_->owner == std::this_thread::get_id();
    if (c_->exclusive > 0 && !mine) {
      throw ConfigError(fmt::format(
          "model '{}': {} called while {} runs on it in another thread; {} changes the model, "
          "so nothing else may use it until it returns",
          model.name(), what, c_->exclusive_what, c_->exclusive_what));
    }
    if (kind == Kind::Shared) {
      if (!mine) {
        ++c_->shared;
        c_->shared_what = what;
        counted_ = true;
      }
    } else if (mine) {
      ++c_->exclusive;
      counted_ = true;
    } else if (c_->shared > 0) {
      throw ConfigError(fmt::format(
          "model '{}': {} called while {} call(s) of {} run on it; {} changes the model, so it "
          "needs the model to itself",
          model.name(), what, c_->shared, c_->shared_what, what));
    } else {
      c_->exclusive = 1;
      c_->owner = std::this_thread::get_id();
      c_->exclusive_what = what;
      counted_ = true;
    }
  }
  if (t_uses++ == 0) threads_.emplace(c_->intra_op_threads.load());
}

ModelUse::~ModelUse() {
  threads_.reset();
  --t_uses;
  if (!counted_) return;
  std::lock_guard lock(c_->mu);
  if (kind_ == Kind::Shared) {
    --c_->shared;
  } else if (--c_->exclusive == 0) {
    c_->owner = std::thread::id();
  }
}

}  // namespace resnet::graph_detail
