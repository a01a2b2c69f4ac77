// The deeplearning.ai "Residual Networks" tutorial (course 4, week 2) in C++, step by step:
// the identity block, the convolutional block, ResNet-50 for the SIGNS data set (64x64x3 images
// of hands showing 0 to 5 fingers), then compile, fit, evaluate, summary, plot and save.
//
//   signs_resnet50 [--epochs 10] [--batch-size 32] [--train-samples N] [--test-samples N]
//                  [--data-dir DIR] [--out-dir DIR] [--seed S]
//
// The data: train_signs.h5 and test_signs.h5 in --data-dir, or in $RESNET_SIGNS_DIR, or in
// ../shared/datasets/signs. Without them the program says so and exits with status 77 (skipped).
// --train-samples / --test-samples use only the first N images (for a quick run).
#include <resnet/data.h>
#include <resnet/io.h>
#include <resnet/layers.h>
#include <resnet/model.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

using namespace resnet;

// ---------------------------------------------------------------------------------------------
// 1 - The identity block: the shortcut skips three layers; the input is added unchanged.
//
//   X -> CONV2D 1x1 -> BN -> ReLU -> CONV2D fxf 'same' -> BN -> ReLU -> CONV2D 1x1 -> BN -> (+X) ->
//   ReLU
SymTensor identity_block(SymTensor X, int64_t f, std::array<int64_t, 3> filters, int stage,
                         const std::string& block) {
  // Defining name basis
  const std::string conv_name_base = "res" + std::to_string(stage) + block + "_branch";
  const std::string bn_name_base = "bn" + std::to_string(stage) + block + "_branch";
  // Retrieve filters
  const auto [F1, F2, F3] = filters;
  // Save the input value. You'll need this later to add back to the main path.
  SymTensor X_shortcut = X;

  // First component of main path
  X = Conv2D({.filters = F1,
              .kernel = {1, 1},
              .strides = {1, 1},
              .padding = Padding::Valid,
              .kernel_initializer = Initializer::glorot_uniform(0),
              .name = conv_name_base + "2a"})(X);
  X = BatchNormalization({.axis = 3, .name = bn_name_base + "2a"})(X);
  X = Activation("relu")(X);

  // Second component of main path
  X = Conv2D({.filters = F2,
              .kernel = {f, f},
              .strides = {1, 1},
              .padding = Padding::Same,
              .kernel_initializer = Initializer::glorot_uniform(0),
              .name = conv_name_base + "2b"})(X);
  X = BatchNormalization({.axis = 3, .name = bn_name_base + "2b"})(X);
  X = Activation("relu")(X);

  // Third component of main path
  X = Conv2D({.filters = F3,
              .kernel = {1, 1},
              .strides = {1, 1},
              .padding = Padding::Valid,
              .kernel_initializer = Initializer::glorot_uniform(0),
              .name = conv_name_base + "2c"})(X);
  X = BatchNormalization({.axis = 3, .name = bn_name_base + "2c"})(X);

  // Final step: add the shortcut value to the main path, and pass it through a ReLU activation
  X = Add()({X, X_shortcut});
  X = Activation("relu")(X);
  return X;
}

// ---------------------------------------------------------------------------------------------
// 2 - The convolutional block: used when the input and output dimensions differ; a 1x1
// convolution (stride s) and batch norm on the shortcut path bring the input to the new shape.
SymTensor convolutional_block(SymTensor X, int64_t f, std::array<int64_t, 3> filters, int stage,
                              const std::string& block, int64_t s = 2) {
  // Defining name basis
  const std::string conv_name_base = "res" + std::to_string(stage) + block + "_branch";
  const std::string bn_name_base = "bn" + std::to_string(stage) + block + "_branch";
  // Retrieve filters
  const auto [F1, F2, F3] = filters;
  // Save the input value
  SymTensor X_shortcut = X;

  // ##### MAIN PATH #####
  // First component of main path
  X = Conv2D({.filters = F1,
              .kernel = {1, 1},
              .strides = {s, s},
              .padding = Padding::Valid,
              .kernel_initializer = Initializer::glorot_uniform(0),
              .name = conv_name_base + "2a"})(X);
  X = BatchNormalization({.axis = 3, .name = bn_name_base + "2a"})(X);
  X = Activation("relu")(X);

  // Second component of main path
  X = Conv2D({.filters = F2,
              .kernel = {f, f},
              .strides = {1, 1},
              .padding = Padding::Same,
              .kernel_initializer = Initializer::glorot_uniform(0),
              .name = conv_name_base + "2b"})(X);
  X = BatchNormalization({.axis = 3, .name = bn_name_base + "2b"})(X);
  X = Activation("relu")(X);

  // Third component of main path
  X = Conv2D({.filters = F3,
              .kernel = {1, 1},
              .strides = {1, 1},
              .padding = Padding::Valid,
              .kernel_initializer = Initializer::glorot_uniform(0),
              .name = conv_name_base + "2c"})(X);
  X = BatchNormalization({.axis = 3, .name = bn_name_base + "2c"})(X);

  // ##### SHORTCUT PATH #####
  X_shortcut = Conv2D({.filters = F3,
                       .kernel = {1, 1},
                       .strides = {s, s},
                       .padding = Padding::Valid,
                       .kernel_initializer = Initializer::glorot_uniform(0),
                       .name = conv_name_base + "1"})(X_shortcut);
  X_shortcut = BatchNormalization({.axis = 3, .name = bn_name_base + "1"})(X_shortcut);

  // Final step: add the shortcut value to the main path, and pass it through a ReLU activation
  X = Add()({X, X_shortcut});
  X = Activation("relu")(X);
  return X;
}

// ---------------------------------------------------------------------------------------------
// 3 - ResNet-50:
//   CONV2D -> BATCHNORM -> RELU -> MAXPOOL -> CONVBLOCK -> IDBLOCK*2 -> CONVBLOCK -> IDBLOCK*3
//   -> CONVBLOCK -> IDBLOCK*5 -> CONVBLOCK -> IDBLOCK*2 -> AVGPOOL -> FLATTEN -> DENSE
Model ResNet50(Shape input_shape = {64, 64, 3}, int64_t classes = 6) {
  // Define the input as a tensor with shape input_shape
  SymTensor X_input = Input(input_shape);

  // Zero-Padding
  SymTensor X = ZeroPadding2D({.padding = {3, 3, 3, 3}})(X_input);

  // Stage 1
  X = Conv2D({.filters = 64,
              .kernel = {7, 7},
              .strides = {2, 2},
              .kernel_initializer = Initializer::glorot_uniform(0),
              .name = "conv1"})(X);
  X = BatchNormalization({.axis = 3, .name = "bn_conv1"})(X);
  X = Activation("relu")(X);
  X = MaxPooling2D({.pool_size = {3, 3}, .strides = {2, 2}})(X);

  // Stage 2
  X = convolutional_block(X, 3, {64, 64, 256}, 2, "a", 1);
  X = identity_block(X, 3, {64, 64, 256}, 2, "b");
  X = identity_block(X, 3, {64, 64, 256}, 2, "c");

  // Stage 3
  X = convolutional_block(X, 3, {128, 128, 512}, 3, "a", 2);
  X = identity_block(X, 3, {128, 128, 512}, 3, "b");
  X = identity_block(X, 3, {128, 128, 512}, 3, "c");
  X = identity_block(X, 3, {128, 128, 512}, 3, "d");

  // Stage 4
  X = convolutional_block(X, 3, {256, 256, 1024}, 4, "a", 2);
  for (const char* block : {"b", "c", "d", "e", "f"}) {
    X = identity_block(X, 3, {256, 256, 1024}, 4, block);
  }

  // Stage 5
  X = convolutional_block(X, 3, {512, 512, 2048}, 5, "a", 2);
  X = identity_block(X, 3, {512, 512, 2048}, 5, "b");
  X = identity_block(X, 3, {512, 512, 2048}, 5, "c");

  // AVGPOOL
  X = AveragePooling2D({.pool_size = {2, 2}, .name = "avg_pool"})(X);

  // Output layer
  X = Flatten()(X);
  X = Dense({.units = classes,
             .activation = "softmax",
             .kernel_initializer = Initializer::glorot_uniform(0),
             .name = "fc" + std::to_string(classes)})(X);

  // Create model
  return Model(X_input, X, "ResNet50");
}

// ---------------------------------------------------------------------------------------------
struct Args {
  int epochs = 10;
  int64_t batch_size = 32;
  int64_t train_samples = 0;  // 0: all 1080
  int64_t test_samples = 0;   // 0: all 120
  std::string data_dir;
  std::string out_dir = ".";
  uint64_t seed = 0;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "signs_resnet50: %s\nusage: signs_resnet50 [--epochs N] [--batch-size N] "
               "[--train-samples N] [--test-samples N] [--data-dir DIR] [--out-dir DIR] "
               "[--seed S]\n",
               problem.c_str());
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf(
          "The deeplearning.ai ResNet-50 tutorial on SIGNS. Options: --epochs N (10), "
          "--batch-size N (32), --train-samples N, --test-samples N (0 = all), "
          "--data-dir DIR, --out-dir DIR (.), --seed S (0)\n");
      std::exit(0);
    }
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    try {
      if (flag == "--epochs")
        a.epochs = std::stoi(value);
      else if (flag == "--batch-size")
        a.batch_size = std::stoll(value);
      else if (flag == "--train-samples")
        a.train_samples = std::stoll(value);
      else if (flag == "--test-samples")
        a.test_samples = std::stoll(value);
      else if (flag == "--data-dir")
        a.data_dir = value;
      else if (flag == "--out-dir")
        a.out_dir = value;
      else if (flag == "--seed")
        a.seed = std::stoull(value);
      else
        usage("unknown option " + flag);
    } catch (const std::logic_error&) {
      usage(flag + ": not a number: " + value);
    }
  }
  if (a.epochs < 1 || a.batch_size < 1) usage("--epochs and --batch-size must be positive");
  if (a.data_dir.empty()) {
    const char* env = std::getenv("RESNET_SIGNS_DIR");
    a.data_dir = env != nullptr && *env != '\0' ? env : "../shared/datasets/signs";
  }
  return a;
}

Dataset first(const Dataset& d, int64_t n) { return n > 0 && n < d.size() ? d.slice(0, n) : d; }

// X / 255. as float32.
Tensor normalize(const Tensor& images) {
  Tensor x = images.to_f32();
  for (float& v : x.span<float>()) v /= 255.0f;
  return x;
}

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  const std::filesystem::path data_dir = args.data_dir;
  if (!std::filesystem::exists(data_dir / "train_signs.h5") ||
      !std::filesystem::exists(data_dir / "test_signs.h5")) {
    std::printf(
        "skipped: the SIGNS data (train_signs.h5, test_signs.h5) is not in '%s'; set "
        "RESNET_SIGNS_DIR or pass --data-dir\n",
        args.data_dir.c_str());
    return 77;
  }
  try {
    set_global_seed(args.seed);

    // model = ResNet50(input_shape = (64, 64, 3), classes = 6)
    Model model = ResNet50({64, 64, 3}, 6);

    // model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
    model.compile(
        {.optimizer = Adam(), .loss = "categorical_crossentropy", .metrics = {"accuracy"}});

    // X_train_orig, Y_train_orig, X_test_orig, Y_test_orig, classes = load_dataset()
    const Dataset train_orig =
        first(load_h5_dataset((data_dir / "train_signs.h5").string()), args.train_samples);
    const Dataset test_orig =
        first(load_h5_dataset((data_dir / "test_signs.h5").string()), args.test_samples);

    // Normalize image vectors
    const Tensor X_train = normalize(train_orig.x);
    const Tensor X_test = normalize(test_orig.x);
    // Convert training and test labels to one hot matrices
    const Tensor Y_train = one_hot(train_orig.y, 6);
    const Tensor Y_test = one_hot(test_orig.y, 6);

    std::cout << "number of training examples = " << X_train.shape()[0] << "\n"
              << "number of test examples = " << X_test.shape()[0] << "\n"
              << "X_train shape: " << X_train.shape().str() << "\n"
              << "Y_train shape: " << Y_train.shape().str() << "\n"
              << "X_test shape: " << X_test.shape().str() << "\n"
              << "Y_test shape: " << Y_test.shape().str() << "\n";

    // model.fit(X_train, Y_train, epochs = 10, batch_size = 32)
    model.fit(X_train, Y_train,
              {.epochs = args.epochs, .batch_size = args.batch_size, .seed = args.seed});

    // preds = model.evaluate(X_test, Y_test)
    Logs preds = model.evaluate(X_test, Y_test);
    std::cout << "Loss = " << preds["loss"] << "\n";
    std::cout << "Test Accuracy = " << preds["accuracy"] << "\n";

    // model.summary()
    std::cout << model.summary();

    // plot_model(model, to_file='model.png')
    std::filesystem::create_directories(args.out_dir);
    const std::filesystem::path out = args.out_dir;
    plot_model(model, (out / "model.png").string());
    std::cout << "plotted " << (out / "model.png").string() << "\n";

    // model.save('ResNet50.h5')
    save_model(model, (out / "ResNet50.h5").string());
    std::cout << "saved " << (out / "ResNet50.h5").string() << "\n";

    // model = load_model('ResNet50.h5'); preds = model.evaluate(X_test, Y_test)
    Model reloaded = load_model((out / "ResNet50.h5").string());
    Logs again = reloaded.evaluate(X_test, Y_test, {.verbose = 0});
    std::cout << "reloaded: Loss = " << again["loss"] << ", Test Accuracy = " << again["accuracy"]
              << "\n";
    if (std::abs(again["loss"] - preds["loss"]) > 1e-4 * std::max(1.0, std::abs(preds["loss"])) ||
        again["accuracy"] != preds["accuracy"]) {
      std::fprintf(stderr, "signs_resnet50: the reloaded model evaluates differently\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "signs_resnet50: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
