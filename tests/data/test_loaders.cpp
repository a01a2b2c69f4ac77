// Dataset loaders on real data (SIGNS, Fashion-MNIST) and on small or corrupt files written here.
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <filesystem>

#include "data_test_util.h"
#include "resnet/data.h"
#include "resnet/error.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;
using testing::expect_io_error;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

std::string signs_file(const std::string& name) { return testing::signs_dir() + "/" + name; }

#define SKIP_WITHOUT_SIGNS()                                                                \
  if (!fs::exists(signs_file("test_signs.h5"))) {                                           \
    GTEST_SKIP() << "SIGNS not found in '" << testing::signs_dir()                          \
                 << "' (set RESNET_SIGNS_DIR to the folder holding {train,test}_signs.h5)"; \
  }

// --- SIGNS (HDF5)

TEST(DataSigns, LoadsTrainAndTest) {
  SKIP_WITHOUT_SIGNS();
  const Dataset train = load_h5_dataset(signs_file("train_signs.h5"));
  EXPECT_EQ(train.x.shape(), (Shape{1080, 64, 64, 3}));
  EXPECT_EQ(train.x.dtype(), DType::U8);
  EXPECT_EQ(train.y.shape(), (Shape{1080}));
  EXPECT_EQ(train.num_classes, 6);
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4", "5"}));
  std::vector<int64_t> counts(6, 0);
  for (int64_t label : train.y.span<int64_t>()) {
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 6);
    counts[static_cast<size_t>(label)]++;
  }
  for (int64_t c : counts) EXPECT_GT(c, 0);
  EXPECT_NO_THROW(train.validate());

  const Dataset test = load_h5_dataset(signs_file("test_signs.h5"));
  EXPECT_EQ(test.x.shape(), (Shape{120, 64, 64, 3}));
  EXPECT_EQ(test.size(), 120);
  EXPECT_EQ(test.num_classes, 6);
  EXPECT_EQ(test.source, signs_file("test_signs.h5"));
  // Not a blank image: the pixels vary.
  const auto px = test.x.span<uint8_t>();
  EXPECT_NE(*std::min_element(px.begin(), px.end()), *std::max_element(px.begin(), px.end()));
}

TEST(DataSigns, ExplicitNamesAndErrorsNameFileAndDataset) {
  SKIP_WITHOUT_SIGNS();
  const std::string path = signs_file("test_signs.h5");
  const Dataset d = load_h5_dataset(path, {.x = "test_set_x", .y = "test_set_y"});
  EXPECT_EQ(d.size(), 120);
  expect_io_error([&] { load_h5_dataset(path, {.x = "nope_x", .y = "test_set_y"}); },
                  {path, "nope_x", "no such dataset"});
  expect_io_error([&] { load_h5_dataset(path, {.x = "a/b/c", .y = "test_set_y"}); },
                  {path, "a/b/c"});
  // Labels that do not match the images in length.
  expect_io_error([&] { load_h5_dataset(path, {.x = "test_set_x", .y = "list_classes"}); },
                  {path, "test_set_x", "list_classes", "120", "6"});
  // Images given where labels are expected.
  expect_io_error([&] { load_h5_dataset(path, {.x = "test_set_x", .y = "test_set_x"}); },
                  {path, "test_set_x"});
  expect_io_error([&] { load_h5_dataset(path, {.classes = "no_classes"}); }, {path, "no_classes"});
}

TEST(DataSigns, TruncatedFileThrowsNamingIt) {
  SKIP_WITHOUT_SIGNS();
  TempDir tmp;
  std::vector<uint8_t> bytes = read_bytes(signs_file("test_signs.h5"));
  for (size_t keep : {bytes.size() / 2, bytes.size() - 100, size_t{1000}, size_t{10}}) {
    const std::string path = tmp.file("cut_" + std::to_string(keep) + ".h5");
    write_bytes(path, std::vector<uint8_t>(bytes.begin(), bytes.begin() + keep));
    SCOPED_TRACE(keep);
    expect_io_error([&] { load_h5_dataset(path); }, {path});
  }
}

TEST(DataH5, MissingAndNonHdf5FilesThrowNamingThem) {
  TempDir tmp;
  expect_io_error([&] { load_h5_dataset(tmp.file("absent.h5")); }, {"absent.h5"});
  write_bytes(tmp.file("text.h5"), {'h', 'e', 'l', 'l', 'o'});
  expect_io_error([&] { load_h5_dataset(tmp.file("text.h5")); }, {"text.h5", "not an HDF5 file"});
}

// --- IDX (MNIST format)

std::vector<uint8_t> be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

std::vector<uint8_t> idx_images(uint32_t n, uint32_t rows, uint32_t cols, uint32_t magic = 0x803) {
  std::vector<uint8_t> out = be32(magic);
  for (uint32_t d : {n, rows, cols}) {
    auto b = be32(d);
    out.insert(out.end(), b.begin(), b.end());
  }
  for (uint32_t i = 0; i < n * rows * cols; ++i) out.push_back(static_cast<uint8_t>(i * 7));
  return out;
}

std::vector<uint8_t> idx_labels(uint32_t n, uint32_t classes = 10) {
  std::vector<uint8_t> out = be32(0x801);
  auto b = be32(n);
  out.insert(out.end(), b.begin(), b.end());
  for (uint32_t i = 0; i < n; ++i) out.push_back(static_cast<uint8_t>(i % classes));
  return out;
}

void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

TEST(DataIdx, LoadsPlainAndGzipFiles) {
  TempDir tmp;
  write_bytes(tmp.file("x"), idx_images(5, 3, 4));
  write_bytes(tmp.file("y"), idx_labels(5, 3));
  write_gz(tmp.file("x.gz"), idx_images(5, 3, 4));
  write_gz(tmp.file("y.gz"), idx_labels(5, 3));
  const Dataset a = load_idx(tmp.file("x"), tmp.file("y"));
  const Dataset b = load_idx(tmp.file("x.gz"), tmp.file("y.gz"));
  for (const Dataset* d : {&a, &b}) {
    EXPECT_EQ(d->x.shape(), (Shape{5, 3, 4, 1}));
    EXPECT_EQ(d->x.data<uint8_t>()[13], static_cast<uint8_t>(13 * 7));
    EXPECT_EQ(d->y.data<int64_t>()[4], 1);
    EXPECT_EQ(d->num_classes, 3);
  }
}

TEST(DataIdx, CorruptFilesThrowNamingThem) {
  TempDir tmp;
  write_bytes(tmp.file("y"), idx_labels(5));
  // Truncated: the data stops short of what the header claims.
  std::vector<uint8_t> x = idx_images(5, 3, 4);
  x.resize(x.size() - 7);
  write_bytes(tmp.file("short-x"), x);
  expect_io_error([&] { load_idx(tmp.file("short-x"), tmp.file("y")); }, {"short-x", "truncated"});
  // A header cut inside the dimensions.
  write_bytes(tmp.file("header-x"), std::vector<uint8_t>(x.begin(), x.begin() + 6));
  expect_io_error([&] { load_idx(tmp.file("header-x"), tmp.file("y")); }, {"header-x"});
  // Wrong magic (a labels file given as images).
  expect_io_error([&] { load_idx(tmp.file("y"), tmp.file("y")); }, {"/y", "magic"});
  write_bytes(tmp.file("magic-x"), idx_images(5, 3, 4, 0x0D03));
  expect_io_error([&] { load_idx(tmp.file("magic-x"), tmp.file("y")); }, {"magic-x", "magic"});
  // Counts that disagree.
  write_bytes(tmp.file("x6"), idx_images(6, 3, 4));
  expect_io_error([&] { load_idx(tmp.file("x6"), tmp.file("y")); }, {"x6", "6 images", "5 labels"});
  // An absurd header in a tiny file is refused before allocating.
  std::vector<uint8_t> huge = idx_images(0, 1, 1);
  auto dims = be32(60000);
  std::copy(dims.begin(), dims.end(), huge.begin() + 4);
  std::copy(dims.begin(), dims.end(), huge.begin() + 8);
  std::copy(dims.begin(), dims.end(), huge.begin() + 12);
  write_bytes(tmp.file("huge-x"), huge);
  expect_io_error([&] { load_idx(tmp.file("huge-x"), tmp.file("y")); }, {"huge-x"});
  // A plausible header (60000 x 28 x 28) in a tiny plain file: truncated, found before reading.
  auto side = be32(28);
  std::copy(side.begin(), side.end(), huge.begin() + 8);
  std::copy(side.begin(), side.end(), huge.begin() + 12);
  write_bytes(tmp.file("claims-x"), huge);
  expect_io_error([&] { load_idx(tmp.file("claims-x"), tmp.file("y")); },
                  {"claims-x", "truncated"});
}

TEST(DataIdx, GzipCutInHalfThrowsNamingIt) {
  TempDir tmp;
  write_gz(tmp.file("x.gz"), idx_images(200, 28, 28));
  write_gz(tmp.file("y.gz"), idx_labels(200));
  ASSERT_NO_THROW(load_idx(tmp.file("x.gz"), tmp.file("y.gz")));
  std::vector<uint8_t> gz = read_bytes(tmp.file("x.gz"));
  gz.resize(gz.size() / 2);
  write_bytes(tmp.file("half.gz"), gz);
  expect_io_error([&] { load_idx(tmp.file("half.gz"), tmp.file("y.gz")); }, {"half.gz"});
  expect_io_error([&] { load_idx(tmp.file("absent.gz"), tmp.file("y.gz")); }, {"absent.gz"});
}

TEST(DataFashionMnist, LoadsFromDebianPackage) {
  if (!fs::exists(std::string(kFashionDir) + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST not found in " << kFashionDir
                 << " (apt install dataset-fashion-mnist)";
  }
  const Dataset test = load_fashion_mnist(false);
  EXPECT_EQ(test.x.shape(), (Shape{10000, 28, 28, 1}));
  EXPECT_EQ(test.num_classes, 10);
  ASSERT_EQ(test.class_names.size(), 10u);
  EXPECT_EQ(test.class_names[0], "T-shirt/top");
  EXPECT_EQ(test.class_names[9], "Ankle boot");
  // The first t10k label is 9 (an ankle boot), as in the original distribution.
  EXPECT_EQ(test.y.data<int64_t>()[0], 9);
  const Dataset train = load_fashion_mnist(true);
  EXPECT_EQ(train.x.shape(), (Shape{60000, 28, 28, 1}));
  EXPECT_EQ(train.y.shape(), (Shape{60000}));
  std::vector<int64_t> counts(10, 0);
  for (int64_t l : train.y.span<int64_t>()) counts[static_cast<size_t>(l)]++;
  for (int64_t c : counts) EXPECT_EQ(c, 6000);
}

TEST(DataFashionMnist, MissingFolderNamesTheFile) {
  TempDir tmp;
  expect_io_error([&] { load_fashion_mnist(true, tmp.path().string()); },
                  {"train-images-idx3-ubyte.gz", "dataset-fashion-mnist"});
}

// --- CIFAR-10 binary

TEST(DataCifar, ConvertsPlanesToHwcAndChecksSize) {
  TempDir tmp;
  std::vector<uint8_t> bytes;
  for (int r = 0; r < 2; ++r) {
    bytes.push_back(static_cast<uint8_t>(r == 0 ? 3 : 9));
    for (int c = 0; c < 3; ++c) {
      for (int p = 0; p < 1024; ++p) bytes.push_back(static_cast<uint8_t>(c * 80 + p % 50 + r));
    }
  }
  write_bytes(tmp.file("data_batch_1.bin"), bytes);
  write_bytes(tmp.file("data_batch_2.bin"),
              std::vector<uint8_t>(bytes.begin(), bytes.begin() + 3073));
  const Dataset d = load_cifar10_bin({tmp.file("data_batch_1.bin"), tmp.file("data_batch_2.bin")});
  ASSERT_EQ(d.x.shape(), (Shape{3, 32, 32, 3}));
  EXPECT_EQ(d.y.data<int64_t>()[0], 3);
  EXPECT_EQ(d.y.data<int64_t>()[1], 9);
  EXPECT_EQ(d.y.data<int64_t>()[2], 3);
  EXPECT_EQ(d.class_names[0], "airplane");
  EXPECT_EQ(d.class_names[9], "truck");
  // Sample 1, row 1, column 3: plane position 35; channels R, G, B.
  const uint8_t* px = d.x.data<uint8_t>() + (1 * 1024 + 35) * 3;
  EXPECT_EQ(px[0], 0 * 80 + 35 + 1);
  EXPECT_EQ(px[1], 1 * 80 + 35 + 1);
  EXPECT_EQ(px[2], 2 * 80 + 35 + 1);

  bytes.pop_back();
  write_bytes(tmp.file("bad.bin"), bytes);
  expect_io_error(
      [&] {
        load_cifar10_bin({tmp.file("data_batch_1.bin"), tmp.file("bad.bin")});
      },
      {"bad.bin", "3073"});
  bytes.push_back(0);
  bytes[0] = 10;  // label out of range
  write_bytes(tmp.file("label.bin"), bytes);
  expect_io_error([&] { load_cifar10_bin({tmp.file("label.bin")}); }, {"label.bin", "label 10"});
}

// --- Image folders (stb)

// A w x h RGB image whose pixel (x, y) is (10 x + tag, 10 y, tag).
std::vector<uint8_t> test_image(int w, int h, int tag) {
  std::vector<uint8_t> px;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      px.push_back(static_cast<uint8_t>(10 * x + tag));
      px.push_back(static_cast<uint8_t>(10 * y));
      px.push_back(static_cast<uint8_t>(tag));
    }
  }
  return px;
}

void write_png(const std::string& path, int w, int h, int tag) {
  fs::create_directories(fs::path(path).parent_path());
  const std::vector<uint8_t> px = test_image(w, h, tag);
  ASSERT_NE(stbi_write_png(path.c_str(), w, h, 3, px.data(), w * 3), 0) << path;
}

// torchvision's Resize(shorter) + CenterCrop: the resize keeps the aspect ratio (the longer side
// truncated), the crop is the centre, its corner rounded half to even.
TEST(DataImage, CenterCropAfterResizingTheShorterSide) {
  TempDir tmp;
  const std::string path = (tmp.path() / "wide.png").string();
  write_png(path, 30, 12, 5);  // 12 rows, 30 columns
  // Shorter side 12 -> 16: 40 columns (30 * 16 / 12). Crop 10x10: top (16 - 10) / 2 = 3, left
  // (40 - 10) / 2 = 15.
  const Tensor crop = load_image_center_crop(path, 16, 10, 10);
  ASSERT_EQ(crop.shape(), (Shape{1, 10, 10, 3}));
  const Tensor full = load_image(path, 16, 40);
  for (int64_t y = 0; y < 10; ++y)
    for (int64_t x = 0; x < 10; ++x)
      for (int64_t c = 0; c < 3; ++c)
        ASSERT_EQ(crop.data<uint8_t>()[(y * 10 + x) * 3 + c],
                  full.data<uint8_t>()[((y + 3) * 40 + x + 15) * 3 + c])
            << y << "," << x;
  // 13 -> 16 rows of a tall image (13 wide, 31 high -> 16 x 38): the crop's top is
  // round((38 - 11) / 2) = round(13.5) = 14 (half to even), left round(2.5) = 2.
  const std::string tall = (tmp.path() / "tall.png").string();
  write_png(tall, 13, 31, 1);
  const Tensor c2 = load_image_center_crop(tall, 16, 11, 11);
  const Tensor f2 = load_image(tall, 38, 16);
  for (int64_t y = 0; y < 11; ++y)
    for (int64_t x = 0; x < 11; ++x)
      ASSERT_EQ(c2.data<uint8_t>()[(y * 11 + x) * 3 + 1],
                f2.data<uint8_t>()[((y + 14) * 16 + x + 2) * 3 + 1]);
  EXPECT_THROW(load_image_center_crop(path, 8, 10, 10), ConfigError);
}

TEST(DataImageFolder, SortedSubfoldersAreClassesAndNonImagesAreSkipped) {
  TempDir tmp;
  const fs::path root = tmp.path() / "images";
  write_png((root / "cats" / "b.png").string(), 6, 4, 2);
  write_png((root / "cats" / "a.png").string(), 6, 4, 1);
  write_png((root / "ants" / "z.PNG").string(), 6, 4, 3);
  write_bytes((root / "cats" / "notes.txt").string(), {'h', 'i'});
  write_bytes((root / "readme.md").string(), {'h', 'i'});
  fs::create_directories(root / "dogs");  // a class with no images still counts

  const Dataset d = load_image_folder(root.string(), 4, 6);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"ants", "cats", "dogs"}));
  EXPECT_EQ(d.num_classes, 3);
  ASSERT_EQ(d.x.shape(), (Shape{3, 4, 6, 3}));
  EXPECT_EQ(d.y.to_vector(), (std::vector<float>{0, 1, 1}));
  // Same size: pixels exact. Sample 1 is cats/a.png (tag 1); pixel (x=2, y=3).
  const std::vector<uint8_t> want = test_image(6, 4, 1);
  const uint8_t* got = d.x.data<uint8_t>() + 1 * 72;
  EXPECT_TRUE(std::equal(want.begin(), want.end(), got));

  const Dataset small = load_image_folder(root.string(), 2, 3, 1);
  EXPECT_EQ(small.x.shape(), (Shape{3, 2, 3, 1}));

  const Tensor one = load_image((root / "ants" / "z.PNG").string());
  EXPECT_EQ(one.shape(), (Shape{1, 4, 6, 3}));
  EXPECT_EQ(one.data<uint8_t>()[2], 3);
  EXPECT_EQ(load_image((root / "ants" / "z.PNG").string(), 8, 12).shape(), (Shape{1, 8, 12, 3}));

  // A file with an image name that is not an image.
  write_bytes((root / "cats" / "broken.jpg").string(), {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i'});
  expect_io_error([&] { load_image_folder(root.string(), 4, 6); }, {"broken.jpg"});
  expect_io_error([&] { load_image((root / "cats" / "broken.jpg").string()); }, {"broken.jpg"});
  expect_io_error([&] { load_image((root / "cats" / "missing.png").string()); }, {"missing.png"});
  expect_io_error([&] { load_image_folder((root / "dogs").string(), 4, 6); }, {"dogs"});
}

TEST(DataImageFolder, ResizeIsBilinearWithAntialiasingAtAnySizeRatio) {
  TempDir tmp;
  // The image is 10*x + tag in channel 0 and 10*y in channel 1: linear ramps.
  const std::string path = (tmp.path() / "ramp.png").string();
  write_png(path, 8, 4, 0);
  // Halving: the triangle widens to 2 input pixels each side (antialiasing, as PIL's BILINEAR):
  // output x=1 (center 3) weighs inputs 1..4 by 1/4, 3/4, 3/4, 1/4 -> 25; at the edges the taps
  // outside the image are dropped and the rest renormalized: x=0 -> (0*3 + 10*3 + 20) / 7 = 7.14.
  const Tensor half = load_image(path, 2, 4);
  ASSERT_EQ(half.shape(), (Shape{1, 2, 4, 3}));
  const int want_x[] = {7, 25, 45, 63};
  for (int x = 0; x < 4; ++x) EXPECT_EQ(half.data<uint8_t>()[x * 3], want_x[x]) << x;
  EXPECT_EQ(half.data<uint8_t>()[1], 7);  // rows: the same weights on 0, 10, 20, 30
  EXPECT_EQ(half.data<uint8_t>()[4 * 3 + 1], 23);
  // Enlarging interpolates: output x=1 of 16 has center 0.75 in input pixels (half-pixel
  // convention), between inputs 0 (0) and 1 (10) with weights 0.75/0.25 -> 2.5 -> 3 (rounded).
  const Tensor twice = load_image(path, 4, 16);
  EXPECT_EQ(twice.data<uint8_t>()[1 * 3], 3);
  EXPECT_EQ(twice.data<uint8_t>()[0], 0);  // the edge clamps
  // Awkward ratios that made stb_image_resize abort (7 -> 5 wide, 1 pixel, 1 -> 64) work, and a
  // constant channel stays constant.
  const std::string odd = (tmp.path() / "odd.png").string();
  write_png(odd, 7, 3, 9);
  for (auto [h, w] : {std::pair<int64_t, int64_t>{3, 5}, {1, 1}, {64, 64}, {2, 13}}) {
    const Tensor t = load_image(odd, h, w);
    ASSERT_EQ(t.shape(), (Shape{1, h, w, 3}));
    for (int64_t i = 0; i < h * w; ++i) EXPECT_EQ(t.data<uint8_t>()[i * 3 + 2], 9) << h << "x" << w;
  }
}

}  // namespace
}  // namespace resnet
