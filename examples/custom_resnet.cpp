// A residual network of your own: a user-defined residual block (pre-activation, He et al.
// 2016: BN -> ReLU -> conv, twice, plus the shortcut), stacked in a loop into a very deep
// network, trained on Fashion-MNIST (Debian's dataset-fashion-mnist), evaluated and saved.
//
//   custom_resnet [--blocks 30] [--width 8] [--epochs 1] [--batch-size 64]
//                 [--train-samples 2000] [--test-samples 500] [--data-dir DIR]
//                 [--out custom_resnet.h5] [--sample-images DIR]
//
// --blocks is the number of residual blocks per stage (3 stages): 30 gives 183 convolutions and
// 638 layers. --sample-images writes the first test images as PNG files (for predict_image).
#include <resnet/data.h>
#include <resnet/io.h>
#include <resnet/layers.h>
#include <resnet/model.h>
#include <stb/stb_image_write.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

using namespace resnet;

// The block: two 3x3 convolutions, each after batch norm and ReLU ("full pre-activation").
// When the block changes the resolution (stride 2) or the width, a 1x1 convolution projects the
// pre-activated input onto the new shape; otherwise the input is added unchanged. Batch norm
// uses momentum 0.9 (PyTorch's 0.1) so its moving statistics settle within a short run.
SymTensor preact_block(const SymTensor& x, int64_t filters, int64_t stride,
                       const std::string& name) {
  SymTensor pre = BatchNormalization({.momentum = 0.9, .name = name + "_preact_bn"})(x);
  pre = Activation("relu", name + "_preact_relu")(pre);

  const bool project = stride != 1 || x.shape()[-1] != filters;
  SymTensor shortcut = x;
  if (project) {
    shortcut = Conv2D({.filters = filters,
                       .kernel = {1, 1},
                       .strides = {stride, stride},
                       .use_bias = false,
                       .kernel_initializer = Initializer::he_normal(),
                       .name = name + "_shortcut"})(pre);
  }
  SymTensor y = Conv2D({.filters = filters,
                        .kernel = {3, 3},
                        .strides = {stride, stride},
                        .padding = Padding::Same,
                        .use_bias = false,
                        .kernel_initializer = Initializer::he_normal(),
                        .name = name + "_conv1"})(pre);
  y = BatchNormalization({.momentum = 0.9, .name = name + "_bn2"})(y);
  y = Activation("relu", name + "_relu2")(y);
  y = Conv2D({.filters = filters,
              .kernel = {3, 3},
              .padding = Padding::Same,
              .use_bias = false,
              .kernel_initializer = Initializer::he_normal(),
              .name = name + "_conv2"})(y);
  return Add({.name = name + "_add"})({shortcut, y});
}

// Three stages of `blocks` blocks each (width, 2 x width, 4 x width filters; the first block of
// stages 2 and 3 halves the resolution), built in a loop.
Model deep_resnet(Shape input_shape, int64_t classes, int blocks, int64_t width) {
  SymTensor input = Input(input_shape, "image");
  SymTensor x = Conv2D({.filters = width,
                        .kernel = {3, 3},
                        .padding = Padding::Same,
                        .use_bias = false,
                        .kernel_initializer = Initializer::he_normal(),
                        .name = "stem_conv"})(input);
  for (int stage = 0; stage < 3; ++stage) {
    const int64_t filters = width << stage;
    for (int b = 0; b < blocks; ++b) {
      const int64_t stride = stage > 0 && b == 0 ? 2 : 1;
      x = preact_block(x, filters, stride,
                       "stage" + std::to_string(stage + 1) + "_block" + std::to_string(b + 1));
    }
  }
  x = BatchNormalization({.momentum = 0.9, .name = "final_bn"})(x);
  x = Activation("relu", "final_relu")(x);
  x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
  x = Dense({.units = classes, .activation = "softmax", .name = "predictions"})(x);
  return Model(input, x, "deep_preact_resnet");
}

struct Args {
  int blocks = 30;
  int64_t width = 8;
  int epochs = 1;
  int64_t batch_size = 64;
  int64_t train_samples = 2000;
  int64_t test_samples = 500;
  std::string data_dir;  // default: /usr/share/datasets/fashion-mnist
  std::string out = "custom_resnet.h5";
  std::string sample_images;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "custom_resnet: %s\nusage: custom_resnet [--blocks N] [--width N] [--epochs N] "
               "[--batch-size N] [--train-samples N] [--test-samples N] [--data-dir DIR] "
               "[--out FILE.h5] [--sample-images DIR]\n",
               problem.c_str());
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf(
          "A deep pre-activation ResNet built in a loop, trained on Fashion-MNIST. "
          "Options: --blocks N (30 per stage), --width N (8), --epochs N (1), "
          "--batch-size N (64), --train-samples N (2000), --test-samples N (500; 0 = "
          "all), --data-dir DIR, --out FILE.h5, --sample-images DIR\n");
      std::exit(0);
    }
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    try {
      if (flag == "--blocks")
        a.blocks = std::stoi(value);
      else if (flag == "--width")
        a.width = std::stoll(value);
      else if (flag == "--epochs")
        a.epochs = std::stoi(value);
      else if (flag == "--batch-size")
        a.batch_size = std::stoll(value);
      else if (flag == "--train-samples")
        a.train_samples = std::stoll(value);
      else if (flag == "--test-samples")
        a.test_samples = std::stoll(value);
      else if (flag == "--data-dir")
        a.data_dir = value;
      else if (flag == "--out")
        a.out = value;
      else if (flag == "--sample-images")
        a.sample_images = value;
      else
        usage("unknown option " + flag);
    } catch (const std::logic_error&) {
      usage(flag + ": not a number: " + value);
    }
  }
  if (a.blocks < 1 || a.width < 1 || a.epochs < 1 || a.batch_size < 1) {
    usage("--blocks, --width, --epochs and --batch-size must be positive");
  }
  return a;
}

Dataset first(const Dataset& d, int64_t n) { return n > 0 && n < d.size() ? d.slice(0, n) : d; }

// Writes images [0, n) of `d` (uint8 N x H x W x C) as DIR/sample_<i>.png; returns their names.
void write_samples(const Dataset& d, int64_t n, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const Shape s = d.sample_shape();
  const uint8_t* pixels = d.x.data<uint8_t>();
  for (int64_t i = 0; i < std::min(n, d.size()); ++i) {
    const std::string path = (dir / ("sample_" + std::to_string(i) + ".png")).string();
    if (stbi_write_png(path.c_str(), static_cast<int>(s[1]), static_cast<int>(s[0]),
                       static_cast<int>(s[2]), pixels + i * s.numel(),
                       static_cast<int>(s[1] * s[2])) == 0) {
      throw IoError("cannot write " + path);
    }
    const int64_t label = d.y.data<int64_t>()[i];
    std::cout << "wrote " << path << " (" << d.class_names.at(label) << ")\n";
  }
}

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    set_global_seed(1);
    const Dataset train = first(load_fashion_mnist(true, args.data_dir), args.train_samples);
    const Dataset test = first(load_fashion_mnist(false, args.data_dir), args.test_samples);

    Model model = deep_resnet(train.sample_shape(), train.num_classes, args.blocks, args.width);
    int64_t convs = 0;
    for (const auto& layer : model.layers()) convs += layer->class_name() == "Conv2D";
    std::cout << model.name() << ": " << model.layers().size() << " layers, " << convs
              << " convolutions, " << model.count_params() << " parameters\n";

    model.compile({.optimizer = SGD({.common = {.learning_rate = 0.05}, .momentum = 0.9}),
                   .loss = "sparse_categorical_crossentropy",
                   .metrics = {"accuracy"}});
    // Images are uint8; fit rescales them by 1/255 (FitOptions::preprocess, the default).
    // update_bn: after each epoch the BatchNormalization statistics are recomputed over the
    // training data, so a short run evaluates well in inference mode too.
    model.fit(train, {.epochs = args.epochs,
                      .batch_size = args.batch_size,
                      .augment = {.horizontal_flip = true},
                      .seed = 1,
                      .update_bn = true});
    Logs result = model.evaluate(test, {.batch_size = 250, .verbose = 0});
    std::cout << "Test loss: " << result["loss"] << "\nTest accuracy: " << result["accuracy"]
              << "\n";

    // Saved with what predict_image needs to classify image files.
    std::string class_names;
    for (const std::string& c : train.class_names)
      class_names += (class_names.empty() ? "" : "\n") + c;
    save_model(model, args.out,
               {.include_optimizer = false,
                .attributes = {{"class_names", class_names}, {"preprocess", "rescale"}}});
    std::cout << "saved " << args.out << "\n";
    if (!args.sample_images.empty()) write_samples(test, 3, args.sample_images);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "custom_resnet: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
