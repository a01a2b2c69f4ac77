// The child-process pre-flight read of an HDF5 file (see preflight.h).
#include "io/hdf5/preflight.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "resnet/error.h"
#include "resnet/runtime.h"

namespace resnet::h5 {

namespace {

// Bounds of the walk: a corrupt file must not make the child itself run unbounded.
constexpr size_t kMaxObjects = 200000;                       // groups and datasets visited
constexpr size_t kMaxLinks = 1000000;                        // links listed, all groups together
constexpr hsize_t kMaxAttrsPerObject = 4096;                 // attributes read per object
constexpr hssize_t kMaxAttrElements = 1 << 24;               // elements of one attribute
constexpr size_t kMaxBuffer = size_t{64} << 20;              // bytes of one read
constexpr size_t kContiguousProbe = size_t{64} << 10;        // bytes read of a contiguous dataset
constexpr uint64_t kMaxDatasetElements = uint64_t{1} << 34;  // the loaders refuse more

// Exit status of a child that ran out of memory (HDF5 reported a failed allocation).
constexpr int kExitNoMemory = 3;
// Exit status of a child that read the file but could not hand its strings back.
constexpr int kExitNoStrings = 4;

// The page the child writes what it is reading into, so the parent can name it.
struct Shared {
  char where[1000];
  int no_memory;
};

// Where the child writes the variable-length strings it read: records of
//   kind ('A' attribute, 'D' dataset), u32 length + object path, [u32 length + attribute name],
//   u32 count, count x (u32 length + bytes)
// into a memfd the parent reads once the child has finished.
class Sink {
 public:
  explicit Sink(int fd) : fd_(fd) {}
  ~Sink() { flush(); }
  void put(char kind, const std::string& obj, const std::string* name,
           const std::vector<std::string>& values) {
    if (fd_ < 0) return;
    buf_.push_back(kind);
    str(obj);
    if (name) str(*name);
    u32(static_cast<uint32_t>(values.size()));
    for (const std::string& v : values) str(v);
    if (buf_.size() > (size_t{1} << 20)) flush();
  }
  void flush() {
    size_t off = 0;
    while (fd_ >= 0 && off < buf_.size()) {
      const ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fd_ = -1;
        failed_ = true;
        break;
      }
      off += static_cast<size_t>(n);
    }
    buf_.clear();
  }

 private:
  void u32(uint32_t v) {
    char b[4];
    std::memcpy(b, &v, 4);
    buf_.append(b, 4);
  }
  void str(const std::string& v) {
    u32(static_cast<uint32_t>(v.size()));
    buf_ += v;
  }
  int fd_;
  std::string buf_;

 public:
  // True when the strings could not all be written (the memfd is full).
  bool failed_ = false;
};

// Reads everything in the file the way the loaders do; errors are ignored (the loader reports
// them), only crashes, hangs and memory exhaustion matter.
class Walker {
 public:
  Walker(Shared* shared, Sink* sink) : shared_(shared), sink_(sink) {}

  void run(const char* path) {
    note("the superblock");
    if (H5Fis_hdf5(path) <= 0) return;
    file_ = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file_ < 0) return;
    std::vector<std::string> stack{"/"};
    while (!stack.empty() && objects_ < kMaxObjects) {
      const std::string group = stack.back();
      stack.pop_back();
      note(fmt::format("group '{}'", group));
      H5O_info_t info;
      if (H5Oget_info_by_name(file_, group.c_str(), &info, H5P_DEFAULT) < 0) {
        failed();
        continue;
      }
      if (!seen_.insert(info.addr).second) continue;  // hard-link cycles
      ++objects_;
      attributes(group, info.num_attrs);
      for (const std::string& name : links(group)) {
        const std::string child = group == "/" ? "/" + name : group + "/" + name;
        note(fmt::format("link '{}'", child));
        if (H5Lexists(file_, child.c_str(), H5P_DEFAULT) <= 0) continue;
        if (H5Oexists_by_name(file_, child.c_str(), H5P_DEFAULT) <= 0) continue;
        H5O_info_t ci;
        if (H5Oget_info_by_name(file_, child.c_str(), &ci, H5P_DEFAULT) < 0) {
          failed();
          continue;
        }
        if (ci.type == H5O_TYPE_GROUP) {
          if (!seen_.count(ci.addr)) stack.push_back(child);
        } else if (ci.type == H5O_TYPE_DATASET && seen_.insert(ci.addr).second) {
          ++objects_;
          attributes(child, ci.num_attrs);
          dataset(child);
        }
      }
    }
    // Closing flushes nothing (read-only) but walks the metadata cache: part of the check.
    note("closing the file");
    H5Fclose(file_);
  }

 private:
  void note(const std::string& what) {
    const size_t n = std::min(what.size(), sizeof(shared_->where) - 1);
    std::memcpy(shared_->where, what.data(), n);
    shared_->where[n] = '\0';
  }

  // After a failed HDF5 call: was it a failed allocation?
  void failed() {
    auto walk = [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
      if (e->maj_num == H5E_RESOURCE &&
          (e->min_num == H5E_NOSPACE || e->min_num == H5E_CANTALLOC)) {
        *static_cast<bool*>(data) = true;
      }
      return 0;
    };
    bool no_memory = false;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk, &no_memory);
    H5Eclear2(H5E_DEFAULT);
    if (no_memory) shared_->no_memory = 1;
  }

  std::vector<std::string> links(const std::string& group) {
    std::vector<std::string> names;
    const hid_t g = H5Gopen2(file_, group.c_str(), H5P_DEFAULT);
    if (g < 0) {
      failed();
      return names;
    }
    struct State {
      std::vector<std::string>* names;
      size_t budget;
    } state{&names, kMaxLinks - std::min(kMaxLinks, links_)};
    auto cb = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
      auto* s = static_cast<State*>(data);
      if (s->names->size() >= s->budget) return 1;
      s->names->emplace_back(name);
      return 0;
    };
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, cb, &state) < 0) failed();
    H5Gclose(g);
    links_ += names.size();
    std::sort(names.begin(), names.end());
    return names;
  }

  void attributes(const std::string& obj, hsize_t count) {
    count = std::min(count, kMaxAttrsPerObject);
    for (hsize_t i = 0; i < count; ++i) {
      note(fmt::format("attribute #{} of '{}'", i, obj));
      const hid_t a = H5Aopen_by_idx(file_, obj.c_str(), H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT,
                                     H5P_DEFAULT);
      if (a < 0) {
        failed();
        continue;
      }
      const ssize_t len = H5Aget_name(a, 0, nullptr);
      std::string name;
      if (len > 0 && len < 65536) {
        name.assign(static_cast<size_t>(len) + 1, '\0');
        H5Aget_name(a, name.size(), name.data());
        name.resize(static_cast<size_t>(len));
      }
      note(fmt::format("attribute '{}' of '{}'", name, obj));
      // The loaders open attributes by name: read it that way (the strings the parent gets),
      // then by index.
      bool recorded = false;
      if (!name.empty() && H5Aexists_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT) > 0) {
        const hid_t b = H5Aopen_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
        if (b >= 0) {
          recorded = read_attribute(b, obj, name);
          H5Aclose(b);
        } else {
          failed();
        }
      }
      read_attribute(a, obj, recorded || name.empty() ? std::string() : name);
      H5Aclose(a);
    }
  }

  // Reads one attribute; a variable-length string one read successfully goes to the sink when
  // `name` is not empty (returns true then).
  bool read_attribute(hid_t a, const std::string& obj, const std::string& name) {
    const hid_t space = H5Aget_space(a);
    const hid_t type = H5Aget_type(a);
    bool recorded = false;
    if (space >= 0 && type >= 0) {
      const hssize_t n = H5Sget_simple_extent_npoints(space);
      if (n > 0 && n <= kMaxAttrElements) {
        recorded = read_attribute_data(a, type, static_cast<size_t>(n), obj, name);
      }
    } else {
      failed();
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return recorded;
  }

  bool read_attribute_data(hid_t a, hid_t type, size_t n, const std::string& obj,
                           const std::string& name) {
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING && H5Tis_variable_str(type) > 0) {
      const hid_t mem = H5Tcopy(H5T_C_S1);
      H5Tset_size(mem, H5T_VARIABLE);
      H5Tset_cset(mem, H5Tget_cset(type));
      std::vector<char*> ptrs(n, nullptr);
      const bool ok = H5Aread(a, mem, ptrs.data()) >= 0;
      if (!ok) failed();
      std::vector<std::string> values;
      for (char* p : ptrs) {
        values.emplace_back(p ? p : "");
        if (p) H5free_memory(p);
      }
      H5Tclose(mem);
      // Hand HDF5's free lists back to malloc now: glibc's checks on free() then catch many heap
      // overflows (an abort here is reported as a crash).
      H5garbage_collect();
      if (ok && !name.empty()) {
        sink_->put('A', obj, &name, values);
        return true;
      }
    } else if (cls == H5T_STRING) {
      const size_t size = H5Tget_size(type);
      if (size == 0 || size > kMaxBuffer / n) return false;
      std::vector<char> buf(size * n);
      if (H5Aread(a, type, buf.data()) < 0) failed();
    } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
      const hid_t mem = H5Tget_native_type(type, H5T_DIR_ASCEND);
      if (mem < 0) {
        failed();
        return false;
      }
      const size_t size = H5Tget_size(mem);
      if (size > 0 && size <= kMaxBuffer / n) {
        std::vector<char> buf(size * n);
        if (H5Aread(a, mem, buf.data()) < 0) failed();
      }
      H5Tclose(mem);
    }
    return false;
  }

  void dataset(const std::string& path) {
    note(fmt::format("dataset '{}'", path));
    const hid_t d = H5Dopen2(file_, path.c_str(), H5P_DEFAULT);
    if (d < 0) {
      failed();
      return;
    }
    const hid_t type = H5Dget_type(d);
    const hid_t space = H5Dget_space(d);
    // Contiguous data is plain bytes at an offset the loaders check against the file size: read
    // only its first rows here (the datatype conversion), not all of it (a ResNet-50 file would
    // be read twice). Chunked (B-tree, filters) and compact data are read whole.
    bool contiguous = false;
    const hid_t dcpl = H5Dget_create_plist(d);
    if (dcpl >= 0) {
      contiguous = H5Pget_layout(dcpl) == H5D_CONTIGUOUS;
      H5Pclose(dcpl);
    }
    if (type >= 0 && space >= 0) {
      read_dataset(d, type, space, path, contiguous ? kContiguousProbe : kMaxBuffer);
    } else {
      failed();
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    H5Dclose(d);
  }

  // Reads the data in slabs of whole rows (first dimension), as the loaders' types: float32,
  // int64 (uint8 for bytes), strings.
  // `max_bytes`: stop after about that many bytes (at least one row); variable-length strings
  // are always read whole.
  void read_dataset(hid_t d, hid_t type, hid_t space, const std::string& path, size_t max_bytes) {
    const int rank = H5Sget_simple_extent_ndims(space);
    if (rank < 0 || rank > 32) return;
    std::vector<hsize_t> dims(static_cast<size_t>(rank));
    if (rank > 0 && H5Sget_simple_extent_dims(space, dims.data(), nullptr) < 0) return;
    uint64_t row = 1;  // elements per index of the first dimension
    for (int i = 1; i < rank; ++i) {
      if (dims[i] == 0) return;
      if (row > kMaxDatasetElements / dims[i]) return;
      row *= dims[i];
    }
    const uint64_t rows = rank == 0 ? 1 : dims[0];
    if (rows == 0 || rows > kMaxDatasetElements / row) return;
    const H5T_class_t cls = H5Tget_class(type);
    const bool vlen = cls == H5T_STRING && H5Tis_variable_str(type) > 0;
    hid_t mem = H5I_INVALID_HID;
    bool close_mem = false;
    size_t elem = 0;
    if (cls == H5T_FLOAT) {
      mem = H5T_NATIVE_FLOAT;
    } else if (cls == H5T_INTEGER) {
      mem = H5Tget_size(type) == 1 && H5Tget_sign(type) == H5T_SGN_NONE ? H5T_NATIVE_UINT8
                                                                        : H5T_NATIVE_INT64;
    } else if (cls == H5T_STRING) {
      mem = H5Tcopy(H5T_C_S1);
      close_mem = true;
      if (vlen) {
        H5Tset_size(mem, H5T_VARIABLE);
      } else {
        const size_t len = H5Tget_size(type);
        if (len == 0 || len > 65536) {
          H5Tclose(mem);
          return;
        }
        H5Tset_size(mem, len);
        H5Tset_strpad(mem, H5T_STR_NULLPAD);
      }
    } else {
      return;
    }
    elem = vlen ? sizeof(char*) : H5Tget_size(mem);
    std::vector<std::string> strings;  // of a variable-length string dataset
    bool complete = vlen;
    if (!vlen && max_bytes < kMaxBuffer && elem > 0 && rank > 0) {
      // A probe: the leading block of about max_bytes (whole last dimensions first).
      std::vector<hsize_t> start(static_cast<size_t>(rank), 0), cnt(static_cast<size_t>(rank), 1);
      uint64_t budget = std::max<uint64_t>(1, max_bytes / elem), total = 1;
      for (int i = rank - 1; i >= 0; --i) {
        cnt[i] = std::min<uint64_t>(dims[i], budget);
        total *= cnt[i];
        budget = std::max<uint64_t>(1, budget / cnt[i]);
      }
      std::vector<char> buf(total * elem);
      const hid_t fspace = H5Scopy(space);
      H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
      const hid_t mspace = H5Screate_simple(rank, cnt.data(), nullptr);
      if (H5Dread(d, mem, mspace, fspace, H5P_DEFAULT, buf.data()) < 0) failed();
      H5Sclose(mspace);
      H5Sclose(fspace);
    } else if (elem > 0 && row <= kMaxBuffer / elem) {
      const uint64_t per = std::max<uint64_t>(1, kMaxBuffer / (row * elem));
      std::vector<char> buf;
      for (uint64_t r0 = 0; r0 < rows; r0 += per) {
        const uint64_t count = std::min(per, rows - r0);
        buf.assign(count * row * elem, 0);
        hid_t mspace = H5S_ALL, fspace = H5S_ALL;
        if (rank > 0 && count < rows) {
          std::vector<hsize_t> start(static_cast<size_t>(rank), 0), cnt(dims);
          start[0] = r0;
          cnt[0] = count;
          fspace = H5Scopy(space);
          H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
          mspace = H5Screate_simple(rank, cnt.data(), nullptr);
        }
        const herr_t ok = H5Dread(d, mem, mspace, fspace, H5P_DEFAULT, buf.data());
        if (ok >= 0 && vlen) {
          const size_t k = static_cast<size_t>(count * row);
          char** ptrs = reinterpret_cast<char**>(buf.data());
          for (size_t i = 0; i < k && strings.size() < (size_t{1} << 24); ++i) {
            strings.emplace_back(ptrs[i] ? ptrs[i] : "");
          }
          H5Dvlen_reclaim(mem, mspace == H5S_ALL ? space : mspace, H5P_DEFAULT, buf.data());
          H5garbage_collect();
        }
        if (mspace != H5S_ALL) H5Sclose(mspace);
        if (fspace != H5S_ALL) H5Sclose(fspace);
        if (ok < 0) {
          failed();
          complete = false;
          break;
        }
      }
    } else {
      complete = false;
    }
    if (close_mem) H5Tclose(mem);
    if (complete && strings.size() == rows * row) sink_->put('D', path, nullptr, strings);
  }

  Shared* shared_;
  Sink* sink_;
  hid_t file_ = H5I_INVALID_HID;
  std::set<haddr_t> seen_;
  size_t objects_ = 0;
  size_t links_ = 0;
};

unsigned timeout_seconds() {
  return static_cast<unsigned>(runtime_options().h5_preflight_timeout_seconds);
}

// The address space the process uses now (bytes), from /proc/self/statm; 0 when unknown.
uint64_t address_space_now() {
  const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128] = {};
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return 0;
  return std::strtoull(buf, nullptr, 10) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

[[noreturn]] void child(const std::string& path, Shared* shared, int fd, uint64_t memory_limit,
                        unsigned timeout) {
  // Die from the signal (not from handlers the parent installed, such as a crash reporter),
  // without a core file.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM, SIGTRAP, SIGSYS}) {
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
  // Quiet: glibc's heap-corruption reports and anything HDF5 prints would only be noise; the
  // parent reports what happened.
  const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
  }
  struct rlimit core {
    0, 0
  };
  ::setrlimit(RLIMIT_CORE, &core);
  if (memory_limit > 0) {
    struct rlimit as {};
    if (::getrlimit(RLIMIT_AS, &as) == 0 &&
        (as.rlim_max == RLIM_INFINITY || memory_limit < as.rlim_max)) {
      as.rlim_cur = memory_limit;
      ::setrlimit(RLIMIT_AS, &as);
    }
  }
  ::alarm(timeout);
  int code = 0;
  try {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    Sink sink(fd);
    Walker(shared, &sink).run(path.c_str());
    sink.flush();
    code = shared->no_memory ? kExitNoMemory : sink.failed_ ? kExitNoStrings : 0;
  } catch (const std::bad_alloc&) {
    code = kExitNoMemory;
  } catch (...) {
    code = 5;  // the walk stopped early: do not let the parent go where it did not
  }
  ::_exit(code);
}

std::string signal_name(int sig) {
  const char* s = ::strsignal(sig);
  return s ? fmt::format("signal {}, {}", sig, s) : fmt::format("signal {}", sig);
}

// Parses the child's records (see Sink); false when they are malformed.
bool parse_strings(const std::string& data, PreflightStrings& out) {
  size_t pos = 0;
  auto u32 = [&](uint32_t& v) {
    if (data.size() - pos < 4) return false;
    std::memcpy(&v, data.data() + pos, 4);
    pos += 4;
    return true;
  };
  auto str = [&](std::string& v) {
    uint32_t n = 0;
    if (!u32(n) || data.size() - pos < n) return false;
    v.assign(data, pos, n);
    pos += n;
    return true;
  };
  while (pos < data.size()) {
    const char kind = data[pos++];
    std::string obj, name;
    if (!str(obj) || (kind == 'A' && !str(name))) return false;
    uint32_t count = 0;
    if (!u32(count) || count > data.size() - pos) return false;  // each value takes >= 4 bytes
    std::vector<std::string> values(count);
    for (auto& v : values) {
      if (!str(v)) return false;
    }
    if (kind == 'A') {
      out.attributes.emplace(std::make_pair(std::move(obj), std::move(name)), std::move(values));
    } else if (kind == 'D') {
      out.datasets.emplace(std::move(obj), std::move(values));
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string absolute_h5_path(const std::string& obj) {
  size_t b = 0;
  while (b < obj.size() && obj[b] == '/') ++b;
  const std::string rest = obj.substr(b);
  if (rest.empty() || rest == ".") return "/";
  return "/" + rest;
}

const std::vector<std::string>* PreflightStrings::attribute(const std::string& obj,
                                                            const std::string& name) const {
  const auto it = attributes.find({absolute_h5_path(obj), name});
  return it == attributes.end() ? nullptr : &it->second;
}

const std::vector<std::string>* PreflightStrings::dataset(const std::string& path) const {
  const auto it = datasets.find(absolute_h5_path(path));
  return it == datasets.end() ? nullptr : &it->second;
}

bool preflight_enabled() { return runtime_options().h5_preflight; }

std::shared_ptr<const PreflightStrings> preflight(const std::string& path) {
  if (!preflight_enabled()) return nullptr;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return nullptr;  // the loader reports it
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) return nullptr;
  const unsigned timeout = timeout_seconds();
  // What HDF5 may allocate beyond what the process maps now: 1 GiB plus four times the file.
  const uint64_t now = address_space_now();
  const uint64_t budget = (uint64_t{1} << 30) + 4 * file_size;
  const uint64_t limit = now > 0 ? now + budget : 0;

  void* page =
      ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return nullptr;  // cannot check; load in-process
  auto* shared = new (page) Shared{};
  struct Cleanup {
    void* p;
    int fd;
    ~Cleanup() {
      ::munmap(p, sizeof(Shared));
      if (fd >= 0) ::close(fd);
    }
  } cleanup{page, ::memfd_create("resnet-h5-preflight", MFD_CLOEXEC)};
  if (cleanup.fd < 0) return nullptr;

  const pid_t pid = ::fork();
  if (pid < 0) return nullptr;  // no fork (ENOMEM, EAGAIN): load in-process
  if (pid == 0) child(path, shared, cleanup.fd, limit, timeout);

  // The child's own alarm (SIGALRM, default action, unblocked) ends it after `timeout`, so a
  // blocking wait is bounded and wakes the moment the child is done.
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, 0);
    if (r == pid) break;
    if (r < 0 && errno == EINTR) continue;
    return nullptr;  // reaped elsewhere (SIGCHLD ignored): nothing to report
  }
  shared->where[sizeof(shared->where) - 1] = '\0';
  const std::string where = shared->where[0] ? shared->where : "the file";
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
    throw IoError(
        fmt::format("'{}': corrupt HDF5 file: the HDF5 library did not finish within {} "
                    "s reading {}",
                    path, timeout, where));
  }
  if (WIFSIGNALED(status)) {
    throw IoError(fmt::format("'{}': corrupt HDF5 file: the HDF5 library crashed ({}) reading {}",
                              path, signal_name(WTERMSIG(status)), where));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == kExitNoMemory) {
    throw IoError(
        fmt::format("'{}': corrupt HDF5 file: the HDF5 library ran out of memory "
                    "(limit {} MiB) reading {}",
                    path, budget >> 20, where));
  }
  // The file read without trouble but the strings did not come back (no room for the memfd):
  // the loader reads them itself.
  if (WIFEXITED(status) && WEXITSTATUS(status) == kExitNoStrings) return nullptr;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw IoError(
        fmt::format("'{}': corrupt HDF5 file: the check process failed (status {}) "
                    "reading {}",
                    path, status, where));
  }
  // The strings the child read.
  struct stat st {};
  if (::fstat(cleanup.fd, &st) != 0 || st.st_size < 0) return nullptr;
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n =
        ::pread(cleanup.fd, data.data() + off, data.size() - off, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  auto out = std::make_shared<PreflightStrings>();
  if (off != data.size() || !parse_strings(data, *out)) {
    throw IoError(
        fmt::format("'{}': corrupt HDF5 file: the check process returned malformed "
                    "strings",
                    path));
  }
  return out;
}

}  // namespace resnet::h5
