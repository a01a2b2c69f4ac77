// Keras callbacks driven by scripted logs: decisions, counters, messages and files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "resnet/error.h"
#include "resnet/layers.h"
#include "resnet/model.h"
#include "resnet/optim.h"
#include "resnet/train.h"
#include "support/temp_dir.h"
#include "train/save_hook.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;

// A tiny model (Input(2) -> Dense(3)) whose weights the tests overwrite between epochs.
Model tiny_model() {
  SymTensor in = Input({2});
  SymTensor out = Dense({.units = 3, .name = "fc"})(in);
  return Model(in, out, "tiny");
}

void fill_params(Model& m, float value) {
  for (Param* p : m.params()) p->value.fill(value);
}

std::vector<float> all_values(Model& m) {
  std::vector<float> v;
  for (Param* p : m.params()) {
    for (float x : p->value.to_vector()) v.push_back(x);
  }
  return v;
}

// Runs on_epoch_end over `values` of `key`; returns the epoch at which stop_training was set
// (-1 if never). Like fit, stops calling once training is stopped.
int run_epochs(Callback& cb, TrainContext& ctx, const std::string& key,
               const std::vector<double>& values) {
  cb.on_train_begin(ctx);
  int stopped = -1;
  for (int e = 0; e < static_cast<int>(values.size()); ++e) {
    cb.on_epoch_begin(e, ctx);
    cb.on_epoch_end(e, {{key, values[e]}, {"other", 1.0}}, ctx);
    if (ctx.stop_training) {
      stopped = e;
      break;
    }
  }
  cb.on_train_end(ctx);
  return stopped;
}

using TempFolder = testing::TempDir;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// --- EarlyStopping ---------------------------------------------------------------------------

TEST(CallbacksEarlyStopping, PatienceZeroStopsAtTheFirstEpochWithoutImprovement) {
  std::ostringstream out;
  TrainContext ctx{.out = &out};
  auto es = EarlyStopping({.monitor = "loss"});
  EXPECT_EQ(run_epochs(*es, ctx, "loss", {1.0, 0.9, 0.95, 0.5}), 2);
  EXPECT_EQ(out.str(), "Epoch 3: early stopping\n");
}

TEST(CallbacksEarlyStopping, PatienceCountsEpochsWithoutImprovement) {
  std::ostringstream out;
  TrainContext ctx{.out = &out};
  auto es = EarlyStopping({.monitor = "val_loss", .patience = 2});
  // Improvement at epoch 3 resets the counter; epochs 4 and 5 do not improve.
  EXPECT_EQ(run_epochs(*es, ctx, "val_loss", {1.0, 0.9, 0.95, 0.8, 0.85, 0.81, 0.1}), 5);
  EXPECT_EQ(out.str(), "Epoch 6: early stopping\n");
}

TEST(CallbacksEarlyStopping, NeverStopsAfterTheFirstEpoch) {
  std::ostringstream out;
  TrainContext ctx{.out = &out};
  // Even a missing value on epoch 0 cannot stop (Keras: "only check after the first epoch").
  auto es = EarlyStopping({.monitor = "loss"});
  EXPECT_EQ(run_epochs(*es, ctx, "loss", {std::nan("")}), -1);
  EXPECT_EQ(out.str(), "");
}

TEST(CallbacksEarlyStopping, MinDeltaIsTheSmallestChangeThatCounts) {
  std::ostringstream out;
  TrainContext ctx{.out = &out};
  // 0.95 is not below 1.0 - 0.1; 0.85 is.
  auto es = EarlyStopping({.monitor = "loss", .min_delta = 0.1, .patience = 1});
  EXPECT_EQ(run_epochs(*es, ctx, "loss", {1.0, 0.95}), 1);
  ctx.stop_training = false;
  auto es2 = EarlyStopping({.monitor = "loss", .min_delta = -0.1, .patience = 2});  // |min_delta|
  EXPECT_EQ(run_epochs(*es2, ctx, "loss", {1.0, 0.95, 0.85, 0.8, 0.79}), 4);
}

TEST(CallbacksEarlyStopping, AutoModeMaximisesAccuracyAndAuc) {
  for (const char* key : {"val_accuracy", "accuracy", "val_acc", "auc"}) {
    std::ostringstream out;
    TrainContext ctx{.out = &out};
    auto es = EarlyStopping({.monitor = key});
    EXPECT_EQ(run_epochs(*es, ctx, key, {0.5, 0.6, 0.7, 0.65}), 3) << key;
  }
  std::ostringstream out;
  TrainContext ctx{.out = &out};
  auto es = EarlyStopping({.monitor = "val_loss"});  // minimised: rising values stop at once
  EXPECT_EQ(run_epochs(*es, ctx, "val_loss", {0.5, 0.6}), 1);
  ctx.stop_training = false;
  auto explicit_max = EarlyStopping({.monitor = "val_loss", .mode = "max"});
  EXPECT_EQ(run_epochs(*explicit_max, ctx, "val_loss", {0.5, 0.6, 0.55}), 2);
}

TEST(CallbacksEarlyStopping, StartFromEpochIgnoresTheWarmUpEpochs) {
  std::ostringstream out;
  TrainContext ctx{.out = &out};
  auto es = EarlyStopping({.monitor = "loss", .start_from_epoch = 2});
  EXPECT_EQ(run_epochs(*es, ctx, "loss", {1.0, 2.0, 3.0, 4.0}), 3);
}

TEST(CallbacksEarlyStopping, RestoreBestWeightsCopiesTheBestEpochsValuesBack) {
  Model m = tiny_model();
  std::ostringstream out;
  TrainContext ctx{.model = &m, .out = &out};
  auto es = EarlyStopping({.monitor = "loss", .patience = 1, .restore_best_weights = true});
  es->on_train_begin(ctx);
  const std::vector<double> losses = {1.0, 0.5, 0.7, 0.8, 0.1};
  int e = 0;
  for (; e < static_cast<int>(losses.size()) && !ctx.stop_training; ++e) {
    fill_params(m, static_cast<float>(e + 1));  // "training" changes the weights
    es->on_epoch_end(e, {{"loss", losses[e]}}, ctx);
  }
  EXPECT_EQ(e, 3);  // stopped after epoch 2 (0-based)
  Param* kernel = m.params()[0];
  const uint64_t version = kernel->value.version();
  es->on_train_end(ctx);
  for (float v : all_values(m)) ASSERT_EQ(v, 2.0f);  // the weights of epoch 1, the best
  EXPECT_GT(kernel->value.version(), version);       // caches keyed on the version see the change
  EXPECT_EQ(out.str(),
            "Epoch 3: early stopping\n"
            "Restoring model weights from the end of the best epoch: 2.\n");
}

TEST(CallbacksEarlyStopping, RestoresAtTrainEndEvenWithoutStopping) {
  // tf-keras HEAD: the best weights come back at the end of training, stopped early or not.
  Model m = tiny_model();
  std::ostringstream out;
  TrainContext ctx{.model = &m, .out = &out};
  auto es = EarlyStopping(
      {.monitor = "loss", .patience = 5, .restore_best_weights = true, .verbose = false});
  es->on_train_begin(ctx);
  fill_params(m, 7.0f);
  es->on_epoch_end(0, {{"loss", 0.2}}, ctx);
  fill_params(m, 9.0f);
  es->on_epoch_end(1, {{"loss", 0.3}}, ctx);
  es->on_train_end(ctx);
  EXPECT_FALSE(ctx.stop_training);
  for (float v : all_values(m)) ASSERT_EQ(v, 7.0f);
  EXPECT_EQ(out.str(), "");
}

TEST(CallbacksEarlyStopping, MissingMonitorWarnsWithTheAvailableKeysAndDoesNothing) {
  std::ostringstream out;
  TrainContext ctx{.out = &out};
  auto es = EarlyStopping();  // val_loss
  es->on_train_begin(ctx);
  for (int e = 0; e < 3; ++e) es->on_epoch_end(e, {{"loss", 1.0 + e}, {"accuracy", 0.5}}, ctx);
  es->on_train_end(ctx);
  EXPECT_FALSE(ctx.stop_training);
  const std::string line =
      "Warning: early stopping conditioned on metric `val_loss` which is not available. Available "
      "metrics are: accuracy,loss\n";
  EXPECT_EQ(out.str(), line + line + line);
}

TEST(CallbacksEarlyStopping, InvalidOptionsThrow) {
  EXPECT_THROW(EarlyStopping({.mode = "biggest"}), ConfigError);
  EXPECT_THROW(EarlyStopping({.patience = -1}), ConfigError);
}

// --- ModelCheckpoint -------------------------------------------------------------------------

struct SaveRecord {
  std::string path;
  bool weights_only;
};

std::shared_ptr<Callback> recording_checkpoint(ModelCheckpointOptions o,
                                               std::vector<SaveRecord>& saves) {
  return ModelCheckpointWithSaver(std::move(o),
                                  [&saves](Model&, const std::string& path, bool weights_only) {
                                    saves.push_back({path, weights_only});
                                  });
}

TEST(CallbacksModelCheckpoint, SaveBestOnlySavesImprovementsWithKerasMessages) {
  TempFolder dir;
  Model m = tiny_model();
  std::ostringstream out;
  TrainContext ctx{.model = &m, .out = &out};
  std::vector<SaveRecord> saves;
  auto cb = recording_checkpoint(
      {.filepath = dir.file("ckpt/w-{epoch:02d}.rnw"), .save_best_only = true}, saves);
  cb->on_train_begin(ctx);
  const std::vector<double> val_loss = {0.5, 0.6, 0.123456, 0.2};
  for (int e = 0; e < 4; ++e) cb->on_epoch_end(e, {{"loss", 1.0}, {"val_loss", val_loss[e]}}, ctx);
  const std::string first = dir.file("ckpt/w-01.rnw");
  const std::string third = dir.file("ckpt/w-03.rnw");
  ASSERT_EQ(saves.size(), 2u);
  EXPECT_EQ(saves[0].path, first);
  EXPECT_EQ(saves[1].path, third);
  EXPECT_FALSE(saves[0].weights_only);
  EXPECT_TRUE(fs::is_directory(dir.file("ckpt")));  // created for the hook, as Keras does
  EXPECT_EQ(out.str(),
            "\nEpoch 1: val_loss improved from inf to 0.50000, saving model to " + first + "\n" +
                "\nEpoch 2: val_loss did not improve from 0.50000\n" +
                "\nEpoch 3: val_loss improved from 0.50000 to 0.12346, saving model to " + third +
                "\n" + "\nEpoch 4: val_loss did not improve from 0.12346\n");
}

TEST(CallbacksModelCheckpoint, AutoModeMaximisesNamesContainingAcc) {
  Model m = tiny_model();
  std::ostringstream out;
  TrainContext ctx{.model = &m, .out = &out};
  std::vector<SaveRecord> saves;
  auto cb = recording_checkpoint({.filepath = "best.rnw",
                                  .monitor = "val_accuracy",
                                  .save_best_only = true,
                                  .save_weights_only = true},
                                 saves);
  const std::vector<double> acc = {0.7, 0.65, 0.9};
  for (int e = 0; e < 3; ++e) cb->on_epoch_end(e, {{"val_accuracy", acc[e]}}, ctx);
  ASSERT_EQ(saves.size(), 2u);
  EXPECT_TRUE(saves[0].weights_only);
  EXPECT_EQ(out.str(),
            "\nEpoch 1: val_accuracy improved from -inf to 0.70000, saving model to best.rnw\n"
            "\nEpoch 2: val_accuracy did not improve from 0.70000\n"
            "\nEpoch 3: val_accuracy improved from 0.70000 to 0.90000, saving model to best.rnw\n");
}

TEST(CallbacksModelCheckpoint, WithoutSaveBestOnlySavesEveryEpochAndFormatsThePath) {
  Model m = tiny_model();
  std::ostringstream out;
  TrainContext ctx{.model = &m, .out = &out};
  std::vector<SaveRecord> saves;
  auto cb = recording_checkpoint({.filepath = "m{epoch}-{val_loss:.2f}-{loss}{{x}}.rnw"}, saves);
  cb->on_epoch_end(0, {{"loss", 0.5}, {"val_loss", 0.756}}, ctx);
  cb->on_epoch_end(9, {{"loss", 0.25}, {"val_loss", 0.5}}, ctx);
  ASSERT_EQ(saves.size(), 2u);
  EXPECT_EQ(saves[0].path, "m1-0.76-0.5{x}.rnw");
  EXPECT_EQ(saves[1].path, "m10-0.50-0.25{x}.rnw");
  EXPECT_EQ(out.str(),
            "\nEpoch 1: saving model to m1-0.76-0.5{x}.rnw\n"
            "\nEpoch 10: saving model to m10-0.50-0.25{x}.rnw\n");
}

TEST(CallbacksModelCheckpoint, MissingMonitorSkipsAndBadPathsThrow) {
  Model m = tiny_model();
  std::ostringstream out;
  TrainContext ctx{.model = &m, .out = &out};
  std::vector<SaveRecord> saves;
  auto cb = recording_checkpoint({.filepath = "m.rnw", .save_best_only = true}, saves);
  cb->on_epoch_end(0, {{"loss", 0.5}}, ctx);
  EXPECT_TRUE(saves.empty());
  EXPECT_EQ(out.str(),
            "Warning: can save best model only with val_loss available, skipping. Available "
            "metrics are: loss\n");

  auto bad_key = recording_checkpoint({.filepath = "m{val_acc}.rnw"}, saves);
  EXPECT_THROW(bad_key->on_epoch_end(0, {{"loss", 0.5}}, ctx), ConfigError);
  auto bad_spec = recording_checkpoint({.filepath = "m{loss:d}.rnw"}, saves);
  EXPECT_THROW(bad_spec->on_epoch_end(0, {{"loss", 0.5}}, ctx), ConfigError);
  EXPECT_THROW(ModelCheckpoint({}), ConfigError);
  EXPECT_THROW(ModelCheckpoint({.filepath = "x", .mode = "up"}), ConfigError);
  TrainContext no_model{.out = &out};
  EXPECT_THROW(cb->on_epoch_end(0, {{"val_loss", 0.5}}, no_model), Error);
}

TEST(CallbacksModelCheckpoint, DefaultHookWritesTheModelFile) {
  TempFolder dir;
  Model m = tiny_model();
  std::ostringstream out;
  TrainContext ctx{.model = &m, .out = &out};
  auto cb = ModelCheckpoint(
      {.filepath = dir.file("sub/w{epoch}.rnw"), .save_weights_only = true, .verbose = false});
  cb->on_epoch_end(0, {{"val_loss", 0.5}}, ctx);
  EXPECT_TRUE(fs::exists(dir.file("sub/w1.rnw")));
  EXPECT_EQ(dir.count_files(), 1u);  // no temporary file left
  EXPECT_EQ(out.str(), "");
}

// --- LearningRateScheduler --------------------------------------------------------------------

TEST(CallbacksLearningRateScheduler, SetsTheRateFromEpochAndCurrentRate) {
  auto opt = SGD({.common = {.learning_rate = 0.1}});
  TrainContext ctx{.optimizer = opt.get()};
  std::vector<int> seen_epochs;
  auto cb = LearningRateScheduler([&](int epoch, double lr) {
    seen_epochs.push_back(epoch);
    return epoch < 2 ? lr : lr * 0.5;
  });
  std::vector<double> rates;
  for (int e = 0; e < 4; ++e) {
    cb->on_epoch_begin(e, ctx);
    rates.push_back(opt->learning_rate());
  }
  EXPECT_EQ(seen_epochs, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(rates, (std::vector<double>{0.1, 0.1, 0.05, 0.025}));
  auto broken = LearningRateScheduler([](int, double) { return std::nan(""); });
  EXPECT_THROW(broken->on_epoch_begin(0, ctx), ConfigError);
  TrainContext no_optimizer;
  EXPECT_THROW(cb->on_epoch_begin(0, no_optimizer), Error);
}

// --- ReduceLROnPlateau ------------------------------------------------------------------------

TEST(CallbacksReduceLROnPlateau, ReducesAfterPatienceWithCooldownAndFloor) {
  auto opt = SGD({.common = {.learning_rate = 0.1}});
  std::ostringstream out;
  TrainContext ctx{.optimizer = opt.get(), .out = &out};
  auto cb = ReduceLROnPlateau(
      {.factor = 0.5, .patience = 2, .cooldown = 1, .min_lr = 0.02});  // monitors val_loss
  cb->on_train_begin(ctx);
  std::vector<double> rates;
  for (int e = 0; e < 10; ++e) {
    cb->on_epoch_end(e, {{"val_loss", 1.0}}, ctx);
    rates.push_back(opt->learning_rate());
  }
  // Reductions at epochs 2, 4 (after one cooldown epoch) and 6 (clamped to min_lr), then none.
  EXPECT_EQ(rates,
            (std::vector<double>{0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02}));
  EXPECT_EQ(out.str(),
            "\nEpoch 3: ReduceLROnPlateau reducing learning rate to 0.05.\n"
            "\nEpoch 5: ReduceLROnPlateau reducing learning rate to 0.025.\n"
            "\nEpoch 7: ReduceLROnPlateau reducing learning rate to 0.02.\n");
}

TEST(CallbacksReduceLROnPlateau, ImprovementsBeyondMinDeltaResetTheWait) {
  auto opt = SGD({.common = {.learning_rate = 0.1}});
  std::ostringstream out;
  TrainContext ctx{.optimizer = opt.get(), .out = &out};
  auto cb = ReduceLROnPlateau({.monitor = "val_accuracy", .patience = 2, .min_delta = 0.01});
  cb->on_train_begin(ctx);
  // max mode ("acc" in the name): 0.605 is within min_delta of 0.6, so it is no improvement.
  const std::vector<double> acc = {0.5, 0.6, 0.605, 0.7, 0.705, 0.708};
  std::vector<double> rates;
  for (int e = 0; e < 6; ++e) {
    cb->on_epoch_end(e, {{"val_accuracy", acc[e]}}, ctx);
    rates.push_back(opt->learning_rate());
  }
  EXPECT_DOUBLE_EQ(rates[4], 0.1);
  EXPECT_NEAR(rates[5], 0.01, 1e-12);
  EXPECT_EQ(out.str(),
            "\nEpoch 6: ReduceLROnPlateau reducing learning rate to 0.010000000000000002.\n");
}

TEST(CallbacksReduceLROnPlateau, MissingMonitorWarnsAndBadFactorThrows) {
  auto opt = SGD();
  std::ostringstream out;
  TrainContext ctx{.optimizer = opt.get(), .out = &out};
  auto cb = ReduceLROnPlateau({.patience = 0});
  cb->on_epoch_end(0, {{"loss", 1.0}}, ctx);
  EXPECT_EQ(out.str(),
            "Warning: learning rate reduction is conditioned on metric `val_loss` which is not "
            "available. Available metrics are: loss\n");
  EXPECT_DOUBLE_EQ(opt->learning_rate(), 0.01);
  EXPECT_THROW(ReduceLROnPlateau({.factor = 1.0}), ConfigError);
  EXPECT_THROW(ReduceLROnPlateau({.mode = "sideways"}), ConfigError);
}

// --- CSVLogger --------------------------------------------------------------------------------

TEST(CallbacksCSVLogger, RewritesTheWholeFileAfterEveryEpoch) {
  TempFolder dir;
  const std::string path = dir.file("log.csv");
  TrainContext ctx;
  auto cb = CSVLogger(path);
  cb->on_train_begin(ctx);
  cb->on_epoch_end(0, {{"loss", 1.25}, {"accuracy", 0.5}, {"val_loss", 1.5}}, ctx);
  EXPECT_EQ(read_all(path), "epoch,accuracy,loss,val_loss\n0,0.5,1.25,1.5\n");
  // Columns are fixed by the first epoch: a missing value prints NA, a new key is left out.
  cb->on_epoch_end(1, {{"loss", 0.1}, {"accuracy", 0.75}, {"lr", 0.001}}, ctx);
  EXPECT_EQ(read_all(path), "epoch,accuracy,loss,val_loss\n0,0.5,1.25,1.5\n1,0.75,0.1,NA\n");
  cb->on_train_end(ctx);
  EXPECT_EQ(dir.count_files(), 1u);  // no temporary file left

  // A new fit starts a new file (Keras append=False).
  cb->on_train_begin(ctx);
  cb->on_epoch_end(0, {{"loss", 2.0}}, ctx);
  EXPECT_EQ(read_all(path), "epoch,loss\n0,2.0\n");
}

TEST(CallbacksCSVLogger, UnwritablePathThrowsIoError) {
  TempFolder dir;
  TrainContext ctx;
  auto cb = CSVLogger(dir.file("missing/log.csv"));
  cb->on_train_begin(ctx);
  EXPECT_THROW(cb->on_epoch_end(0, {{"loss", 1.0}}, ctx), IoError);
  EXPECT_THROW(CSVLogger(""), ConfigError);
}

// --- TerminateOnNaN ---------------------------------------------------------------------------

TEST(CallbacksTerminateOnNaN, StopsOnNaNOrInfiniteLossNamingEpochAndBatch) {
  std::ostringstream out;
  TrainContext ctx{.out = &out};
  auto cb = TerminateOnNaN();
  cb->on_batch_end(1, 6, {{"loss", 0.5}}, ctx);
  cb->on_batch_end(1, 6, {{"accuracy", std::nan("")}}, ctx);  // only the loss counts
  EXPECT_FALSE(ctx.stop_training);
  EXPECT_EQ(out.str(), "");
  cb->on_batch_end(1, 7, {{"loss", std::nan("")}}, ctx);
  EXPECT_TRUE(ctx.stop_training);
  EXPECT_EQ(out.str(), "Epoch 2, batch 7: invalid loss, terminating training\n");

  ctx.stop_training = false;
  cb->on_batch_end(0, 3, {{"loss", INFINITY}}, ctx);
  EXPECT_TRUE(ctx.stop_training);
}

}  // namespace
}  // namespace resnet
