// Data-parallel training over MPI (docs/distributed.md).
//
// Launched by `mpirun -np N resnet train ...` (or any program calling init()), every process
// ("rank") holds a full copy of the model. Model::fit then trains synchronously: rank 0's initial
// weights are broadcast, every rank reads its own shard of each global batch, gradients are
// averaged (weighted by shard size) with non-blocking allreduces overlapped with the backward pass,
// and every rank applies the same update, so the weights stay bit-identical. Only rank 0 prints
// and writes files. Without MPI (library built without it, or a process not started by mpirun)
// everything here describes a single process: rank 0 of 1, and the calls cost nothing.
#pragma once

#include <cstdint>
#include <vector>

#include "resnet/error.h"

namespace resnet::dist {

// A collective did not complete in time, or MPI reported an error. The message names the rank,
// the operation and the likely cause (another rank stopped or crashed).
class DistError : public Error {
 public:
  using Error::Error;
};

// Whether the library was built with MPI support (CMake option RESNET_WITH_MPI).
bool available();
// Starts MPI when this process was launched by an MPI launcher (mpirun/mpiexec/srun: detected
// from the environment) and MPI support is built in; otherwise does nothing. Safe to call twice.
// Reads RESNET_DIST_TIMEOUT (seconds, default 300) for set_timeout.
void init(int* argc, char*** argv);
// Ends MPI if init() started it (waits for the other ranks first).
void finalize();
// Whether more than one process takes part (init() started MPI and the world has > 1 rank).
bool active();
int rank();
int size();
// Waits for every rank (bounded by the timeout).
void barrier();
// Ends every process of the job with `code` (MPI_Abort); in a single process, std::exit(code).
[[noreturn]] void abort(int code);

// Seconds any collective may wait before DistError is thrown (default 300; 0 waits forever).
void set_timeout(double seconds);
double timeout();

// Every rank's `value`, in rank order (a collective: every rank must call it).
std::vector<uint64_t> all_gather(uint64_t value);
// Element-wise sum over ranks, in place, identical on every rank (a collective).
void all_reduce_sum(std::vector<double>& values);

}  // namespace resnet::dist
