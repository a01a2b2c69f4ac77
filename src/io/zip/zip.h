// Internal: ZIP archives, the container of PyTorch checkpoints (torch.save since PyTorch 1.6) and
// of Keras 3 .keras files. Reading: the central directory (zip64 too), stored and deflated members
// (zlib), every member's CRC-32 checked. Writing: stored members, each member's data aligned to 64
// bytes as PyTorch's writer does (so that readers may map tensors in place). Every offset and size
// read from a file is checked against the file before it is used; a member whose name would leave
// the archive's folder ("..", an absolute path) is refused.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace resnet::zip_detail {

struct ZipMember {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;  // uncompressed
  uint64_t local_header_offset = 0;
};

// The bytes of an archive start with the local-file-header signature "PK\3\4".
bool looks_like_zip(std::string_view head);

class ZipReader {
 public:
  // Opens `path` and reads its central directory. `max_member_size` bounds what read() will
  // inflate (a member claiming more is refused: zip bombs). Throws IoError naming the file.
  explicit ZipReader(const std::string& path, uint64_t max_member_size = uint64_t{1} << 34);
  // The same over bytes in memory (fuzz targets, tests); `name` is used in messages.
  ZipReader(std::string bytes, const std::string& name,
            uint64_t max_member_size = uint64_t{1} << 34);

  const std::string& path() const { return path_; }
  const std::vector<ZipMember>& members() const { return members_; }
  // The member of that exact name, or nullptr.
  const ZipMember* find(std::string_view name) const;
  // The member's bytes, inflated and CRC-checked. Throws IoError naming the file and the member.
  std::string read(const ZipMember& member);
  std::string read(std::string_view name);

 private:
  void parse_directory();
  void read_at(uint64_t offset, void* out, uint64_t n, const std::string& what);
  [[noreturn]] void fail(const std::string& msg) const;

  std::string path_;
  std::ifstream file_;
  std::string bytes_;  // when reading from memory
  bool in_memory_ = false;
  uint64_t file_size_ = 0;
  uint64_t max_member_size_;
  std::vector<ZipMember> members_;
};

// Builds an archive of stored (uncompressed) members in memory; `bytes()` then goes to
// write_file_atomic. Members larger than 4 GiB, or archives past 4 GiB, get zip64 records.
class ZipWriter {
 public:
  void add(const std::string& name, std::string_view data);
  // Finishes the archive (central directory) and returns its bytes.
  std::string finish();

 private:
  struct Entry {
    std::string name;
    uint32_t crc32;
    uint64_t size;
    uint64_t offset;
  };
  std::string out_;
  std::vector<Entry> entries_;
};

}  // namespace resnet::zip_detail
