// A small RAII layer over the HDF5 C API for the Keras model files (the header does not include
// hdf5.h). Every error is an IoError naming the file and the path inside it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "resnet/tensor.h"

namespace resnet::h5 {

struct PreflightStrings;  // io/hdf5/preflight.h

// Keras's HDF5_OBJECT_HEADER_LIMIT: string-array attributes larger than this are split into
// name0, name1, ... (hdf5_format.save_attributes_to_hdf5_group).
constexpr size_t kAttributeLimit = 64512;

class File {
 public:
  // Opens an existing HDF5 file. Throws IoError naming the file when it is missing, is not an
  // HDF5 file, or is truncated/corrupt. The file is first read by a child process
  // (preflight.h), so a file that makes libhdf5 crash or hang is refused with an IoError, and
  // variable-length string attributes come from the child's copy.
  static File open(const std::string& path, bool writable = false);
  // Creates (or truncates) a file.
  static File create(const std::string& path);

  File(File&& o) noexcept;
  File& operator=(File&& o) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::string& path() const { return path_; }
  // Flushes and closes; throws IoError when HDF5 cannot finish writing.
  void close();

  // --- Reading. `obj` is a path inside the file ("" or "/" is the root group).
  // True when every link of `obj` exists.
  bool exists(const std::string& obj) const;
  bool is_group(const std::string& obj) const;
  bool is_dataset(const std::string& obj) const;
  // Names of the links of a group, sorted by name.
  std::vector<std::string> children(const std::string& group) const;
  bool has_attr(const std::string& obj, const std::string& name) const;
  std::vector<std::string> attr_names(const std::string& obj) const;
  // A string attribute, scalar or 1-D, fixed- or variable-length; an empty array of any type
  // gives no strings.
  std::vector<std::string> read_strings(const std::string& obj, const std::string& name) const;
  // `name`, or the split form name0, name1, ... concatenated (Keras
  // load_attributes_from_hdf5_group). Returns false when neither exists.
  bool read_split_strings(const std::string& obj, const std::string& name,
                          std::vector<std::string>& out) const;
  // Dataset dims and a numpy-like dtype name ("float32", "int64", "|S12", ...).
  struct DatasetInfo {
    std::vector<int64_t> dims;
    std::string dtype;
  };
  DatasetInfo dataset_info(const std::string& path) const;
  // A floating-point dataset as float32; refuses sizes the file cannot hold and NaN/infinite
  // values.
  Tensor read_f32(const std::string& path) const;
  // A numeric dataset converted by HDF5 to `as` (U8, I64 or F32), of the dataset's shape; refuses
  // sizes the file cannot hold (a truncated file is found before the read allocates). Values
  // are not checked.
  Tensor read_array(const std::string& path, DType as) const;
  // A 1-D string dataset, variable-length (after a pre-flight, the child's copy) or fixed-length
  // (NUL-padded).
  std::vector<std::string> read_string_dataset(const std::string& path) const;
  // An integer scalar (or one-element) dataset.
  int64_t read_i64(const std::string& path) const;

  // --- Writing.
  // Creates a group and its missing parents.
  void create_group(const std::string& path);
  // A scalar variable-length string attribute (as h5py writes a Python str).
  void write_string(const std::string& obj, const std::string& name, const std::string& value,
                    bool utf8 = false);
  // A 1-D fixed-length (NUL-padded) string array (as h5py writes a numpy 'S' array); split into
  // name0, name1, ... past kAttributeLimit bytes exactly as Keras does. An empty list is written
  // as Keras writes np.asarray([]): an empty float64 array.
  void write_strings(const std::string& obj, const std::string& name,
                     const std::vector<std::string>& values);
  // A float32 dataset of t's shape (parent groups created), contiguous, little-endian.
  void write_f32(const std::string& path, const Tensor& t);
  // A scalar int64 dataset.
  void write_i64(const std::string& path, int64_t value);
  // A dataset of t's shape and dtype (uint8, int64 or float32; parent groups created), as numpy
  // writes such arrays (SIGNS-style datasets, test fixtures).
  void write_array(const std::string& path, const Tensor& t);
  // A 1-D string dataset: variable-length (h5py str) or fixed-length NUL-padded (numpy 'S').
  void write_string_dataset(const std::string& path, const std::vector<std::string>& values,
                            bool variable_length);
  // Unlinks an object (for tests that damage files).
  void remove(const std::string& path);

 private:
  File(std::string path, int64_t id) : path_(std::move(path)), id_(id) {}
  [[noreturn]] void fail(const std::string& obj, const std::string& what) const;
  std::string path_;
  int64_t id_ = -1;
  std::shared_ptr<const PreflightStrings> strings_;  // null without a pre-flight
};

}  // namespace resnet::h5
