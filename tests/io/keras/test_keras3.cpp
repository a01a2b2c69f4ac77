// Keras 3 native .keras files: the real Keras 3.13 file of ../shared/datasets/keras/ (structure,
// predictions against a numpy reference computed from the file's own config and weights, the
// compile_config and the Adam state, training), load_weights from a .keras file, and damaged
// archives.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "io/keras/keras_file.h"
#include "io/zip/zip.h"
#include "resnet/error.h"
#include "resnet/io.h"
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
  // One epoch of training from that state: a finite loss that falls on a fixed batch.
  Tensor target = Tensor::empty(Shape{r.x.shape()[0], 1});
  for (int64_t i = 0; i < target.numel(); ++i) target.f32()[i] = static_cast<float>(r.y[i]) * 0.5f;
  const int64_t it0 = m.optimizer().iterations();
  const double first = m.train_step(r.x, target);
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
  // Writing .keras is refused before anything is written.
  testing::TempDir dir;
  const std::string out = dir.file("m.keras");
  EXPECT_NE(error_of([&] { save_model(m, out); }).find("does not write them yet"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(out));
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
