// Training: compile options, fit/evaluate options, History, callbacks, progress output.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "resnet/data.h"
#include "resnet/optim.h"

namespace resnet {

class Model;

struct CompileOptions {
  std::shared_ptr<Optimizer> optimizer;  // default: RMSprop, as Keras compile()
  std::string loss = "categorical_crossentropy";
  // "accuracy", "top_k_accuracy" (k = 5), "mae" (mean absolute error)
  std::vector<std::string> metrics = {"accuracy"};
};

// Values logged per epoch: "loss", "accuracy", "val_loss", "val_accuracy", "lr", ...
using Logs = std::map<std::string, double>;

struct History {
  std::vector<int> epochs;                            // 0-based epoch numbers that ran
  std::map<std::string, std::vector<double>> values;  // per key, one value per epoch
  // CSV with a header "epoch,<keys...>", one row per epoch (as keras CSVLogger).
  std::string to_csv() const;
};

// What callbacks see and may change.
struct TrainContext {
  Model* model = nullptr;
  Optimizer* optimizer = nullptr;
  bool stop_training = false;
  int epochs = 0;  // total epochs of this fit
  int64_t steps_per_epoch = 0;
  std::ostream* out = nullptr;  // where callbacks print their messages
  // False on every rank but 0 of a data-parallel fit (include/resnet/dist.h): callbacks that
  // write files (ModelCheckpoint, CSVLogger) then skip the write; messages go nowhere.
  bool write_files = true;
};

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(TrainContext& ctx) {}
  virtual void on_epoch_begin(int epoch, TrainContext& ctx) {}
  // `logs` holds the running means of the epoch so far.
  virtual void on_batch_end(int epoch, int64_t step, const Logs& logs, TrainContext& ctx) {}
  virtual void on_epoch_end(int epoch, const Logs& logs, TrainContext& ctx) {}
  virtual void on_train_end(TrainContext& ctx) {}
};

struct FitOptions {
  int epochs = 1;
  int64_t batch_size = 32;
  const Dataset* validation_data = nullptr;
  double validation_split = 0.0;  // the last fraction, taken before shuffling (Keras)
  bool shuffle = true;            // reshuffled every epoch
  int initial_epoch = 0;
  std::vector<std::shared_ptr<Callback>> callbacks;
  int verbose = 1;  // 0 silent, 1 progress bar (one line per epoch when not a terminal), 2 line
  std::ostream* out = nullptr;  // default std::cout
  Preprocess preprocess;        // applied to every batch (train and validation)
  AugmentOptions augment;       // training batches only
  uint64_t seed = 0;            // shuffling and augmentation
  int data_workers = 2;         // background threads preparing batches
  // After every epoch, before validation: recompute the BatchNormalization moving statistics
  // over the training data with the epoch's final weights (update_bn below; no augmentation).
  bool update_bn = false;
  // Data-parallel fit (under mpirun, dist::active()): synchronize BatchNormalization statistics
  // across ranks (SyncBN) instead of normalizing each rank's shard by its own statistics.
  bool sync_bn = false;
};

struct EvaluateOptions {
  int64_t batch_size = 32;
  int verbose = 1;
  std::ostream* out = nullptr;
  Preprocess preprocess;
};

// --- Callbacks (Keras defaults).
struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  double min_delta = 0.0;
  int patience = 0;
  std::string mode = "auto";  // "min", "max", "auto" (max for *acc*/auc, else min)
  bool restore_best_weights = false;
  int start_from_epoch = 0;
  bool verbose = true;
};
std::shared_ptr<Callback> EarlyStopping(EarlyStoppingOptions o = {});

struct ModelCheckpointOptions {
  std::string filepath;  // may contain {epoch} (1-based, as Keras formats it)
  std::string monitor = "val_loss";
  bool save_best_only = false;
  bool save_weights_only = false;
  std::string mode = "auto";
  bool verbose = true;
};
std::shared_ptr<Callback> ModelCheckpoint(ModelCheckpointOptions o);

// Sets the rate at the start of each epoch to schedule(epoch, current rate).
std::shared_ptr<Callback> LearningRateScheduler(std::function<double(int, double)> schedule);

struct ReduceLROnPlateauOptions {
  std::string monitor = "val_loss";
  double factor = 0.1;
  int patience = 10;
  std::string mode = "auto";
  double min_delta = 1e-4;
  int cooldown = 0;
  double min_lr = 0.0;
  bool verbose = true;
};
std::shared_ptr<Callback> ReduceLROnPlateau(ReduceLROnPlateauOptions o = {});

// Appends one row per epoch to a CSV file (written atomically after every epoch).
std::shared_ptr<Callback> CSVLogger(std::string path);

// Stops training when the loss becomes NaN or infinite, with a message naming epoch and step.
std::shared_ptr<Callback> TerminateOnNaN();

// --- Progress output (keras Progbar).
// Keras number format: "%.4f", or "%.4e" when 0 < |v| <= 1e-3.
std::string format_metric(double v);
// "34/34 [==============================] - 12s 350ms/step - loss: 0.4123 - accuracy: 0.8611"
// `running` draws '>' at the head and "ETA" instead of the total time.
std::string progress_line(int64_t step, int64_t total, double elapsed_s, const Logs& logs,
                          const std::vector<std::string>& order, bool running);

// --- Precise BatchNormalization statistics (PyTorch's torch.optim.swa_utils.update_bn).
struct UpdateBnOptions {
  int64_t batch_size = 32;
  int64_t max_batches = 0;  // 0: every batch of `data`
  Preprocess preprocess;
  int data_workers = 2;
};
// Recomputes the moving mean and variance of every trainable BatchNormalization layer as the
// plain average, over the batches of `data` (in order, no augmentation), of the batch statistics
// that a training-mode forward pass with the current weights computes (the variance
// Bessel-corrected, as in training). Weights do not change. This removes the lag of the
// exponential moving averages (momentum 0.99 averages over ~100 steps) when the weights moved
// quickly, which otherwise makes inference-mode accuracy trail training-mode accuracy.
// Frozen (non-trainable) BatchNormalization layers keep their statistics. Returns the number of
// batches used.
int64_t update_bn(Model& model, const Dataset& data, const UpdateBnOptions& o = {});

}  // namespace resnet
