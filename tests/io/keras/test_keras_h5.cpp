// load_model against a real Keras 2.4 file (ResNet-8 on CIFAR-10), and the JSON builder.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "io/keras/config.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/model.h"
#include "support/allclose.h"
#include "support/fixtures.h"

namespace resnet {
namespace {

std::string keras_dir() {
  if (const char* env = std::getenv("RESNET_KERAS_DIR"); env && *env) return env;
  return RESNET_SOURCE_DIR "/../shared/datasets/keras";
}

std::string resnet8_path() { return keras_dir() + "/resnet8_cifar10_keras2.4.h5"; }

#define SKIP_WITHOUT_RESNET8()                                                    \
  if (!std::filesystem::exists(resnet8_path())) {                                 \
    GTEST_SKIP() << "Keras test file " << resnet8_path()                          \
                 << " is absent (set RESNET_KERAS_DIR to the folder holding it)"; \
  }

TEST(KerasH5, LoadsResNet8Structure) {
  SKIP_WITHOUT_RESNET8();
  Model model = load_model(resnet8_path());
  EXPECT_EQ(model.name(), "model");
  EXPECT_EQ(model.layers().size(), 30u);
  // Sum of every dataset size under model_weights (h5py).
  EXPECT_EQ(model.count_params(), 78666);
  EXPECT_EQ(model.summary().rfind("Model: \"model\"", 0), 0u) << model.summary();
  EXPECT_EQ(model.layer("conv2d_3").class_name(), "Conv2D");
  EXPECT_EQ(model.inbound(model.layer("add_1")),
            (std::vector<std::string>{"conv2d_5", "batch_normalization_4"}));
  ASSERT_EQ(model.output_shapes().size(), 1u);
  EXPECT_EQ(model.output_shapes()[0], (Shape{10}));
}

TEST(KerasH5, ForwardMatchesReference) {
  SKIP_WITHOUT_RESNET8();
  Model model = load_model(resnet8_path());
  const testing::Fixture fx = testing::load_fixture("keras_resnet8");
  const Tensor y = model.forward(fx.at("input"), Mode::Inference);
  EXPECT_TRUE(testing::AllClose(y, fx.at("output"), 1e-4, "keras resnet8 softmax output"));
  RecordProperty("max_rel_error", std::to_string(testing::max_rel_error(y, fx.at("output"))));
}

TEST(KerasH5, WeightsAreLoaded) {
  SKIP_WITHOUT_RESNET8();
  Model model = load_model(resnet8_path());
  // A moving variance of exactly 1 everywhere would mean the initializer's value survived.
  const Tensor& v = model.layer("batch_normalization").param("moving_variance").value;
  bool all_one = true;
  for (float x : v.span<float>()) all_one = all_one && x == 1.0f;
  EXPECT_FALSE(all_one);
}

TEST(KerasH5, MissingFileThrowsIoError) {
  EXPECT_THROW(load_model("/nonexistent/model.h5"), IoError);
}

const char* kSmallConfig = R"({"class_name": "Functional", "config": {"name": "tiny",
  "layers": [
   {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 8, 8, 3], "name": "in"},
    "name": "in", "inbound_nodes": []},
   {"class_name": "ZeroPadding2D", "config": {"name": "pad", "padding": [[1, 2], [0, 1]]},
    "name": "pad", "inbound_nodes": [[["in", 0, 0, {}]]]},
   {"class_name": "Conv2D", "config": {"name": "conv", "filters": 4, "kernel_size": [3, 3],
    "strides": [1, 1], "padding": "valid", "dilation_rate": [1, 1], "activation": "relu",
    "use_bias": false}, "name": "conv", "inbound_nodes": [[["pad", 0, 0, {}]]]},
   %MIDDLE%
   {"class_name": "GlobalAveragePooling2D", "config": {"name": "gap"}, "name": "gap",
    "inbound_nodes": [[["conv", 0, 0, {}]]]},
   {"class_name": "Dense", "config": {"name": "fc", "units": 2, "activation": "softmax",
    "use_bias": true}, "name": "fc", "inbound_nodes": [[["gap", 0, 0, {}]]]}],
  "input_layers": [["in", 0, 0]], "output_layers": [["fc", 0, 0]]}})";

std::string small_config(const std::string& middle) {
  std::string s = kSmallConfig;
  s.replace(s.find("%MIDDLE%"), 8, middle);
  return s;
}

TEST(KerasH5, BuildsFromJson) {
  Model m = keras_detail::build_keras_model_from_json(small_config(""), "tiny.h5");
  EXPECT_EQ(m.name(), "tiny");
  EXPECT_EQ(m.layers().size(), 5u);
  EXPECT_EQ(m.output_shape(m.layer("pad")), (Shape{11, 9, 3}));
  EXPECT_EQ(m.output_shape(m.layer("conv")), (Shape{9, 7, 4}));
  EXPECT_EQ(m.layer("conv").count_params(), 3 * 3 * 3 * 4);
}

TEST(KerasH5, UnknownLayerClassNamesFileLayerAndClass) {
  const std::string json = small_config(
      R"({"class_name": "LayerNormalization", "config": {"name": "ln"}, "name": "ln",
          "inbound_nodes": [[["conv", 0, 0, {}]]]},)");
  try {
    keras_detail::build_keras_model_from_json(json, "weird.h5");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("weird.h5"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'ln'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("LayerNormalization"), std::string::npos) << msg;
  }
}

TEST(KerasH5, MalformedJsonThrowsIoError) {
  EXPECT_THROW(keras_detail::build_keras_model_from_json("{not json", "bad.h5"), IoError);
  EXPECT_THROW(keras_detail::build_keras_model_from_json(
                   R"({"class_name": "Sequential", "config": {}})", "seq.h5"),
               IoError);
}

}  // namespace
}  // namespace resnet
