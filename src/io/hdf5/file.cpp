// HDF5 C API behind h5::File (see file.h). Every handle is closed by an RAII guard, so an
// exception in the middle of reading or writing leaks nothing.
#include "io/hdf5/file.h"

#include <fmt/format.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <type_traits>

#include "io/hdf5/preflight.h"
#include "resnet/error.h"

namespace resnet::h5 {

static_assert(std::is_same_v<hid_t, int64_t>, "h5::File stores hid_t as int64_t");

namespace {

template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() {
    if (id_ >= 0) Close(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using Dataset = Handle<H5Dclose>;
using Space = Handle<H5Sclose>;
using Type = Handle<H5Tclose>;
using Attr = Handle<H5Aclose>;
using Object = Handle<H5Oclose>;
using Group = Handle<H5Gclose>;
using Plist = Handle<H5Pclose>;

// Silences HDF5's own error printing once (errors become IoError).
void quiet() {
  static const bool once = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)once;
}

std::string norm(const std::string& obj) {
  if (obj.empty() || obj == "/") return ".";
  return obj;
}

std::string shown(const std::string& obj) { return obj.empty() || obj == "." ? "/" : obj; }

}  // namespace

void File::fail(const std::string& obj, const std::string& what) const {
  throw IoError(fmt::format("'{}', '{}': {}", path_, shown(obj), what));
}

File File::open(const std::string& path, bool writable) {
  quiet();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw IoError(fmt::format("cannot read '{}': no such file", path));
  }
  // libhdf5 1.10 can crash or hang on a hostile file: read it in a child process first.
  std::shared_ptr<const PreflightStrings> strings = preflight(path);
  if (H5Fis_hdf5(path.c_str()) <= 0) throw IoError(fmt::format("'{}' is not an HDF5 file", path));
  const hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw IoError(fmt::format("cannot open HDF5 file '{}' (truncated or corrupt)", path));
  File f(path, id);
  if (!writable) f.strings_ = std::move(strings);
  return f;
}

File File::create(const std::string& path) {
  quiet();
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) throw IoError(fmt::format("cannot create HDF5 file '{}'", path));
  return File(path, id);
}

File::File(File&& o) noexcept
    : path_(std::move(o.path_)), id_(o.id_), strings_(std::move(o.strings_)) {
  o.id_ = -1;
}

File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    if (id_ >= 0) H5Fclose(id_);
    path_ = std::move(o.path_);
    id_ = o.id_;
    strings_ = std::move(o.strings_);
    o.id_ = -1;
  }
  return *this;
}

File::~File() {
  if (id_ >= 0) H5Fclose(id_);
}

void File::close() {
  if (id_ < 0) return;
  const herr_t flushed = H5Fflush(id_, H5F_SCOPE_LOCAL);
  const herr_t closed = H5Fclose(id_);
  id_ = -1;
  if (flushed < 0 || closed < 0) throw IoError(fmt::format("'{}': writing the file failed", path_));
}

// ---------------------------------------------------------------------------------------------
// Reading

bool File::exists(const std::string& obj) const {
  const std::string p = norm(obj);
  if (p == ".") return true;
  std::string prefix;
  size_t start = 0;
  while (start <= p.size()) {
    const size_t slash = p.find('/', start);
    const std::string part =
        p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!part.empty()) {
      prefix += (prefix.empty() ? "" : "/") + part;
      if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  // The last link may dangle (a soft link, or a corrupt object header).
  return H5Oexists_by_name(id_, p.c_str(), H5P_DEFAULT) > 0;
}

bool File::is_group(const std::string& obj) const {
  if (!exists(obj)) return false;
  H5O_info_t info;
  if (H5Oget_info_by_name(id_, norm(obj).c_str(), &info, H5P_DEFAULT) < 0) return false;
  return info.type == H5O_TYPE_GROUP;
}

bool File::is_dataset(const std::string& obj) const {
  if (!exists(obj)) return false;
  H5O_info_t info;
  if (H5Oget_info_by_name(id_, norm(obj).c_str(), &info, H5P_DEFAULT) < 0) return false;
  return info.type == H5O_TYPE_DATASET;
}

std::vector<std::string> File::children(const std::string& group) const {
  Group g(H5Gopen2(id_, norm(group).c_str(), H5P_DEFAULT));
  if (!g.valid()) fail(group, "cannot open the group");
  std::vector<std::string> names;
  auto cb = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  hsize_t idx = 0;
  if (H5Literate(g.get(), H5_INDEX_NAME, H5_ITER_INC, &idx, cb, &names) < 0) {
    fail(group, "cannot list the group (corrupt)");
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool File::has_attr(const std::string& obj, const std::string& name) const {
  if (!exists(obj)) return false;
  return H5Aexists_by_name(id_, norm(obj).c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::string> File::attr_names(const std::string& obj) const {
  // By index rather than H5Aiterate2, which libhdf5 1.10 has crashed in on corrupt files.
  H5O_info_t info;
  if (H5Oget_info_by_name(id_, norm(obj).c_str(), &info, H5P_DEFAULT) < 0) {
    fail(obj, "cannot open the object");
  }
  if (info.num_attrs > 65536) fail(obj, "absurd number of attributes (corrupt)");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    const ssize_t len = H5Aget_name_by_idx(id_, norm(obj).c_str(), H5_INDEX_NAME, H5_ITER_INC, i,
                                           nullptr, 0, H5P_DEFAULT);
    if (len < 0 || len > 65535) fail(obj, "cannot list its attributes (corrupt)");
    std::string name(static_cast<size_t>(len) + 1, '\0');
    if (H5Aget_name_by_idx(id_, norm(obj).c_str(), H5_INDEX_NAME, H5_ITER_INC, i, name.data(),
                           name.size(), H5P_DEFAULT) < 0) {
      fail(obj, "cannot list its attributes (corrupt)");
    }
    name.resize(static_cast<size_t>(len));
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> File::read_strings(const std::string& obj, const std::string& name) const {
  const std::string what = fmt::format("attribute '{}'", name);
  Attr attr(H5Aopen_by_name(id_, norm(obj).c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.valid()) fail(obj, fmt::format("cannot open {}", what));
  Space space(H5Aget_space(attr.get()));
  Type type(H5Aget_type(attr.get()));
  if (!space.valid() || !type.valid()) fail(obj, fmt::format("cannot read {}", what));
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > (1 << 24)) fail(obj, fmt::format("{} has a bad size", what));
  if (n == 0) return {};
  if (H5Tget_class(type.get()) != H5T_STRING) fail(obj, fmt::format("{} is not a string", what));
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.get()) > 0) {
    // After a pre-flight, the child's copy: HDF5's own read of a corrupt global heap can
    // overflow a buffer without crashing at once.
    if (strings_) {
      const std::vector<std::string>* v = strings_->attribute(obj, name);
      if (!v || v->size() != static_cast<size_t>(n)) {
        fail(obj, fmt::format("cannot read {} (corrupt)", what));
      }
      return *v;
    }
    Type mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
    if (H5Aread(attr.get(), mem.get(), ptrs.data()) < 0) {
      fail(obj, fmt::format("cannot read {} (corrupt)", what));
    }
    for (char* p : ptrs) {
      out.emplace_back(p ? p : "");
      if (p) H5free_memory(p);
    }
    return out;
  }
  const size_t size = H5Tget_size(type.get());
  if (size == 0 || size > (size_t{1} << 28) / static_cast<size_t>(n)) {
    fail(obj, fmt::format("{} has a bad string size", what));
  }
  // The bytes the file holds for it must cover its shape (an edited size or dataspace).
  if (H5Aget_storage_size(attr.get()) < size * static_cast<size_t>(n)) {
    fail(obj, fmt::format("{} is shorter than its size claims (corrupt)", what));
  }
  std::string buf(size * static_cast<size_t>(n), '\0');
  if (H5Aread(attr.get(), type.get(), buf.data()) < 0) {
    fail(obj, fmt::format("cannot read {} (corrupt)", what));
  }
  for (hssize_t i = 0; i < n; ++i) {
    std::string s = buf.substr(static_cast<size_t>(i) * size, size);
    const size_t nul = s.find('\0');
    if (nul != std::string::npos) s.resize(nul);
    while (!s.empty() && s.back() == ' ') s.pop_back();  // space-padded strings
    out.push_back(std::move(s));
  }
  return out;
}

bool File::read_split_strings(const std::string& obj, const std::string& name,
                              std::vector<std::string>& out) const {
  out.clear();
  if (has_attr(obj, name)) {
    out = read_strings(obj, name);
    return true;
  }
  bool any = false;
  for (int i = 0;; ++i) {
    const std::string key = fmt::format("{}{}", name, i);
    if (!has_attr(obj, key)) break;
    for (auto& s : read_strings(obj, key)) out.push_back(std::move(s));
    any = true;
  }
  return any;
}

namespace {

std::string dtype_name(hid_t type) {
  const size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return fmt::format("float{}", size * 8);
    case H5T_INTEGER:
      return fmt::format("{}int{}", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", size * 8);
    case H5T_STRING:
      return H5Tis_variable_str(type) > 0 ? "str" : fmt::format("|S{}", size);
    default:
      return "other";
  }
}

}  // namespace

File::DatasetInfo File::dataset_info(const std::string& path) const {
  Dataset d(H5Dopen2(id_, norm(path).c_str(), H5P_DEFAULT));
  if (!d.valid()) fail(path, "cannot open the dataset (missing, not a dataset, or corrupt)");
  Type type(H5Dget_type(d.get()));
  Space space(H5Dget_space(d.get()));
  if (!type.valid() || !space.valid()) fail(path, "cannot read the dataset's type or dataspace");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 8) fail(path, "cannot read its dataspace");
  std::vector<hsize_t> h(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), h.data(), nullptr);
  DatasetInfo info;
  info.dims.assign(h.begin(), h.end());
  info.dtype = dtype_name(type.get());
  return info;
}

Tensor File::read_f32(const std::string& path) const {
  {
    Dataset d(H5Dopen2(id_, norm(path).c_str(), H5P_DEFAULT));
    if (!d.valid()) fail(path, "cannot open the dataset (missing, not a dataset, or corrupt)");
    Type type(H5Dget_type(d.get()));
    if (!type.valid() || H5Tget_class(type.get()) != H5T_FLOAT) {
      fail(path, "not a floating-point dataset");
    }
  }
  Tensor t = read_array(path, DType::F32);
  for (float v : t.span<float>()) {
    if (!std::isfinite(v)) fail(path, "holds NaN or infinite values");
  }
  return t;
}

Tensor File::read_array(const std::string& path, DType as) const {
  hid_t mem_type = H5T_NATIVE_FLOAT;
  size_t mem_elem = 4;
  if (as == DType::U8) {
    mem_type = H5T_NATIVE_UINT8;
    mem_elem = 1;
  } else if (as == DType::I64) {
    mem_type = H5T_NATIVE_INT64;
    mem_elem = 8;
  } else if (as != DType::F32) {
    fail(path, fmt::format("cannot read a dataset as {}", resnet::dtype_name(as)));
  }
  Dataset d(H5Dopen2(id_, norm(path).c_str(), H5P_DEFAULT));
  if (!d.valid()) fail(path, "cannot open the dataset (missing, not a dataset, or corrupt)");
  Type type(H5Dget_type(d.get()));
  if (!type.valid()) fail(path, "cannot read the dataset's type");
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) fail(path, "not a numeric dataset");
  Space space(H5Dget_space(d.get()));
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0 || rank > 8) fail(path, "cannot read its dataspace");
  std::vector<hsize_t> h(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), h.data(), nullptr);
  std::vector<int64_t> dims;
  uint64_t count = 1;
  for (hsize_t v : h) {
    if (v > (uint64_t{1} << 34) || (v > 0 && count > (uint64_t{1} << 34) / v)) {
      fail(path, "absurd dataset size");
    }
    count *= v;
    dims.push_back(static_cast<int64_t>(v));
  }
  // The bytes the file holds for it: a contiguous dataset whose storage is smaller than its shape
  // claims (a truncated file, an edited shape) would otherwise read as fill values.
  Plist dcpl(H5Dget_create_plist(d.get()));
  const size_t elem = H5Tget_size(type.get());
  std::error_code size_ec;
  const auto file_bytes = std::filesystem::file_size(path_, size_ec);
  // Chunked or compressed data: at most 1100 times the file size (zlib's best ratio is ~1032).
  if (!size_ec && count * mem_elem > static_cast<uint64_t>(file_bytes) * 1100) {
    fail(path, fmt::format("dataset shape {} claims far more data than the file holds",
                           Shape(dims).str()));
  }
  if (dcpl.valid() && H5Pget_layout(dcpl.get()) == H5D_CONTIGUOUS && count > 0) {
    const hsize_t stored = H5Dget_storage_size(d.get());
    if (stored < count * elem) {
      fail(path, fmt::format("the file holds {} bytes for a dataset of shape {} ({} bytes): "
                             "truncated or inconsistent",
                             stored, Shape(dims).str(), count * elem));
    }
    haddr_t offset = H5Dget_offset(d.get());
    std::error_code ec;
    const auto fsize = std::filesystem::file_size(path_, ec);
    if (!ec && offset != HADDR_UNDEF && offset + count * elem > fsize) {
      fail(path, "the dataset extends past the end of the file (truncated)");
    }
  }
  Tensor t(Shape(dims), as);
  if (count > 0 && H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw()) < 0) {
    fail(path, "cannot read the data (truncated or corrupt file)");
  }
  return t;
}

std::vector<std::string> File::read_string_dataset(const std::string& path) const {
  Dataset d(H5Dopen2(id_, norm(path).c_str(), H5P_DEFAULT));
  if (!d.valid()) fail(path, "cannot open the dataset (missing, not a dataset, or corrupt)");
  Type type(H5Dget_type(d.get()));
  Space space(H5Dget_space(d.get()));
  if (!type.valid() || !space.valid() || H5Tget_class(type.get()) != H5T_STRING) {
    fail(path, "not a string dataset");
  }
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || n > 1000000) fail(path, "absurd number of strings");
  const size_t count = static_cast<size_t>(n);
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.get()) > 0) {
    // After a pre-flight, the child's copy (HDF5's read of a corrupt global heap can overflow).
    if (strings_) {
      const std::vector<std::string>* v = strings_->dataset(path);
      if (!v || v->size() != count) fail(path, "read failed (corrupt file)");
      return *v;
    }
    Type mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem.get(), H5T_VARIABLE);
    std::vector<char*> ptrs(count, nullptr);
    if (count > 0 && H5Dread(d.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0) {
      fail(path, "read failed (truncated or corrupt file)");
    }
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    if (count > 0) H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, ptrs.data());
    return out;
  }
  const size_t len = H5Tget_size(type.get());
  if (len == 0 || len > 65536) fail(path, fmt::format("unsupported string length {}", len));
  Type mem(H5Tcopy(H5T_C_S1));
  H5Tset_size(mem.get(), len);
  H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
  std::vector<char> buf(count * len);
  if (count > 0 && H5Dread(d.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0) {
    fail(path, "read failed (truncated or corrupt file)");
  }
  for (size_t i = 0; i < count; ++i) {
    const char* p = buf.data() + i * len;
    out.emplace_back(p, strnlen(p, len));
  }
  return out;
}

int64_t File::read_i64(const std::string& path) const {
  Dataset d(H5Dopen2(id_, norm(path).c_str(), H5P_DEFAULT));
  if (!d.valid()) fail(path, "cannot open the dataset (missing, not a dataset, or corrupt)");
  Type type(H5Dget_type(d.get()));
  Space space(H5Dget_space(d.get()));
  if (!type.valid() || H5Tget_class(type.get()) != H5T_INTEGER || !space.valid() ||
      H5Sget_simple_extent_npoints(space.get()) != 1) {
    fail(path, "not an integer scalar");
  }
  int64_t v = 0;
  if (H5Dread(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) < 0) {
    fail(path, "cannot read the data (truncated or corrupt file)");
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Writing

void File::create_group(const std::string& path) {
  std::string prefix;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const std::string part =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!part.empty()) {
      prefix += (prefix.empty() ? "" : "/") + part;
      if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) {
        Group g(H5Gcreate2(id_, prefix.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        if (!g.valid()) fail(prefix, "cannot create the group");
      }
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
}

void File::write_string(const std::string& obj, const std::string& name, const std::string& value,
                        bool utf8) {
  Type type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
  Space space(H5Screate(H5S_SCALAR));
  if (H5Aexists_by_name(id_, norm(obj).c_str(), name.c_str(), H5P_DEFAULT) > 0) {
    H5Adelete_by_name(id_, norm(obj).c_str(), name.c_str(), H5P_DEFAULT);
  }
  Attr a(H5Acreate_by_name(id_, norm(obj).c_str(), name.c_str(), type.get(), space.get(),
                           H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid()) fail(obj, fmt::format("cannot create attribute '{}'", name));
  const char* p = value.c_str();
  if (H5Awrite(a.get(), type.get(), &p) < 0)
    fail(obj, fmt::format("cannot write attribute '{}'", name));
}

namespace {

// One fixed-length string array attribute (numpy 'S<size>').
void write_fixed(hid_t file, const std::string& obj, const std::string& name,
                 const std::vector<std::string>& values, size_t size,
                 const std::function<void(const std::string&)>& fail) {
  Type type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), size);
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  H5Tset_cset(type.get(), H5T_CSET_ASCII);
  const hsize_t dims[1] = {values.size()};
  Space space(H5Screate_simple(1, dims, nullptr));
  Attr a(H5Acreate_by_name(file, obj.c_str(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid()) fail(fmt::format("cannot create attribute '{}'", name));
  std::string buf(values.size() * size, '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    std::memcpy(buf.data() + i * size, values[i].data(), values[i].size());
  }
  if (H5Awrite(a.get(), type.get(), buf.data()) < 0) {
    fail(fmt::format("cannot write attribute '{}'", name));
  }
}

}  // namespace

void File::write_strings(const std::string& obj, const std::string& name,
                         const std::vector<std::string>& values) {
  const std::string o = norm(obj);
  auto on_fail = [&](const std::string& what) { fail(obj, what); };
  if (values.empty()) {
    const hsize_t dims[1] = {0};
    Space space(H5Screate_simple(1, dims, nullptr));
    Attr a(H5Acreate_by_name(id_, o.c_str(), name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT,
                             H5P_DEFAULT, H5P_DEFAULT));
    if (!a.valid()) fail(obj, fmt::format("cannot create attribute '{}'", name));
    return;
  }
  size_t size = 1;
  for (const std::string& s : values) {
    if (s.size() > kAttributeLimit) {
      fail(obj, fmt::format("attribute '{}': the entry '{}...' is longer than {} bytes", name,
                            s.substr(0, 40), kAttributeLimit));
    }
    size = std::max(size, s.size());
  }
  // np.array_split into the fewest chunks whose bytes all fit under the limit.
  const size_t n = values.size();
  size_t chunks = 1;
  while (((n + chunks - 1) / chunks) * size > kAttributeLimit) ++chunks;
  if (chunks == 1) {
    write_fixed(id_, o, name, values, size, on_fail);
    return;
  }
  size_t pos = 0;
  for (size_t c = 0; c < chunks; ++c) {
    const size_t len = n / chunks + (c < n % chunks ? 1 : 0);
    std::vector<std::string> part(values.begin() + static_cast<std::ptrdiff_t>(pos),
                                  values.begin() + static_cast<std::ptrdiff_t>(pos + len));
    write_fixed(id_, o, fmt::format("{}{}", name, c), part, size, on_fail);
    pos += len;
  }
}

void File::write_f32(const std::string& path, const Tensor& t) {
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos) create_group(path.substr(0, slash));
  std::vector<hsize_t> dims(t.shape().dims().begin(), t.shape().dims().end());
  Space space(dims.empty() ? H5Screate(H5S_SCALAR)
                           : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Dataset d(H5Dcreate2(id_, path.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                       H5P_DEFAULT));
  if (!d.valid()) fail(path, "cannot create the dataset");
  Tensor plain = t.dtype() == DType::F32 ? t : t.to_f32();
  if (plain.numel() > 0 &&
      H5Dwrite(d.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, plain.f32()) < 0) {
    fail(path, "cannot write the dataset");
  }
}

void File::write_i64(const std::string& path, int64_t value) {
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos) create_group(path.substr(0, slash));
  Space space(H5Screate(H5S_SCALAR));
  Dataset d(H5Dcreate2(id_, path.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                       H5P_DEFAULT));
  if (!d.valid()) fail(path, "cannot create the dataset");
  if (H5Dwrite(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) < 0) {
    fail(path, "cannot write the dataset");
  }
}

void File::write_array(const std::string& path, const Tensor& t) {
  hid_t file_type = H5T_IEEE_F32LE, mem_type = H5T_NATIVE_FLOAT;
  if (t.dtype() == DType::U8) {
    file_type = H5T_STD_U8LE;
    mem_type = H5T_NATIVE_UINT8;
  } else if (t.dtype() == DType::I64) {
    file_type = H5T_STD_I64LE;
    mem_type = H5T_NATIVE_INT64;
  } else if (t.dtype() != DType::F32) {
    fail(path, "write_array takes uint8, int64 or float32 tensors");
  }
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) create_group(path.substr(0, slash));
  std::vector<hsize_t> dims(t.shape().dims().begin(), t.shape().dims().end());
  Space space(dims.empty() ? H5Screate(H5S_SCALAR)
                           : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Dataset d(
      H5Dcreate2(id_, path.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!d.valid()) fail(path, "cannot create the dataset");
  if (t.numel() > 0 && H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.raw()) < 0) {
    fail(path, "cannot write the dataset");
  }
}

void File::write_string_dataset(const std::string& path, const std::vector<std::string>& values,
                                bool variable_length) {
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) create_group(path.substr(0, slash));
  size_t size = 1;
  for (const std::string& v : values) size = std::max(size, v.size());
  Type type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), variable_length ? H5T_VARIABLE : size);
  if (!variable_length) H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  const hsize_t dims[1] = {values.size()};
  Space space(H5Screate_simple(1, dims, nullptr));
  Dataset d(H5Dcreate2(id_, path.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT,
                       H5P_DEFAULT));
  if (!d.valid()) fail(path, "cannot create the dataset");
  herr_t ok = 0;
  if (variable_length) {
    std::vector<const char*> ptrs;
    for (const std::string& v : values) ptrs.push_back(v.c_str());
    if (!values.empty())
      ok = H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data());
  } else {
    std::string buf(values.size() * size, '\0');
    for (size_t i = 0; i < values.size(); ++i) {
      std::memcpy(buf.data() + i * size, values[i].data(), values[i].size());
    }
    if (!values.empty())
      ok = H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
  }
  if (ok < 0) fail(path, "cannot write the dataset");
}

void File::remove(const std::string& path) {
  if (H5Ldelete(id_, path.c_str(), H5P_DEFAULT) < 0) fail(path, "cannot delete it");
}

}  // namespace resnet::h5
