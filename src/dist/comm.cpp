// The MPI layer of the distributed training: init/finalize, bounded waits, collectives.
#include "dist/comm.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "resnet/runtime.h"

#ifdef RESNET_HAVE_MPI
// The C API only (OpenMPI and MPICH would pull in their deprecated C++ bindings).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace resnet::dist {

namespace {
double g_timeout = 300.0;
}  // namespace

void set_timeout(double seconds) {
  if (!(seconds >= 0.0)) {
    throw ConfigError(fmt::format("distributed timeout must be >= 0 seconds, got {}", seconds));
  }
  g_timeout = seconds;
}
double timeout() { return g_timeout; }

namespace {
// The launcher's environment: OpenMPI's mpirun, PMIx, PMI-1/2 (MPICH hydra, srun).
[[maybe_unused]] bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"}) {
    if (std::getenv(v) != nullptr) return true;
  }
  return false;
}

void read_timeout_env() { g_timeout = runtime_options().dist_timeout_seconds; }
}  // namespace

#ifdef RESNET_HAVE_MPI

namespace {
struct State {
  bool started = false;  // we called MPI_Init_thread
  int rank = 0;
  int size = 1;
  MPI_Comm comms[3] = {MPI_COMM_NULL, MPI_COMM_NULL, MPI_COMM_NULL};
  struct Op {
    MPI_Request req = MPI_REQUEST_NULL;
    std::string what;
    bool busy = false;
  };
  std::vector<Op> ops;
};
State g;

MPI_Comm comm(detail::Channel ch) { return g.comms[static_cast<int>(ch)]; }

void check(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw DistError(
      fmt::format("distributed training: rank {} of {}: MPI error in {}: {} (another "
                  "rank probably stopped or crashed)",
                  g.rank, g.size, what, std::string(text, len)));
}

// Polls `req` until it completes or the timeout passes. Yields the core while waiting (the other
// ranks may share it) after a short spin.
void wait_request(MPI_Request& req, const std::string& what) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  for (int64_t polls = 0;; ++polls) {
    int done = 0;
    check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    if (g_timeout > 0 && std::chrono::duration<double>(Clock::now() - t0).count() > g_timeout) {
      throw DistError(fmt::format(
          "distributed training: rank {} of {} waited more than {} s for {}: another rank stopped, "
          "crashed or hangs (raise the limit with RESNET_DIST_TIMEOUT)",
          g.rank, g.size, g_timeout, what));
    }
    if (polls < 2000) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(polls < 20000 ? 20 : 200));
    }
  }
}

int as_count(int64_t n, const std::string& what) {
  if (n < 0 || n > INT_MAX) {
    throw DistError(
        fmt::format("distributed training: {} has {} elements, more than one MPI "
                    "message carries",
                    what, n));
  }
  return static_cast<int>(n);
}
}  // namespace

bool available() { return true; }

void init(int* argc, char*** argv) {
  read_timeout_env();
  int already = 0;
  MPI_Initialized(&already);
  if (already || !launched_by_mpi()) {
    if (!already) return;
  } else {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
      throw DistError("distributed training: MPI_Init_thread failed");
    }
    g.started = true;
  }
  if (g.comms[0] != MPI_COMM_NULL) return;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g.size);
  for (MPI_Comm& c : g.comms) {
    check(MPI_Comm_dup(MPI_COMM_WORLD, &c), "MPI_Comm_dup");
    MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  }
}

void finalize() {
  if (g.comms[0] != MPI_COMM_NULL) {
    for (MPI_Comm& c : g.comms) MPI_Comm_free(&c);
  }
  if (g.started) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
    g.started = false;
  }
  g.rank = 0;
  g.size = 1;
}

bool active() { return g.size > 1 && g.comms[0] != MPI_COMM_NULL; }
int rank() { return g.rank; }
int size() { return g.size; }

void barrier() {
  if (!active()) return;
  MPI_Request req;
  check(MPI_Ibarrier(comm(detail::Channel::Misc), &req), "a barrier");
  wait_request(req, "a barrier");
}

void abort(int code) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (init && !fin && g.size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

std::vector<uint64_t> all_gather(uint64_t value) {
  std::vector<uint64_t> out(static_cast<size_t>(g.size), value);
  if (!active()) return out;
  MPI_Request req;
  check(MPI_Iallgather(&value, 1, MPI_UINT64_T, out.data(), 1, MPI_UINT64_T,
                       comm(detail::Channel::Misc), &req),
        "all_gather");
  wait_request(req, "all_gather");
  return out;
}

void all_reduce_sum(std::vector<double>& values) {
  detail::sum(values.data(), static_cast<int64_t>(values.size()), detail::Channel::Misc,
              "all_reduce_sum");
}

namespace detail {

int start_sum(float* data, int64_t n, Channel ch, const std::string& what) {
  if (!active()) return -1;
  int h = 0;
  while (h < static_cast<int>(g.ops.size()) && g.ops[h].busy) ++h;
  if (h == static_cast<int>(g.ops.size())) g.ops.emplace_back();
  State::Op& op = g.ops[h];
  op.what = what;
  check(
      MPI_Iallreduce(MPI_IN_PLACE, data, as_count(n, what), MPI_FLOAT, MPI_SUM, comm(ch), &op.req),
      what);
  op.busy = true;
  return h;
}

bool test(int handle) {
  if (handle < 0) return true;
  State::Op& op = g.ops.at(handle);
  if (op.req == MPI_REQUEST_NULL) return true;
  int done = 0;
  check(MPI_Test(&op.req, &done, MPI_STATUS_IGNORE), op.what);
  return done != 0;
}

void wait(int handle) {
  if (handle < 0) return;
  State::Op& op = g.ops.at(handle);
  if (op.req != MPI_REQUEST_NULL) wait_request(op.req, op.what);
  op.busy = false;
}

void broadcast(float* data, int64_t n, int root, Channel ch, const std::string& what) {
  if (!active()) return;
  for (int64_t off = 0; off < n; off += (1 << 28)) {
    const int64_t len = std::min<int64_t>(n - off, 1 << 28);
    MPI_Request req;
    check(MPI_Ibcast(data + off, static_cast<int>(len), MPI_FLOAT, root, comm(ch), &req), what);
    wait_request(req, what);
  }
}

void sum(double* data, int64_t n, Channel ch, const std::string& what) {
  if (!active()) return;
  // Gathered and added in rank order, so every rank gets bit-identical sums.
  std::vector<double> all(static_cast<size_t>(n) * g.size);
  gather_all(data, n, all.data(), ch, what);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (int r = 0; r < g.size; ++r) s += all[static_cast<size_t>(r) * n + i];
    data[i] = s;
  }
}

void gather_all(const double* send, int64_t n, double* recv, Channel ch, const std::string& what) {
  if (!active()) {
    std::copy_n(send, n, recv);
    return;
  }
  MPI_Request req;
  check(MPI_Iallgather(send, as_count(n, what), MPI_DOUBLE, recv, as_count(n, what), MPI_DOUBLE,
                       comm(ch), &req),
        what);
  wait_request(req, what);
}

}  // namespace detail

#else  // no MPI: one process

bool available() { return false; }
void init(int*, char***) { read_timeout_env(); }
void finalize() {}
bool active() { return false; }
int rank() { return 0; }
int size() { return 1; }
void barrier() {}
void abort(int code) { std::exit(code); }
std::vector<uint64_t> all_gather(uint64_t value) { return {value}; }
void all_reduce_sum(std::vector<double>&) {}

namespace detail {
int start_sum(float*, int64_t, Channel, const std::string&) { return -1; }
bool test(int) { return true; }
void wait(int) {}
void broadcast(float*, int64_t, int, Channel, const std::string&) {}
void sum(double*, int64_t, Channel, const std::string&) {}
void gather_all(const double* send, int64_t n, double* recv, Channel, const std::string&) {
  std::copy_n(send, n, recv);
}
}  // namespace detail

#endif

}  // namespace resnet::dist
