// Hostile .h5 input: files that made libhdf5 1.10 crash or hang (found by fuzz/fuzz_keras_h5.cpp,
// committed under tests/reference/fixtures/h5-crash/), damaged global heaps and truncated files
// must give an IoError naming the file from every .h5 loader, never a crash or a hang. Also the
// pre-flight child process (src/io/hdf5/preflight.h) itself.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "io/hdf5/file.h"
#include "io/hdf5/preflight.h"
#include "resnet/data.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/model.h"
#include "support/runtime_options.h"

namespace fs = std::filesystem;
using namespace resnet;

namespace {

using resnet::testing::ScopedRuntimeOptions;

fs::path temp_dir() {
  static int counter = 0;
  const fs::path d =
      fs::temp_directory_path() /
      ("resnet_h5_hostile_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::create_directories(d);
  return d;
}

std::string crash_fixture(const std::string& name) {
  return std::string(RESNET_FIXTURE_DIR) + "/h5-crash/" + name;
}

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The message of the IoError `f` throws, or a description of what happened instead.
std::string io_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not an IoError: ") + e.what();
  }
  return "no exception";
}

Model tiny_model() {
  set_global_seed(3);
  SymTensor in = Input({6, 6, 2}, "input_1");
  SymTensor x = Conv2D({.filters = 3, .padding = Padding::Same, .name = "conv2d"})(in);
  x = BatchNormalization({.name = "batch_normalization"})(x);
  x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
  x = Dense({.units = 2, .activation = "softmax", .name = "dense"})(x);
  return Model(in, x, "tiny");
}

// Every .h5 model loader on `path`; each must throw an IoError naming the file.
void expect_every_model_loader_refuses(const std::string& path, const std::string& expect = "") {
  Model target = tiny_model();
  const std::vector<std::pair<std::string, std::function<void()>>> loaders = {
      {"load_model", [&] { (void)load_model(path, true); }},
      {"load_model without compiling", [&] { (void)load_model(path, false); }},
      {"read_model_attributes", [&] { (void)read_model_attributes(path); }},
      {"load_weights",
       [&] { (void)load_weights(target, path, {.by_name = true, .skip_mismatch = true}); }},
  };
  for (const auto& [name, load] : loaders) {
    const std::string msg = io_error(load);
    SCOPED_TRACE(name + ": " + msg);
    EXPECT_NE(msg.find(path), std::string::npos);
    if (!expect.empty()) {
      EXPECT_NE(msg.find(expect), std::string::npos);
    }
  }
}

// Overwrites the size of every object of every global heap collection ("GCOL") of the file.
int damage_global_heaps(std::vector<char>& bytes, uint64_t size) {
  int damaged = 0;
  for (size_t at = 0; at + 16 + 16 <= bytes.size(); ++at) {
    if (std::memcmp(bytes.data() + at, "GCOL", 4) != 0) continue;
    // Signature 4, version 1, reserved 3, collection size 8; then objects: index 2, references
    // 2, reserved 4, size 8, data.
    const size_t obj = at + 16;
    std::memcpy(bytes.data() + obj + 8, &size, 8);
    ++damaged;
  }
  return damaged;
}

}  // namespace

TEST(H5Hostile, FuzzerCrashFileThrowsIoErrorFromEveryLoader) {
  // libhdf5 1.10 segfaults in H5HG_read (memcpy out of a corrupt global heap) reading a
  // variable-length string attribute of this file.
  const fs::path dir = temp_dir();
  const std::string path = (dir / "segv.h5").string();
  fs::copy_file(crash_fixture("keras_model_heap_segv.h5"), path);
  expect_every_model_loader_refuses(path);
  fs::remove_all(dir);
}

TEST(H5Hostile, FuzzerHangFileTimesOutWithIoError) {
  // libhdf5 1.10 loops forever in H5HG__protect on this file's global heap.
  ScopedRuntimeOptions timeout([](RuntimeOptions& o) { o.h5_preflight_timeout_seconds = 1; });
  const fs::path dir = temp_dir();
  const std::string path = (dir / "hang.h5").string();
  fs::copy_file(crash_fixture("keras_model_heap_hang.h5"), path);
  expect_every_model_loader_refuses(path,
                                    "corrupt HDF5 file: the HDF5 library did not finish "
                                    "within 1 s");
  fs::remove_all(dir);
}

TEST(H5Hostile, DamagedGlobalHeapOfAModelIsRefused) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "model.h5").string();
  Model m = tiny_model();
  save_model(m, path, {.attributes = {{"epoch", "1"}}});
  std::vector<char> bytes = read_bytes(path);
  for (uint64_t size : {uint64_t{1} << 40, uint64_t{0x7fffffff}, uint64_t{100000}}) {
    std::vector<char> damaged = bytes;
    ASSERT_GT(damage_global_heaps(damaged, size), 0) << "the saved model has no global heap";
    write_bytes(path, damaged);
    SCOPED_TRACE("heap object size " + std::to_string(size));
    expect_every_model_loader_refuses(path);
  }
  fs::remove_all(dir);
}

TEST(H5Hostile, TruncatedModelIsRefusedByEveryLoader) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "model.h5").string();
  Model m = tiny_model();
  save_model(m, path);
  std::vector<char> bytes = read_bytes(path);
  for (size_t keep : {bytes.size() / 2, bytes.size() / 8, size_t{100}}) {
    write_bytes(path, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<long>(keep)));
    SCOPED_TRACE("kept " + std::to_string(keep) + " bytes");
    expect_every_model_loader_refuses(path);
  }
  fs::remove_all(dir);
}

TEST(H5Hostile, PreflightHandsBackTheVariableLengthStrings) {
  const fs::path dir = temp_dir();
  const std::string path = (dir / "model.h5").string();
  Model m = tiny_model();
  save_model(m, path, {.attributes = {{"class_names", "a\nb"}}});
  ASSERT_TRUE(h5::preflight_enabled());
  const auto strings = h5::preflight(path);
  ASSERT_NE(strings, nullptr);
  const std::vector<std::string>* config = strings->attribute("/", "model_config");
  ASSERT_NE(config, nullptr);
  ASSERT_EQ(config->size(), 1u);
  EXPECT_EQ(strings->attribute(".", "model_config"), config);
  {
    ScopedRuntimeOptions off([](RuntimeOptions& o) { o.h5_preflight = false; });
    EXPECT_FALSE(h5::preflight_enabled());
    EXPECT_EQ(h5::preflight(path), nullptr);
    const h5::File f = h5::File::open(path);
    EXPECT_EQ(f.read_strings("/", "model_config"), *config);
    EXPECT_EQ(read_model_attributes(path).at("class_names"), "a\nb");
  }
  // The same model loads through the child's strings.
  Model back = load_model(path);
  EXPECT_EQ(back.count_params(), m.count_params());
  EXPECT_EQ(read_model_attributes(path).at("class_names"), "a\nb");
  EXPECT_EQ(h5::absolute_h5_path("model_weights/dense"), "/model_weights/dense");
  EXPECT_EQ(h5::absolute_h5_path(""), "/");
  fs::remove_all(dir);
}

namespace {

std::string write_signs_like(const fs::path& dir, bool variable_length_classes) {
  const std::string path = (dir / "train_signs.h5").string();
  h5::File f = h5::File::create(path);
  Tensor x({5, 4, 4, 3}, DType::U8);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(i * 7);
  Tensor y({1, 5}, DType::I64);
  for (int64_t i = 0; i < 5; ++i) y.data<int64_t>()[i] = i % 3;
  f.write_array("train_set_x", x);
  f.write_array("train_set_y", y);
  f.write_string_dataset("list_classes", {"zero", "one", "two"}, variable_length_classes);
  f.close();
  return path;
}

}  // namespace

TEST(H5Hostile, DatasetWithVariableLengthClassNamesLoadsThroughThePreflight) {
  const fs::path dir = temp_dir();
  for (bool vlen : {true, false}) {
    const std::string path = write_signs_like(dir, vlen);
    const Dataset d = load_h5_dataset(path);
    EXPECT_EQ(d.size(), 5);
    EXPECT_EQ(d.class_names, (std::vector<std::string>{"zero", "one", "two"}));
    ScopedRuntimeOptions off([](RuntimeOptions& o) { o.h5_preflight = false; });
    EXPECT_EQ(load_h5_dataset(path).class_names, d.class_names);
  }
  fs::remove_all(dir);
}

TEST(H5Hostile, DatasetWithDamagedGlobalHeapIsRefused) {
  const fs::path dir = temp_dir();
  const std::string path = write_signs_like(dir, true);
  const std::vector<char> bytes = read_bytes(path);
  for (uint64_t size : {uint64_t{1} << 40, uint64_t{0x7fffffff}, uint64_t{100000}}) {
    std::vector<char> damaged = bytes;
    ASSERT_GT(damage_global_heaps(damaged, size), 0);
    write_bytes(path, damaged);
    const std::string msg = io_error([&] { (void)load_h5_dataset(path); });
    SCOPED_TRACE(msg);
    EXPECT_NE(msg.find(path), std::string::npos);
  }
  fs::remove_all(dir);
}

TEST(H5Hostile, DatasetWithAbsurdLabelIsRefused) {
  // Found by fuzz/fuzz_h5_dataset.cpp: a label of 2^40 with a class list made the loader append
  // names for every class up to it.
  const fs::path dir = temp_dir();
  const std::string path = (dir / "train_signs.h5").string();
  {
    h5::File f = h5::File::create(path);
    f.write_array("train_set_x", Tensor({2, 2, 2, 1}, DType::U8));
    Tensor y({2}, DType::I64);
    y.data<int64_t>()[0] = 1;
    y.data<int64_t>()[1] = int64_t{1} << 40;
    f.write_array("train_set_y", y);
    f.write_string_dataset("list_classes", {"a", "b"}, false);
    f.close();
  }
  const std::string msg = io_error([&] { (void)load_h5_dataset(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("train_set_y"), std::string::npos) << msg;
  fs::remove_all(dir);
}
