// SIGNS-style HDF5 datasets through the HDF5 C API.
//
// Every size is read from the file's metadata and checked (rank, element count, the bytes the
// file really holds) before the arrays are allocated, so a corrupt or truncated file gives an
// IoError naming the file and the dataset rather than a huge allocation or a crash.
#include <fmt/format.h>
#include <hdf5.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

#include "data/data_util.h"
#include "io/hdf5/preflight.h"
#include "resnet/data.h"
#include "resnet/error.h"

namespace resnet {

namespace {

using data_detail::checked_numel;
using data_detail::kMaxElements;

// An HDF5 identifier closed by `Close` when the handle goes out of scope.
template <herr_t (*Close)(hid_t)>
class H5Handle {
 public:
  H5Handle() = default;
  explicit H5Handle(hid_t id) : id_(id) {}
  ~H5Handle() { reset(); }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  H5Handle(H5Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  H5Handle& operator=(H5Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0) Close(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using H5File = H5Handle<H5Fclose>;
using H5Dataset = H5Handle<H5Dclose>;
using H5Space = H5Handle<H5Sclose>;
using H5Type = H5Handle<H5Tclose>;
using H5Object = H5Handle<H5Oclose>;

// Reads datasets of one open file; every error names the file and the dataset path.
class H5Reader {
 public:
  explicit H5Reader(std::string path) : path_(std::move(path)) {
    // The library reports through exceptions; HDF5's own stack dump on stderr would only be noise.
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path_, ec)) {
      throw IoError(fmt::format("cannot read '{}': no such file", path_));
    }
    file_size_ = std::filesystem::file_size(path_, ec);
    if (ec) throw IoError(fmt::format("cannot read '{}': {}", path_, ec.message()));
    // libhdf5 1.10 can crash or hang on a hostile file: read it in a child process first.
    strings_ = h5::preflight(path_);
    if (H5Fis_hdf5(path_.c_str()) <= 0) {
      throw IoError(fmt::format("'{}' is not an HDF5 file", path_));
    }
    file_ = H5File(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!file_.valid()) {
      throw IoError(fmt::format("cannot open HDF5 file '{}' (truncated or corrupt)", path_));
    }
  }

  [[noreturn]] void fail(const std::string& dataset, const std::string& what) const {
    throw IoError(fmt::format("'{}', dataset '{}': {}", path_, dataset, what));
  }

  // Names of the datasets directly under the root group.
  std::vector<std::string> root_datasets() const {
    std::vector<std::string> names;
    H5G_info_t info;
    if (H5Gget_info(file_.get(), &info) < 0) {
      throw IoError(fmt::format("'{}': cannot list the root group (corrupt file)", path_));
    }
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      const ssize_t len = H5Lget_name_by_idx(file_.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i,
                                             nullptr, 0, H5P_DEFAULT);
      if (len <= 0) continue;
      std::string name(static_cast<size_t>(len) + 1, '\0');
      H5Lget_name_by_idx(file_.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                         H5P_DEFAULT);
      name.resize(static_cast<size_t>(len));
      H5Object obj(H5Oopen(file_.get(), name.c_str(), H5P_DEFAULT));
      if (obj.valid() && H5Iget_type(obj.get()) == H5I_DATASET) names.push_back(name);
    }
    return names;
  }

  // True when `name` (possibly a path "group/dataset") names an object of the file.
  bool exists(const std::string& name) const {
    // H5Lexists needs every intermediate group to exist, so check the path one link at a time.
    std::string prefix;
    size_t start = 0;
    while (start <= name.size()) {
      const size_t slash = name.find('/', start);
      const std::string part = name.substr(start, slash - start);
      if (!part.empty()) {
        prefix += (prefix.empty() ? "" : "/") + part;
        if (H5Lexists(file_.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
      }
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    return !prefix.empty();
  }

  H5Dataset open(const std::string& name) const {
    if (!exists(name)) fail(name, "no such dataset");
    H5Dataset d(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
    if (!d.valid()) fail(name, "cannot open the dataset (not a dataset, or corrupt)");
    return d;
  }

  std::vector<int64_t> dims(const H5Dataset& d, const std::string& name) const {
    H5Space space(H5Dget_space(d.get()));
    if (!space.valid()) fail(name, "cannot read its dataspace");
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0 || rank > 8) fail(name, fmt::format("unsupported rank {}", rank));
    std::vector<hsize_t> h(static_cast<size_t>(rank));
    if (rank > 0 && H5Sget_simple_extent_dims(space.get(), h.data(), nullptr) < 0) {
      fail(name, "cannot read its dimensions");
    }
    std::vector<int64_t> out;
    for (hsize_t v : h) {
      if (v > static_cast<hsize_t>(kMaxElements)) {
        fail(name, fmt::format("absurd dimension {}", static_cast<unsigned long long>(v)));
      }
      out.push_back(static_cast<int64_t>(v));
    }
    return out;
  }

  // Refuses a dataset whose (contiguous, uncompressed) data would end past the end of the file:
  // a truncated file is detected here, before the read allocates anything.
  void check_fits(const H5Dataset& d, const std::string& name, int64_t numel) const {
    H5Type type(H5Dget_type(d.get()));
    const size_t elem = type.valid() ? H5Tget_size(type.get()) : 0;
    const haddr_t offset = H5Dget_offset(d.get());
    if (offset == HADDR_UNDEF || elem == 0) return;  // chunked or compact: HDF5 checks reads
    const auto need =
        static_cast<unsigned long long>(offset) + static_cast<unsigned long long>(numel) * elem;
    if (need > file_size_) {
      fail(name, fmt::format("its data ends at byte {} but the file has only {} bytes (truncated)",
                             need, static_cast<unsigned long long>(file_size_)));
    }
  }

  H5T_class_t type_class(const H5Dataset& d, size_t* size, bool* is_signed,
                         bool* variable_string) const {
    H5Type type(H5Dget_type(d.get()));
    if (!type.valid()) return H5T_NO_CLASS;
    const H5T_class_t cls = H5Tget_class(type.get());
    if (size) *size = H5Tget_size(type.get());
    if (is_signed) *is_signed = cls == H5T_INTEGER && H5Tget_sign(type.get()) == H5T_SGN_2;
    if (variable_string) *variable_string = cls == H5T_STRING && H5Tis_variable_str(type.get()) > 0;
    return cls;
  }

  void read(const H5Dataset& d, const std::string& name, hid_t mem_type, void* buf) const {
    if (H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
      fail(name, "read failed (truncated or corrupt file)");
    }
  }

  std::vector<std::string> read_strings(const H5Dataset& d, const std::string& name,
                                        int64_t count) const {
    H5Type file_type(H5Dget_type(d.get()));
    std::vector<std::string> out;
    if (H5Tis_variable_str(file_type.get()) > 0) {
      // After a pre-flight, the child's copy (HDF5's read of a corrupt global heap can overflow).
      if (strings_) {
        const std::vector<std::string>* v = strings_->dataset(name);
        if (!v || v->size() != static_cast<size_t>(count)) fail(name, "read failed (corrupt file)");
        return *v;
      }
      H5Type mem(H5Tcopy(H5T_C_S1));
      H5Tset_size(mem.get(), H5T_VARIABLE);
      std::vector<char*> ptrs(static_cast<size_t>(count), nullptr);
      read(d, name, mem.get(), ptrs.data());
      for (char* p : ptrs) out.emplace_back(p ? p : "");
      H5Space space(H5Dget_space(d.get()));
      H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
    } else {
      const size_t len = H5Tget_size(file_type.get());
      if (len == 0 || len > 65536) fail(name, fmt::format("unsupported string length {}", len));
      H5Type mem(H5Tcopy(H5T_C_S1));
      H5Tset_size(mem.get(), len);
      H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
      std::vector<char> buf(static_cast<size_t>(count) * len);
      read(d, name, mem.get(), buf.data());
      for (int64_t i = 0; i < count; ++i) {
        const char* p = buf.data() + static_cast<size_t>(i) * len;
        out.emplace_back(p, strnlen(p, len));
      }
    }
    return out;
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  uintmax_t file_size_ = 0;
  std::shared_ptr<const h5::PreflightStrings> strings_;  // null without a pre-flight
  H5File file_;
};

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
  H5Dataset d = r.open(name);
  std::vector<int64_t> dims = r.dims(d, name);
  if (dims.size() == 3) dims.push_back(1);  // (N, H, W) grayscale
  if (dims.size() != 4) {
    r.fail(name, fmt::format("images must be (N, H, W, C) or (N, H, W), got rank {}", dims.size()));
  }
  for (size_t i = 1; i < 4; ++i) {
    if (dims[i] <= 0) r.fail(name, fmt::format("empty image dimension in {}", Shape(dims).str()));
  }
  const int64_t numel = checked_numel(dims);
  if (numel < 0) r.fail(name, fmt::format("absurd shape {}", Shape(dims).str()));
  size_t size = 0;
  bool is_signed = false;
  const H5T_class_t cls = r.type_class(d, &size, &is_signed, nullptr);
  DType dtype;
  hid_t mem_type;
  if (cls == H5T_INTEGER && size == 1 && !is_signed) {
    dtype = DType::U8;
    mem_type = H5T_NATIVE_UINT8;
  } else if (cls == H5T_FLOAT) {
    dtype = DType::F32;
    mem_type = H5T_NATIVE_FLOAT;
  } else {
    r.fail(name, "images must be uint8 or floating point");
  }
  r.check_fits(d, name, numel);
  Tensor x = Tensor::empty(Shape(dims), dtype);
  if (numel > 0) r.read(d, name, mem_type, x.raw());
  return x;
}

Tensor read_labels(const H5Reader& r, const std::string& name) {
  H5Dataset d = r.open(name);
  const std::vector<int64_t> dims = r.dims(d, name);
  int64_t n = -1;
  if (dims.size() == 1) n = dims[0];
  if (dims.size() == 2 && (dims[0] == 1 || dims[1] == 1)) n = dims[0] * dims[1];  // (1, N), (N, 1)
  if (n < 0) {
    r.fail(name, fmt::format("labels must be (N,) or (1, N), got {}", Shape(dims).str()));
  }
  if (r.type_class(d, nullptr, nullptr, nullptr) != H5T_INTEGER) {
    r.fail(name, "labels must be integers");
  }
  r.check_fits(d, name, n);
  Tensor y = Tensor::empty(Shape{n}, DType::I64);
  if (n > 0) r.read(d, name, H5T_NATIVE_INT64, y.raw());
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
  H5Dataset d = r.open(name);
  const int64_t n = checked_numel(r.dims(d, name));
  if (n < 0 || n > 1000000) r.fail(name, "absurd number of classes");
  const H5T_class_t cls = r.type_class(d, nullptr, nullptr, nullptr);
  if (cls == H5T_STRING) return r.read_strings(d, name, n);
  r.check_fits(d, name, n);
  std::vector<std::string> out;
  if (cls == H5T_INTEGER) {
    std::vector<int64_t> v(static_cast<size_t>(n));
    if (n > 0) r.read(d, name, H5T_NATIVE_INT64, v.data());
    for (int64_t x : v) out.push_back(std::to_string(x));
  } else if (cls == H5T_FLOAT) {
    std::vector<double> v(static_cast<size_t>(n));
    if (n > 0) r.read(d, name, H5T_NATIVE_DOUBLE, v.data());
    for (double x : v) out.push_back(fmt::format("{}", x));
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
