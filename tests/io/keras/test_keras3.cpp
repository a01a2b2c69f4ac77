// Keras 3 native .keras files: the real Keras 3.13 file of ../shared/datasets/keras/ (structure,
// predictions against a numpy reference computed from the file's own config and weights, the
// compile_config and the Adam state, training), load_weights from a .keras file, and damaged
// archives.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "io/hdf5/file.h"
#include "io/keras/keras_file.h"
#include "io/zip/zip.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"
#include "resnet/optim.h"
#include "support/temp_dir.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;

std::string keras_dir() {
  if (const char* env = std::getenv("RESNET_KERAS_DIR"); env && *env) return env;
  return RESNET_SOURCE_DIR "/../shared/datasets/keras";
}
std::string tabular_path() { return keras_dir() + "/tabular_resnet_keras3.13.keras"; }

#define SKIP_WITHOUT_TABULAR()                                                    \
  if (!fs::exists(tabular_path())) {                                              \
    GTEST_SKIP() << "Keras test file " << tabular_path()                          \
                 << " is absent (set RESNET_KERAS_DIR to the folder holding it)"; \
  }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// tests/reference/fixtures/keras3/tabular_resnet_reference.bin (keras3_reference.py).
struct Reference {
  Tensor x;
  std::vector<double> y;
};
Reference reference() {
  const std::string b =
      read_file(std::string(RESNET_FIXTURE_DIR) + "/keras3/tabular_resnet_reference.bin");
  int32_t n = 0, f = 0;
  std::memcpy(&n, b.data(), 4);
  std::memcpy(&f, b.data() + 4, 4);
  Reference r{Tensor::empty(Shape{n, f}), std::vector<double>(n)};
  std::memcpy(r.x.raw(), b.data() + 8, static_cast<size_t>(n) * f * 4);
  std::memcpy(r.y.data(), b.data() + 8 + static_cast<size_t>(n) * f * 4, n * 8);
  return r;
}

TEST(Keras3File, LoadsTheRealKeras313FileAndPredictsAsTheNumpyReference) {
  SKIP_WITHOUT_TABULAR();
  EXPECT_EQ(file_format("m.keras"), FileFormat::Keras3);
  keras_detail::KerasFileInfo info;
  Model m = keras_detail::load_keras_file(tabular_path(), true, &info);
  EXPECT_EQ(info.keras_version, "3.13.2");
  EXPECT_EQ(m.count_params(), 84609);
  EXPECT_EQ(m.name(), "functional_2");
  EXPECT_EQ(m.layers().size(), 16u);
  const Reference r = reference();
  const Tensor p = m.predict(r.x);
  ASSERT_EQ(p.numel(), static_cast<int64_t>(r.y.size()));
  double scale = 0, err = 0;
  for (size_t i = 0; i < r.y.size(); ++i) {
    scale = std::max(scale, std::abs(r.y[i]));
    err = std::max(err, std::abs(p.f32()[i] - r.y[i]));
  }
  EXPECT_LE(err, 1e-5 * scale) << "max error " << err << " of scale " << scale;
  // compile_config: Adam at 0.001, mean squared error; the Adam state resumes.
  ASSERT_TRUE(m.compiled());
  EXPECT_EQ(m.optimizer().class_name(), "Adam");
  EXPECT_NEAR(m.optimizer().learning_rate(), 0.001, 1e-9);
  EXPECT_TRUE(info.optimizer_restored);
  EXPECT_GT(m.optimizer().iterations(), 0);
  ASSERT_EQ(m.optimizer().slots().size(), m.trainable_params().size());
  EXPECT_EQ(m.optimizer().slots()[0][0].name, "m");
  // Its metric: mean absolute error.
  EXPECT_EQ(m.compile_options().metrics, (std::vector<std::string>{"mae"}));
  const Tensor zeros = Tensor::zeros(Shape{r.x.shape()[0], 1});
  double mae = 0;
  for (double v : r.y) mae += std::abs(v);
  EXPECT_NEAR(sum_absolute_error(m.predict(r.x), zeros), mae, 1e-5 * mae);
  // One epoch of training from that state: a finite loss that falls on a fixed batch.
  Tensor target = Tensor::empty(Shape{r.x.shape()[0], 1});
  for (int64_t i = 0; i < target.numel(); ++i) target.f32()[i] = static_cast<float>(r.y[i]) * 0.5f;
  const int64_t it0 = m.optimizer().iterations();
  Logs sums;
  const double first = m.train_step(r.x, target, &sums);
  EXPECT_GT(sums.at("mae"), 0);
  double last = first;
  for (int i = 0; i < 20; ++i) last = m.train_step(r.x, target);
  EXPECT_TRUE(std::isfinite(first));
  EXPECT_LT(last, first);
  EXPECT_EQ(m.optimizer().iterations(), it0 + 21);
}

TEST(Keras3File, LoadModelAndLoadWeightsTakeKerasFiles) {
  SKIP_WITHOUT_TABULAR();
  Model m = load_model(tabular_path(), /*compile=*/false);
  EXPECT_FALSE(m.compiled());
  const Reference r = reference();
  Model fresh = load_model(tabular_path(), false);
  // Scramble one layer, then load_weights restores it from the .keras file.
  fresh.layer("dense_8").params()[0].value.fill(0.5f);
  fresh.layer("dense_8").params()[0].value.bump_version();
  LoadWeightsReport report;
  load_weights(fresh, tabular_path(), {.report = &report});
  EXPECT_EQ(report.loaded.size(), 11u);  // 8 Dense, 3 BatchNormalization
  const Tensor a = m.predict(r.x), b = fresh.predict(r.x);
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.f32()[i], b.f32()[i]);
  // save_weights to a .keras path is refused before anything is written: it is a whole model.
  testing::TempDir dir;
  const std::string out = dir.file("w.keras");
  EXPECT_NE(error_of([&] { save_weights(m, out); }).find("a .keras file is a whole model"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(out));
}

// Every group, dataset (shape, dtype) and attribute of an HDF5 file, as sorted lines.
void walk(const h5::File& f, const std::string& obj, std::vector<std::string>& out) {
  for (const std::string& a : f.attr_names(obj.empty() ? "/" : obj)) {
    const auto v = f.read_strings(obj.empty() ? "/" : obj, a);
    out.push_back(fmt::format("{} @{}={}", obj, a, v.empty() ? "" : v[0]));
  }
  for (const std::string& c : f.children(obj.empty() ? "/" : obj)) {
    const std::string p = obj.empty() ? c : obj + "/" + c;
    if (f.is_dataset(p)) {
      const auto info = f.dataset_info(p);
      out.push_back(fmt::format("{} {} {}", p, Shape(info.dims).str(), info.dtype));
    } else {
      out.push_back(p + "/");
      walk(f, p, out);
    }
  }
}

std::vector<std::string> weights_tree(const std::string& keras_path, const std::string& tmp) {
  write_file(tmp, zip_detail::ZipReader(keras_path).read("model.weights.h5"));
  std::vector<std::string> out;
  walk(h5::File::open(tmp), "", out);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Keras3File, ResavingTheRealFileKeepsItsMembersTreeAndConfig) {
  SKIP_WITHOUT_TABULAR();
  testing::TempDir dir;
  Model m = load_model(tabular_path());
  const std::string out = dir.file("again.keras");
  save_model(m, out);
  // The same members.
  std::vector<std::string> a, b;
  const zip_detail::ZipReader real_zip(tabular_path()), our_zip(out);
  for (const auto& x : real_zip.members()) a.push_back(x.name);
  for (const auto& x : our_zip.members()) b.push_back(x.name);
  EXPECT_EQ(a, b);
  // The same HDF5 tree: group and dataset paths, shapes, dtypes, attributes.
  EXPECT_EQ(weights_tree(tabular_path(), dir.file("a.h5")), weights_tree(out, dir.file("b.h5")));
  // An equivalent config.json: the same layers, classes, connections and settings.
  using json = nlohmann::json;
  const json real = json::parse(zip_detail::ZipReader(tabular_path()).read("config.json"));
  const json ours = json::parse(zip_detail::ZipReader(out).read("config.json"));
  for (const char* k : {"module", "class_name", "registered_name", "build_config"}) {
    EXPECT_EQ(ours[k], real[k]) << k;
  }
  EXPECT_EQ(ours["config"]["input_layers"], real["config"]["input_layers"]);
  EXPECT_EQ(ours["config"]["output_layers"], real["config"]["output_layers"]);
  const json& rl = real["config"]["layers"];
  const json& ol = ours["config"]["layers"];
  ASSERT_EQ(ol.size(), rl.size());
  for (size_t i = 0; i < rl.size(); ++i) {
    SCOPED_TRACE(rl[i]["name"].get<std::string>());
    for (const char* k : {"module", "class_name", "registered_name", "name", "build_config"}) {
      EXPECT_EQ(ol[i].value(k, json()), rl[i].value(k, json())) << k;
    }
    // Inbound tensors: shapes and histories (kwargs such as BatchNormalization's mask aside).
    ASSERT_EQ(ol[i]["inbound_nodes"].size(), rl[i]["inbound_nodes"].size());
    for (size_t n = 0; n < rl[i]["inbound_nodes"].size(); ++n) {
      EXPECT_EQ(ol[i]["inbound_nodes"][n]["args"], rl[i]["inbound_nodes"][n]["args"]);
    }
    // Every setting the real file has, ours has with the same value, but for the fields Keras
    // adds that resnet.cpp does not model (its DTypePolicy's shared_object_id, quantization).
    for (auto it = rl[i]["config"].begin(); it != rl[i]["config"].end(); ++it) {
      if (it.key() == "quantization_config") continue;
      ASSERT_TRUE(ol[i]["config"].contains(it.key())) << it.key();
      json want = it.value(), got = ol[i]["config"][it.key()];
      if (want.is_object()) want.erase("shared_object_id");
      EXPECT_EQ(got, want) << it.key();
    }
  }
  // compile_config: the optimizer and its settings, the loss.
  const json& rc = real["compile_config"];
  const json& oc = ours["compile_config"];
  EXPECT_EQ(oc["loss"], "mean_squared_error");  // Keras's name of "mse"
  EXPECT_EQ(oc["optimizer"]["class_name"], rc["optimizer"]["class_name"]);
  EXPECT_EQ(oc["optimizer"]["module"], rc["optimizer"]["module"]);
  for (auto it = rc["optimizer"]["config"].begin(); it != rc["optimizer"]["config"].end(); ++it) {
    ASSERT_TRUE(oc["optimizer"]["config"].contains(it.key())) << it.key();
    if (it.value().is_number_float()) {
      EXPECT_NEAR(oc["optimizer"]["config"][it.key()].get<double>(), it.value().get<double>(), 1e-9)
          << it.key();
    } else {
      EXPECT_EQ(oc["optimizer"]["config"][it.key()], it.value()) << it.key();
    }
  }
  // Loaded again: the same predictions, the same optimizer state.
  keras_detail::KerasFileInfo info;
  Model back = keras_detail::load_keras_file(out, true, &info);
  EXPECT_TRUE(info.optimizer_restored);
  const Reference r = reference();
  const Tensor p1 = m.predict(r.x), p2 = back.predict(r.x);
  for (int64_t i = 0; i < p1.numel(); ++i) EXPECT_EQ(p1.f32()[i], p2.f32()[i]);
  EXPECT_EQ(back.optimizer().iterations(), m.optimizer().iterations());
  const auto& s1 = m.optimizer().slots();
  const auto& s2 = back.optimizer().slots();
  ASSERT_EQ(s1.size(), s2.size());
  for (size_t i = 0; i < s1.size(); ++i) {
    for (size_t k = 0; k < s1[i].size(); ++k) {
      EXPECT_EQ(std::memcmp(s1[i][k].value.raw(), s2[i][k].value.raw(), s1[i][k].value.numel() * 4),
                0);
    }
  }
}

// .keras round trips of resnet.cpp's own models: identical outputs, and identical losses when
// training resumes from the saved Adam state.
TEST(Keras3File, ZooModelsRoundTripAndResumeTraining) {
  testing::TempDir dir;
  struct Case {
    std::string name;
    Shape input;
  };
  for (const Case& c : {Case{"resnet20", {16, 16, 3}}, Case{"resnet50-tutorial", {64, 64, 3}}}) {
    SCOPED_TRACE(c.name);
    reset_name_counters();
    Model m = build_model(c.name, c.input, 4);
    m.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
    Tensor x = Tensor::empty(c.input.prepend(4));
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>((i * 37) % 101) / 101;
    Tensor y = Tensor::empty(Shape{4});
    for (int i = 0; i < 4; ++i) y.f32()[i] = static_cast<float>(i);
    m.train_step(x, y);
    const std::string path = dir.file(c.name + ".keras");
    save_model(m, path, {.attributes = {{"zoo_model", c.name}}});
    EXPECT_EQ(read_model_attributes(path).at("zoo_model"), c.name);
    Model back = load_model(path);
    EXPECT_EQ(back.count_params(), m.count_params());
    const Tensor a = m.predict(x), b = back.predict(x);
    for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.f32()[i], b.f32()[i]) << i;
    const double l1 = m.train_step(x, y), l2 = back.train_step(x, y);
    EXPECT_EQ(l1, l2);
  }
}

// The real file's members, rewritten with one of them changed.
std::string rezip(const std::string& src, const std::string& replace, const std::string& with,
                  const std::string& drop = "") {
  zip_detail::ZipReader r(src);
  zip_detail::ZipWriter w;
  for (const auto& m : r.members()) {
    if (m.name == drop) continue;
    w.add(m.name, m.name == replace ? with : r.read(m));
  }
  return w.finish();
}

TEST(Keras3File, DamagedArchivesNameTheFileAndTheMember) {
  SKIP_WITHOUT_TABULAR();
  testing::TempDir dir;
  const std::string path = dir.file("bad.keras");
  auto fails_with = [&](const std::string& bytes, const std::string& words) {
    write_file(path, bytes);
    const std::string msg = error_of([&] { load_model(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
  };
  const std::string good = read_file(tabular_path());
  fails_with("not a zip at all", "not a zip archive");
  fails_with(good.substr(0, good.size() / 2), "not a zip archive");  // the directory is gone
  fails_with(rezip(tabular_path(), "", "", "config.json"), "no member 'config.json'");
  fails_with(rezip(tabular_path(), "config.json", "{\"truncated"), "member 'config.json'");
  // Weights that cannot hold what the config asks for are refused before anything is allocated.
  fails_with(rezip(tabular_path(), "model.weights.h5", "garbage"), "can hold at most");
  // A config that does not match the weights: the output layer made wider.
  std::string config = zip_detail::ZipReader(tabular_path()).read("config.json");
  const size_t at = config.find("\"units\": 1,");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, 11, "\"units\": 2,");
  fails_with(rezip(tabular_path(), "config.json", config),
             "member 'model.weights.h5': 'layers/dense_7/vars/0' has shape (32, 1)");
  // A member name leaving the folder.
  {
    zip_detail::ZipReader r(tabular_path());
    zip_detail::ZipWriter w;
    for (const auto& m : r.members()) w.add(m.name, r.read(m));
    w.add("xx/evil", "x");
    std::string bytes = w.finish();
    const size_t cd = bytes.rfind("xx/evil");
    bytes.replace(cd, 7, "../evil");
    fails_with(bytes, "outside the archive");
  }
  // A flipped byte inside the weights member: its CRC-32.
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  fails_with(flipped, "CRC-32 mismatch");
}

}  // namespace
}  // namespace resnet
