// `resnet train`, `resnet evaluate`, `resnet predict`.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/model_loading.h"
#include "cli/training_command.h"
#include "core/atomic_file.h"
#include "ops/ops.h"
#include "resnet/data.h"
#include "resnet/dist.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"
#include "train/history_plot.h"
#include "train/save_hook.h"

namespace resnet::cli {

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, sep)) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// "flip,shift=0.1,rotation=10,zoom=0.1,crop=4,fill=reflect" -> AugmentOptions.
AugmentOptions parse_augment(const std::string& spec) {
  AugmentOptions a;
  for (const std::string& item : split(spec, ',')) {
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const std::string val = eq == std::string::npos ? "" : item.substr(eq + 1);
    auto number = [&] {
      try {
        return std::stod(val);
      } catch (const std::exception&) {
        throw ConfigError(fmt::format("--augment: '{}' needs a number, e.g. {}=0.1", key, key));
      }
    };
    if (key == "flip" || key == "hflip")
      a.horizontal_flip = true;
    else if (key == "vflip")
      a.vertical_flip = true;
    else if (key == "shift")
      a.width_shift_range = a.height_shift_range = number();
    else if (key == "rotation")
      a.rotation_range = number();
    else if (key == "zoom")
      a.zoom_range = number();
    else if (key == "crop")
      a.random_crop_padding = static_cast<int64_t>(number());
    else if (key == "fill") {
      if (val == "nearest")
        a.fill_mode = FillMode::Nearest;
      else if (val == "constant")
        a.fill_mode = FillMode::Constant;
      else if (val == "reflect")
        a.fill_mode = FillMode::Reflect;
      else if (val == "wrap")
        a.fill_mode = FillMode::Wrap;
      else
        throw ConfigError(fmt::format("--augment: unknown fill mode '{}'", val));
    } else {
      throw ConfigError(fmt::format(
          "--augment: unknown item '{}' (flip, vflip, shift=F, rotation=DEG, zoom=F, crop=PX, "
          "fill=nearest|constant|reflect|wrap)",
          key));
    }
  }
  return a;
}

struct DataChoice {
  std::string file;      // SIGNS-style .h5
  std::string dataset;   // fashion-mnist, mnist, cifar10
  std::string data_dir;  // folder of a named dataset
  std::string image_folder;
  int64_t limit = 0;  // first N samples only
};

Dataset limit(Dataset d, int64_t n) {
  if (n > 0 && n < d.size()) return d.slice(0, n);
  return d;
}

// The training (or, with test=true, the test) split of the chosen data.
Dataset load_data(const DataChoice& c, bool test, const Shape& image_shape) {
  if (!c.file.empty()) return load_h5_dataset(c.file);
  if (!c.image_folder.empty()) {
    if (image_shape.rank() != 3) throw ConfigError("--image-folder needs --input-shape H,W,C");
    return load_image_folder(c.image_folder, image_shape[0], image_shape[1], image_shape[2]);
  }
  if (c.dataset == "fashion-mnist") return load_fashion_mnist(!test, c.data_dir);
  if (c.dataset == "mnist") {
    const std::string dir = c.data_dir.empty() ? "/usr/share/datasets/mnist" : c.data_dir;
    const std::string p = test ? "t10k" : "train";
    return load_idx(dir + "/" + p + "-images-idx3-ubyte.gz",
                    dir + "/" + p + "-labels-idx1-ubyte.gz");
  }
  if (c.dataset == "cifar10") {
    if (c.data_dir.empty()) throw ConfigError("--dataset cifar10 needs --data-dir");
    std::vector<std::string> files;
    if (test) {
      files = {c.data_dir + "/test_batch.bin"};
    } else {
      for (int i = 1; i <= 5; ++i)
        files.push_back(fmt::format("{}/data_batch_{}.bin", c.data_dir, i));
    }
    return load_cifar10_bin(files);
  }
  throw ConfigError(fmt::format("unknown dataset '{}' (fashion-mnist, mnist, cifar10)", c.dataset));
}

std::shared_ptr<Optimizer> build_optimizer(const std::string& name, double lr, double momentum,
                                           double weight_decay,
                                           std::shared_ptr<LearningRateSchedule> schedule) {
  OptimizerCommon common{
      .learning_rate = lr, .schedule = std::move(schedule), .weight_decay = weight_decay};
  if (name == "sgd") return SGD({.common = common, .momentum = momentum});
  if (name == "adam") return Adam({.common = common});
  if (name == "adamw") return AdamW({.common = common});
  if (name == "rmsprop") return RMSprop({.common = common});
  throw ConfigError(fmt::format("unknown optimizer '{}' (sgd, adam, adamw, rmsprop)", name));
}

struct TrainOptions {
  std::string model = "resnet20";
  std::string input_shape;
  int64_t classes = 0;
  DataChoice data;
  std::string val_file;
  double validation_split = 0;
  int epochs = 1;
  int64_t batch_size = 32;
  std::string optimizer = "adam";
  double lr = 0.001;
  double momentum = 0.9;
  double weight_decay = 0;
  std::string schedule = "constant";
  int64_t warmup_steps = 0;
  std::string preprocess = "rescale";
  std::string augment;
  int patience = 0;
  bool update_bn = false;
  bool recompute = false;
  bool no_recompute = false;
  bool sync_bn = false;  // under mpirun: synchronized BatchNormalization statistics
  uint64_t seed = 0;
  int threads = 0;
  int workers = 2;
  std::string out;
  std::string history;
  std::string resume;
  bool evaluate_test = true;
  int verbose = 1;
  ModelBuilder build;    // a custom model (resnet finetune); empty: the zoo model --model
  std::string shortcut;  // --shortcut (the CIFAR ResNets)
};

void print_logs(const std::string& title, const Logs& logs) {
  std::string line = title;
  for (const auto& [k, v] : logs) line += fmt::format(" - {}: {}", k, format_metric(v));
  fmt::print("{}\n", line);
}

void run_train(const TrainOptions& o) {
  const bool chief = dist::rank() == 0;  // rank 0 of a data-parallel run (docs/distributed.md)
  if (o.threads > 0) ops::set_num_threads(o.threads);
  if (o.data.file.empty() && o.data.dataset.empty() && o.data.image_folder.empty()) {
    throw ConfigError("train: give --data FILE.h5, --dataset NAME or --image-folder DIR");
  }
  if (o.build && !o.shortcut.empty()) {
    throw ConfigError("--shortcut applies to the zoo's CIFAR ResNets, not to a fine-tuned model");
  }
  if (!o.out.empty() && file_format(o.out) == FileFormat::Onnx) {
    // Refused before training: an ONNX file cannot carry the optimizer state to resume from.
    throw ConfigError(fmt::format(
        "--out {}: train saves .h5 or .rnw files; export to ONNX with `resnet export`", o.out));
  }
  // Where the results go must be writable before any data is read or any step is run.
  if (chief && !o.out.empty()) check_writable(o.out, "--out");
  if (chief && !o.history.empty()) {
    for (const char* ext : {".csv", ".png", ".svg"}) check_writable(o.history + ext, "--history");
  }
  Shape requested = parse_shape(o.input_shape);
  Dataset train = limit(load_data(o.data, false, requested), o.data.limit);
  const Shape sample = train.sample_shape();
  const Shape input = requested.rank() == 3 ? requested : sample;
  if (input != sample) {
    throw ConfigError(fmt::format("--input-shape {} does not match the data's images {}",
                                  input.str(), sample.str()));
  }
  if (o.classes > 0 && o.classes < train.num_classes) {
    // The data contradicts the flag: labels the model could not output (exit 1, before training).
    throw IoError(fmt::format("--classes {}: the training data '{}' has {} classes", o.classes,
                              train.source, train.num_classes));
  }
  const int64_t classes = o.classes > 0 ? o.classes : train.num_classes;

  set_global_seed(o.seed);
  reset_name_counters();
  Model model = o.build ? o.build(o.model, input, classes)
                        : build_model(o.model, input, classes, parse_shortcut(o.shortcut));
  model.set_recompute(recompute_mode(o.recompute, o.no_recompute));
  const int64_t steps_per_epoch = (train.size() + o.batch_size - 1) / o.batch_size;
  std::shared_ptr<LearningRateSchedule> schedule;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  if (o.schedule == "cosine") {
    schedule = cosine_decay(o.warmup_steps > 0 ? o.lr * 0.1 : o.lr,
                            std::max<int64_t>(1, total_steps - o.warmup_steps), 0.0, o.warmup_steps,
                            o.warmup_steps > 0 ? o.lr : -1.0);
  } else if (o.schedule == "step") {
    schedule = step_decay(o.lr, 0.1, std::max<int64_t>(1, total_steps / 3));
  } else if (o.schedule == "exponential") {
    schedule = exponential_decay(o.lr, steps_per_epoch, 0.9);
  } else if (o.schedule != "constant") {
    throw ConfigError(
        fmt::format("unknown schedule '{}' (constant, cosine, step, exponential)", o.schedule));
  }
  model.compile(
      {.optimizer = build_optimizer(o.optimizer, o.lr, o.momentum, o.weight_decay, schedule),
       .loss = "sparse_categorical_crossentropy",
       .metrics = {"accuracy"}});
  int initial_epoch = 0;
  if (!o.resume.empty()) {
    auto attrs = load_weights(model, o.resume);
    if (attrs.count("epoch")) initial_epoch = std::stoi(attrs["epoch"]);
    if (chief) fmt::print("resumed from {} at epoch {}\n", o.resume, initial_epoch);
  }
  if (chief) {
    fmt::print("model {}: {} layers, {} parameters; {} training images {}; {} threads{}\n", o.model,
               model.layers().size(), model.count_params(), train.size(), sample.str(),
               ops::num_threads(),
               dist::active() ? fmt::format(" x {} ranks (global batch {}{})", dist::size(),
                                            o.batch_size, o.sync_bn ? ", SyncBN" : "")
                              : std::string());
  }

  Dataset val_data;
  FitOptions fit{.epochs = o.epochs,
                 .batch_size = o.batch_size,
                 .validation_split = o.validation_split,
                 .initial_epoch = initial_epoch,
                 .verbose = o.verbose,
                 .preprocess = Preprocess::from_name(o.preprocess),
                 .augment = parse_augment(o.augment),
                 .seed = o.seed,
                 .data_workers = o.workers,
                 .update_bn = o.update_bn,
                 .sync_bn = o.sync_bn};
  if (!o.val_file.empty()) {
    val_data = load_h5_dataset(o.val_file);
    fit.validation_data = &val_data;
  }
  if (o.patience > 0) {
    fit.callbacks.push_back(EarlyStopping(
        {.monitor = fit.validation_data || o.validation_split > 0 ? "val_loss" : "loss",
         .patience = o.patience,
         .restore_best_weights = true}));
  }
  History h = model.fit(train, fit);
  // Data-parallel run: every rank holds the same model now; rank 0 alone evaluates and writes.
  if (!chief) return;

  if (!o.history.empty()) {
    write_file_atomic(o.history + ".csv", h.to_csv());
    write_history_plot(h, o.history + ".png");
    write_history_plot(h, o.history + ".svg");
    fmt::print("history: {0}.csv, {0}.png, {0}.svg\n", o.history);
  }
  if (o.evaluate_test && o.data.file.empty() && o.data.image_folder.empty()) {
    Dataset test = load_data(o.data, true, input);
    Logs r = model.evaluate(test, {.batch_size = 256, .verbose = 0, .preprocess = fit.preprocess});
    fmt::print("Test loss: {:.4f}\nTest accuracy: {:.4f}\n", r["loss"], r["accuracy"]);
  } else if (fit.validation_data != nullptr) {
    Logs r =
        model.evaluate(val_data, {.batch_size = 256, .verbose = 0, .preprocess = fit.preprocess});
    fmt::print("Test loss: {:.4f}\nTest accuracy: {:.4f}\n", r["loss"], r["accuracy"]);
  }
  if (!o.out.empty()) {
    std::map<std::string, std::string> attrs = {
        {"zoo_model", o.model},
        {"input_shape", fmt::format("{},{},{}", input[0], input[1], input[2])},
        {"classes", std::to_string(classes)},
        {"preprocess", o.preprocess},
        {"class_names", join(train.class_names, "\n")},
        {"epoch", std::to_string(h.epochs.empty() ? initial_epoch : h.epochs.back() + 1)}};
    if (parse_shortcut(o.shortcut) == Shortcut::A) attrs["shortcut"] = "A";
    save_model_file_with_attributes(model, o.out, /*weights_only=*/false, attrs);
    fmt::print("saved {}\n", o.out);
  }
}

}  // namespace

CLI::App* add_training_command(CLI::App& app, const std::string& name,
                               const std::string& description,
                               std::function<ModelBuilder()> make_builder) {
  CLI::App* cmd = nullptr;
  {
    auto o = std::make_shared<TrainOptions>();
    cmd = app.add_subcommand(name, description);
    cmd->add_option("--model", o->model, "zoo model name (see `resnet models`)");
    add_shortcut_option(cmd, o->shortcut);
    cmd->add_option("--input-shape", o->input_shape, "input shape H,W,C (default: the data's)");
    cmd->add_option("--classes", o->classes,
                    "classes, at least the data's (default: from the data)")
        ->check(CLI::Range(int64_t{2}, int64_t{1000000}));
    cmd->add_option("--data", o->data.file, "SIGNS-style HDF5 training file");
    cmd->add_option("--val", o->val_file, "SIGNS-style HDF5 validation file");
    cmd->add_option("--dataset", o->data.dataset, "named dataset: fashion-mnist, mnist, cifar10");
    cmd->add_option("--data-dir", o->data.data_dir, "folder of the named dataset");
    cmd->add_option("--image-folder", o->data.image_folder, "folder with one subfolder per class");
    cmd->add_option("--limit", o->data.limit, "use only the first N training samples");
    cmd->add_option("--validation-split", o->validation_split,
                    "hold out the last fraction of the training data")
        ->check(CLI::Range(0.0, 0.99));
    cmd->add_option("--epochs", o->epochs, "epochs")->check(CLI::PositiveNumber);
    cmd->add_option("--batch-size", o->batch_size, "batch size")->check(CLI::PositiveNumber);
    cmd->add_option("--optimizer", o->optimizer, "sgd, adam, adamw, rmsprop")
        ->check(CLI::IsMember({"sgd", "adam", "adamw", "rmsprop"}));
    cmd->add_option("--lr", o->lr, "learning rate")->check(CLI::PositiveNumber);
    cmd->add_option("--momentum", o->momentum, "SGD momentum");
    cmd->add_option("--weight-decay", o->weight_decay, "L2 weight decay (AdamW: decoupled)");
    cmd->add_option("--schedule", o->schedule, "constant, cosine, step, exponential")
        ->check(CLI::IsMember({"constant", "cosine", "step", "exponential"}));
    cmd->add_option("--warmup-steps", o->warmup_steps, "linear warm-up steps (cosine)");
    cmd->add_option("--preprocess", o->preprocess, "none, rescale (1/255), tf, torch, caffe")
        ->check(CLI::IsMember({"none", "rescale", "tf", "torch", "caffe"}));
    cmd->add_option("--augment", o->augment,
                    "augmentation: flip,vflip,shift=F,rotation=DEG,zoom=F,crop=PX,fill=MODE");
    cmd->add_option("--early-stopping", o->patience,
                    "stop after N epochs without improvement (restores the best weights)");
    cmd->add_flag("--update-bn", o->update_bn,
                  "after every epoch, recompute the BatchNormalization moving statistics over "
                  "the training data (precise BN, as torch.optim.swa_utils.update_bn)");
    cmd->add_flag("--recompute", o->recompute,
                  "keep fewer activations for backward and recompute the rest (activation "
                  "checkpointing): much less memory for about one more forward pass per step");
    cmd->add_flag("--no-recompute", o->no_recompute,
                  "keep every activation for backward (by default the 1x1 convolutions and their "
                  "batch norms are recomputed: less memory, the same results)");
    cmd->add_flag("--sync-bn", o->sync_bn,
                  "under mpirun: BatchNormalization statistics over the global batch (all ranks) "
                  "instead of each rank's shard");
    cmd->add_option("--seed", o->seed, "random seed");
    cmd->add_option("--threads", o->threads, "compute threads (default: all cores)");
    cmd->add_option("--workers", o->workers, "data loading threads");
    cmd->add_option("--out", o->out,
                    "save the trained model to this file (.h5 or .rnw; checked writable before "
                    "training starts)");
    cmd->add_option("--history", o->history, "write PREFIX.csv, PREFIX.png and PREFIX.svg");
    cmd->add_option("--resume", o->resume, "continue from a file saved by --out");
    cmd->add_option("--verbose", o->verbose, "0 silent, 1 progress bar, 2 one line per epoch");
    cmd->callback([o, make_builder] {
      TrainOptions run = *o;
      if (make_builder) run.build = make_builder();
      run_train(run);
    });
  }
  return cmd;
}

void add_train_commands(CLI::App& app) {
  add_training_command(app, "train", "Train a zoo model (Keras fit) and save it", nullptr);
  {
    auto model = std::make_shared<std::string>();
    auto data = std::make_shared<DataChoice>();
    auto batch = std::make_shared<int64_t>(64);
    auto pre = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("evaluate", "Loss and accuracy of a saved model on data");
    cmd->add_option("model", *model,
                    "Keras .h5, ONNX, PyTorch .pth (with --model), or a file written by `resnet "
                    "train --out`")
        ->required();
    auto arch = std::make_shared<ArchChoice>();
    add_arch_options(cmd, *arch);
    cmd->add_option("--preprocess", *pre, "override: none, rescale, tf, torch, caffe")
        ->check(CLI::IsMember({"none", "rescale", "tf", "torch", "caffe"}));
    cmd->add_option("data", data->file, "SIGNS-style HDF5 file");
    cmd->add_option("--dataset", data->dataset, "named dataset (its test split)");
    cmd->add_option("--data-dir", data->data_dir, "folder of the named dataset");
    cmd->add_option("--batch-size", *batch, "batch size")->check(CLI::PositiveNumber);
    auto json = std::make_shared<bool>(false);
    cmd->add_flag(
        "--json", *json,
        "print one JSON object (model, data, samples, loss, metrics) and no progress bar");
    cmd->callback([=] {
      LoadedModel lm = load_saved(*model, *pre, *arch);
      if (data->file.empty() && data->dataset.empty()) {
        throw ConfigError("evaluate: give a data file or --dataset");
      }
      Dataset d = load_data(*data, true, lm.input);
      lm.model.compile({.loss = "sparse_categorical_crossentropy", .metrics = {"accuracy"}});
      Logs r = lm.model.evaluate(d, {.batch_size = *batch,
                                     .verbose = *json ? 0 : 1,
                                     .preprocess = Preprocess::from_name(lm.attrs["preprocess"])});
      if (*json) {
        nlohmann::ordered_json j = {{"model", *model}, {"data", d.source}, {"samples", d.size()}};
        for (const auto& [k, v] : r) j[k] = v;
        fmt::print("{}\n", j.dump());
        return;
      }
      print_logs(fmt::format("{} on {} ({} samples)", *model, d.source, d.size()), r);
    });
  }
  {
    auto model = std::make_shared<std::string>();
    auto images = std::make_shared<std::vector<std::string>>();
    auto top = std::make_shared<int>(3);
    auto pre = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("predict", "Classify image files with a saved model");
    cmd->add_option("model", *model,
                    "Keras .h5, ONNX, PyTorch .pth (with --model), or a file written by `resnet "
                    "train --out`")
        ->required();
    auto arch = std::make_shared<ArchChoice>();
    add_arch_options(cmd, *arch);
    cmd->add_option("--preprocess", *pre, "override: none, rescale, tf, torch, caffe")
        ->check(CLI::IsMember({"none", "rescale", "tf", "torch", "caffe"}));
    cmd->add_option("images", *images, "JPEG/PNG/BMP files")->required();
    cmd->add_option("--top-k", *top, "classes to show per image")->check(CLI::PositiveNumber);
    auto resize = std::make_shared<int64_t>(-1);
    cmd->add_option("--resize", *resize,
                    "resize the shorter side to N pixels, then center-crop to the model's input "
                    "(torchvision's evaluation transform; default: what the model records, 256 "
                    "for a 224 input from a PyTorch ImageNet file; 0: resize straight to the "
                    "input)")
        ->check(CLI::NonNegativeNumber);
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json,
                  "print one JSON object: per image the top k classes (index, label, probability)");
    cmd->callback([=] {
      LoadedModel lm = load_saved(*model, *pre, *arch);
      int64_t shorter = *resize;
      if (shorter < 0 && lm.attrs.count("resize")) {
        try {
          shorter = std::stoll(lm.attrs["resize"]);
        } catch (const std::exception&) {
          throw IoError(fmt::format("{}: bad resize attribute '{}'", *model, lm.attrs["resize"]));
        }
      }
      shorter = std::max<int64_t>(shorter, 0);
      if (shorter > 0 && shorter < std::max(lm.input[0], lm.input[1])) {
        throw ConfigError(fmt::format("--resize {} is smaller than the model's input {}x{}",
                                      shorter, lm.input[0], lm.input[1]));
      }
      const std::vector<std::string> names = split(lm.attrs["class_names"], '\n');
      const Preprocess pre = Preprocess::from_name(lm.attrs["preprocess"]);
      nlohmann::ordered_json out = {{"model", *model},
                                    {"predictions", nlohmann::ordered_json::array()}};
      for (const std::string& path : *images) {
        Tensor img = (shorter > 0 ? load_image_center_crop(path, shorter, lm.input[0], lm.input[1],
                                                           lm.input[2])
                                  : load_image(path, lm.input[0], lm.input[1], lm.input[2]))
                         .to_f32();
        pre.apply(img);
        Tensor p = lm.model.predict(img, 1);
        const int64_t c = p.shape()[1];
        std::vector<int64_t> idx(c);
        for (int64_t i = 0; i < c; ++i) idx[i] = i;
        std::sort(idx.begin(), idx.end(),
                  [&](int64_t a, int64_t b) { return p.f32()[a] > p.f32()[b]; });
        if (*json) {
          nlohmann::ordered_json top_k = nlohmann::ordered_json::array();
          for (int k = 0; k < std::min<int64_t>(*top, c); ++k) {
            const int64_t i = idx[k];
            top_k.push_back(
                {{"class", i},
                 {"label", i < static_cast<int64_t>(names.size()) ? names[i] : std::to_string(i)},
                 {"probability", p.f32()[i]}});
          }
          out["predictions"].push_back({{"image", path}, {"top_k", top_k}});
          continue;
        }
        fmt::print("{}:\n", path);
        for (int k = 0; k < std::min<int64_t>(*top, c); ++k) {
          const int64_t i = idx[k];
          const std::string label =
              i < static_cast<int64_t>(names.size()) ? names[i] : std::to_string(i);
          fmt::print("  {:>2}. {:<20} {:.4f}\n", k + 1, label, p.f32()[i]);
        }
      }
      if (*json) fmt::print("{}\n", out.dump());
    });
  }
}

}  // namespace resnet::cli
