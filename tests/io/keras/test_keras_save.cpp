// Keras .h5 model and weights files: save -> load round trips, the HDF5 tree against a real
// Keras 2.4 file, optimizer state, load_weights by topology / by name / skip_mismatch, Keras 3
// style files, transfer learning, corrupted files and interrupted saves.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/fault_injection.h"
#include "io/hdf5/file.h"
#include "io/keras/config.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/model.h"
#include "resnet/models.h"
#include "support/allclose.h"
#include "support/temp_dir.h"
#include "train/save_hook.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;

std::string keras_dir() {
  if (const char* env = std::getenv("RESNET_KERAS_DIR"); env && *env) return env;
  return RESNET_SOURCE_DIR "/../shared/datasets/keras";
}
std::string resnet8_path() { return keras_dir() + "/resnet8_cifar10_keras2.4.h5"; }

std::string tmp(const std::string& name) {
  // One folder per process (ctest -j runs the tests of this file in parallel processes), removed
  // when the process exits.
  static const resnet::testing::TempDir dir("resnet_h5_tests");
  return dir.file(name);
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.f32(), b.f32(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}

void expect_same_params(Model& a, Model& b) {
  ASSERT_EQ(a.layers().size(), b.layers().size());
  for (size_t i = 0; i < a.layers().size(); ++i) {
    const Layer& la = *a.layers()[i];
    const Layer& lb = *b.layers()[i];
    ASSERT_EQ(la.name(), lb.name());
    ASSERT_EQ(la.params().size(), lb.params().size()) << la.name();
    for (size_t k = 0; k < la.params().size(); ++k) {
      EXPECT_TRUE(same_bits(la.params()[k].value, lb.params()[k].value))
          << la.name() << "/" << la.params()[k].name;
    }
  }
}

// A small residual network (CIFAR ResNet-8 on 12x12x3 inputs, 4 classes).
Model small_resnet(uint64_t seed) {
  set_global_seed(seed);
  reset_name_counters();
  return cifar_resnet(8, {12, 12, 3}, 4);
}

Tensor labels(int64_t n, int64_t classes) {
  Tensor y({n}, DType::I64);
  for (int64_t i = 0; i < n; ++i) y.data<int64_t>()[i] = (i * 7 + 3) % classes;
  return y;
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(KerasSave, TutorialResNet50RoundTripIsExact) {
  set_global_seed(3);
  reset_name_counters();
  Model m = resnet50_tutorial({64, 64, 3}, 6);
  const std::string path = tmp("tutorial.h5");
  save_model(m, path, {.attributes = {{"zoo_model", "resnet50-tutorial"}, {"classes", "6"}}});
  Model back = load_model(path);
  EXPECT_EQ(back.name(), "ResNet50");
  EXPECT_EQ(back.summary(), m.summary());
  EXPECT_EQ(back.count_params(), 23600006);
  const Tensor x = testing::random_tensor({2, 64, 64, 3}, 5, 0.0f, 1.0f);
  EXPECT_TRUE(same_bits(m.forward(x, Mode::Inference), back.forward(x, Mode::Inference)));
  expect_same_params(m, back);
  const auto attrs = read_model_attributes(path);
  EXPECT_EQ(attrs.at("zoo_model"), "resnet50-tutorial");
  EXPECT_EQ(attrs.at("classes"), "6");
  EXPECT_FALSE(back.compiled());  // not compiled when saved: no training_config
  fs::remove(path);
}

TEST(KerasSave, CifarModelRoundTripWithCompileState) {
  Model m = small_resnet(4);
  m.compile({.optimizer = SGD({.common = {.learning_rate = 0.05}, .momentum = 0.9}),
             .loss = "sparse_categorical_crossentropy"});
  const Tensor x = testing::random_tensor({6, 12, 12, 3}, 6, 0.0f, 1.0f);
  m.train_step(x, labels(6, 4));
  const std::string path = tmp("cifar.h5");
  save_model(m, path);
  Model back = load_model(path);
  ASSERT_TRUE(back.compiled());
  EXPECT_EQ(back.optimizer().class_name(), "SGD");
  EXPECT_EQ(back.compile_options().loss, "sparse_categorical_crossentropy");
  EXPECT_EQ(back.optimizer().iterations(), 1);
  EXPECT_DOUBLE_EQ(back.optimizer().learning_rate(), 0.05);
  ASSERT_EQ(back.optimizer().slots().size(), m.optimizer().slots().size());
  EXPECT_TRUE(same_bits(back.optimizer().slots()[0][0].value, m.optimizer().slots()[0][0].value));
  EXPECT_EQ(back.summary(), m.summary());
  EXPECT_TRUE(same_bits(m.forward(x, Mode::Inference), back.forward(x, Mode::Inference)));
  // load_model(compile=false) leaves it uncompiled.
  EXPECT_FALSE(load_model(path, false).compiled());
  fs::remove(path);
}

TEST(KerasSave, OptimizerStateRoundTripContinuesExactly) {
  const Tensor x = testing::random_tensor({8, 12, 12, 3}, 7, 0.0f, 1.0f);
  const Tensor y = labels(8, 4);
  auto fresh = [] {
    Model m = small_resnet(9);
    m.compile({.optimizer = Adam({.common = {.learning_rate = 0.01}}),
               .loss = "sparse_categorical_crossentropy"});
    return m;
  };
  Model straight = fresh();
  std::vector<double> expected;
  for (int i = 0; i < 4; ++i) expected.push_back(straight.train_step(x, y));

  Model first = fresh();
  first.train_step(x, y);
  first.train_step(x, y);
  const std::string path = tmp("adam_state.h5");
  save_model(first, path);
  {
    const h5::File f = h5::File::open(path);
    std::vector<std::string> names;
    ASSERT_TRUE(f.read_split_strings("optimizer_weights", "weight_names", names));
    ASSERT_FALSE(names.empty());
    EXPECT_EQ(names[0], "Adam/iter:0");
    EXPECT_EQ(f.read_i64("optimizer_weights/Adam/iter:0"), 2);
    EXPECT_EQ(names[1], "Adam/conv1_conv/kernel/m:0");  // all m, then all v (Keras TF2)
    EXPECT_EQ(names.back().substr(names.back().size() - 4), "/v:0");
  }
  Model resumed = load_model(path);
  EXPECT_EQ(resumed.optimizer().iterations(), 2);
  for (int i = 2; i < 4; ++i) {
    const double loss = resumed.train_step(x, y);
    EXPECT_EQ(loss, expected[i]) << "step " << i;
  }
  expect_same_params(resumed, straight);
  fs::remove(path);
}

// Fit.ResumeFromASavedFileContinuesWithTheSameLosses, through a Keras .h5 file written by the
// training save hook (as `resnet train --out x.h5` and ModelCheckpoint do).
TEST(KerasSave, ResumeFitFromH5ContinuesWithTheSameLosses) {
  Dataset d;
  d.x = Tensor::empty({96, 12, 12, 3}, DType::U8);
  d.y = labels(96, 4);
  d.num_classes = 4;
  for (int64_t i = 0; i < d.x.numel(); ++i) {
    d.x.data<uint8_t>()[i] = static_cast<uint8_t>((i * 37 + (i / 432) * 60) % 256);
  }
  std::ostringstream out;
  auto fresh = [] {
    Model m = small_resnet(12);
    m.compile({.optimizer = Adam({.common = {.learning_rate = 0.01}}),
               .loss = "sparse_categorical_crossentropy"});
    return m;
  };
  FitOptions two{
      .epochs = 2, .batch_size = 32, .out = &out, .augment = {.horizontal_flip = true}, .seed = 4};
  Model straight = fresh();
  const std::vector<double> expected = straight.fit(d, two).values["loss"];

  const std::string path = tmp("resume.h5");
  {
    Model first = fresh();
    FitOptions one = two;
    one.epochs = 1;
    first.fit(d, one);
    save_model_file_with_attributes(first, path, false, {{"epoch", "1"}});
  }
  Model resumed = fresh();
  auto attrs = load_weights(resumed, path);
  EXPECT_EQ(attrs.at("epoch"), "1");
  EXPECT_EQ(resumed.optimizer().iterations(), 3);  // 96 / 32
  FitOptions rest = two;
  rest.initial_epoch = 1;
  const std::vector<double> got = resumed.fit(d, rest).values["loss"];
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NEAR(got[0], expected[1], 1e-6 * std::abs(expected[1]));
  fs::remove(path);
}

TEST(KerasSave, ModelCheckpointWritesKerasModelFiles) {
  Model m = small_resnet(13);
  m.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  m.train_step(testing::random_tensor({4, 12, 12, 3}, 8, 0.0f, 1.0f), labels(4, 4));
  std::ostringstream out;
  TrainContext ctx{.model = &m, .out = &out};
  const std::string pattern = tmp("ckpt{epoch}.h5");
  auto full = ModelCheckpoint({.filepath = pattern, .verbose = false});
  full->on_epoch_end(0, {{"val_loss", 0.5}}, ctx);
  Model back = load_model(tmp("ckpt1.h5"));
  EXPECT_TRUE(back.compiled());
  EXPECT_EQ(back.optimizer().iterations(), 1);
  expect_same_params(m, back);
  auto weights = ModelCheckpoint(
      {.filepath = tmp("wckpt{epoch}.h5"), .save_weights_only = true, .verbose = false});
  weights->on_epoch_end(1, {{"val_loss", 0.4}}, ctx);
  EXPECT_THROW(load_model(tmp("wckpt2.h5")), IoError);  // weights only: no model_config
  Model other = small_resnet(14);
  load_weights(other, tmp("wckpt2.h5"));
  expect_same_params(m, other);
  fs::remove(tmp("ckpt1.h5"));
  fs::remove(tmp("wckpt2.h5"));
}

// ---------------------------------------------------------------------------------------------
// Against the real Keras 2.4 file

struct TreeEntry {
  bool dataset = false;
  std::vector<int64_t> dims;
  std::string dtype;
  std::vector<std::string> attrs;
};

void walk(const h5::File& f, const std::string& group, std::map<std::string, TreeEntry>& out) {
  TreeEntry g;
  g.attrs = f.attr_names(group);
  out[group.empty() ? "/" : group] = g;
  for (const std::string& c : f.children(group)) {
    const std::string p = group.empty() ? c : group + "/" + c;
    if (f.is_dataset(p)) {
      TreeEntry e;
      e.dataset = true;
      const auto info = f.dataset_info(p);
      e.dims = info.dims;
      e.dtype = info.dtype;
      e.attrs = f.attr_names(p);
      out[p] = e;
    } else {
      walk(f, p, out);
    }
  }
}

TEST(KerasSave, ResavedKerasFileHasTheSameTree) {
  if (!fs::exists(resnet8_path())) {
    GTEST_SKIP() << "Keras test file " << resnet8_path()
                 << " is absent (set RESNET_KERAS_DIR to the folder holding it)";
  }
  Model m = load_model(resnet8_path());
  ASSERT_TRUE(m.compiled());
  EXPECT_EQ(m.optimizer().class_name(), "Adam");
  EXPECT_GT(m.optimizer().iterations(), 0);
  const std::string path = tmp("resnet8_resaved.h5");
  save_model(m, path);

  const h5::File orig = h5::File::open(resnet8_path());
  const h5::File ours = h5::File::open(path);
  std::map<std::string, TreeEntry> a, b;
  walk(orig, "", a);
  walk(ours, "", b);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [p, e] : a) {
    ASSERT_TRUE(b.count(p)) << "missing " << p;
    const TreeEntry& o = b.at(p);
    EXPECT_EQ(e.dataset, o.dataset) << p;
    EXPECT_EQ(e.dims, o.dims) << p;
    EXPECT_EQ(e.dtype, o.dtype) << p;
    EXPECT_EQ(e.attrs, o.attrs) << p;
    if (e.dataset && e.dtype == "float32") {
      EXPECT_TRUE(same_bits(orig.read_f32(p), ours.read_f32(p))) << p;
    }
  }
  for (const char* attr : {"keras_version", "backend"}) {
    EXPECT_EQ(orig.read_strings("/", attr), ours.read_strings("/", attr)) << attr;
  }
  // The string lists are the same (layer order, weight names, optimizer slot order).
  std::vector<std::string> la, lb;
  orig.read_split_strings("model_weights", "layer_names", la);
  ours.read_split_strings("model_weights", "layer_names", lb);
  EXPECT_EQ(la, lb);
  orig.read_split_strings("optimizer_weights", "weight_names", la);
  ours.read_split_strings("optimizer_weights", "weight_names", lb);
  EXPECT_EQ(la, lb);
  orig.read_split_strings("model_weights/conv2d", "weight_names", la);
  ours.read_split_strings("model_weights/conv2d", "weight_names", lb);
  EXPECT_EQ(la, lb);
  EXPECT_EQ(orig.dataset_info("optimizer_weights/Adam/iter:0").dtype, "int64");

  // The JSON configs describe the same layers (regularizers aside, which resnet.cpp ignores).
  using nlohmann::json;
  const json ca = json::parse(orig.read_strings("/", "model_config")[0]);
  const json cb = json::parse(ours.read_strings("/", "model_config")[0]);
  EXPECT_EQ(ca["class_name"], cb["class_name"]);
  EXPECT_EQ(ca["config"]["input_layers"], cb["config"]["input_layers"]);
  EXPECT_EQ(ca["config"]["output_layers"], cb["config"]["output_layers"]);
  ASSERT_EQ(ca["config"]["layers"].size(), cb["config"]["layers"].size());
  for (size_t i = 0; i < ca["config"]["layers"].size(); ++i) {
    const json& x = ca["config"]["layers"][i];
    const json& y = cb["config"]["layers"][i];
    EXPECT_EQ(x["class_name"], y["class_name"]) << i;
    EXPECT_EQ(x["name"], y["name"]) << i;
    EXPECT_EQ(x["inbound_nodes"], y["inbound_nodes"]) << x["name"];
    for (const auto& [k, v] : x["config"].items()) {
      if (k.find("regularizer") != std::string::npos) continue;
      ASSERT_TRUE(y["config"].contains(k)) << x["name"] << " lacks " << k;
      EXPECT_EQ(v, y["config"][k]) << x["name"] << "." << k;
    }
  }
  const json ta = json::parse(orig.read_strings("/", "training_config")[0]);
  const json tb = json::parse(ours.read_strings("/", "training_config")[0]);
  EXPECT_EQ(ta["loss"], tb["loss"]);
  EXPECT_EQ(ta["metrics"], tb["metrics"]);
  EXPECT_EQ(ta["optimizer_config"]["class_name"], tb["optimizer_config"]["class_name"]);
  for (const char* k : {"learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad", "decay"}) {
    EXPECT_EQ(ta["optimizer_config"]["config"][k], tb["optimizer_config"]["config"][k]) << k;
  }
  // And the re-saved model computes the same outputs.
  Model back = load_model(path);
  const Tensor x = testing::random_tensor({2, 32, 32, 3}, 11, 0.0f, 1.0f);
  EXPECT_TRUE(same_bits(m.forward(x, Mode::Inference), back.forward(x, Mode::Inference)));
  fs::remove(path);
}

// ---------------------------------------------------------------------------------------------
// Weights files

TEST(KerasSave, SaveWeightsH5IsTheKerasLayoutAndLoadsByTopology) {
  Model a = small_resnet(1);
  const std::string path = tmp("weights.h5");
  save_weights(a, path);
  {
    const h5::File f = h5::File::open(path);
    std::vector<std::string> names;
    ASSERT_TRUE(f.read_split_strings("", "layer_names", names));
    ASSERT_EQ(names.size(), a.layers().size());
    EXPECT_EQ(names[0], a.layers()[0]->name());
    EXPECT_FALSE(f.has_attr("", "model_config"));
    EXPECT_TRUE(f.is_dataset("conv1_conv/conv1_conv/kernel:0"));
    EXPECT_EQ(f.read_strings("", "keras_version")[0], "2.4.0");
  }
  Model b = small_resnet(2);
  LoadWeightsReport report;
  load_weights(b, path, {.report = &report});
  expect_same_params(a, b);
  size_t with_weights = 0;
  for (const auto& l : a.layers()) with_weights += l->params().empty() ? 0 : 1;
  EXPECT_EQ(report.loaded.size(), with_weights);
  // A weights file has no graph.
  EXPECT_THROW(load_model(path), IoError);
  fs::remove(path);
}

TEST(KerasSave, LoadWeightsByNameAndSkipMismatch) {
  set_global_seed(5);
  reset_name_counters();
  auto build = [](int64_t units, bool extra) {
    SymTensor in = Input({6, 6, 2}, "in");
    SymTensor x = Conv2D({.filters = 3, .name = "c1"})(in);
    x = BatchNormalization({.name = "bn"})(x);
    if (extra) x = Conv2D({.filters = 3, .padding = Padding::Same, .name = "c_extra"})(x);
    x = Flatten({.name = "flat"})(x);
    x = Dense({.units = units, .name = "fc"})(x);
    return Model(in, x, "m");
  };
  Model a = build(4, false);
  const std::string path = tmp("byname.h5");
  save_weights(a, path);

  Model b = build(5, true);  // fc differs in shape, c_extra is not in the file
  const Tensor extra_before = b.layer("c_extra").param("kernel").value.clone();
  const Tensor fc_before = b.layer("fc").param("kernel").value.clone();
  // By topology the layer counts differ.
  EXPECT_THROW(load_weights(b, path), IoError);
  // By name, the mismatching fc throws, naming the file and the shapes; nothing changed.
  try {
    load_weights(b, path, {.by_name = true});
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("fc"), std::string::npos) << msg;
  }
  EXPECT_FALSE(same_bits(b.layer("c1").param("kernel").value, a.layer("c1").param("kernel").value));
  // skip_mismatch loads the rest and reports fc.
  LoadWeightsReport report;
  load_weights(b, path, {.by_name = true, .skip_mismatch = true, .report = &report});
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(report.skipped[0].rfind("fc: ", 0), 0u) << report.skipped[0];
  EXPECT_EQ(report.missing, std::vector<std::string>{"c_extra"});
  EXPECT_TRUE(same_bits(b.layer("c1").param("kernel").value, a.layer("c1").param("kernel").value));
  EXPECT_TRUE(same_bits(b.layer("bn").param("moving_variance").value,
                        a.layer("bn").param("moving_variance").value));
  EXPECT_TRUE(same_bits(b.layer("fc").param("kernel").value, fc_before));
  EXPECT_TRUE(same_bits(b.layer("c_extra").param("kernel").value, extra_before));
  fs::remove(path);
}

TEST(KerasSave, LongStringListsAreSplitAsKerasDoes) {
  const std::string path = tmp("split.h5");
  std::vector<std::string> names;
  for (int i = 0; i < 5000; ++i) names.push_back(fmt::format("layer_{:014d}", i));  // 20 bytes
  {
    h5::File f = h5::File::create(path);
    f.create_group("g");
    f.write_strings("g", "layer_names", names);
    f.write_strings("g", "short", {"a", "bc"});
    f.write_strings("g", "empty", {});
    f.close();
  }
  const h5::File f = h5::File::open(path);
  // 5000 x 20 bytes = 100,000 > 64,512: two chunks of 2,500 (np.array_split).
  EXPECT_FALSE(f.has_attr("g", "layer_names"));
  EXPECT_TRUE(f.has_attr("g", "layer_names0"));
  EXPECT_TRUE(f.has_attr("g", "layer_names1"));
  EXPECT_FALSE(f.has_attr("g", "layer_names2"));
  EXPECT_EQ(f.read_strings("g", "layer_names0").size(), 2500u);
  std::vector<std::string> back;
  ASSERT_TRUE(f.read_split_strings("g", "layer_names", back));
  EXPECT_EQ(back, names);
  EXPECT_EQ(f.read_strings("g", "short"), (std::vector<std::string>{"a", "bc"}));
  EXPECT_TRUE(f.read_strings("g", "empty").empty());
  fs::remove(path);
}

// A Keras 3 style legacy .h5: module/registered_name keys, inbound nodes as __keras_tensor__
// args, a flat input_layers entry, dataset and weight names without ":0", split layer_names and
// weight_names, fixed- and variable-length strings.
TEST(KerasSave, ReadsKeras3StyleFiles) {
  const std::string config = R"({"module": "keras", "class_name": "Functional", "config": {
    "name": "k3", "trainable": true, "layers": [
     {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 5, 5, 2],
      "dtype": "float32", "sparse": false, "name": "input_layer"}, "registered_name": null,
      "name": "input_layer", "inbound_nodes": []},
     {"module": "keras.layers", "class_name": "Conv2D", "config": {"name": "conv", "trainable": true,
      "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}},
      "filters": 3, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
      "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1, "activation": "relu",
      "use_bias": true, "kernel_initializer": {"module": "keras.initializers",
      "class_name": "GlorotUniform", "config": {"seed": null}, "registered_name": null}},
      "registered_name": null, "build_config": {"input_shape": [null, 5, 5, 2]}, "name": "conv",
      "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"shape": [null, 5, 5, 2],
      "dtype": "float32", "keras_history": ["input_layer", 0, 0]}}], "kwargs": {}}]},
     {"module": "keras.layers", "class_name": "Add", "config": {"name": "add", "trainable": true},
      "registered_name": null, "name": "add", "inbound_nodes": [{"args": [[
       {"class_name": "__keras_tensor__", "config": {"keras_history": ["conv", 0, 0]}},
       {"class_name": "__keras_tensor__", "config": {"keras_history": ["conv", 0, 0]}}]],
       "kwargs": {}}]},
     {"module": "keras.layers", "class_name": "GlobalAveragePooling2D", "config": {"name": "gap",
      "data_format": "channels_last", "keepdims": false}, "registered_name": null, "name": "gap",
      "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["add", 0, 0]}}],
      "kwargs": {}}]},
     {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 2,
      "activation": "softmax", "use_bias": true}, "registered_name": null, "name": "dense",
      "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["gap", 0, 0]}}],
      "kwargs": {}}]}],
    "input_layers": ["input_layer", 0, 0], "output_layers": ["dense", 0, 0]}})";
  const Tensor kernel = testing::random_tensor({3, 3, 2, 3}, 1);
  const Tensor bias = testing::random_tensor({3}, 2);
  const Tensor dk = testing::random_tensor({3, 2}, 3);
  const Tensor db = testing::random_tensor({2}, 4);
  const std::string path = tmp("keras3.h5");
  {
    h5::File f = h5::File::create(path);
    f.write_string("/", "keras_version", "3.3.3", true);
    f.write_string("/", "backend", "tensorflow", true);
    f.write_string("/", "model_config", config);
    f.create_group("model_weights");
    f.write_strings("model_weights", "layer_names0", {"input_layer", "conv", "add"});
    f.write_strings("model_weights", "layer_names1", {"gap", "dense"});
    for (const char* g : {"input_layer", "add", "gap"}) {
      f.create_group(std::string("model_weights/") + g);
      f.write_strings(std::string("model_weights/") + g, "weight_names", {});
    }
    f.create_group("model_weights/conv");
    f.write_strings("model_weights/conv", "weight_names0", {"conv/kernel"});
    f.write_strings("model_weights/conv", "weight_names1", {"conv/bias"});
    f.write_f32("model_weights/conv/conv/kernel", kernel);
    f.write_f32("model_weights/conv/conv/bias", bias);
    f.create_group("model_weights/dense");
    f.write_strings("model_weights/dense", "weight_names", {"dense/kernel", "dense/bias"});
    f.write_f32("model_weights/dense/dense/kernel", dk);
    f.write_f32("model_weights/dense/dense/bias", db);
    f.close();
  }
  Model m = load_model(path);
  EXPECT_EQ(m.name(), "k3");
  EXPECT_EQ(m.inbound(m.layer("add")), (std::vector<std::string>{"conv", "conv"}));
  EXPECT_TRUE(same_bits(m.layer("conv").param("kernel").value, kernel));
  EXPECT_TRUE(same_bits(m.layer("dense").param("bias").value, db));
  EXPECT_EQ(m.output_shapes()[0], (Shape{2}));
  fs::remove(path);
}

// ---------------------------------------------------------------------------------------------
// Transfer learning

TEST(KerasSave, NotopWeightsLoadByNameIntoResNet50WithoutTop) {
  set_global_seed(21);
  reset_name_counters();
  Model notop = ResNet50({.include_top = false, .input_shape = {32, 32, 3}});
  const std::string path = tmp("resnet50_notop.h5");
  save_weights(notop, path);  // the layout of keras.applications *_notop.h5
  set_global_seed(22);
  reset_name_counters();
  Model m = transfer_model({.base_model = "resnet50",
                            .input_shape = {32, 32, 3},
                            .classes = 3,
                            .weights_path = path,
                            .freeze_until = "conv5_block3_out",
                            .dropout = 0.5});
  EXPECT_EQ(m.count_params(), 23587712 + 2048 * 3 + 3);
  EXPECT_EQ(m.count_trainable_params(), 2048 * 3 + 3);
  for (const auto& l : notop.layers()) {
    for (const Param& p : l->params()) {
      ASSERT_TRUE(same_bits(m.layer(l->name()).param(p.name).value, p.value))
          << l->name() << "/" << p.name;
    }
  }
  fs::remove(path);
}

TEST(KerasSave, FineTuningKeepsFrozenWeightsAndStatisticsBitIdentical) {
  const std::string path = tmp("donor.h5");
  set_global_seed(32);
  reset_name_counters();
  Model donor20 = build_model("resnet20", {12, 12, 3}, 10);
  save_model(donor20, path);
  set_global_seed(33);
  reset_name_counters();
  // Freeze up to the last activation of the second stage.
  std::string freeze_name;
  {
    const auto& layers = donor20.layers();
    freeze_name = layers[layers.size() / 2]->name();
  }
  Model ft = transfer_model({.base_model = "resnet20",
                             .input_shape = {12, 12, 3},
                             .classes = 3,
                             .weights_path = path,
                             .freeze_until = freeze_name,
                             .dropout = 0.3});
  std::vector<std::pair<std::string, Tensor>> frozen, trainable;
  bool after = false;
  for (const auto& l : ft.layers()) {
    for (const Param& p : l->params()) {
      (after ? trainable : frozen).emplace_back(l->name() + "/" + p.name, p.value.clone());
    }
    if (l->name() == freeze_name) after = true;
    if (!l->params().empty()) {
      EXPECT_EQ(l->trainable(), after) << l->name();
    }
  }
  ASSERT_FALSE(frozen.empty());
  // Loaded by name from the full model file.
  EXPECT_TRUE(same_bits(
      ft.layer(frozen[0].first.substr(0, frozen[0].first.find('/'))).params()[0].value,
      donor20.layer(frozen[0].first.substr(0, frozen[0].first.find('/'))).params()[0].value));
  ft.compile({.optimizer = Adam({.common = {.learning_rate = 0.01}}),
              .loss = "sparse_categorical_crossentropy"});
  const Tensor x = testing::random_tensor({8, 12, 12, 3}, 9, 0.0f, 1.0f);
  for (int i = 0; i < 3; ++i) ft.train_step(x, labels(8, 3));
  for (const auto& [name, before] : frozen) {
    const std::string layer = name.substr(0, name.find('/'));
    const std::string param = name.substr(name.find('/') + 1);
    EXPECT_TRUE(same_bits(ft.layer(layer).param(param).value, before)) << name;
  }
  bool head_changed = false;
  for (const auto& [name, before] : trainable) {
    const std::string layer = name.substr(0, name.find('/'));
    const std::string param = name.substr(name.find('/') + 1);
    head_changed = head_changed || !same_bits(ft.layer(layer).param(param).value, before);
  }
  EXPECT_TRUE(head_changed);
  EXPECT_FALSE(same_bits(ft.layer("predictions").param("kernel").value,
                         trainable.back().first == "predictions/bias"
                             ? trainable[trainable.size() - 2].second
                             : trainable.back().second));
  // A file without the base's layers is refused, naming the file and a layer.
  Model other = small_resnet(3);
  const std::string wrong = tmp("wrong_base.h5");
  save_weights(other, wrong);
  try {
    transfer_model({.base_model = "resnet20",
                    .input_shape = {12, 12, 3},
                    .classes = 3,
                    .weights_path = wrong});
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(wrong), std::string::npos) << e.what();
  }
  fs::remove(path);
  fs::remove(wrong);
}

// ---------------------------------------------------------------------------------------------
// Damaged files and failed saves

class DamagedFile : public ::testing::Test {
 protected:
  void SetUp() override {
    Model m = small_resnet(41);
    m.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
    m.train_step(testing::random_tensor({4, 12, 12, 3}, 1, 0.0f, 1.0f), labels(4, 4));
    good_ = tmp("good.h5");
    save_model(m, good_);
    bytes_ = read_bytes(good_);
  }
  void TearDown() override {
    fs::remove(good_);
    fs::remove(bad_);
  }
  // A copy to damage.
  std::string copy() {
    bad_ = tmp("bad.h5");
    write_bytes(bad_, bytes_);
    return bad_;
  }
  // load_model must throw IoError naming the file and `inside` (when not empty).
  void expect_io_error(const std::string& inside) {
    try {
      load_model(bad_);
      FAIL() << "expected IoError for damage at " << inside;
    } catch (const IoError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(bad_), std::string::npos) << msg;
      if (!inside.empty()) {
        EXPECT_NE(msg.find(inside), std::string::npos) << msg;
      }
    }
  }
  std::string good_, bad_, bytes_;
};

TEST_F(DamagedFile, Truncated) {
  for (double frac : {0.0, 0.1, 0.5, 0.9, 0.999}) {
    copy();
    write_bytes(bad_, bytes_.substr(0, static_cast<size_t>(bytes_.size() * frac)));
    expect_io_error("");
  }
}

TEST_F(DamagedFile, FlippedBytesNeverCrash) {
  // Whatever byte is damaged, loading either succeeds (the byte was in weight data or unused
  // space) or throws IoError naming the file.
  int errors = 0;
  for (size_t step = 0; step < 64; ++step) {
    copy();
    std::string damaged = bytes_;
    const size_t pos = (step * 7919 * 31) % std::min<size_t>(damaged.size(), 8192) +
                       (step % 4 == 3 ? damaged.size() / 2 : 0);
    damaged[pos] = static_cast<char>(damaged[pos] ^ 0x5a);
    write_bytes(bad_, damaged);
    try {
      load_model(bad_);
    } catch (const IoError& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find(bad_), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 0);
}

TEST_F(DamagedFile, DeletedDataset) {
  copy();
  {
    h5::File f = h5::File::open(bad_, true);
    f.remove("model_weights/conv2_block1_1_conv/conv2_block1_1_conv/kernel:0");
    f.close();
  }
  expect_io_error("model_weights/conv2_block1_1_conv/conv2_block1_1_conv/kernel:0");
}

TEST_F(DamagedFile, ChangedShape) {
  copy();
  {
    h5::File f = h5::File::open(bad_, true);
    f.remove("model_weights/predictions/predictions/kernel:0");
    f.write_f32("model_weights/predictions/predictions/kernel:0", Tensor::zeros({64, 5}));
    f.close();
  }
  expect_io_error("(64, 5)");
}

TEST_F(DamagedFile, NaNWeights) {
  copy();
  {
    h5::File f = h5::File::open(bad_, true);
    const std::string p = "model_weights/conv1_bn/conv1_bn/gamma:0";
    Tensor t = f.read_f32(p);
    t.f32()[3] = std::numeric_limits<float>::quiet_NaN();
    f.remove(p);
    f.write_f32(p, t);
    f.close();
  }
  expect_io_error("conv1_bn/gamma:0");
}

TEST_F(DamagedFile, BogusModelConfig) {
  for (const std::string& config :
       {std::string("{not json"), std::string(R"({"class_name": "Functional"})"),
        std::string(R"({"class_name": "Functional", "config": {"layers": [{"class_name": "Conv2D",
          "config": {"name": "c"}, "inbound_nodes": [[["nowhere", 0, 0, {}]]]}]}})"),
        std::string(R"({"class_name": "Functional", "config": {"layers": 5}})"),
        std::string(R"({"class_name": "Functional", "config": {"name": "x", "layers": [
          {"class_name": "InputLayer", "config": {"batch_input_shape": [null, -4, 2], "name": "i"},
           "name": "i", "inbound_nodes": []}], "input_layers": [["i", 0, 0]],
           "output_layers": [["i", 0, 0]]}})"),
        // A huge layer is refused before anything is allocated (the file cannot hold it).
        std::string(R"({"class_name": "Functional", "config": {"name": "x", "layers": [
          {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 4, 4, 3], "name": "i"},
           "name": "i", "inbound_nodes": []},
          {"class_name": "Dense", "config": {"name": "d", "units": 1000000000000}, "name": "d",
           "inbound_nodes": [[["i", 0, 0, {}]]]}],
          "input_layers": [["i", 0, 0]], "output_layers": [["d", 0, 0]]}})")}) {
    copy();
    {
      h5::File f = h5::File::open(bad_, true);
      f.write_string("/", "model_config", config);
      f.close();
    }
    expect_io_error("");
  }
  // An unknown layer class names file, layer and class.
  copy();
  {
    h5::File f = h5::File::open(bad_, true);
    std::string c = f.read_strings("/", "model_config")[0];
    const std::string gap = "\"class_name\":\"GlobalAveragePooling2D\"";
    ASSERT_NE(c.find(gap), std::string::npos) << c.substr(0, 300);
    c.replace(c.find(gap), gap.size(), "\"class_name\":\"GroupNormalization\"");
    f.write_string("/", "model_config", c);
    f.close();
  }
  expect_io_error("GroupNormalization");
}

TEST_F(DamagedFile, FailedSaveLeavesThePreviousFileIntact) {
  Model m = small_resnet(42);
  m.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  m.train_step(testing::random_tensor({4, 12, 12, 3}, 2, 0.0f, 1.0f), labels(4, 4));
  struct FailAtOptimizerWeights : FaultInjector {
    int calls = 0;
    void at(const std::string& point) override {
      ++calls;
      if (point == "optimizer_weights") throw IoError("simulated failure in the middle of a save");
    }
  } injector;
  set_fault_injector(&injector);
  EXPECT_THROW(save_model(m, good_), IoError);
  set_fault_injector(nullptr);
  EXPECT_EQ(injector.calls, 2);  // model_weights, then optimizer_weights
  EXPECT_EQ(read_bytes(good_), bytes_);
  for (const auto& e : fs::directory_iterator(fs::path(good_).parent_path())) {
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
  }
  EXPECT_NO_THROW(load_model(good_));
}

TEST_F(DamagedFile, SaveIntoAReadOnlyFolderLeavesThePreviousFileIntact) {
  Model m = small_resnet(43);
  m.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  const std::string dir = tmp("readonly");
  fs::create_directories(dir);
  const std::string target = dir + "/m.h5";
  save_model(m, target);
  const std::string before = read_bytes(target);
  ::chmod(dir.c_str(), 0555);
  if (::access(dir.c_str(), W_OK) == 0) {
    ::chmod(dir.c_str(), 0755);
    GTEST_SKIP() << "running with permissions that ignore read-only folders (root)";
  }
  m.train_step(testing::random_tensor({4, 12, 12, 3}, 3, 0.0f, 1.0f), labels(4, 4));
  try {
    save_model(m, target);
    ADD_FAILURE() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(target), std::string::npos) << e.what();
  }
  ::chmod(dir.c_str(), 0755);
  EXPECT_EQ(read_bytes(target), before);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace resnet
