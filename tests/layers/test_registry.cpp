// The layer registry and Config: every built-in class round-trips through its Keras config, bad
// configs name the key, and a layer class of the user's own loads from a Keras file (as Keras's
// custom_objects).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "resnet/config.h"
#include "resnet/io.h"
#include "resnet/layers.h"
#include "resnet/model.h"
#include "support/allclose.h"
#include "support/temp_dir.h"

namespace resnet {
namespace {

using testing::random_tensor;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, TypedAccessAndErrorsNameTheKey) {
  Config c = Config::parse(
      R"({"name": "c1", "filters": 8, "kernel_size": [3, 5], "rate": 0.25, "on": true,
          "init": {"class_name": "Zeros", "config": {}}, "none": null, "three": 3.0})");
  EXPECT_EQ(c.get_string("name"), "c1");
  EXPECT_EQ(c.get_int("filters"), 8);
  EXPECT_EQ(c.get_int("three"), 3);  // Python writes some integers as 3.0
  EXPECT_EQ(c.get_ints("kernel_size"), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(c.get_ints("filters"), (std::vector<int64_t>{8}));
  EXPECT_DOUBLE_EQ(c.get_double("rate"), 0.25);
  EXPECT_DOUBLE_EQ(c.get_double("filters"), 8.0);
  EXPECT_TRUE(c.get_bool("on"));
  EXPECT_EQ(c.get_object("init").get_string("class_name"), "Zeros");
  EXPECT_FALSE(c.has("none"));
  EXPECT_FALSE(c.has("absent"));
  EXPECT_EQ(c.get_int("none", 7), 7);
  EXPECT_EQ(c.get_string("absent", "x"), "x");

  EXPECT_NE(error_of([&] { c.get_int("rate"); }).find("'rate': expected an integer, found 0.25"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.get_string("filters"); }).find("'filters'"), std::string::npos);
  EXPECT_NE(error_of([&] { c.get_bool("absent"); }).find("'absent' is missing"), std::string::npos);
  EXPECT_NE(error_of([&] { c.get_int("name", 1); }).find("'name'"), std::string::npos);
  EXPECT_THROW(Config::parse("[1, 2]"), ConfigError);
  EXPECT_THROW(Config::parse("{not json"), ConfigError);

  // Insertion order is kept, and set replaces in place.
  Config d;
  d.set("b", 1).set("a", std::string("x")).set("b", 2.5).set_null("n");
  EXPECT_EQ(d.dump(), R"({"b":2.5,"a":"x","n":null})");
  EXPECT_EQ(d.keys(), (std::vector<std::string>{"b", "a", "n"}));
  EXPECT_TRUE(Config::parse(d.dump()) == d);
}

// Layers with options away from the defaults, connected so their shapes are known.
std::vector<std::shared_ptr<Layer>> sample_layers() {
  reset_name_counters();
  SymTensor in = Input({9, 9, 4}, "in");
  auto conv = Conv2D({.filters = 6,
                      .kernel = {3, 1},
                      .strides = {2, 1},
                      .padding = Padding::Same,
                      .dilation = {1, 2},
                      .activation = "relu",
                      .use_bias = false,
                      .kernel_initializer = Initializer::he_normal(5),
                      .name = "conv",
                      .trainable = false});
  auto bn = BatchNormalization({.axis = 3,
                                .momentum = 0.9,
                                .epsilon = 1.001e-5,
                                .center = false,
                                .gamma_initializer = Initializer::constant(0.5),
                                .name = "bn"});
  auto act = Activation("tanh", "act");
  auto relu = ReLU({.name = "relu"});
  auto leaky = LeakyReLU({.negative_slope = 0.125, .name = "leaky"});
  auto pad = ZeroPadding2D({.padding = {1, 2, 0, 3}, .name = "pad"});
  auto maxp = MaxPooling2D({.pool_size = {3, 3}, .strides = {2, 1}, .name = "maxp"});
  auto avgp = AveragePooling2D({.pool_size = {2, 2}, .padding = Padding::Same, .name = "avgp"});
  auto add = Add({.name = "add"});
  auto gap = GlobalAveragePooling2D({.name = "gap"});
  auto gmp = GlobalMaxPooling2D({.name = "gmp"});
  auto flat = Flatten({.name = "flat"});
  auto drop = Dropout({.rate = 0.3, .seed = 11, .name = "drop"});
  auto dense = Dense({.units = 5,
                      .activation = "softmax",
                      .bias_initializer = Initializer::random_uniform(-0.1, 0.2, 3),
                      .name = "dense"});
  SymTensor x = conv(in);
  x = bn(x);
  x = act(x);
  SymTensor r = leaky(relu(x));
  x = add({x, r});
  x = pad(x);
  SymTensor a = maxp(x);
  SymTensor b = avgp(x);
  SymTensor g = gap(a);
  gmp(b);
  flat(b);
  x = drop(g);
  dense(x);
  std::vector<std::shared_ptr<Layer>> out = {in.node()->layer};
  for (Layer* l : {&conv.layer(), &bn.layer(), &act.layer(), &relu.layer(), &leaky.layer(),
                   &pad.layer(), &maxp.layer(), &avgp.layer(), &add.layer(), &gap.layer(),
                   &gmp.layer(), &flat.layer(), &drop.layer(), &dense.layer()}) {
    out.push_back(l->shared_from_this());
  }
  return out;
}

TEST(LayerRegistry, EveryBuiltInClassRoundTripsThroughItsConfig) {
  std::vector<std::string> seen;
  for (const auto& l : sample_layers()) {
    SCOPED_TRACE(l->class_name());
    const Config c = l->config();
    EXPECT_EQ(c.get_string("name"), l->name());
    std::shared_ptr<Layer> back = layer_from_config(l->class_name(), c);
    EXPECT_EQ(back->class_name(), l->class_name());
    EXPECT_EQ(back->name(), l->name());
    EXPECT_EQ(back->trainable(), l->trainable());
    // An unconnected copy writes the same config, but for BatchNormalization's axis, which is
    // normalized once the input rank is known (3 here either way).
    EXPECT_EQ(back->config().dump(), c.dump());
    seen.push_back(l->class_name());
  }
  // Every registered built-in class is covered above.
  std::sort(seen.begin(), seen.end());
  for (const std::string& cls : registered_layer_classes()) {
    EXPECT_TRUE(std::binary_search(seen.begin(), seen.end(), cls)) << cls << " is not tested";
  }
  EXPECT_EQ(seen.size(), registered_layer_classes().size());
}

TEST(LayerRegistry, ConfigsWithTheKerasFieldsOfEachLayer) {
  const auto ls = sample_layers();
  EXPECT_EQ(ls[1]->config().dump(),
            R"({"name":"conv","trainable":false,"dtype":"float32","filters":6,)"
            R"("kernel_size":[3,1],"strides":[2,1],"padding":"same","data_format":"channels_last",)"
            R"("dilation_rate":[1,2],"groups":1,"activation":"relu","use_bias":false,)"
            R"("kernel_initializer":{"class_name":"HeNormal","config":{"seed":5}},)"
            R"("bias_initializer":{"class_name":"Zeros","config":{}},"kernel_regularizer":null,)"
            R"("bias_regularizer":null,"activity_regularizer":null,"kernel_constraint":null,)"
            R"("bias_constraint":null})");
  EXPECT_EQ(ls[0]->config().dump(),
            R"({"batch_input_shape":[null,9,9,4],"dtype":"float32","sparse":false,)"
            R"("ragged":false,"name":"in"})");
  EXPECT_EQ(ls[6]->config().get_string("data_format"), "channels_last");
  EXPECT_EQ(ls[2]->config().get_ints("axis"), (std::vector<int64_t>{3}));
  // LeakyReLU: Keras 2.4 writes the slope as alpha; Keras 3's negative_slope reads too.
  EXPECT_EQ(ls[5]->config().dump(),
            R"({"name":"leaky","trainable":true,"dtype":"float32","alpha":0.125})");
  auto k3 = layer_from_config(
      "LeakyReLU", Config::parse(R"({"name": "l3", "negative_slope": 0.05, "dtype": "float32"})"));
  EXPECT_EQ(k3->config().get_double("alpha"), 0.05);
  EXPECT_EQ(layer_from_config("LeakyReLU", Config())->config().get_double("alpha"), 0.3);
}

TEST(LayerRegistry, BadConfigsNameTheKeyAndUnknownClassesTheClass) {
  EXPECT_NE(error_of([] {
              layer_from_config("GroupNormalization", Config());
            }).find("unknown layer class 'GroupNormalization'"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              layer_from_config("Conv2D", Config::parse(R"({"filters": "8", "kernel_size": 3})"));
            }).find("'filters'"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              layer_from_config("Dense", Config::parse(R"({"name": "d"})"));
            }).find("'units' is missing"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              layer_from_config("Conv2D",
                                Config::parse(R"({"filters": 8, "kernel_size": [1, 2, 3]})"));
            }).find("'kernel_size': expected an integer or a pair"),
            std::string::npos);
  EXPECT_THROW(layer_from_config("Conv2D", Config::parse(R"({"filters": 0, "kernel_size": 3})")),
               ConfigError);
  EXPECT_THROW(layer_from_config("Conv2D", Config::parse(R"({"filters": 2, "kernel_size": 3,
                                                              "data_format": "channels_first"})")),
               ConfigError);
  EXPECT_THROW(layer_from_config("ReLU", Config::parse(R"({"max_value": 6.0})")), ConfigError);
  EXPECT_THROW(layer_from_config("GlobalAveragePooling2D", Config::parse(R"({"keepdims": true})")),
               ConfigError);
  EXPECT_THROW(layer_from_config("BatchNormalization", Config::parse(R"({"axis": [1, 2]})")),
               ConfigError);
}

// ---------------------------------------------------------------------------------------------
// A layer class of the user's own: y = factor * x, written against the public API only.

class Scale : public Layer {
 public:
  Scale(double factor, std::string name) : Layer("Scale", std::move(name)), factor_(factor) {}
  Shape infer(const std::vector<Shape>& inputs) const override { return inputs[0]; }
  Tensor forward(const std::vector<Tensor>& inputs, Mode mode) override {
    Tensor x = to_plain(inputs[0]);
    Tensor y(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) y.f32()[i] = static_cast<float>(factor_) * x.f32()[i];
    return y;
  }
  std::vector<Tensor> backward(const Tensor& dy, const std::vector<bool>& need_dx) override {
    return {forward({dy}, Mode::Inference)};
  }
  Config config() const override { return Layer::config().set("factor", factor_); }
  static std::shared_ptr<Layer> from_config(const Config& c) {
    return std::make_shared<Scale>(c.get_double("factor"), c.get_string("name"));
  }

 private:
  double factor_;
};

Model model_with_scale() {
  reset_name_counters();
  set_global_seed(3);
  SymTensor in = Input({6, 6, 3});
  SymTensor x = Conv2D({.filters = 4, .kernel = {3, 3}, .name = "conv"})(in);
  x = (*std::make_shared<Scale>(2.5, "scale"))(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = 3, .activation = "softmax", .name = "out"})(x);
  return Model(in, x, "with_scale");
}

TEST(LayerRegistry, AUserLayerClassLoadsFromAKerasFileWhileRegistered) {
  testing::TempDir dir("resnet_registry");
  const std::string path = dir.file("scale.h5");
  Model m = model_with_scale();
  const Tensor x = random_tensor({2, 6, 6, 3}, 9);
  const std::vector<float> want = m.predict(x).to_vector();
  save_model(m, path);

  // Not registered: the load fails naming the file, the layer and its class.
  const std::string err = error_of([&] { load_model(path); });
  EXPECT_NE(err.find(path), std::string::npos) << err;
  EXPECT_NE(err.find("layer 'scale' (Scale)"), std::string::npos) << err;
  EXPECT_NE(err.find("unknown layer class 'Scale'"), std::string::npos) << err;
  EXPECT_FALSE(layer_class_registered("Scale"));

  {
    CustomObjectScope scope({{"Scale", &Scale::from_config}});
    EXPECT_TRUE(layer_class_registered("Scale"));
    Model back = load_model(path);
    EXPECT_EQ(back.layer("scale").class_name(), "Scale");
    EXPECT_EQ(back.layer("scale").config().get_double("factor"), 2.5);
    EXPECT_EQ(back.predict(x).to_vector(), want);
    // And it trains: backward goes through the user's layer.
    back.compile({.optimizer = SGD(), .loss = "sparse_categorical_crossentropy"});
    Tensor labels = Tensor::from_vector(Shape{2}, {0.0f, 2.0f});
    const double loss = back.train_step(x, labels);
    EXPECT_TRUE(std::isfinite(loss));
  }
  EXPECT_FALSE(layer_class_registered("Scale"));
  EXPECT_THROW(load_model(path), IoError);

  register_layer_class("Scale", &Scale::from_config);
  EXPECT_NO_THROW(load_model(path));
  EXPECT_TRUE(unregister_layer_class("Scale"));
  EXPECT_FALSE(unregister_layer_class("Scale"));
  EXPECT_THROW(register_layer_class("", &Scale::from_config), ConfigError);
}

TEST(LayerRegistry, LeakyReLURoundTripsThroughAKerasFileAndTrains) {
  testing::TempDir dir("resnet_registry");
  reset_name_counters();
  set_global_seed(4);
  SymTensor in = Input({6, 6, 3});
  SymTensor x = Conv2D({.filters = 4, .kernel = {3, 3}})(in);
  x = BatchNormalization()(x);
  x = LeakyReLU({.negative_slope = 0.1, .name = "leaky"})(x);
  x = GlobalAveragePooling2D()(x);
  x = Dense({.units = 3, .activation = "softmax"})(x);
  Model m(in, x, "leaky");
  m.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  const Tensor xs = random_tensor({4, 6, 6, 3}, 10);
  const Tensor labels = Tensor::from_vector(Shape{4}, {0.0f, 1.0f, 2.0f, 1.0f});
  m.train_step(xs, labels);
  save_model(m, dir.file("leaky.h5"));
  Model back = load_model(dir.file("leaky.h5"));
  EXPECT_EQ(back.layer("leaky").config().dump(), m.layer("leaky").config().dump());
  EXPECT_EQ(back.predict(xs).to_vector(), m.predict(xs).to_vector());
  // Training resumes identically (optimizer state restored).
  EXPECT_EQ(back.train_step(xs, labels), m.train_step(xs, labels));
}

TEST(LayerRegistry, ARegisteredClassShadowsABuiltInOneUntilTheScopeEnds) {
  int calls = 0;
  {
    CustomObjectScope scope({{"ReLU", [&](const Config& c) {
                                ++calls;
                                return std::make_shared<Scale>(1.0, c.get_string("name"));
                              }}});
    EXPECT_EQ(layer_from_config("ReLU", Config::parse(R"({"name": "r"})"))->class_name(), "Scale");
  }
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(layer_from_config("ReLU", Config::parse(R"({"name": "r"})"))->class_name(), "ReLU");
}

}  // namespace
}  // namespace resnet
