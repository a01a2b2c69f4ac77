// The tensor memory arena (src/core/allocator.h): alignment, accounting, reuse of freed blocks
// across sizes, coalescing, and unmapping of free segments.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "core/allocator.h"
#include "resnet/tensor.h"

namespace resnet {
namespace {

using detail::allocate_block;
using detail::memory_stats;
using detail::release_block;

constexpr size_t kMiB = size_t{1} << 20;

TEST(Allocator, AlignedAndCounted) {
  const size_t live0 = memory_stats().live_bytes;
  for (size_t bytes : {size_t{1}, size_t{100}, size_t{70000}, 3 * kMiB + 5}) {
    void* p = allocate_block(bytes);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % detail::kTensorAlignment, 0u) << bytes;
    std::memset(p, 0xab, bytes);  // the whole block is writable
    EXPECT_GE(memory_stats().live_bytes, live0 + bytes);
    release_block(p, bytes);
    EXPECT_EQ(memory_stats().live_bytes, live0) << bytes;
  }
}

TEST(Allocator, FreedBlocksServeOtherSizesAndCoalesce) {
  detail::release_free_segments();
  // Two halves of a segment, freed, then one request for the whole segment: it fits in the
  // coalesced space without mapping more memory.
  const size_t half = detail::kArenaSegmentBytes / 2;
  const size_t mapped0 = memory_stats().mapped_bytes;
  void* a = allocate_block(half);
  void* b = allocate_block(half);
  const size_t mapped = memory_stats().mapped_bytes;
  EXPECT_EQ(mapped, mapped0 + detail::kArenaSegmentBytes);
  EXPECT_EQ(static_cast<char*>(a) + half, static_cast<char*>(b));
  release_block(a, half);
  release_block(b, half);
  void* c = allocate_block(2 * half);
  EXPECT_EQ(c, a);
  EXPECT_EQ(memory_stats().mapped_bytes, mapped);
  // Smaller blocks of other sizes reuse the freed space too.
  release_block(c, 2 * half);
  void* d = allocate_block(5 * kMiB);
  void* e = allocate_block(3 * kMiB + 64);
  EXPECT_EQ(memory_stats().mapped_bytes, mapped);
  release_block(d, 5 * kMiB);
  release_block(e, 3 * kMiB + 64);
}

TEST(Allocator, PeakAndReleaseOfFreeSegments) {
  detail::release_free_segments();
  detail::reset_peak_memory();
  const size_t live0 = memory_stats().live_bytes;
  std::vector<void*> blocks;
  for (int i = 0; i < 4; ++i) blocks.push_back(allocate_block(40 * kMiB));
  EXPECT_GE(memory_stats().peak_live_bytes, live0 + 160 * kMiB);
  EXPECT_GE(memory_stats().mapped_bytes, 160 * kMiB);
  for (void* p : blocks) release_block(p, 40 * kMiB);
  EXPECT_GE(memory_stats().peak_live_bytes, live0 + 160 * kMiB);  // the peak is remembered
  const size_t before = memory_stats().mapped_bytes;
  release_cached_memory();  // public name of release_free_segments
  EXPECT_LE(memory_stats().mapped_bytes + 160 * kMiB, before);
  // A segment bigger than the default one holds a single large request.
  void* big = allocate_block(300 * kMiB);
  std::memset(static_cast<char*>(big) + 300 * kMiB - 64, 1, 64);
  release_block(big, 300 * kMiB);
}

TEST(Allocator, TensorsUseTheArena) {
  const size_t live0 = memory_stats().live_bytes;
  {
    Tensor t = Tensor::zeros(Shape{1024, 1024});
    EXPECT_GE(memory_stats().live_bytes, live0 + 4 * kMiB);
    EXPECT_EQ(t.f32()[1024 * 1024 - 1], 0.0f);
  }
  EXPECT_EQ(memory_stats().live_bytes, live0);
}

}  // namespace
}  // namespace resnet
