// Image files through stb_image (decode) and stb_image_resize (bilinear resize).
#include <fmt/format.h>
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

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

// Decodes `path` with `channels` channels and writes it, resized to height x width, into `dst`.
// height/width 0 keep the file's size; `out_h`/`out_w` receive the size written.
std::unique_ptr<uint8_t[]> decode(const std::string& path, int64_t channels, int64_t height,
                                  int64_t width, int64_t* out_h, int64_t* out_w) {
  int w = 0, h = 0, file_channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load(path.c_str(), &w, &h, &file_channels, static_cast<int>(channels)), stbi_image_free);
  if (!pixels) {
    const char* why = stbi_failure_reason();
    throw IoError(fmt::format("cannot decode image '{}': {}", path, why ? why : "unknown error"));
  }
  const int64_t oh = height > 0 ? height : h;
  const int64_t ow = width > 0 ? width : w;
  if (data_detail::checked_numel({oh, ow, channels}) < 0) {
    throw IoError(fmt::format("'{}': image size {}x{} is too large", path, oh, ow));
  }
  auto out = std::make_unique<uint8_t[]>(static_cast<size_t>(oh * ow * channels));
  if (oh == h && ow == w) {
    std::memcpy(out.get(), pixels.get(), static_cast<size_t>(oh * ow * channels));
  } else {
    // The triangle filter is bilinear interpolation; edges clamp like Keras/PIL resizing.
    const int ok = stbir_resize_uint8_generic(
        pixels.get(), w, h, 0, out.get(), static_cast<int>(ow), static_cast<int>(oh), 0,
        static_cast<int>(channels), STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
        STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr);
    if (!ok) throw IoError(fmt::format("'{}': resizing to {}x{} failed", path, oh, ow));
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
