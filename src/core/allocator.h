// Host memory for tensor storage.
//
// Large blocks (64 KiB and more) come from an arena of big mapped segments (transparent huge
// pages where the kernel allows them on request). A freed block is coalesced with free
// neighbours and reused best-fit by later allocations of any size, so a training step that
// allocates the same activations and gradients every time runs without page faults after the
// first step, and a block freed by one layer serves a differently sized tensor of the next one.
// Small blocks come from malloc.
#pragma once

#include <cstddef>
#include <memory>

namespace resnet::detail {

inline constexpr size_t kTensorAlignment = 64;
// Arena segments are mapped this large (or as large as one request that needs more).
inline constexpr size_t kArenaSegmentBytes = size_t{128} << 20;

// 64-byte aligned; never returns null (throws resnet::Error when out of memory).
void* allocate_block(size_t bytes);
// `bytes` as passed to allocate_block.
void release_block(void* p, size_t bytes);
// A block owned by the returned pointer (released when its last copy goes).
std::shared_ptr<void> shared_block(size_t bytes);

struct MemoryStats {
  size_t live_bytes = 0;       // in allocated blocks now
  size_t peak_live_bytes = 0;  // the most at once since the last reset_peak_memory()
  size_t mapped_bytes = 0;     // arena segments mapped now (free blocks included)
};
MemoryStats memory_stats();
void reset_peak_memory();
// Unmaps the arena segments that hold no allocated block.
void release_free_segments();

}  // namespace resnet::detail
