// Classify image files with a saved model: load the model (Keras .h5, e.g. written by
// signs_resnet50, custom_resnet or `resnet train --out`), read and resize each image to the
// model's input, preprocess as the model was trained, predict in one batch, print the top k
// classes with their names.
//
//   predict_image MODEL.h5 IMAGE... [--top-k 3] [--preprocess rescale|none|tf|torch|caffe]
//
// Class names and preprocessing come from the model file when it stores them (resnet.cpp
// writes them as attributes); otherwise classes print as numbers and images are scaled by 1/255.
#include <resnet/data.h>
#include <resnet/io.h>
#include <resnet/model.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

using namespace resnet;

struct Args {
  std::string model;
  std::vector<std::string> images;
  int top_k = 3;
  std::string preprocess;  // empty: from the model file, else rescale
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "predict_image: %s\nusage: predict_image MODEL.h5 IMAGE... [--top-k K] "
               "[--preprocess rescale|none|tf|torch|caffe]\n",
               problem.c_str());
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("usage: predict_image MODEL.h5 IMAGE... [--top-k K (3)] [--preprocess NAME]\n");
      std::exit(0);
    } else if (arg == "--top-k" || arg == "--preprocess") {
      if (i + 1 >= argc) usage(arg + " needs a value");
      const std::string value = argv[++i];
      if (arg == "--preprocess") {
        a.preprocess = value;
      } else {
        try {
          a.top_k = std::stoi(value);
        } catch (const std::logic_error&) {
          usage("--top-k: not a number: " + value);
        }
        if (a.top_k < 1) usage("--top-k must be positive");
      }
    } else if (arg.rfind("--", 0) == 0) {
      usage("unknown option " + arg);
    } else if (a.model.empty()) {
      a.model = arg;
    } else {
      a.images.push_back(arg);
    }
  }
  if (a.model.empty() || a.images.empty()) usage("give a model file and at least one image");
  return a;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

int main(int argc, char** argv) {
  const Args args = parse_args(argc, argv);
  try {
    // model = keras.models.load_model('model.h5')
    Model model = load_model(args.model, /*compile=*/false);
    const std::map<std::string, std::string> attrs = read_model_attributes(args.model);
    const auto attr = [&](const std::string& key) {
      const auto it = attrs.find(key);
      return it == attrs.end() ? std::string() : it->second;
    };
    const std::vector<std::string> class_names = lines(attr("class_names"));
    std::string pre_name = args.preprocess.empty() ? attr("preprocess") : args.preprocess;
    if (pre_name.empty()) pre_name = "rescale";
    const Preprocess preprocess = Preprocess::from_name(pre_name);

    const Shape in = model.input_shapes().at(0);  // (H, W, C)
    if (in.rank() != 3) throw ConfigError("the model's input is not an image: " + in.str());
    // All images in one batch: (N, H, W, C), resized to the model's input.
    Tensor batch = Tensor::zeros({static_cast<int64_t>(args.images.size()), in[0], in[1], in[2]});
    for (size_t i = 0; i < args.images.size(); ++i) {
      const Tensor image = load_image(args.images[i], in[0], in[1], in[2]).to_f32();
      std::memcpy(batch.f32() + i * in.numel(), image.f32(), sizeof(float) * in.numel());
    }
    preprocess.apply(batch);

    // preds = model.predict(x)
    const Tensor preds = model.predict(batch);
    const int64_t classes = preds.shape()[1];
    std::printf("%s: %s, input %s, preprocess %s\n", args.model.c_str(), model.name().c_str(),
                in.str().c_str(), pre_name.c_str());
    for (size_t i = 0; i < args.images.size(); ++i) {
      const float* p = preds.f32() + i * classes;
      std::vector<int64_t> order(classes);
      std::iota(order.begin(), order.end(), 0);
      const int64_t k = std::min<int64_t>(args.top_k, classes);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int64_t a, int64_t b) { return p[a] > p[b]; });
      std::printf("%s:\n", args.images[i].c_str());
      for (int64_t r = 0; r < k; ++r) {
        const int64_t c = order[r];
        const std::string name = c < static_cast<int64_t>(class_names.size())
                                     ? class_names[c]
                                     : "class " + std::to_string(c);
        std::printf("  %lld. %-20s %.4f\n", static_cast<long long>(r + 1), name.c_str(), p[c]);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "predict_image: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
