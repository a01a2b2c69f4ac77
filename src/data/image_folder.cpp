// Image files through stb_image (decode), resized with our own antialiased bilinear filter.
#include <fmt/format.h>
#include <stb/stb_image.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>
#include <vector>

#include "data/data_util.h"
#include "resnet/data.h"
#include "resnet/error.h"

namespace resnet {

namespace {

namespace fs = std::filesystem;

// Extensions stb_image decodes; anything else in a class folder (README, .DS_Store) is skipped.
bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  for (const char* e : {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga", ".ppm", ".pgm", ".pnm",
                        ".psd", ".hdr", ".pic"}) {
    if (ext == e) return true;
  }
  return false;
}

void check_channels(int64_t channels, const std::string& path) {
  if (channels < 1 || channels > 4) {
    throw ConfigError(
        fmt::format("'{}': {} channels requested (1 to 4 supported)", path, channels));
  }
}

// Per output index: the first input index and the normalized weights of the triangle filter.
struct Taps {
  std::vector<int64_t> first;
  std::vector<int64_t> count;
  std::vector<float> weights;  // `support_taps` per output index
  int64_t stride = 0;
};

// Bilinear (triangle) filter from `in` to `out` samples with pixel centers aligned (half-pixel
// convention); when shrinking, the filter widens by the scale (antialiasing, as PIL's BILINEAR).
// Edges clamp: taps outside the image are dropped and the rest renormalized.
Taps triangle_taps(int64_t in, int64_t out) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double support = std::max(scale, 1.0);
  Taps t;
  t.stride = static_cast<int64_t>(std::ceil(support)) * 2 + 3;
  t.first.resize(out);
  t.count.resize(out);
  t.weights.assign(static_cast<size_t>(out * t.stride), 0.0f);
  for (int64_t i = 0; i < out; ++i) {
    const double center = (i + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(center - support)));
    const int64_t hi = std::min<int64_t>(in, static_cast<int64_t>(std::ceil(center + support)));
    double sum = 0;
    std::vector<double> w;
    for (int64_t j = lo; j < hi; ++j) {
      const double d = std::abs((j + 0.5 - center) / support);
      w.push_back(d < 1.0 ? 1.0 - d : 0.0);
      sum += w.back();
    }
    int64_t first = lo, n = static_cast<int64_t>(w.size());
    if (sum <= 0) {  // cannot happen for in >= 1, but keep the nearest sample then
      first = std::min<int64_t>(in - 1, static_cast<int64_t>(center));
      w.assign(1, 1.0);
      sum = 1.0;
      n = 1;
    }
    n = std::min(n, t.stride);
    t.first[i] = first;
    t.count[i] = n;
    for (int64_t k = 0; k < n; ++k) t.weights[i * t.stride + k] = static_cast<float>(w[k] / sum);
  }
  return t;
}

// Separable resize of an (h, w, c) uint8 image to (oh, ow, c): rows first, then columns.
void resize_bilinear(const uint8_t* src, int64_t h, int64_t w, uint8_t* dst, int64_t oh, int64_t ow,
                     int64_t c) {
  const Taps tx = triangle_taps(w, ow);
  const Taps ty = triangle_taps(h, oh);
  std::vector<float> tmp(static_cast<size_t>(h * ow * c));
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < ow; ++x) {
      for (int64_t ch = 0; ch < c; ++ch) {
        float acc = 0;
        for (int64_t k = 0; k < tx.count[x]; ++k) {
          acc += tx.weights[x * tx.stride + k] * src[(y * w + tx.first[x] + k) * c + ch];
        }
        tmp[(y * ow + x) * c + ch] = acc;
      }
    }
  }
  for (int64_t y = 0; y < oh; ++y) {
    for (int64_t x = 0; x < ow; ++x) {
      for (int64_t ch = 0; ch < c; ++ch) {
        float acc = 0;
        for (int64_t k = 0; k < ty.count[y]; ++k) {
          acc += ty.weights[y * ty.stride + k] * tmp[((ty.first[y] + k) * ow + x) * c + ch];
        }
        dst[(y * ow + x) * c + ch] = static_cast<uint8_t>(std::clamp(std::lround(acc), 0L, 255L));
      }
    }
  }
}

// Decodes `path` with `channels` channels and writes it, resized to height x width, into `dst`.
// height/width 0 keep the file's size; `out_h`/`out_w` receive the size written.
std::unique_ptr<uint8_t[]> decode(const std::string& path, int64_t channels, int64_t height,
                                  int64_t width, int64_t* out_h, int64_t* out_w) {
  int w = 0, h = 0, file_channels = 0;
  // A header claiming far more pixels than the file can encode (found by fuzz/fuzz_image.cpp: a
  // 134-byte BMP of 6 x 12 million pixels keeps stb_image seeking past the end for minutes):
  // refuse it before decoding. 2048 pixels per byte is above what PNG/JPEG/GIF compression of a
  // flat image reaches.
  std::error_code size_ec;
  const auto file_bytes = fs::file_size(path, size_ec);
  if (!size_ec && stbi_info(path.c_str(), &w, &h, &file_channels) == 1 &&
      static_cast<uint64_t>(w) * static_cast<uint64_t>(h) >
          uint64_t{2048} * file_bytes + (uint64_t{1} << 20)) {
    throw IoError(
        fmt::format("'{}': the image claims {}x{} pixels, more than its {} bytes can "
                    "hold (corrupt)",
                    path, w, h, file_bytes));
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load(path.c_str(), &w, &h, &file_channels, static_cast<int>(channels)), stbi_image_free);
  if (!pixels) {
    const char* why = stbi_failure_reason();
    throw IoError(fmt::format("cannot decode image '{}': {}", path, why ? why : "unknown error"));
  }
  // stb_image accepts a BMP of height 0; resizing it would abort (stb_image_resize assertion).
  if (w <= 0 || h <= 0) throw IoError(fmt::format("'{}': empty image ({}x{})", path, w, h));
  const int64_t oh = height > 0 ? height : h;
  const int64_t ow = width > 0 ? width : w;
  if (data_detail::checked_numel({oh, ow, channels}) < 0) {
    throw IoError(fmt::format("'{}': image size {}x{} is too large", path, oh, ow));
  }
  auto out = std::make_unique<uint8_t[]>(static_cast<size_t>(oh * ow * channels));
  if (oh == h && ow == w) {
    std::memcpy(out.get(), pixels.get(), static_cast<size_t>(oh * ow * channels));
  } else {
    resize_bilinear(pixels.get(), h, w, out.get(), oh, ow, channels);
  }
  *out_h = oh;
  *out_w = ow;
  return out;
}

}  // namespace

Tensor load_image(const std::string& path, int64_t height, int64_t width, int64_t channels) {
  check_channels(channels, path);
  if (height < 0 || width < 0) {
    throw ConfigError(fmt::format("'{}': negative size {}x{} requested", path, height, width));
  }
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw IoError(fmt::format("cannot read '{}': no such file", path));
  int64_t h = 0, w = 0;
  auto pixels = decode(path, channels, height, width, &h, &w);
  Tensor t = Tensor::empty(Shape{1, h, w, channels}, DType::U8);
  std::memcpy(t.raw(), pixels.get(), static_cast<size_t>(t.numel()));
  return t;
}

Tensor load_image_center_crop(const std::string& path, int64_t shorter, int64_t height,
                              int64_t width, int64_t channels) {
  if (height <= 0 || width <= 0 || shorter < std::max(height, width)) {
    throw ConfigError(fmt::format("'{}': cannot center-crop {}x{} from a resize to {} pixels", path,
                                  height, width, shorter));
  }
  const Tensor native = load_image(path, 0, 0, channels);
  const int64_t h0 = native.shape()[1], w0 = native.shape()[2];
  int64_t nh = shorter, nw = shorter;
  if (h0 < w0) nw = static_cast<int64_t>(static_cast<double>(shorter) * w0 / h0);
  if (w0 < h0) nh = static_cast<int64_t>(static_cast<double>(shorter) * h0 / w0);
  const Tensor resized = load_image(path, nh, nw, channels);
  const auto top = static_cast<int64_t>(std::nearbyint((nh - height) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint((nw - width) / 2.0));
  Tensor out = Tensor::empty(Shape{1, height, width, channels}, DType::U8);
  const auto* src = static_cast<const uint8_t*>(resized.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t y = 0; y < height; ++y) {
    std::memcpy(dst + y * width * channels, src + ((top + y) * nw + left) * channels,
                static_cast<size_t>(width * channels));
  }
  return out;
}

Dataset load_image_folder(const std::string& dir, int64_t height, int64_t width, int64_t channels) {
  check_channels(channels, dir);
  if (height <= 0 || width <= 0) {
    throw ConfigError(fmt::format("'{}': image size {}x{} must be positive", dir, height, width));
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(fmt::format("'{}' is not a folder", dir));

  // Classes are the sorted subfolder names (as Keras flow_from_directory); hidden ones skipped.
  std::vector<std::string> classes;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && !name.empty() && name[0] != '.') classes.push_back(name);
  }
  if (ec) throw IoError(fmt::format("cannot list '{}': {}", dir, ec.message()));
  std::sort(classes.begin(), classes.end());
  if (classes.empty()) {
    throw IoError(fmt::format("'{}' has no class subfolders (one folder per class expected)", dir));
  }

  std::vector<std::pair<std::string, int64_t>> files;  // (path, label)
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<std::string> paths;
    for (const auto& e : fs::directory_iterator(fs::path(dir) / classes[c], ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && name[0] != '.' && is_image_file(e.path())) {
        paths.push_back(e.path().string());
      }
    }
    std::sort(paths.begin(), paths.end());
    for (auto& p : paths) files.emplace_back(std::move(p), static_cast<int64_t>(c));
  }
  if (files.empty()) throw IoError(fmt::format("'{}': no image files in its class folders", dir));
  const auto n = static_cast<int64_t>(files.size());
  if (data_detail::checked_numel({n, height, width, channels}) < 0) {
    throw IoError(fmt::format("'{}': {} images of {}x{}x{} are too many to load", dir, n, height,
                              width, channels));
  }

  Dataset d;
  d.source = dir;
  d.x = Tensor::empty(Shape{n, height, width, channels}, DType::U8);
  d.y = Tensor::empty(Shape{n}, DType::I64);
  const size_t image_bytes = static_cast<size_t>(height * width * channels);
  auto* x = static_cast<uint8_t*>(d.x.raw());
  for (int64_t i = 0; i < n; ++i) {
    int64_t h = 0, w = 0;
    auto pixels = decode(files[static_cast<size_t>(i)].first, channels, height, width, &h, &w);
    std::memcpy(x + static_cast<size_t>(i) * image_bytes, pixels.get(), image_bytes);
    d.y.data<int64_t>()[i] = files[static_cast<size_t>(i)].second;
  }
  d.class_names = classes;
  d.num_classes = static_cast<int64_t>(classes.size());
  data_detail::finish_dataset(d);
  return d;
}

}  // namespace resnet
