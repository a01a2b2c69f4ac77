// Binary dataset formats: IDX (MNIST, Fashion-MNIST; gzip'd or plain) and CIFAR-10 batches.
#include <fmt/format.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "data/data_util.h"
#include "resnet/data.h"
#include "resnet/error.h"

namespace resnet {

namespace {

using data_detail::checked_numel;

constexpr uint32_t kIdxImages = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr uint32_t kIdxLabels = 0x00000801;  // unsigned bytes, 1 dimension
// Deflate never compresses better than about 1032:1, so a gzip file of c bytes cannot hold more
// than this many times c bytes: a header claiming more is corrupt, and is refused unallocated.
constexpr uint64_t kMaxDeflateRatio = 1100;

// A gzip'd or plain file read through zlib (gzread passes plain files through unchanged).
class GzFile {
 public:
  explicit GzFile(std::string path) : path_(std::move(path)) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path_, ec)) {
      throw IoError(fmt::format("cannot read '{}': no such file", path_));
    }
    file_size_ = std::filesystem::file_size(path_, ec);
    f_ = gzopen(path_.c_str(), "rb");
    if (f_ == nullptr) {
      throw IoError(fmt::format("cannot open '{}': {}", path_, std::strerror(errno)));
    }
  }
  ~GzFile() {
    if (f_ != nullptr) gzclose(f_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads exactly n bytes or throws, naming the file and what was being read.
  void read(void* buf, uint64_t n, const char* what) {
    auto* p = static_cast<uint8_t*>(buf);
    while (n > 0) {
      const unsigned chunk = static_cast<unsigned>(std::min<uint64_t>(n, 1u << 30));
      const int got = gzread(f_, p, chunk);
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(f_, &err);
        throw IoError(fmt::format("'{}': corrupt compressed data while reading the {} ({})", path_,
                                  what, msg ? msg : "zlib error"));
      }
      if (got == 0) {
        int err = 0;
        const char* msg = gzerror(f_, &err);
        throw IoError(fmt::format("'{}': truncated file: it ends inside the {}{}", path_, what,
                                  err != Z_OK && msg ? fmt::format(" ({})", msg) : ""));
      }
      p += got;
      n -= static_cast<uint64_t>(got);
    }
  }

  uint32_t read_be32(const char* what) {
    std::array<uint8_t, 4> b;
    read(b.data(), 4, what);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  }

  // The most uncompressed bytes this file can hold (its size if plain).
  uint64_t max_content() const { return gzdirect(f_) ? file_size_ : file_size_ * kMaxDeflateRatio; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  uint64_t file_size_ = 0;
  gzFile f_ = nullptr;
};

// Reads an IDX header with `magic`; returns its dimensions, checked for sanity.
std::vector<int64_t> read_idx_header(GzFile& f, uint32_t magic, int rank) {
  const uint32_t got = f.read_be32("IDX header");
  if (got != magic) {
    throw IoError(fmt::format("'{}': not an IDX {} file (magic 0x{:08x}, expected 0x{:08x})",
                              f.path(), rank == 1 ? "labels" : "images", got, magic));
  }
  std::vector<int64_t> dims;
  for (int i = 0; i < rank; ++i) dims.push_back(f.read_be32("IDX header"));
  const int64_t numel = checked_numel(dims);
  if (numel < 0) {
    throw IoError(fmt::format("'{}': absurd IDX dimensions {}", f.path(), Shape(dims).str()));
  }
  const uint64_t header = 4 + 4 * static_cast<uint64_t>(rank);
  if (header + static_cast<uint64_t>(numel) > f.max_content()) {
    throw IoError(fmt::format("'{}': truncated file: dimensions {} need {} bytes of data", f.path(),
                              Shape(dims).str(), numel));
  }
  return dims;
}

}  // namespace

Dataset load_idx(const std::string& images_path, const std::string& labels_path) {
  GzFile fx(images_path);
  GzFile fy(labels_path);
  const std::vector<int64_t> xd = read_idx_header(fx, kIdxImages, 3);
  const std::vector<int64_t> yd = read_idx_header(fy, kIdxLabels, 1);
  if (xd[0] != yd[0]) {
    throw IoError(fmt::format("'{}' holds {} images but '{}' holds {} labels", images_path, xd[0],
                              labels_path, yd[0]));
  }
  if (xd[1] <= 0 || xd[2] <= 0) {
    throw IoError(fmt::format("'{}': empty images {}", images_path, Shape(xd).str()));
  }
  Dataset d;
  d.source = images_path;
  d.x = Tensor::empty(Shape{xd[0], xd[1], xd[2], 1}, DType::U8);
  fx.read(d.x.raw(), static_cast<uint64_t>(d.x.numel()), "image data");
  std::vector<uint8_t> labels(static_cast<size_t>(yd[0]));
  fy.read(labels.data(), labels.size(), "label data");
  d.y = Tensor::empty(Shape{yd[0]}, DType::I64);
  int64_t* y = d.y.data<int64_t>();
  for (size_t i = 0; i < labels.size(); ++i) y[i] = labels[i];
  data_detail::finish_dataset(d);
  return d;
}

Dataset load_fashion_mnist(bool train, const std::string& dir) {
  const std::string folder = dir.empty() ? "/usr/share/datasets/fashion-mnist" : dir;
  const std::string prefix = train ? "train" : "t10k";
  // Debian ships the .gz files; a decompressed copy works too.
  auto find = [&](const std::string& stem) {
    const std::filesystem::path base = std::filesystem::path(folder) / (prefix + stem);
    std::error_code ec;
    for (const std::string ext : {".gz", ""}) {
      const std::string p = base.string() + ext;
      if (std::filesystem::is_regular_file(p, ec)) return p;
    }
    throw IoError(fmt::format(
        "Fashion-MNIST: '{}.gz' not found (install Debian's dataset-fashion-mnist, or pass the "
        "folder that holds it)",
        base.string()));
  };
  const std::string images = find("-images-idx3-ubyte");
  const std::string labels = find("-labels-idx1-ubyte");
  Dataset d = load_idx(images, labels);
  d.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  d.num_classes = 10;
  data_detail::finish_dataset(d);
  if (d.num_classes != 10) {
    throw IoError(fmt::format("'{}': Fashion-MNIST labels must lie in [0, 10)", labels));
  }
  return d;
}

Dataset load_cifar10_bin(const std::vector<std::string>& files) {
  constexpr int64_t kSide = 32;
  constexpr int64_t kPlane = kSide * kSide;
  constexpr int64_t kRecord = 1 + 3 * kPlane;
  if (files.empty()) throw IoError("CIFAR-10: no batch files given");
  // Sizes first, so that the whole array is allocated once and only for well-formed files.
  int64_t total = 0;
  for (const auto& path : files) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      throw IoError(fmt::format("cannot read '{}': no such file", path));
    }
    const auto size = static_cast<int64_t>(std::filesystem::file_size(path, ec));
    if (ec || size == 0 || size % kRecord != 0) {
      throw IoError(fmt::format(
          "'{}': not a CIFAR-10 binary batch: {} bytes is not a whole number of {}-byte records",
          path, size, kRecord));
    }
    total += size / kRecord;
    if (checked_numel({total, 3 * kPlane}) < 0) {
      throw IoError(fmt::format("'{}': too many CIFAR-10 records ({})", path, total));
    }
  }
  Dataset d;
  d.source = files.front();
  d.x = Tensor::empty(Shape{total, kSide, kSide, 3}, DType::U8);
  d.y = Tensor::empty(Shape{total}, DType::I64);
  uint8_t* x = static_cast<uint8_t*>(d.x.raw());
  int64_t* y = d.y.data<int64_t>();
  std::vector<uint8_t> record(static_cast<size_t>(kRecord));
  int64_t n = 0;
  for (const auto& path : files) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr)
      throw IoError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
    const int64_t records = static_cast<int64_t>(std::filesystem::file_size(path)) / kRecord;
    for (int64_t r = 0; r < records; ++r, ++n) {
      if (std::fread(record.data(), 1, record.size(), f) != record.size()) {
        std::fclose(f);
        throw IoError(fmt::format("'{}': read failed at record {} (file changed?)", path, r));
      }
      if (record[0] >= 10) {
        std::fclose(f);
        throw IoError(
            fmt::format("'{}': record {} has label {}, outside [0, 10)", path, r, record[0]));
      }
      y[n] = record[0];
      // Planes R, G, B of 32x32 (CHW) -> interleaved HWC.
      uint8_t* dst = x + n * 3 * kPlane;
      for (int64_t p = 0; p < kPlane; ++p) {
        for (int64_t c = 0; c < 3; ++c)
          dst[p * 3 + c] = record[static_cast<size_t>(1 + c * kPlane + p)];
      }
    }
    std::fclose(f);
  }
  d.class_names = {"airplane", "automobile", "bird",  "cat",  "deer",
                   "dog",      "frog",       "horse", "ship", "truck"};
  d.num_classes = 10;
  data_detail::finish_dataset(d);
  return d;
}

}  // namespace resnet
