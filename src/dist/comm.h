// Internal collectives of the distributed training (src/dist/). No MPI type leaves src/dist/:
// non-blocking operations are named by small integer handles. Every wait is bounded by
// dist::timeout() and throws DistError naming the operation; MPI errors are returned (not fatal)
// and turned into DistError too. Without MPI (or with one rank) every call is a no-op.
#pragma once

#include <cstdint>
#include <string>

#include "resnet/dist.h"

namespace resnet::dist::detail {

// Which communicator an operation uses: gradient buckets and BN statistics run on separate
// duplicates of MPI_COMM_WORLD so they can never be confused.
enum class Channel { Grad, Bn, Misc };

// Sum of floats over ranks, in place, started now; finish with wait(). `what` names the data in
// error messages.
int start_sum(float* data, int64_t n, Channel ch, const std::string& what);
// True when the operation finished (drives MPI progress); does not release the handle.
bool test(int handle);
// Waits (bounded) for the operation and releases the handle.
void wait(int handle);

// Blocking (bounded) collectives.
void broadcast(float* data, int64_t n, int root, Channel ch, const std::string& what);
void sum(double* data, int64_t n, Channel ch, const std::string& what);
// `n` doubles from every rank, concatenated in rank order into `recv` (size() * n).
void gather_all(const double* send, int64_t n, double* recv, Channel ch, const std::string& what);

}  // namespace resnet::dist::detail
