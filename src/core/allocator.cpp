#include "core/allocator.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <utility>

#include "resnet/error.h"

namespace resnet::detail {
namespace {

constexpr size_t kMinArenaBlock = size_t{64} << 10;  // smaller blocks: malloc
constexpr size_t kHugePage = size_t{2} << 20;
// A free remainder smaller than this stays with the block it was cut from.
constexpr size_t kMinSplit = size_t{16} << 10;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

class Arena {
 public:
  static Arena& get() {
    // Never destroyed: tensors may be freed during static destruction.
    static Arena* arena = new Arena();
    return *arena;
  }

  void* allocate(size_t bytes) {
    const size_t n = round_up(std::max<size_t>(bytes, 1), kTensorAlignment);
    if (n < kMinArenaBlock) {
      void* p = std::aligned_alloc(kTensorAlignment, n);
      if (p == nullptr) throw Error(fmt::format("out of memory allocating {} bytes", bytes));
      count(n);
      return p;
    }
    std::lock_guard lock(mu_);
    auto it = free_by_size_.lower_bound({n, nullptr});
    if (it == free_by_size_.end()) {
      add_segment(n);
      it = free_by_size_.lower_bound({n, nullptr});
    }
    auto [size, p] = *it;
    take_free(p, size);
    if (size - n >= kMinSplit) {
      put_free(p + n, size - n);
      size = n;
    }
    used_.emplace(p, size);
    live_ += size;
    peak_ = std::max(peak_, live_);
    return p;
  }

  void release(void* ptr, size_t bytes) {
    const size_t n = round_up(std::max<size_t>(bytes, 1), kTensorAlignment);
    if (n < kMinArenaBlock) {
      std::free(ptr);
      std::lock_guard lock(mu_);
      live_ -= n;
      return;
    }
    std::lock_guard lock(mu_);
    char* p = static_cast<char*>(ptr);
    auto u = used_.find(p);
    if (u == used_.end()) std::abort();  // not ours: memory corruption, stop here
    size_t size = u->second;
    used_.erase(u);
    live_ -= size;
    // Coalesce with the free neighbours inside the same segment.
    if (!segments_.contains(p)) {
      auto prev = free_by_addr_.lower_bound(p);
      if (prev != free_by_addr_.begin()) {
        --prev;
        if (prev->first + prev->second == p) {
          char* q = prev->first;
          const size_t qs = prev->second;
          take_free(q, qs);
          p = q;
          size += qs;
        }
      }
    }
    auto next = free_by_addr_.find(p + size);
    if (next != free_by_addr_.end() && !segments_.contains(next->first)) {
      const size_t ns = next->second;
      take_free(next->first, ns);
      size += ns;
    }
    put_free(p, size);
  }

  MemoryStats stats() {
    std::lock_guard lock(mu_);
    return {live_, peak_, mapped_};
  }
  void reset_peak() {
    std::lock_guard lock(mu_);
    peak_ = live_;
  }

  void release_free_segments() {
    std::lock_guard lock(mu_);
    for (auto it = segments_.begin(); it != segments_.end();) {
      auto f = free_by_addr_.find(it->first);
      if (f != free_by_addr_.end() && f->second == it->second) {
        take_free(it->first, it->second);
        ::munmap(it->first, it->second);
        mapped_ -= it->second;
        it = segments_.erase(it);
      } else {
        ++it;
      }
    }
  }

 private:
  void count(size_t n) {
    std::lock_guard lock(mu_);
    live_ += n;
    peak_ = std::max(peak_, live_);
  }

  void add_segment(size_t n) {
    const size_t size = std::max(kArenaSegmentBytes, round_up(n, kHugePage));
    // Map one huge page more and trim, so the segment starts on a huge-page boundary.
    void* raw = ::mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
      throw Error(fmt::format("out of memory allocating {} bytes (mapping {} MiB)", n,
                              (size + kHugePage) >> 20));
    }
    char* base = static_cast<char*>(raw);
    char* aligned = reinterpret_cast<char*>(round_up(reinterpret_cast<uintptr_t>(base), kHugePage));
    const size_t head = static_cast<size_t>(aligned - base);
    if (head > 0) ::munmap(base, head);
    if (kHugePage - head > 0) ::munmap(aligned + size, kHugePage - head);
#ifdef MADV_HUGEPAGE
    ::madvise(aligned, size, MADV_HUGEPAGE);  // advice only: fine when refused
#endif
    segments_.emplace(aligned, size);
    mapped_ += size;
    put_free(aligned, size);
  }

  void put_free(char* p, size_t size) {
    free_by_addr_.emplace(p, size);
    free_by_size_.emplace(size, p);
  }
  void take_free(char* p, size_t size) {
    free_by_addr_.erase(p);
    free_by_size_.erase({size, p});
  }

  std::mutex mu_;
  std::map<char*, size_t> segments_;                 // base -> size
  std::map<char*, size_t> free_by_addr_;             // free blocks by address (coalescing)
  std::set<std::pair<size_t, char*>> free_by_size_;  // the same blocks by size (best fit)
  std::unordered_map<char*, size_t> used_;           // allocated arena blocks -> size
  size_t live_ = 0, peak_ = 0, mapped_ = 0;
};

}  // namespace

void* allocate_block(size_t bytes) { return Arena::get().allocate(bytes); }
void release_block(void* p, size_t bytes) { Arena::get().release(p, bytes); }
std::shared_ptr<void> shared_block(size_t bytes) {
  return {allocate_block(bytes), [bytes](void* p) { release_block(p, bytes); }};
}
MemoryStats memory_stats() { return Arena::get().stats(); }
void reset_peak_memory() { Arena::get().reset_peak(); }
void release_free_segments() { Arena::get().release_free_segments(); }

}  // namespace resnet::detail
