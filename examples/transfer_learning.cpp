// Transfer learning, as the second part of the tutorial does it in Keras: a ResNet-50 backbone
// without its top (keras.applications layout and layer names), optionally with pretrained
// weights loaded by name, frozen; a new head (GlobalAveragePooling2D, Dropout(0.7), Dense);
// training with data augmentation and early stopping; then optionally fine-tuning the last stage
// at a lower learning rate.
//
//   transfer_learning [--weights FILE.h5] [--epochs 5] [--fine-tune-epochs 0] [--batch-size 32]
//                     [--train-samples 2000] [--test-samples 500] [--data-dir DIR] [--out FILE.h5]
//
// --weights: Keras's resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5, or any model or
// weights file with these layer names (e.g. one written by --out); layers are matched by name and
// layers absent from the file (the new head) keep their initial values.
// The data: Fashion-MNIST (Debian's dataset-fashion-mnist), padded to 32x32 and repeated over
// three channels, since ImageNet backbones take RGB images of at least 32x32.
//
// The library does the model part in one call too: transfer_model(TransferOptions) in
// <resnet/io.h> (what `resnet finetune` uses) takes a zoo model without its top, loads weights by
// name, adds the same head and freezes the base. This program writes the steps out instead.
#include <resnet/data.h>
#include <resnet/io.h>
#include <resnet/layers.h>
#include <resnet/model.h>
#include <resnet/models.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

using namespace resnet;

// keras.applications.ResNet50(include_top=False) on `inputs`: the stem, then four stacks of the
// zoo's bottleneck blocks (models.h), with Keras's layer names (conv1_conv, conv2_block1_1_conv,
// ..., conv5_block3_out), so Keras weight files load by name.
SymTensor resnet50_backbone(const SymTensor& inputs) {
  SymTensor x = ZeroPadding2D({.padding = {3, 3, 3, 3}, .name = "conv1_pad"})(inputs);
  x = Conv2D({.filters = 64, .kernel = {7, 7}, .strides = {2, 2}, .name = "conv1_conv"})(x);
  x = BatchNormalization({.axis = 3, .epsilon = 1.001e-5, .name = "conv1_bn"})(x);
  x = Activation("relu", "conv1_relu")(x);
  x = ZeroPadding2D({.padding = {1, 1, 1, 1}, .name = "pool1_pad"})(x);
  x = MaxPooling2D({.pool_size = {3, 3}, .strides = {2, 2}, .name = "pool1_pool"})(x);
  const int64_t filters[] = {64, 128, 256, 512};
  const int blocks[] = {3, 4, 6, 3};
  for (int stage = 0; stage < 4; ++stage) {
    const std::string name = "conv" + std::to_string(stage + 2);
    x = bottleneck_block(x, filters[stage], 3, stage == 0 ? 1 : 2, true, name + "_block1");
    for (int b = 2; b <= blocks[stage]; ++b) {
      x = bottleneck_block(x, filters[stage], 3, 1, false, name + "_block" + std::to_string(b));
    }
  }
  return x;
}

struct Args {
  std::string weights;
  int epochs = 5;
  int fine_tune_epochs = 0;
  int64_t batch_size = 32;
  int64_t train_samples = 2000;
  int64_t test_samples = 500;
  std::string data_dir;
  std::string out;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "transfer_learning: %s\nusage: transfer_learning [--weights FILE.h5] [--epochs N] "
               "[--fine-tune-epochs N] [--batch-size N] [--train-samples N] [--test-samples N] "
               "[--data-dir DIR] [--out FILE.h5]\n",
               problem.c_str());
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf(
          "Transfer learning with a frozen ResNet-50 backbone on Fashion-MNIST. Options: "
          "--weights FILE.h5, --epochs N (5), --fine-tune-epochs N (0), --batch-size N "
          "(32), --train-samples N (2000), --test-samples N (500; 0 = all), "
          "--data-dir DIR, --out FILE.h5\n");
      std::exit(0);
    }
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    try {
      if (flag == "--weights")
        a.weights = value;
      else if (flag == "--epochs")
        a.epochs = std::stoi(value);
      else if (flag == "--fine-tune-epochs")
        a.fine_tune_epochs = std::stoi(value);
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
      else
        usage("unknown option " + flag);
    } catch (const std::logic_error&) {
      usage(flag + ": not a number: " + value);
    }
  }
  if (a.epochs < 1 || a.fine_tune_epochs < 0 || a.batch_size < 1) {
    usage("--epochs and --batch-size must be positive, --fine-tune-epochs not negative");
  }
  return a;
}

// The first n samples, 28x28 gray -> 32x32 RGB (zero border of 2 pixels, gray copied to R, G, B).
Dataset to_rgb32(const Dataset& d, int64_t n) {
  Dataset out = n > 0 && n < d.size() ? d.slice(0, n) : d;
  const Shape s = out.sample_shape();  // (28, 28, 1)
  const int64_t count = out.size(), pad = 2, side = s[0] + 2 * pad;
  Tensor rgb = Tensor::zeros({count, side, side, 3}, DType::U8);
  const uint8_t* src = out.x.data<uint8_t>();
  uint8_t* dst = rgb.data<uint8_t>();
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t r = 0; r < s[0]; ++r) {
      for (int64_t c = 0; c < s[1]; ++c) {
        const uint8_t v = src[(i * s[0] + r) * s[1] + c];
        uint8_t* px = dst + ((i * side + r + pad) * side + c + pad) * 3;
        px[0] = px[1] = px[2] = v;
      }
    }
  }
  out.x = rgb;
  return out;
}

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    set_global_seed(7);
    const Dataset train = to_rgb32(load_fashion_mnist(true, args.data_dir), args.train_samples);
    const Dataset test = to_rgb32(load_fashion_mnist(false, args.data_dir), args.test_samples);

    // base_model = ResNet50(input_shape=IMG_SHAPE, include_top=False, weights=...)
    // inputs = Input(shape=IMG_SHAPE); x = base_model(inputs, training=False)
    SymTensor inputs = Input(train.sample_shape());
    SymTensor x = resnet50_backbone(inputs);
    // The new head.
    x = GlobalAveragePooling2D({.name = "avg_pool"})(x);
    x = Dropout({.rate = 0.7, .name = "top_dropout"})(x);
    SymTensor outputs =
        Dense({.units = train.num_classes, .activation = "softmax", .name = "predictions"})(x);
    Model model(inputs, outputs, "resnet50_transfer");

    if (!args.weights.empty()) {
      // base_model.load_weights(path, by_name=True)
      LoadWeightsReport report;
      load_weights(model, args.weights,
                   {.by_name = true, .skip_mismatch = true, .report = &report});
      std::cout << "loaded the weights of " << report.loaded.size() << " layers by name from "
                << args.weights << " (" << report.missing.size() << " not in the file, "
                << report.skipped.size() << " skipped for a different shape)\n";
    }
    // base_model.trainable = False: every layer up to the backbone's last one.
    model.freeze_until("conv5_block3_out");
    std::cout << model.name() << ": " << model.layers().size() << " layers, "
              << model.count_trainable_params() << " trainable of " << model.count_params()
              << " parameters\n";

    // ImageNet backbones expect keras.applications.resnet50.preprocess_input ('caffe').
    const Preprocess preprocess = Preprocess::from_name("caffe");
    FitOptions fit{.epochs = args.epochs,
                   .batch_size = args.batch_size,
                   .validation_split = 0.2,
                   .callbacks = {EarlyStopping(
                       {.monitor = "val_accuracy", .patience = 2, .restore_best_weights = true})},
                   .preprocess = preprocess,
                   // RandomFlip('horizontal'), RandomRotation, RandomZoom
                   .augment = {.rotation_range = 10, .zoom_range = 0.1, .horizontal_flip = true},
                   .seed = 7};
    model.compile({.optimizer = Adam({.common = {.learning_rate = 1e-3}}),
                   .loss = "sparse_categorical_crossentropy",
                   .metrics = {"accuracy"}});
    model.fit(train, fit);

    if (args.fine_tune_epochs > 0) {
      // Fine-tuning: unfreeze the last stage (conv5), recompile with a 10x lower rate.
      bool after = false;
      for (const auto& layer : model.layers()) {
        if (after) layer->set_trainable(true);
        after = after || layer->name() == "conv4_block6_out";
      }
      model.compile({.optimizer = Adam({.common = {.learning_rate = 1e-4}}),
                     .loss = "sparse_categorical_crossentropy",
                     .metrics = {"accuracy"}});
      std::cout << "fine-tuning conv5: " << model.count_trainable_params()
                << " trainable parameters\n";
      fit.epochs = args.epochs + args.fine_tune_epochs;
      fit.initial_epoch = args.epochs;
      model.fit(train, fit);
    }

    const Logs result = model.evaluate(test, {.verbose = 0, .preprocess = preprocess});
    std::cout << "Test loss: " << result.at("loss") << "\nTest accuracy: " << result.at("accuracy")
              << "\n";
    if (!args.out.empty()) {
      save_model(model, args.out, {.include_optimizer = false});
      std::cout << "saved " << args.out << "\n";
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "transfer_learning: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
