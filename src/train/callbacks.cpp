// Keras callbacks (tf-keras callbacks.py): EarlyStopping, ModelCheckpoint, LearningRateScheduler,
// ReduceLROnPlateau, CSVLogger, TerminateOnNaN. Decisions, counters and messages follow Keras;
// messages go to ctx.out (std::cout when null), one line each.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/model.h"
#include "resnet/train.h"
#include "train/py_format.h"
#include "train/save_hook.h"

namespace resnet {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

// Keras io_utils.print_msg: the message, then a newline.
void print_line(const TrainContext& ctx, const std::string& msg) {
  std::ostream& out = ctx.out != nullptr ? *ctx.out : std::cout;
  out << msg << "\n";
  out.flush();
}

std::string available_keys(const Logs& logs) {
  std::string keys;
  for (const auto& [k, v] : logs) keys += (keys.empty() ? "" : ",") + k;
  return keys;
}

void check_mode(const std::string& callback, const std::string& mode) {
  if (mode != "auto" && mode != "min" && mode != "max") {
    throw ConfigError(fmt::format("{}: unknown mode '{}' (expected \"auto\", \"min\" or \"max\")",
                                  callback, mode));
  }
}

Model& model_of(const TrainContext& ctx, const char* callback) {
  if (ctx.model == nullptr)
    throw Error(fmt::format("{}: the training context has no model", callback));
  return *ctx.model;
}

Optimizer& optimizer_of(const TrainContext& ctx, const char* callback) {
  if (ctx.optimizer == nullptr) {
    throw Error(fmt::format("{}: the training context has no optimizer", callback));
  }
  return *ctx.optimizer;
}

// ---------------------------------------------------------------------------------------------
class EarlyStoppingCallback : public Callback {
 public:
  explicit EarlyStoppingCallback(EarlyStoppingOptions o) : o_(std::move(o)) {
    check_mode("EarlyStopping", o_.mode);
    if (o_.patience < 0) {
      throw ConfigError(fmt::format("EarlyStopping: patience must be >= 0, got {}", o_.patience));
    }
    const std::string& m = o_.monitor;
    maximize_ =
        o_.mode == "max" || (o_.mode == "auto" &&
                             (m.ends_with("acc") || m.ends_with("accuracy") || m.ends_with("auc")));
    // Keras: min_delta = abs(min_delta), negated when minimising; improvement is
    // monitor_op(current - min_delta, best).
    min_delta_ = maximize_ ? std::abs(o_.min_delta) : -std::abs(o_.min_delta);
  }

  void on_train_begin(TrainContext& ctx) override {
    wait_ = 0;
    stopped_epoch_ = 0;
    best_ = maximize_ ? -kInf : kInf;
    best_weights_.clear();
    best_epoch_ = 0;
  }

  void on_epoch_end(int epoch, const Logs& logs, TrainContext& ctx) override {
    const auto it = logs.find(o_.monitor);
    if (it == logs.end()) {
      print_line(ctx, fmt::format("Warning: early stopping conditioned on metric `{}` which is "
                                  "not available. Available metrics are: {}",
                                  o_.monitor, available_keys(logs)));
      return;
    }
    if (epoch < o_.start_from_epoch) return;
    const double current = it->second;
    const bool improved = is_improvement(current, best_);
    if (o_.restore_best_weights && (improved || best_weights_.empty())) {
      // Keras also keeps the first epoch's weights in case no epoch ever improves.
      snapshot(ctx);
      best_epoch_ = epoch;
    }
    ++wait_;
    if (improved) {
      best_ = current;
      best_epoch_ = epoch;
      wait_ = 0;
      return;
    }
    if (wait_ >= o_.patience && epoch > 0) {
      stopped_epoch_ = epoch;
      ctx.stop_training = true;
    }
  }

  // tf-keras HEAD restores the best weights at the end of training, stopped early or not.
  void on_train_end(TrainContext& ctx) override {
    if (stopped_epoch_ > 0 && o_.verbose) {
      print_line(ctx, fmt::format("Epoch {}: early stopping", stopped_epoch_ + 1));
    }
    if (o_.restore_best_weights && !best_weights_.empty()) {
      if (o_.verbose) {
        print_line(ctx, fmt::format("Restoring model weights from the end of the best epoch: {}.",
                                    best_epoch_ + 1));
      }
      restore(ctx);
    }
  }

 private:
  bool is_improvement(double current, double reference) const {
    return maximize_ ? current - min_delta_ > reference : current - min_delta_ < reference;
  }

  void snapshot(TrainContext& ctx) {
    std::vector<Param*> params = model_of(ctx, "EarlyStopping").params();
    // Reuse the buffers of the previous best when they fit (no reallocation per improvement).
    const bool reuse = best_weights_.size() == params.size() &&
                       std::equal(params.begin(), params.end(), best_weights_.begin(),
                                  [](const Param* p, const Tensor& t) {
                                    return p->value.is_plain() && t.is_plain() &&
                                           p->value.shape() == t.shape() &&
                                           p->value.dtype() == t.dtype();
                                  });
    if (reuse) {
      for (size_t i = 0; i < params.size(); ++i) best_weights_[i].copy_from(params[i]->value);
      return;
    }
    best_weights_.clear();
    best_weights_.reserve(params.size());
    for (const Param* p : params) best_weights_.push_back(p->value.clone());
  }

  void restore(TrainContext& ctx) {
    std::vector<Param*> params = model_of(ctx, "EarlyStopping").params();
    if (params.size() != best_weights_.size()) {
      throw Error(
          fmt::format("EarlyStopping: the model has {} parameters, the saved best weights {}",
                      params.size(), best_weights_.size()));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor& value = params[i]->value;
      const Tensor& best = best_weights_[i];
      if (value.is_plain() && best.is_plain()) {
        value.copy_from(best);  // in place: whoever holds the tensor sees the restored values
      } else if (value.layout() == best.layout() && value.nbytes() == best.nbytes()) {
        std::memcpy(value.raw(), best.raw(), best.nbytes());
        value.bump_version();
      } else {
        value = best.clone();
        value.bump_version();
      }
    }
  }

  EarlyStoppingOptions o_;
  bool maximize_ = false;
  double min_delta_ = 0;
  int wait_ = 0;
  int stopped_epoch_ = 0;
  double best_ = kInf;
  int best_epoch_ = 0;
  std::vector<Tensor> best_weights_;
};

// ---------------------------------------------------------------------------------------------
// Python str.format for the names Keras passes (epoch=epoch + 1, **logs): "{epoch}",
// "{epoch:02d}", "{val_loss:.2f}", "{{" and "}}".
std::string format_checkpoint_path(const std::string& pattern, int epoch1, const Logs& logs) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '{' && i + 1 < pattern.size() && pattern[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < pattern.size() && pattern[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      const size_t close = pattern.find('}', i);
      if (close == std::string::npos) {
        throw ConfigError(
            fmt::format("ModelCheckpoint: unmatched '{{' in filepath \"{}\"", pattern));
      }
      const std::string field = pattern.substr(i + 1, close - i - 1);
      const size_t colon = field.find(':');
      const std::string name = field.substr(0, colon);
      const std::string spec = colon == std::string::npos ? "" : field.substr(colon + 1);
      try {
        if (name == "epoch") {
          out += fmt::format(fmt::runtime(fmt::format("{{:{}}}", spec)), epoch1);
        } else if (const auto it = logs.find(name); it != logs.end()) {
          out += spec.empty() ? python_float_repr(it->second)
                              : fmt::format(fmt::runtime(fmt::format("{{:{}}}", spec)), it->second);
        } else {
          throw ConfigError(fmt::format(
              "ModelCheckpoint: cannot format filepath \"{}\": no value named '{}' (available: "
              "epoch,{})",
              pattern, name, available_keys(logs)));
        }
      } catch (const fmt::format_error& e) {
        throw ConfigError(
            fmt::format("ModelCheckpoint: cannot format filepath \"{}\": field '{}': {}", pattern,
                        field, e.what()));
      }
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

class ModelCheckpointCallback : public Callback {
 public:
  ModelCheckpointCallback(ModelCheckpointOptions o, SaveModelFn save)
      : o_(std::move(o)), save_(std::move(save)) {
    if (o_.filepath.empty()) throw ConfigError("ModelCheckpoint: filepath is empty");
    if (!save_) throw ConfigError("ModelCheckpoint: no save function");
    check_mode("ModelCheckpoint", o_.mode);
    // Keras ModelCheckpoint's 'auto': max when "acc" appears anywhere in the name or it starts
    // with "fmeasure" (broader than EarlyStopping's suffix rule).
    maximize_ =
        o_.mode == "max" || (o_.mode == "auto" && (o_.monitor.find("acc") != std::string::npos ||
                                                   o_.monitor.starts_with("fmeasure")));
    best_ = maximize_ ? -kInf : kInf;  // like Keras, kept across fits of the same callback
  }

  void on_epoch_end(int epoch, const Logs& logs, TrainContext& ctx) override {
    if (!ctx.write_files) return;  // data-parallel fit: rank 0 writes
    Model& model = model_of(ctx, "ModelCheckpoint");
    const std::string path = format_checkpoint_path(o_.filepath, epoch + 1, logs);
    if (o_.save_best_only) {
      const auto it = logs.find(o_.monitor);
      if (it == logs.end()) {
        print_line(ctx, fmt::format("Warning: can save best model only with {} available, "
                                    "skipping. Available metrics are: {}",
                                    o_.monitor, available_keys(logs)));
        return;
      }
      const double current = it->second;
      if (maximize_ ? current > best_ : current < best_) {
        if (o_.verbose) {
          print_line(ctx, fmt::format("\nEpoch {}: {} improved from {:.5f} to {:.5f}, saving model "
                                      "to {}",
                                      epoch + 1, o_.monitor, best_, current, path));
        }
        best_ = current;
        save(model, path);
      } else if (o_.verbose) {
        print_line(ctx, fmt::format("\nEpoch {}: {} did not improve from {:.5f}", epoch + 1,
                                    o_.monitor, best_));
      }
    } else {
      if (o_.verbose)
        print_line(ctx, fmt::format("\nEpoch {}: saving model to {}", epoch + 1, path));
      save(model, path);
    }
  }

 private:
  void save(Model& model, const std::string& path) {
    // Keras creates the folder of the checkpoint when it is missing.
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        throw IoError(fmt::format("ModelCheckpoint: cannot create the folder {}: {}",
                                  parent.string(), ec.message()));
      }
    }
    save_(model, path, o_.save_weights_only);
  }

  ModelCheckpointOptions o_;
  SaveModelFn save_;
  bool maximize_ = false;
  double best_ = kInf;
};

// ---------------------------------------------------------------------------------------------
class LearningRateSchedulerCallback : public Callback {
 public:
  explicit LearningRateSchedulerCallback(std::function<double(int, double)> schedule)
      : schedule_(std::move(schedule)) {
    if (!schedule_) throw ConfigError("LearningRateScheduler: no schedule function");
  }

  void on_epoch_begin(int epoch, TrainContext& ctx) override {
    Optimizer& opt = optimizer_of(ctx, "LearningRateScheduler");
    const double lr = schedule_(epoch, opt.learning_rate());
    if (!std::isfinite(lr) || lr < 0) {
      throw ConfigError(
          fmt::format("LearningRateScheduler: the schedule returned {} for epoch {}; expected a "
                      "finite rate >= 0",
                      lr, epoch));
    }
    opt.set_learning_rate(lr);
  }

 private:
  std::function<double(int, double)> schedule_;
};

// ---------------------------------------------------------------------------------------------
class ReduceLROnPlateauCallback : public Callback {
 public:
  explicit ReduceLROnPlateauCallback(ReduceLROnPlateauOptions o) : o_(std::move(o)) {
    check_mode("ReduceLROnPlateau", o_.mode);
    if (!(o_.factor < 1.0) || o_.factor < 0) {
      throw ConfigError(fmt::format(
          "ReduceLROnPlateau: factor must be in [0, 1) (new rate = rate * factor), got {}",
          o_.factor));
    }
    if (o_.patience < 0 || o_.cooldown < 0) {
      throw ConfigError(
          fmt::format("ReduceLROnPlateau: patience ({}) and cooldown ({}) must be >= 0",
                      o_.patience, o_.cooldown));
    }
    // Keras: minimise unless mode is "max" or ("auto" and "acc" appears in the name).
    maximize_ =
        o_.mode == "max" || (o_.mode == "auto" && o_.monitor.find("acc") != std::string::npos);
    reset();
  }

  void on_train_begin(TrainContext& ctx) override { reset(); }

  void on_epoch_end(int epoch, const Logs& logs, TrainContext& ctx) override {
    const auto it = logs.find(o_.monitor);
    if (it == logs.end()) {
      print_line(ctx, fmt::format("Warning: learning rate reduction is conditioned on metric `{}` "
                                  "which is not available. Available metrics are: {}",
                                  o_.monitor, available_keys(logs)));
      return;
    }
    const double current = it->second;
    if (in_cooldown()) {
      --cooldown_counter_;
      wait_ = 0;
    }
    const bool better = maximize_ ? current > best_ + o_.min_delta : current < best_ - o_.min_delta;
    if (better) {
      best_ = current;
      wait_ = 0;
    } else if (!in_cooldown()) {
      ++wait_;
      if (wait_ >= o_.patience) {
        Optimizer& opt = optimizer_of(ctx, "ReduceLROnPlateau");
        const double old_lr = opt.learning_rate();
        // Keras compares the float32 rate with np.float32(min_lr); the rate here is a double,
        // so compare doubles (a rate clamped to min_lr then stays there, silently).
        if (old_lr > o_.min_lr) {
          const double new_lr = std::max(old_lr * o_.factor, o_.min_lr);
          opt.set_learning_rate(new_lr);
          if (o_.verbose) {
            print_line(ctx,
                       fmt::format("\nEpoch {}: ReduceLROnPlateau reducing learning rate to {}.",
                                   epoch + 1, python_float_repr(new_lr)));
          }
          cooldown_counter_ = o_.cooldown;
          wait_ = 0;
        }
      }
    }
  }

 private:
  void reset() {
    best_ = maximize_ ? -kInf : kInf;
    cooldown_counter_ = 0;
    wait_ = 0;
  }
  bool in_cooldown() const { return cooldown_counter_ > 0; }

  ReduceLROnPlateauOptions o_;
  bool maximize_ = false;
  double best_ = kInf;
  int cooldown_counter_ = 0;
  int wait_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The whole file is rewritten atomically after every epoch, so a reader never sees a half row and
// an interrupted run keeps every finished epoch.
class CSVLoggerCallback : public Callback {
 public:
  explicit CSVLoggerCallback(std::string path) : path_(std::move(path)) {
    if (path_.empty()) throw ConfigError("CSVLogger: the file path is empty");
  }

  // Keras (append=False) truncates the file when training begins.
  void on_train_begin(TrainContext& ctx) override {
    keys_.clear();
    rows_.clear();
  }

  void on_epoch_end(int epoch, const Logs& logs, TrainContext& ctx) override {
    if (rows_.empty()) {
      // Columns are fixed by the first epoch, sorted (Keras: sorted(logs.keys())).
      keys_.clear();
      for (const auto& [k, v] : logs) keys_.push_back(k);
    }
    std::string row = std::to_string(epoch);
    for (const std::string& k : keys_) {
      const auto it = logs.find(k);
      row += ',';
      row += it != logs.end() ? python_float_repr(it->second) : std::string("NA");
    }
    rows_.push_back(std::move(row));
    if (!ctx.write_files) return;  // data-parallel fit: rank 0 writes

    std::string text = "epoch";
    for (const std::string& k : keys_) {
      text += ',';
      text += k;
    }
    text += '\n';
    for (const std::string& r : rows_) {
      text += r;
      text += '\n';
    }
    write_file_atomic(path_, text);
  }

 private:
  std::string path_;
  std::vector<std::string> keys_;
  std::vector<std::string> rows_;
};

// ---------------------------------------------------------------------------------------------
class TerminateOnNaNCallback : public Callback {
 public:
  void on_batch_end(int epoch, int64_t step, const Logs& logs, TrainContext& ctx) override {
    const auto it = logs.find("loss");
    if (it == logs.end() || std::isfinite(it->second)) return;
    // Keras prints "Batch {batch}: Invalid loss, terminating training"; the epoch is named too.
    print_line(ctx, fmt::format("Epoch {}, batch {}: invalid loss, terminating training", epoch + 1,
                                step));
    ctx.stop_training = true;
  }
};

}  // namespace

std::shared_ptr<Callback> EarlyStopping(EarlyStoppingOptions o) {
  return std::make_shared<EarlyStoppingCallback>(std::move(o));
}

std::shared_ptr<Callback> ModelCheckpoint(ModelCheckpointOptions o) {
  return std::make_shared<ModelCheckpointCallback>(std::move(o), SaveModelFn(save_model_file));
}

std::shared_ptr<Callback> ModelCheckpointWithSaver(ModelCheckpointOptions o, SaveModelFn save) {
  return std::make_shared<ModelCheckpointCallback>(std::move(o), std::move(save));
}

std::shared_ptr<Callback> LearningRateScheduler(std::function<double(int, double)> schedule) {
  return std::make_shared<LearningRateSchedulerCallback>(std::move(schedule));
}

std::shared_ptr<Callback> ReduceLROnPlateau(ReduceLROnPlateauOptions o) {
  return std::make_shared<ReduceLROnPlateauCallback>(std::move(o));
}

std::shared_ptr<Callback> CSVLogger(std::string path) {
  return std::make_shared<CSVLoggerCallback>(std::move(path));
}

std::shared_ptr<Callback> TerminateOnNaN() { return std::make_shared<TerminateOnNaNCallback>(); }

}  // namespace resnet
