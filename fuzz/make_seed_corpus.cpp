// Writes the seed corpus of the fuzz targets, one folder per target, from resnet.cpp's own
// writers:
//   DIR/keras_h5/    Keras .h5 model files (compiled and trained, so they hold training_config and
//                    optimizer_weights; uncompiled; SGD), a save_weights file and a .rnw file
//   DIR/h5_dataset/  SIGNS-style .h5 datasets (uint8 and float32 images, (1, N) and (N,) labels,
//                    variable- and fixed-length class names)
//   DIR/idx/         IDX images + labels, plain and gzip, framed as fuzz_idx.cpp reads them
//   DIR/cifar/       a CIFAR-10 binary batch of 3 records
//   DIR/image/       small PNG, BMP, JPEG and TGA images
//   DIR/keras3/      Keras 3 .keras files written by save_model (compiled with Adam and trained,
//                    and uncompiled)
//   DIR/torch/       PyTorch files: a state_dict written by save_torch_state_dict and the
//                    committed PyTorch-written checkpoints (zip and legacy formats, protocol 4)
//   fuzz_make_seed_corpus DIR
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/hdf5/file.h"
#include "resnet/io.h"
#include "resnet/model.h"
#include "resnet/models.h"

using namespace resnet;
namespace fs = std::filesystem;

namespace {

Model tiny(uint64_t seed) {
  set_global_seed(seed);
  reset_name_counters();
  SymTensor in = Input({6, 6, 2});
  SymTensor x = ZeroPadding2D({.padding = {1, 1, 1, 1}})(in);
  SymTensor a = Conv2D({.filters = 3, .kernel = {3, 3}})(x);
  a = BatchNormalization()(a);
  a = ReLU()(a);
  SymTensor b = Conv2D({.filters = 3, .kernel = {1, 1}, .padding = Padding::Same})(a);
  SymTensor y = Add()({a, b});
  y = MaxPooling2D({.pool_size = {2, 2}})(y);
  y = Flatten()(y);
  y = Dropout({.rate = 0.25})(y);
  y = Dense({.units = 2, .activation = "softmax"})(y);
  return Model(in, y, "seed_model");
}

void keras_h5(const fs::path& dir) {
  fs::create_directories(dir);
  Tensor x = Tensor::full({4, 6, 6, 2}, 0.5f);
  Tensor y({4}, DType::I64);
  for (int i = 0; i < 4; ++i) y.data<int64_t>()[i] = i % 2;
  Model plain = tiny(1);
  save_model(plain, (dir / "uncompiled.h5").string(), {.attributes = {{"preprocess", "rescale"}}});
  Model adam = tiny(2);
  adam.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  adam.train_step(x, y);
  save_model(adam, (dir / "adam.h5").string(),
             {.attributes = {{"zoo_model", "none"}, {"class_names", "a\nb"}, {"epoch", "1"}}});
  Model sgd = tiny(3);
  sgd.compile({.optimizer = SGD({.momentum = 0.9}), .loss = "sparse_categorical_crossentropy"});
  sgd.train_step(x, y);
  save_model(sgd, (dir / "sgd.h5").string());
  save_weights(adam, (dir / "weights.h5").string());
  save_weights(adam, (dir / "weights.rnw").string(),
               {.include_optimizer = true, .attributes = {{"epoch", "1"}}});
}

void h5_dataset(const fs::path& dir) {
  fs::create_directories(dir);
  {
    h5::File f = h5::File::create((dir / "train_signs.h5").string());
    Tensor x({6, 4, 4, 3}, DType::U8);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(i * 5);
    Tensor y({1, 6}, DType::I64);
    for (int64_t i = 0; i < 6; ++i) y.data<int64_t>()[i] = i % 3;
    f.write_array("train_set_x", x);
    f.write_array("train_set_y", y);
    f.write_string_dataset("list_classes", {"zero", "one", "two"}, /*variable_length=*/true);
    f.close();
  }
  {
    h5::File f = h5::File::create((dir / "test_signs.h5").string());
    Tensor x = Tensor::full({3, 2, 2, 1}, 0.25f);
    Tensor y({3}, DType::I64);
    for (int64_t i = 0; i < 3; ++i) y.data<int64_t>()[i] = i % 2;
    f.write_array("test_set_x", x);
    f.write_array("test_set_y", y);
    f.write_string_dataset("list_classes", {"no", "yes"}, /*variable_length=*/false);
    f.close();
  }
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string gzip(const std::string& data, const fs::path& tmp) {
  gzFile g = gzopen(tmp.c_str(), "wb");
  gzwrite(g, data.data(), static_cast<unsigned>(data.size()));
  gzclose(g);
  std::ifstream f(tmp, std::ios::binary);
  std::string out{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  fs::remove(tmp);
  return out;
}

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// fuzz_idx.cpp's framing: u32 little-endian length of the images file, images, labels.
std::string idx_pair(const std::string& images, const std::string& labels) {
  const auto n = static_cast<uint32_t>(images.size());
  std::string out{static_cast<char>(n), static_cast<char>(n >> 8), static_cast<char>(n >> 16),
                  static_cast<char>(n >> 24)};
  return out + images + labels;
}

void idx(const fs::path& dir) {
  fs::create_directories(dir);
  const uint32_t n = 3, rows = 5, cols = 4;
  std::string images = be32(0x803) + be32(n) + be32(rows) + be32(cols);
  for (uint32_t i = 0; i < n * rows * cols; ++i) images.push_back(static_cast<char>(i * 11));
  std::string labels = be32(0x801) + be32(n);
  for (uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<char>(i % 10));
  write(dir / "plain.idx", idx_pair(images, labels));
  write(dir / "gzip.idx", idx_pair(gzip(images, dir / "tmp.gz"), gzip(labels, dir / "tmp.gz")));
}

void cifar(const fs::path& dir) {
  fs::create_directories(dir);
  std::string batch;
  for (int r = 0; r < 3; ++r) {
    batch.push_back(static_cast<char>(r * 3));
    for (int i = 0; i < 3 * 32 * 32; ++i) batch.push_back(static_cast<char>(i * 7 + r));
  }
  write(dir / "data_batch_1.bin", batch);
}

void image(const fs::path& dir) {
  fs::create_directories(dir);
  const int w = 6, h = 4;
  std::vector<unsigned char> rgb(w * h * 3), gray(w * h);
  for (int i = 0; i < w * h * 3; ++i)
    rgb[static_cast<size_t>(i)] = static_cast<unsigned char>(i * 9);
  for (int i = 0; i < w * h; ++i) gray[static_cast<size_t>(i)] = static_cast<unsigned char>(i * 13);
  stbi_write_png((dir / "rgb.png").c_str(), w, h, 3, rgb.data(), w * 3);
  stbi_write_png((dir / "gray.png").c_str(), w, h, 1, gray.data(), w);
  stbi_write_bmp((dir / "rgb.bmp").c_str(), w, h, 3, rgb.data());
  stbi_write_jpg((dir / "rgb.jpg").c_str(), w, h, 3, rgb.data(), 90);
  stbi_write_tga((dir / "rgb.tga").c_str(), w, h, 3, rgb.data());
}

void keras3(const fs::path& dir) {
  fs::create_directories(dir);
  Tensor x = Tensor::full({4, 6, 6, 2}, 0.5f);
  Tensor y({4}, DType::I64);
  for (int i = 0; i < 4; ++i) y.data<int64_t>()[i] = i % 2;
  Model plain = tiny(4);
  save_model(plain, (dir / "uncompiled.keras").string());
  Model adam = tiny(5);
  adam.compile({.optimizer = Adam(), .loss = "sparse_categorical_crossentropy"});
  adam.train_step(x, y);
  save_model(adam, (dir / "adam.keras").string(), {.attributes = {{"preprocess", "rescale"}}});
}

void torch(const fs::path& dir) {
  fs::create_directories(dir);
  reset_name_counters();
  Model m = cifar_resnet(8, {8, 8, 3}, 3);
  save_torch_state_dict(m, (dir / "resnet8.pth").string());
  const fs::path fixtures = fs::path(RESNET_SOURCE_DIR) / "tests/reference/fixtures/torch";
  for (const char* name :
       {"checkpoint_zip.pth", "checkpoint_legacy.pth", "state_dict_protocol4.pth"}) {
    fs::copy_file(fixtures / name, dir / name, fs::copy_options::overwrite_existing);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];
  try {
    keras_h5(dir / "keras_h5");
    h5_dataset(dir / "h5_dataset");
    idx(dir / "idx");
    cifar(dir / "cifar");
    image(dir / "image");
    torch(dir / "torch");
    keras3(dir / "keras3");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_make_seed_corpus: %s\n", e.what());
    return 1;
  }
  std::printf("seed corpus written to %s\n", dir.c_str());
  return 0;
}
