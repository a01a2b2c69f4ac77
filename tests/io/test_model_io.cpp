// The one dispatch by file type (src/io/model_io.cpp): which format each extension names, that
// every public file function follows it, and that a path of the wrong kind is refused before
// anything is written.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"
#include "resnet/onnx.h"
#include "support/allclose.h"
#include "support/temp_dir.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;

Model small_model() {
  reset_name_counters();
  return build_model("resnet20", {8, 8, 3}, 4);
}

TEST(FileFormat, FollowsTheExtensionCaseInsensitively) {
  EXPECT_EQ(file_format("a/model.h5"), FileFormat::KerasH5);
  EXPECT_EQ(file_format("model.H5"), FileFormat::KerasH5);
  EXPECT_EQ(file_format("model.hdf5"), FileFormat::KerasH5);
  EXPECT_EQ(file_format("model.HDF5"), FileFormat::KerasH5);
  EXPECT_EQ(file_format("model.onnx"), FileFormat::Onnx);
  EXPECT_EQ(file_format("model.ONNX"), FileFormat::Onnx);
  EXPECT_EQ(file_format("model.rnw"), FileFormat::Rnw);
  EXPECT_EQ(file_format("model"), FileFormat::Rnw);
  EXPECT_EQ(file_format("dir.h5/model.bin"), FileFormat::Rnw);
}

TEST(FileFormat, SaveModelRefusesAWeightsOnlyPathAndWritesNothing) {
  testing::TempDir dir;
  Model m = small_model();
  const std::string path = dir.file("model.rnw");
  try {
    save_model(m, path);
    FAIL() << "save_model wrote a .rnw path";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("save_weights"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(FileFormat, LoadModelRefusesAWeightsFileNamingIt) {
  testing::TempDir dir;
  Model m = small_model();
  const std::string path = dir.file("weights.rnw");
  save_weights(m, path);
  try {
    load_model(path);
    FAIL() << "load_model read a .rnw file";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("load_weights"), std::string::npos) << e.what();
  }
}

TEST(FileFormat, WeightsFunctionsRefuseOnnxPaths) {
  testing::TempDir dir;
  Model m = small_model();
  const std::string path = dir.file("model.onnx");
  EXPECT_THROW(save_weights(m, path), IoError);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_THROW(load_weights(m, path), IoError);
}

TEST(FileFormat, UpperCaseH5IsAKerasFile) {
  testing::TempDir dir;
  Model m = small_model();
  const std::string path = dir.file("MODEL.HDF5");
  save_model(m, path, {.include_optimizer = false, .attributes = {{"classes", "4"}}});
  Model back = load_model(path);
  EXPECT_EQ(read_model_attributes(path).at("classes"), "4");
  const Tensor x = testing::random_tensor({2, 8, 8, 3}, 5);
  EXPECT_EQ(testing::max_rel_error(back.predict(x), m.predict(x)), 0.0);
}

TEST(FileFormat, OnnxThroughSaveModelAndLoadModel) {
  if (!onnx_available()) GTEST_SKIP() << "built without ONNX";
  testing::TempDir dir;
  Model m = small_model();
  const std::string path = dir.file("model.onnx");
  save_model(m, path);
  Model back = load_model(path);
  EXPECT_TRUE(read_model_attributes(path).empty());
  const Tensor x = testing::random_tensor({2, 8, 8, 3}, 6);
  EXPECT_LT(testing::max_rel_error(back.predict(x), m.predict(x)), 1e-4);
}

}  // namespace
}  // namespace resnet
