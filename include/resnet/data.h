// Datasets, preprocessing, augmentation and batching.
//
// A Dataset holds whole arrays in memory: images (N, H, W, C) as uint8 (as stored on disk) or
// float32, labels (N) as int64 class indices, and optional class names. Preprocessing (scaling,
// normalization) and augmentation are applied per batch by the BatchLoader, on background threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "resnet/tensor.h"

namespace resnet {

struct Dataset {
  Tensor x;                              // (N, H, W, C), uint8 or float32
  Tensor y;                              // (N,) int64 class indices
  std::vector<std::string> class_names;  // may be empty
  int64_t num_classes = 0;
  std::string source;  // file or folder it came from, for messages

  int64_t size() const { return x.defined() ? x.shape()[0] : 0; }
  Shape sample_shape() const { return x.shape().drop_front(); }
  // Samples [begin, end) (copies).
  Dataset slice(int64_t begin, int64_t end) const;
  // Samples at the given indices, in that order (copies).
  Dataset take(const std::vector<int64_t>& indices) const;
  // Keras fit(validation_split=v): the LAST fraction, taken before any shuffling:
  // split_at = floor(n * (1 - v)); returns {[0, split_at), [split_at, n)}.
  std::pair<Dataset, Dataset> split_last(double fraction) const;
  // Throws IoError naming `source` unless x and y agree in length, labels lie in
  // [0, num_classes), and x is 4-D.
  void validate() const;
};

// --- Loaders. Each throws IoError naming the file (and the dataset inside it) on missing,
// truncated, corrupt or inconsistent input; sizes are checked before anything is allocated.

struct H5DatasetNames {
  std::string x;        // default: the only dataset matching *_set_x (train_set_x or test_set_x)
  std::string y;        // default: *_set_y
  std::string classes;  // default: list_classes (optional in the file)
};
// SIGNS-style HDF5: images (N, H, W, C) uint8 and labels (N) or (1, N) integers.
Dataset load_h5_dataset(const std::string& path, const H5DatasetNames& names = {});
// IDX files (MNIST, Fashion-MNIST), gzip-compressed or not (detected from the content).
Dataset load_idx(const std::string& images_path, const std::string& labels_path);
// Fashion-MNIST from a folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
// (default: Debian's /usr/share/datasets/fashion-mnist); class names set.
Dataset load_fashion_mnist(bool train, const std::string& dir = "");
// CIFAR-10 binary batches (data_batch_*.bin / test_batch.bin): 1 label byte + 3072 pixel bytes
// (CHW) per record; several files are concatenated.
Dataset load_cifar10_bin(const std::vector<std::string>& files);
// One subfolder per class (sorted names = class names), JPEG/PNG/BMP images, resized
// (bilinear) to height x width, `channels` 1 or 3.
Dataset load_image_folder(const std::string& dir, int64_t height, int64_t width,
                          int64_t channels = 3);
// One image file as a (1, height, width, channels) uint8 tensor (resized); height/width 0 keep
// the file's size.
Tensor load_image(const std::string& path, int64_t height = 0, int64_t width = 0,
                  int64_t channels = 3);
// torchvision's evaluation transform, Resize(shorter) then CenterCrop((height, width)): the image
// resized (bilinear) so that its shorter side is `shorter` pixels (the longer one scaled and
// truncated, as torchvision does), then its central height x width pixels (the top-left corner
// at round((size - crop) / 2), half to even). `shorter` must be at least max(height, width).
Tensor load_image_center_crop(const std::string& path, int64_t shorter, int64_t height,
                              int64_t width, int64_t channels = 3);

// --- Preprocessing: uint8/float pixel values -> network input (float32).
struct Preprocess {
  enum class Mode {
    None,     // values as they are
    Rescale,  // x * scale (Keras rescale=1/255)
    MeanStd,  // (x * scale - mean[c]) / std[c]
    Caffe,    // keras preprocess_input mode 'caffe': RGB->BGR, minus ImageNet BGR means
    TF,       // mode 'tf': x / 127.5 - 1
    Torch,    // mode 'torch': x / 255, then ImageNet mean/std
  };
  Mode mode = Mode::Rescale;
  float scale = 1.0f / 255.0f;
  std::vector<float> mean;  // per channel (MeanStd)
  std::vector<float> std;   // per channel (MeanStd)
  // "none", "rescale", "caffe", "tf", "torch"; throws ConfigError.
  static Preprocess from_name(const std::string& name);
  // In place on a float (N, H, W, C) batch.
  void apply(Tensor& batch) const;
};

// (N,) int64 labels -> (N, classes) float32 one-hot. Throws ConfigError on labels out of range.
Tensor one_hot(const Tensor& labels, int64_t classes);

// --- Augmentation, as keras ImageDataGenerator (plus random crop with padding).
enum class FillMode { Nearest, Constant, Reflect, Wrap };
struct AugmentOptions {
  double rotation_range = 0.0;      // degrees, uniform in (-r, r)
  double width_shift_range = 0.0;   // < 1: fraction of the width; >= 1: pixels
  double height_shift_range = 0.0;  // same for the height
  double zoom_range = 0.0;          // zoom factors uniform in [1 - z, 1 + z], x and y independent
  bool horizontal_flip = false;     // with probability 0.5
  bool vertical_flip = false;
  FillMode fill_mode = FillMode::Nearest;
  float cval = 0.0f;                // fill value for FillMode::Constant
  int64_t random_crop_padding = 0;  // pad by p (zeros) then crop back at a random offset
  bool enabled() const;
};
// Augments one float image (H, W, C) from `src` into `dst` (same size), drawing from `rng`.
void augment_image(const float* src, float* dst, int64_t h, int64_t w, int64_t c,
                   const AugmentOptions& o, Rng& rng);

// --- Batching with background workers. Produces float32 batches: x (B, H, W, C) preprocessed
// and augmented, y (B,) int64 labels, in the order given. Deterministic for a given seed:
// sample i of epoch e is augmented from a generator seeded by (seed, e, i), whatever the number of
// worker threads.
struct Batch {
  Tensor x;
  Tensor y;
};
class BatchLoader {
 public:
  BatchLoader(const Dataset& data, int64_t batch_size, Preprocess pre, AugmentOptions aug,
              uint64_t seed, int workers = 2, int prefetch = 4);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;
  // Starts an epoch over `order` (indices into the dataset; the last batch may be partial).
  void start_epoch(std::vector<int64_t> order, int epoch);
  int64_t batches_in_epoch() const;
  // The next batch, waiting for the workers if needed; false after the last one. Errors raised
  // by a worker are rethrown here.
  bool next(Batch& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace resnet
