// SIGNS-style HDF5 datasets, read through the project's one HDF5 wrapper (io/hdf5/file.h, with
// its pre-flight read of hostile files).
//
// Every size is read from the file's metadata and checked (rank, element count, the bytes the
// file really holds) before the arrays are allocated, so a corrupt or truncated file gives an
// IoError naming the file and the dataset rather than a huge allocation or a crash.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "data/data_util.h"
#include "io/hdf5/file.h"
#include "resnet/data.h"
#include "resnet/error.h"

namespace resnet {

namespace {

using data_detail::checked_numel;
using data_detail::kMaxElements;

// Reads datasets of one open file; every error names the file and the dataset path.
class H5Reader {
 public:
  explicit H5Reader(std::string path) : path_(std::move(path)), file_(h5::File::open(path_)) {}

  [[noreturn]] void fail(const std::string& dataset, const std::string& what) const {
    throw IoError(fmt::format("'{}', dataset '{}': {}", path_, dataset, what));
  }

  // Names of the datasets directly under the root group, sorted.
  std::vector<std::string> root_datasets() const {
    std::vector<std::string> names;
    for (const std::string& n : file_.children("/")) {
      if (file_.is_dataset(n)) names.push_back(n);
    }
    return names;
  }

  bool exists(const std::string& name) const { return file_.exists(name); }

  // The dataset's dims and numpy-like dtype ("uint8", "float32", "int64", "str", "|S12").
  h5::File::DatasetInfo info(const std::string& name) const {
    if (!file_.exists(name)) fail(name, "no such dataset");
    if (!file_.is_dataset(name)) fail(name, "not a dataset");
    h5::File::DatasetInfo i = file_.dataset_info(name);
    for (int64_t v : i.dims) {
      if (v < 0 || v > kMaxElements) fail(name, fmt::format("absurd dimension {}", v));
    }
    return i;
  }

  Tensor read(const std::string& name, DType as) const { return file_.read_array(name, as); }
  std::vector<std::string> read_strings(const std::string& name) const {
    return file_.read_string_dataset(name);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  h5::File file_;
};

bool is_float(const std::string& dtype) { return dtype.rfind("float", 0) == 0; }
bool is_integer(const std::string& dtype) {
  return dtype.rfind("int", 0) == 0 || dtype.rfind("uint", 0) == 0;
}
bool is_string(const std::string& dtype) { return dtype == "str" || dtype.rfind("|S", 0) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The one root dataset whose name ends with `suffix` (train_set_x, test_set_x, ...).
std::string find_by_suffix(const H5Reader& r, const std::vector<std::string>& names,
                           const std::string& suffix) {
  std::vector<std::string> hits;
  for (const auto& n : names) {
    if (ends_with(n, suffix)) hits.push_back(n);
  }
  if (hits.size() == 1) return hits[0];
  throw IoError(
      fmt::format("'{}': expected one dataset named *{} at the root, found {} ({}); name "
                  "the datasets explicitly",
                  r.path(), suffix, hits.size(),
                  names.empty() ? std::string("the root holds no datasets")
                                : fmt::format("datasets: {}", fmt::join(names, ", "))));
}

Tensor read_images(const H5Reader& r, const std::string& name) {
  const h5::File::DatasetInfo info = r.info(name);
  std::vector<int64_t> dims = info.dims;
  const bool grayscale = dims.size() == 3;  // (N, H, W)
  if (grayscale) dims.push_back(1);
  if (dims.size() != 4) {
    r.fail(name, fmt::format("images must be (N, H, W, C) or (N, H, W), got rank {}", dims.size()));
  }
  for (size_t i = 1; i < 4; ++i) {
    if (dims[i] <= 0) r.fail(name, fmt::format("empty image dimension in {}", Shape(dims).str()));
  }
  if (checked_numel(dims) < 0) r.fail(name, fmt::format("absurd shape {}", Shape(dims).str()));
  DType dtype;
  if (info.dtype == "uint8") {
    dtype = DType::U8;
  } else if (is_float(info.dtype)) {
    dtype = DType::F32;
  } else {
    r.fail(name, "images must be uint8 or floating point");
  }
  Tensor x = r.read(name, dtype);
  return grayscale ? x.reshape(Shape(dims)) : x;
}

Tensor read_labels(const H5Reader& r, const std::string& name) {
  const h5::File::DatasetInfo info = r.info(name);
  const std::vector<int64_t>& dims = info.dims;
  int64_t n = -1;
  if (dims.size() == 1) n = dims[0];
  if (dims.size() == 2 && (dims[0] == 1 || dims[1] == 1)) n = dims[0] * dims[1];  // (1, N), (N, 1)
  if (n < 0) {
    r.fail(name, fmt::format("labels must be (N,) or (1, N), got {}", Shape(dims).str()));
  }
  if (!is_integer(info.dtype)) r.fail(name, "labels must be integers");
  Tensor y = r.read(name, DType::I64).reshape(Shape{n});
  for (int64_t i = 0; i < n; ++i) {
    if (y.data<int64_t>()[i] < 0) {
      r.fail(name, fmt::format("label {} of sample {} is negative", y.data<int64_t>()[i], i));
    }
    // As many classes as read_class_names accepts (a corrupt label would otherwise make the
    // class list absurdly long; found by fuzz/fuzz_h5_dataset.cpp).
    if (y.data<int64_t>()[i] >= 1000000) {
      r.fail(name, fmt::format("label {} of sample {} is absurd (more than a million classes)",
                               y.data<int64_t>()[i], i));
    }
  }
  return y;
}

std::vector<std::string> read_class_names(const H5Reader& r, const std::string& name) {
  const h5::File::DatasetInfo info = r.info(name);
  const int64_t n = checked_numel(info.dims);
  if (n < 0 || n > 1000000) r.fail(name, "absurd number of classes");
  if (is_string(info.dtype)) return r.read_strings(name);
  std::vector<std::string> out;
  if (is_integer(info.dtype)) {
    const Tensor v = r.read(name, DType::I64);
    for (int64_t x : v.span<int64_t>()) out.push_back(std::to_string(x));
  } else if (is_float(info.dtype)) {
    const Tensor v = r.read(name, DType::F32);
    for (float x : v.span<float>()) out.push_back(fmt::format("{}", x));
  } else {
    r.fail(name, "class names must be strings or numbers");
  }
  return out;
}

}  // namespace

Dataset load_h5_dataset(const std::string& path, const H5DatasetNames& names) {
  H5Reader r(path);
  std::vector<std::string> root;
  if (names.x.empty() || names.y.empty()) root = r.root_datasets();
  const std::string x_name = names.x.empty() ? find_by_suffix(r, root, "_set_x") : names.x;
  const std::string y_name = names.y.empty() ? find_by_suffix(r, root, "_set_y") : names.y;

  Dataset d;
  d.source = path;
  d.x = read_images(r, x_name);
  d.y = read_labels(r, y_name);
  if (d.y.shape()[0] != d.x.shape()[0]) {
    throw IoError(fmt::format("'{}': dataset '{}' has {} images but dataset '{}' has {} labels",
                              path, x_name, d.x.shape()[0], y_name, d.y.shape()[0]));
  }
  // The class list is optional unless it was named explicitly.
  const std::string classes = names.classes.empty() ? "list_classes" : names.classes;
  if (!names.classes.empty() || r.exists(classes)) d.class_names = read_class_names(r, classes);
  data_detail::finish_dataset(d);
  return d;
}

}  // namespace resnet
