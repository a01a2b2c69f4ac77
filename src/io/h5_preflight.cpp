// The child-process pre-flight read of an HDF5 file (see h5_preflight.h).
#include "io/h5_preflight.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "resnet/error.h"

namespace resnet::h5 {

namespace {

// Bounds of the walk: a corrupt file must not make the child itself run unbounded.
constexpr size_t kMaxObjects = 200000;          // groups and datasets visited
constexpr size_t kMaxLinks = 1000000;           // links listed, all groups together
constexpr hsize_t kMaxAttrsPerObject = 4096;    // attributes read per object
constexpr hssize_t kMaxAttrElements = 1 << 24;  // elements of one attribute
constexpr size_t kMaxBuffer = size_t{64} << 20;     // bytes of one read
constexpr uint64_t kMaxDatasetElements = uint64_t{1} << 34;  // the loaders refuse more

// Exit status of a child that ran out of memory (HDF5 reported a failed allocation).
constexpr int kExitNoMemory = 3;

// The page the child writes what it is reading into, so the parent can name it.
struct Shared {
  char where[1000];
  int no_memory;
};

// Reads everything in the file the way the loaders do; errors are ignored (the loader reports
// them), only crashes, hangs and memory exhaustion matter.
class Walker {
 public:
  Walker(Shared* shared, uint64_t file_size) : shared_(shared), file_size_(file_size) {}

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
      if (e->maj_num == H5E_RESOURCE && (e->min_num == H5E_NOSPACE || e->min_num == H5E_CANTALLOC)) {
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
      const hid_t a = H5Aopen_by_idx(file_, obj.c_str(), H5_INDEX_NAME, H5_ITER_INC, i,
                                     H5P_DEFAULT, H5P_DEFAULT);
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
      read_attribute(a);
      H5Aclose(a);
      // The loaders open attributes by name: that path too.
      if (!name.empty() && H5Aexists_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT) > 0) {
        const hid_t b = H5Aopen_by_name(file_, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
        if (b >= 0) {
          read_attribute(b);
          H5Aclose(b);
        } else {
          failed();
        }
      }
    }
  }

  void read_attribute(hid_t a) {
    const hid_t space = H5Aget_space(a);
    const hid_t type = H5Aget_type(a);
    if (space >= 0 && type >= 0) {
      const hssize_t n = H5Sget_simple_extent_npoints(space);
      if (n > 0 && n <= kMaxAttrElements) read_attribute_data(a, type, static_cast<size_t>(n));
    } else {
      failed();
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
  }

  void read_attribute_data(hid_t a, hid_t type, size_t n) {
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_STRING && H5Tis_variable_str(type) > 0) {
      const hid_t mem = H5Tcopy(H5T_C_S1);
      H5Tset_size(mem, H5T_VARIABLE);
      H5Tset_cset(mem, H5Tget_cset(type));
      std::vector<char*> ptrs(n, nullptr);
      if (H5Aread(a, mem, ptrs.data()) < 0) failed();
      for (char* p : ptrs) {
        if (p) H5free_memory(p);
      }
      H5Tclose(mem);
    } else if (cls == H5T_STRING) {
      const size_t size = H5Tget_size(type);
      if (size == 0 || size > kMaxBuffer / n) return;
      std::vector<char> buf(size * n);
      if (H5Aread(a, type, buf.data()) < 0) failed();
    } else if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
      const hid_t mem = H5Tget_native_type(type, H5T_DIR_ASCEND);
      if (mem < 0) {
        failed();
        return;
      }
      const size_t size = H5Tget_size(mem);
      if (size > 0 && size <= kMaxBuffer / n) {
        std::vector<char> buf(size * n);
        if (H5Aread(a, mem, buf.data()) < 0) failed();
      }
      H5Tclose(mem);
    }
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
    if (type >= 0 && space >= 0) {
      read_dataset(d, type, space);
    } else {
      failed();
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    H5Dclose(d);
  }

  // Reads the data in slabs of whole rows (first dimension), as the loaders' types: float32,
  // int64 (uint8 for bytes), strings.
  void read_dataset(hid_t d, hid_t type, hid_t space) {
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
    if (elem > 0 && row <= kMaxBuffer / elem) {
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
          H5Dvlen_reclaim(mem, mspace == H5S_ALL ? space : mspace, H5P_DEFAULT, buf.data());
        }
        if (mspace != H5S_ALL) H5Sclose(mspace);
        if (fspace != H5S_ALL) H5Sclose(fspace);
        if (ok < 0) {
          failed();
          break;
        }
      }
    }
    if (close_mem) H5Tclose(mem);
  }

  Shared* shared_;
  uint64_t file_size_;
  hid_t file_ = H5I_INVALID_HID;
  std::set<haddr_t> seen_;
  size_t objects_ = 0;
  size_t links_ = 0;
};

unsigned timeout_seconds() {
  if (const char* s = std::getenv("RESNET_H5_PREFLIGHT_TIMEOUT")) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(s, &end, 10);
    if (end != s && *end == '\0' && v > 0 && v < 86400) return static_cast<unsigned>(v);
  }
  return kPreflightTimeoutSeconds;
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

[[noreturn]] void child(const std::string& path, Shared* shared, uint64_t file_size,
                        uint64_t memory_limit, unsigned timeout) {
  // Die from the signal (not from handlers the parent installed, such as a crash reporter),
  // without a core file.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM, SIGTRAP, SIGSYS}) {
    struct sigaction sa{};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
  sigset_t all;
  sigfillset(&all);
  ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
  struct rlimit core{0, 0};
  ::setrlimit(RLIMIT_CORE, &core);
  if (memory_limit > 0) {
    struct rlimit as{};
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
    Walker(shared, file_size).run(path.c_str());
    code = shared->no_memory ? kExitNoMemory : 0;
  } catch (const std::bad_alloc&) {
    code = kExitNoMemory;
  } catch (...) {
    code = 0;  // not a crash: the loader reports what is wrong
  }
  ::_exit(code);
}

std::string signal_name(int sig) {
  const char* s = ::strsignal(sig);
  return s ? fmt::format("signal {}, {}", sig, s) : fmt::format("signal {}", sig);
}

}  // namespace

bool preflight_enabled() {
  const char* s = std::getenv("RESNET_H5_NO_PREFLIGHT");
  return s == nullptr || *s == '\0' || std::strcmp(s, "0") == 0;
}

void preflight(const std::string& path) {
  if (!preflight_enabled()) return;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return;  // the loader reports it
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) return;
  const unsigned timeout = timeout_seconds();
  // What HDF5 may allocate beyond what the process maps now: 1 GiB plus four times the file.
  const uint64_t now = address_space_now();
  const uint64_t budget = (uint64_t{1} << 30) + 4 * file_size;
  const uint64_t limit = now > 0 ? now + budget : 0;

  void* page = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                      -1, 0);
  if (page == MAP_FAILED) return;  // cannot check; load in-process
  auto* shared = new (page) Shared{};
  struct Unmap {
    void* p;
    ~Unmap() { ::munmap(p, sizeof(Shared)); }
  } unmap{page};

  const pid_t pid = ::fork();
  if (pid < 0) return;  // no fork (ENOMEM, EAGAIN): load in-process
  if (pid == 0) child(path, shared, file_size, limit, timeout);

  // The child's own alarm ends it after `timeout`; the parent kills it a little later if it
  // somehow survives (a blocked SIGALRM cannot happen after the unblock, but be sure).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout + 5);
  int status = 0;
  bool killed = false;
  long sleep_ns = 20000;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      return;  // reaped elsewhere (SIGCHLD ignored): nothing to report
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      killed = true;
      break;
    }
    const struct timespec ts{0, sleep_ns};
    ::nanosleep(&ts, nullptr);
    sleep_ns = std::min(sleep_ns * 2, 10000000L);
  }
  shared->where[sizeof(shared->where) - 1] = '\0';
  const std::string where = shared->where[0] ? shared->where : "the file";
  if (killed || (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)) {
    throw IoError(fmt::format("'{}': corrupt HDF5 file: the HDF5 library did not finish within {} "
                              "s reading {}",
                              path, timeout, where));
  }
  if (WIFSIGNALED(status)) {
    throw IoError(fmt::format("'{}': corrupt HDF5 file: the HDF5 library crashed ({}) reading {}",
                              path, signal_name(WTERMSIG(status)), where));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == kExitNoMemory) {
    throw IoError(fmt::format("'{}': corrupt HDF5 file: the HDF5 library ran out of memory "
                              "(limit {} MiB) reading {}",
                              path, budget >> 20, where));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    throw IoError(fmt::format("'{}': corrupt HDF5 file: the check process failed (exit status {}) "
                              "reading {}",
                              path, WEXITSTATUS(status), where));
  }
}

}  // namespace resnet::h5
