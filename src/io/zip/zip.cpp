// ZIP archives (APPNOTE 6.3): the end-of-central-directory record, zip64 records and extra fields,
// the central directory, local headers; stored and deflated members.
#include "io/zip/zip.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "resnet/error.h"

namespace resnet::zip_detail {

namespace {
constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50;
constexpr uint32_t kEnd64LocatorSig = 0x07064b50;
constexpr uint64_t kMaxMembers = 1000000;
// Deflate cannot compress better than about 1032:1; a member claiming more is damaged or hostile.
constexpr uint64_t kMaxDeflateRatio = 1040;

uint16_t u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t u64(const unsigned char* p) {
  return static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32);
}

void put16(std::string& s, uint16_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>(v >> 8));
}
void put32(std::string& s, uint32_t v) {
  put16(s, static_cast<uint16_t>(v & 0xffff));
  put16(s, static_cast<uint16_t>(v >> 16));
}
void put64(std::string& s, uint64_t v) {
  put32(s, static_cast<uint32_t>(v & 0xffffffffu));
  put32(s, static_cast<uint32_t>(v >> 32));
}

uint32_t crc_of(std::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t n = std::min<size_t>(data.size() - pos, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data() + pos), static_cast<uInt>(n));
    pos += n;
  }
  return static_cast<uint32_t>(crc);
}

// A name that stays inside the archive's folder when extracted: relative, no "..", no NUL.
bool safe_name(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.front() == '\\') return false;
  if (name.find('\0') != std::string::npos || name.find('\\') != std::string::npos) return false;
  if (name.size() >= 2 && name[1] == ':') return false;  // C:...
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0 && end - start == 2) return false;
    start = end + 1;
  }
  return true;
}
}  // namespace

bool looks_like_zip(std::string_view head) {
  return head.size() >= 4 && u32(reinterpret_cast<const unsigned char*>(head.data())) == kLocalSig;
}

ZipReader::ZipReader(const std::string& path, uint64_t max_member_size)
    : path_(path), max_member_size_(max_member_size) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail("is a folder, not a file");
  file_.open(path, std::ios::binary);
  if (!file_) {
    const int err = errno;
    if (!std::filesystem::exists(path, ec)) fail("no such file");
    fail(fmt::format("cannot open: {}", std::strerror(err)));
  }
  file_.seekg(0, std::ios::end);
  file_size_ = static_cast<uint64_t>(file_.tellg());
  parse_directory();
}

ZipReader::ZipReader(std::string bytes, const std::string& name, uint64_t max_member_size)
    : path_(name), bytes_(std::move(bytes)), in_memory_(true), max_member_size_(max_member_size) {
  file_size_ = bytes_.size();
  parse_directory();
}

void ZipReader::fail(const std::string& msg) const {
  throw IoError(fmt::format("{}: {}", path_, msg));
}

void ZipReader::read_at(uint64_t offset, void* out, uint64_t n, const std::string& what) {
  if (offset > file_size_ || n > file_size_ - offset) {
    fail(fmt::format("truncated zip archive ({} lies past the end of the file)", what));
  }
  if (in_memory_) {
    std::memcpy(out, bytes_.data() + offset, n);
    return;
  }
  file_.clear();
  file_.seekg(static_cast<std::streamoff>(offset));
  file_.read(static_cast<char*>(out), static_cast<std::streamsize>(n));
  if (!file_ || static_cast<uint64_t>(file_.gcount()) != n) {
    fail(fmt::format("read error ({})", what));
  }
}

void ZipReader::parse_directory() {
  if (file_size_ < 22) fail("not a zip archive (too short for its end record)");
  // The end record sits in the last 22 + 65535 (comment) bytes.
  const uint64_t tail_size = std::min<uint64_t>(file_size_, 22 + 65535);
  std::string tail(tail_size, '\0');
  read_at(file_size_ - tail_size, tail.data(), tail_size, "end of central directory");
  const auto* t = reinterpret_cast<const unsigned char*>(tail.data());
  int64_t end_pos = -1;
  for (int64_t i = static_cast<int64_t>(tail_size) - 22; i >= 0; --i) {
    if (u32(t + i) == kEndSig && static_cast<uint64_t>(i) + 22 + u16(t + i + 20) <= tail_size) {
      end_pos = i;
      break;
    }
  }
  if (end_pos < 0) fail("not a zip archive (no end-of-central-directory record)");
  const unsigned char* e = t + end_pos;
  if (u16(e + 4) != 0 || u16(e + 6) != 0) fail("multi-disk zip archives are not supported");
  uint64_t count = u16(e + 10);
  uint64_t dir_size = u32(e + 12);
  uint64_t dir_offset = u32(e + 16);
  const uint64_t end_offset = file_size_ - tail_size + static_cast<uint64_t>(end_pos);
  if (count == 0xffff || dir_size == 0xffffffffu || dir_offset == 0xffffffffu) {
    // zip64: a locator just before the end record points at the zip64 end record.
    if (end_offset < 20) fail("zip64 archive without its end-record locator");
    unsigned char loc[20];
    read_at(end_offset - 20, loc, 20, "zip64 end-record locator");
    if (u32(loc) != kEnd64LocatorSig) fail("zip64 archive without its end-record locator");
    const uint64_t rec_offset = u64(loc + 8);
    unsigned char rec[56];
    read_at(rec_offset, rec, 56, "zip64 end record");
    if (u32(rec) != kEnd64Sig) fail("damaged zip64 end record");
    count = u64(rec + 32);
    dir_size = u64(rec + 40);
    dir_offset = u64(rec + 48);
  }
  if (count > kMaxMembers) fail(fmt::format("absurd member count {}", count));
  if (dir_offset > file_size_ || dir_size > file_size_ - dir_offset) {
    fail("truncated zip archive (the central directory lies past the end of the file)");
  }
  std::string dir(dir_size, '\0');
  read_at(dir_offset, dir.data(), dir_size, "central directory");
  const auto* d = reinterpret_cast<const unsigned char*>(dir.data());
  uint64_t pos = 0;
  members_.reserve(count);
  for (uint64_t k = 0; k < count; ++k) {
    if (dir_size - pos < 46 || u32(d + pos) != kCentralSig) {
      fail(fmt::format("damaged central directory (entry {} of {})", k + 1, count));
    }
    const unsigned char* c = d + pos;
    const uint16_t flags = u16(c + 8);
    ZipMember m;
    m.method = u16(c + 10);
    m.crc32 = u32(c + 16);
    m.compressed_size = u32(c + 20);
    m.size = u32(c + 24);
    const uint16_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    m.local_header_offset = u32(c + 42);
    if (dir_size - pos - 46 < static_cast<uint64_t>(name_len) + extra_len + comment_len) {
      fail(fmt::format("damaged central directory (entry {} of {})", k + 1, count));
    }
    m.name.assign(reinterpret_cast<const char*>(c + 46), name_len);
    // zip64 extra field (id 1): the 64-bit values of the fields that read 0xffffffff, in order.
    const unsigned char* x = c + 46 + name_len;
    for (uint32_t xp = 0; xp + 4 <= extra_len;) {
      const uint16_t id = u16(x + xp), len = u16(x + xp + 2);
      if (xp + 4 + len > extra_len) fail(fmt::format("member '{}': damaged extra field", m.name));
      if (id == 1) {
        const unsigned char* v = x + xp + 4;
        uint32_t used = 0;
        auto take = [&](uint64_t& field) {
          if (used + 8 > len) fail(fmt::format("member '{}': damaged zip64 field", m.name));
          field = u64(v + used);
          used += 8;
        };
        if (m.size == 0xffffffffu) take(m.size);
        if (m.compressed_size == 0xffffffffu) take(m.compressed_size);
        if (m.local_header_offset == 0xffffffffu) take(m.local_header_offset);
      }
      xp += 4 + len;
    }
    pos += 46 + static_cast<uint64_t>(name_len) + extra_len + comment_len;
    if (!safe_name(m.name)) {
      fail(fmt::format("member '{}': a name outside the archive's folder is refused", m.name));
    }
    if (flags & 1) fail(fmt::format("member '{}': encrypted members are not supported", m.name));
    if (m.method != 0 && m.method != 8) {
      fail(
          fmt::format("member '{}': compression method {} is not supported (stored or deflated "
                      "only)",
                      m.name, m.method));
    }
    if (m.local_header_offset >= file_size_ ||
        m.compressed_size > file_size_ - m.local_header_offset) {
      fail(fmt::format("member '{}' lies past the end of the file (truncated archive)", m.name));
    }
    if (find(m.name) != nullptr) fail(fmt::format("member '{}' appears twice", m.name));
    members_.push_back(std::move(m));
  }
}

const ZipMember* ZipReader::find(std::string_view name) const {
  for (const ZipMember& m : members_) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::string ZipReader::read(std::string_view name) {
  const ZipMember* m = find(name);
  if (m == nullptr) fail(fmt::format("the archive has no member '{}'", name));
  return read(*m);
}

std::string ZipReader::read(const ZipMember& m) {
  const std::string what = fmt::format("member '{}'", m.name);
  if (m.size > max_member_size_) {
    fail(fmt::format("{} claims {} bytes uncompressed, more than the limit of {}", what, m.size,
                     max_member_size_));
  }
  if (m.method == 0 && m.size != m.compressed_size) {
    fail(fmt::format("{}: stored member with different sizes ({} and {})", what, m.size,
                     m.compressed_size));
  }
  if (m.method == 8 && m.size / kMaxDeflateRatio > m.compressed_size + 64) {
    fail(fmt::format("{} claims {} bytes from {} compressed: not a real deflate stream", what,
                     m.size, m.compressed_size));
  }
  unsigned char local[30];
  read_at(m.local_header_offset, local, 30, what + " header");
  if (u32(local) != kLocalSig) fail(fmt::format("{}: damaged local header", what));
  const uint64_t data_offset = m.local_header_offset + 30 + u16(local + 26) + u16(local + 28);
  if (data_offset > file_size_ || m.compressed_size > file_size_ - data_offset) {
    fail(fmt::format("{} is truncated", what));
  }
  std::string out;
  if (m.method == 0) {
    out.resize(m.size);
    read_at(data_offset, out.data(), m.size, what);
  } else {
    std::string packed(m.compressed_size, '\0');
    read_at(data_offset, packed.data(), m.compressed_size, what);
    out.resize(m.size);
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(fmt::format("{}: zlib init failed", what));
    uint64_t in_pos = 0, out_pos = 0;
    int rc = Z_OK;
    while (rc == Z_OK) {
      const uint64_t in_chunk = std::min<uint64_t>(packed.size() - in_pos, 1u << 30);
      const uint64_t out_chunk = std::min<uint64_t>(out.size() - out_pos, 1u << 30);
      zs.next_in = reinterpret_cast<Bytef*>(packed.data() + in_pos);
      zs.avail_in = static_cast<uInt>(in_chunk);
      // One spare byte of output space detects a stream longer than its declared size.
      unsigned char spare = 0;
      const bool full = out_chunk == 0;
      zs.next_out = full ? &spare : reinterpret_cast<Bytef*>(out.data() + out_pos);
      zs.avail_out = full ? 1u : static_cast<uInt>(out_chunk);
      rc = inflate(&zs, Z_NO_FLUSH);
      in_pos += in_chunk - zs.avail_in;
      if (!full) out_pos += out_chunk - zs.avail_out;
      if (full && zs.avail_out == 0) {
        inflateEnd(&zs);
        fail(fmt::format("{} inflates to more than its declared {} bytes", what, m.size));
      }
      if (rc == Z_BUF_ERROR && in_pos == packed.size()) break;
      if (rc == Z_BUF_ERROR) rc = Z_OK;  // more output space follows
    }
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
      fail(fmt::format("{}: damaged deflate data ({})", what,
                       rc == Z_BUF_ERROR ? "truncated stream" : (zs.msg ? zs.msg : "zlib error")));
    }
    if (out_pos != m.size) {
      fail(fmt::format("{} inflates to {} bytes, not its declared {}", what, out_pos, m.size));
    }
  }
  if (crc_of(out) != m.crc32) {
    fail(fmt::format("{}: CRC-32 mismatch (the data is damaged)", what));
  }
  return out;
}

void ZipWriter::add(const std::string& name, std::string_view data) {
  if (!safe_name(name)) throw IoError(fmt::format("zip member name '{}' is not allowed", name));
  Entry e{name, crc_of(data), data.size(), out_.size()};
  const bool zip64 = e.size >= 0xffffffffu || e.offset >= 0xffffffffu;
  // The data starts on a 64-byte boundary: pad with an extra field of id 0x4246 ("FB"), as
  // PyTorch's writer does.
  const uint64_t header = 30 + name.size() + (zip64 ? 20 : 0);
  uint64_t pad = (64 - (e.offset + header + 4) % 64) % 64;
  put32(out_, kLocalSig);
  put16(out_, zip64 ? 45 : 20);  // version needed
  put16(out_, 0);                // flags
  put16(out_, 0);                // stored
  put16(out_, 0);                // time
  put16(out_, 0x21);             // date: 1980-01-01
  put32(out_, e.crc32);
  put32(out_, zip64 ? 0xffffffffu : static_cast<uint32_t>(e.size));
  put32(out_, zip64 ? 0xffffffffu : static_cast<uint32_t>(e.size));
  put16(out_, static_cast<uint16_t>(name.size()));
  put16(out_, static_cast<uint16_t>((zip64 ? 20 : 0) + 4 + pad));
  out_ += name;
  if (zip64) {
    put16(out_, 1);
    put16(out_, 16);
    put64(out_, e.size);
    put64(out_, e.size);
  }
  put16(out_, 0x4246);
  put16(out_, static_cast<uint16_t>(pad));
  out_.append(pad, 'Z');
  out_.append(data.data(), data.size());
  entries_.push_back(std::move(e));
}

std::string ZipWriter::finish() {
  const uint64_t dir_offset = out_.size();
  for (const Entry& e : entries_) {
    const bool zip64 = e.size >= 0xffffffffu || e.offset >= 0xffffffffu;
    put32(out_, kCentralSig);
    put16(out_, zip64 ? 45 : 20);  // made by
    put16(out_, zip64 ? 45 : 20);  // needed
    put16(out_, 0);
    put16(out_, 0);
    put16(out_, 0);
    put16(out_, 0x21);
    put32(out_, e.crc32);
    put32(out_, zip64 ? 0xffffffffu : static_cast<uint32_t>(e.size));
    put32(out_, zip64 ? 0xffffffffu : static_cast<uint32_t>(e.size));
    put16(out_, static_cast<uint16_t>(e.name.size()));
    put16(out_, zip64 ? 28 : 0);  // extra
    put16(out_, 0);               // comment
    put16(out_, 0);               // disk
    put16(out_, 0);               // internal attributes
    put32(out_, 0);               // external attributes
    put32(out_, zip64 ? 0xffffffffu : static_cast<uint32_t>(e.offset));
    out_ += e.name;
    if (zip64) {
      put16(out_, 1);
      put16(out_, 24);
      put64(out_, e.size);
      put64(out_, e.size);
      put64(out_, e.offset);
    }
  }
  const uint64_t dir_size = out_.size() - dir_offset;
  const bool zip64 = entries_.size() >= 0xffff || dir_offset >= 0xffffffffu;
  if (zip64) {
    const uint64_t rec = out_.size();
    put32(out_, kEnd64Sig);
    put64(out_, 44);
    put16(out_, 45);
    put16(out_, 45);
    put32(out_, 0);
    put32(out_, 0);
    put64(out_, entries_.size());
    put64(out_, entries_.size());
    put64(out_, dir_size);
    put64(out_, dir_offset);
    put32(out_, kEnd64LocatorSig);
    put32(out_, 0);
    put64(out_, rec);
    put32(out_, 1);
  }
  put32(out_, kEndSig);
  put16(out_, 0);
  put16(out_, 0);
  put16(out_, zip64 ? 0xffff : static_cast<uint16_t>(entries_.size()));
  put16(out_, zip64 ? 0xffff : static_cast<uint16_t>(entries_.size()));
  put32(out_, zip64 ? 0xffffffffu : static_cast<uint32_t>(dir_size));
  put32(out_, zip64 ? 0xffffffffu : static_cast<uint32_t>(dir_offset));
  put16(out_, 0);
  entries_.clear();
  return std::move(out_);
}

}  // namespace resnet::zip_detail
