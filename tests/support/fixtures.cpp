#include "support/fixtures.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "resnet/error.h"

#ifndef RESNET_FIXTURE_DIR
#error "RESNET_FIXTURE_DIR must be defined (tests/CMakeLists.txt)"
#endif

static_assert(std::endian::native == std::endian::little, "fixture files are little-endian");

namespace resnet::testing {

namespace {

constexpr char kMagic[4] = {'R', 'N', 'F', 'X'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxRank = 8;
constexpr uint32_t kMaxName = 4096;

class Cursor {
 public:
  Cursor(const std::string& path, const std::vector<char>& buf) : path_(path), buf_(buf) {}

  void read(void* dst, size_t n, const char* what) {
    if (n > buf_.size() - pos_) {
      throw IoError("fixture file '" + path_ + "' is truncated: needs " + std::to_string(n) +
                    " bytes for " + what + " at offset " + std::to_string(pos_) + ", has " +
                    std::to_string(buf_.size() - pos_));
    }
    std::memcpy(dst, buf_.data() + pos_, n);
    pos_ += n;
  }
  template <class T>
  T get(const char* what) {
    T v;
    read(&v, sizeof(T), what);
    return v;
  }
  size_t pos() const { return pos_; }
  size_t remaining() const { return buf_.size() - pos_; }

 private:
  const std::string& path_;
  const std::vector<char>& buf_;
  size_t pos_ = 0;
};

}  // namespace

const Tensor& Fixture::at(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    throw IoError("fixture file '" + path_ + "' has no tensor '" + name + "'");
  }
  return it->second;
}

std::vector<std::string> Fixture::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : tensors_) out.push_back(k);
  return out;
}

Fixture read_fixture_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open fixture file '" + path + "'");
  std::vector<char> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError("cannot read fixture file '" + path + "'");

  Cursor cur(path, buf);
  char magic[4];
  cur.read(magic, 4, "the magic");
  if (std::memcmp(magic, kMagic, 4) != 0) {
    throw IoError("fixture file '" + path + "' is not an RNFX file (bad magic)");
  }
  uint32_t version = cur.get<uint32_t>("the version");
  if (version != kVersion) {
    throw IoError("fixture file '" + path + "' has version " + std::to_string(version) +
                  ", expected " + std::to_string(kVersion));
  }
  uint32_t count = cur.get<uint32_t>("the tensor count");
  std::map<std::string, Tensor> tensors;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = cur.get<uint32_t>("a name length");
    if (len == 0 || len > kMaxName) {
      throw IoError("fixture file '" + path + "': tensor " + std::to_string(i) +
                    " has an invalid name length " + std::to_string(len));
    }
    std::string name(len, '\0');
    cur.read(name.data(), len, "a name");
    uint32_t rank = cur.get<uint32_t>("a rank");
    if (rank > kMaxRank) {
      throw IoError("fixture file '" + path + "': tensor '" + name + "' has rank " +
                    std::to_string(rank));
    }
    std::vector<int64_t> dims(rank);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      dims[d] = cur.get<int64_t>("a dimension");
      if (dims[d] < 0) {
        throw IoError("fixture file '" + path + "': tensor '" + name +
                      "' has a negative dimension");
      }
      if (dims[d] != 0 && numel > std::numeric_limits<uint64_t>::max() / 4 / dims[d]) {
        throw IoError("fixture file '" + path + "': tensor '" + name + "' is too large");
      }
      numel *= static_cast<uint64_t>(dims[d]);
    }
    if (numel * 4 > cur.remaining()) {
      throw IoError("fixture file '" + path + "' is truncated: tensor '" + name + "' needs " +
                    std::to_string(numel * 4) + " bytes of data, " +
                    std::to_string(cur.remaining()) + " left");
    }
    Tensor t = Tensor::empty(Shape(std::move(dims)), DType::F32);
    if (numel > 0) cur.read(t.f32(), numel * 4, "tensor data");
    if (!tensors.emplace(name, std::move(t)).second) {
      throw IoError("fixture file '" + path + "' holds tensor '" + name + "' twice");
    }
  }
  if (cur.remaining() != 0) {
    throw IoError("fixture file '" + path + "' has " + std::to_string(cur.remaining()) +
                  " trailing bytes after " + std::to_string(count) + " tensors");
  }
  return Fixture(path, std::move(tensors));
}

Fixture load_fixture(const std::string& name) {
  return read_fixture_file(std::string(RESNET_FIXTURE_DIR) + "/" + name + ".rnfx");
}

void write_fixture_file(const std::string& path, const std::map<std::string, Tensor>& tensors) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError("cannot write fixture file '" + path + "'");
  auto put = [&](const void* p, size_t n) { out.write(static_cast<const char*>(p), n); };
  put(kMagic, 4);
  uint32_t version = kVersion, count = static_cast<uint32_t>(tensors.size());
  put(&version, 4);
  put(&count, 4);
  for (const auto& [name, t] : tensors) {
    Tensor f = t.to_f32();
    uint32_t len = static_cast<uint32_t>(name.size());
    put(&len, 4);
    put(name.data(), len);
    uint32_t rank = static_cast<uint32_t>(f.rank());
    put(&rank, 4);
    for (int64_t d : f.shape().dims()) put(&d, 8);
    put(f.f32(), static_cast<size_t>(f.numel()) * 4);
  }
  if (!out) throw IoError("error writing fixture file '" + path + "'");
}

}  // namespace resnet::testing
