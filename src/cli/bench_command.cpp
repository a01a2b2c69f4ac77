// `resnet bench`: throughput, FLOP rate, peak memory and (with --profile) where the time goes, for
// one zoo model at one batch size, training or inference, on random data; and (--mode serve) the
// throughput and latency of N threads calling predict on one model at once, as a server would.
//
// Conventions (also in docs/performance.md):
// - A step is one train_step (forward, loss, backward, optimizer update) or one inference
//   forward. img/s = batch / median step time; ms/step is the median (and the mean is printed).
// - FLOPs count convolutions and Dense layers only (2 * multiply-adds); a training step counts
//   3x the forward FLOPs (forward, backward data, backward weights).
// - Peak: the FP32 rate of a measured FMA loop (independent vector FMAs on every thread, best of
//   several runs; AVX-512 when the CPU has it, else AVX2/FMA), and for reference the rate implied
//   by the CPU flags (cores x FLOP/cycle x clock).
// - Peak RSS: VmHWM from /proc/self/status (the process high-water mark, model build included).
// - Serve: --clients threads each send --steps requests of --batch (default 1) samples through
//   Model::predict on the one model, one after another, after --warmup untimed ones, all starting
//   together. Throughput = samples of all clients / wall time from the start to the last answer;
//   latency = each request's own time (p50, p90, p99 by nearest rank, mean, max). Each call runs
//   on max(1, threads / clients) intra-op threads (Model::set_intra_op_threads) unless
//   --intra-op-threads says otherwise.
#include <fmt/format.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <latch>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cli/commands.h"
#include "core/allocator.h"
#include "ops/ops.h"
#include "ops/profile.h"
#include "resnet/error.h"
#include "resnet/models.h"
#include "resnet/optim.h"

namespace resnet::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------------
// Peak FP32 rate.

#if defined(__x86_64__)
// 12 independent accumulator chains hide the FMA latency (4 cycles) on two FMA pipes.
__attribute__((target("avx512f"))) double fma_loop_avx512(int64_t iters) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, s);
  volatile float sink = lanes[0];
  (void)sink;
  return static_cast<double>(iters) * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"))) double fma_loop_avx2(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  volatile float sink = lanes[0];
  (void)sink;
  return static_cast<double>(iters) * 12 * 8 * 2;
}
#endif

struct Peak {
  double measured_gflops = 0;  // FMA loop on `threads` threads, best of every round
  double flags_gflops = 0;     // threads x FLOP/cycle x clock (/proc/cpuinfo)
  std::string isa;             // "avx512", "avx2", "scalar": the best the kernels may use
  int flop_per_cycle = 0;
  double ghz = 0;
  int rounds = 0;
};

double cpuinfo_ghz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  double best = 0;
  while (std::getline(in, line)) {
    if (line.rfind("cpu MHz", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) best = std::max(best, std::atof(line.c_str() + colon + 1));
    }
  }
  return best / 1000.0;
}

// The peak FP32 rate of `threads` threads with the vector ISA the kernels may use
// (ops::kernel_isa(): ONEDNN_MAX_CPU_ISA=AVX2 measures AVX2's peak on an AVX-512 CPU). A round
// is 20 runs of about 2 ms each, and measure_peak() keeps the best run of every round it is
// given: the bench measures one round before the timed steps and one after, so that a moment
// of load during either (another process taking a core) does not lower the peak, which would
// show a kernel above 100% of it.
void measure_peak(Peak& p, int threads) {
  if (p.rounds == 0) {
    p.ghz = cpuinfo_ghz();
    p.isa = ops::kernel_isa();
#if defined(__x86_64__)
    // Two FMA pipes of the vector width (Zen 4 splits 512-bit ops into two 256-bit halves, so the
    // measured loop, not this table, is the number to trust).
    p.flop_per_cycle = p.isa == "avx512" ? 64 : p.isa == "avx2" ? 32 : 8;
#else
    p.flop_per_cycle = 2;
#endif
    p.flags_gflops = threads * p.flop_per_cycle * p.ghz;
  }
  ++p.rounds;
#if defined(__x86_64__)
  if (p.isa == "scalar") return;
  const bool avx512 = p.isa == "avx512";
  const int64_t iters = avx512 ? 200'000 : 400'000;
  for (int rep = 0; rep < 20; ++rep) {
    double flop = 0;
    const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : flop)
    { flop += avx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters); }
    p.measured_gflops = std::max(p.measured_gflops, flop / seconds_since(t0) / 1e9);
  }
#endif
}

// ---------------------------------------------------------------------------------------------

int64_t vm_hwm_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

int64_t vm_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

// Forward FLOPs of one sample: convolutions and Dense layers (2 per multiply-add).
double forward_flops_per_sample(const Model& m) {
  double flops = 0;
  for (const auto& l : m.layers()) {
    if (l->class_name() != "Conv2D" && l->class_name() != "Dense") continue;
    const Tensor& k = l->param("kernel").value;
    const int64_t out_ch = k.shape()[-1];
    const double macs_per_out = static_cast<double>(k.numel()) / static_cast<double>(out_ch);
    flops += 2.0 * macs_per_out * static_cast<double>(m.output_shape(*l).numel());
  }
  return flops;
}

// Op name (ops/profile.h) -> the kind shown in the profile.
std::string op_kind(const std::string& op) {
  if (op == "conv2d_forward") return "conv fwd";
  if (op == "conv2d_forward_fused") return "conv fwd (fused BN/add/ReLU, inference)";
  if (op == "conv2d_backward_data") return "conv bwd data";
  if (op == "conv2d_backward_weights") return "conv bwd weights";
  if (op.rfind("batchnorm_forward", 0) == 0) return "BN fwd";
  if (op == "batchnorm_backward") return "BN bwd";
  if (op.rfind("eltwise", 0) == 0 || op.rfind("softmax", 0) == 0) return "eltwise (act, softmax)";
  if (op == "add") return "eltwise add (residual, grad sums)";
  if (op.rfind("pool", 0) == 0) return "pooling";
  if (op == "reorder" || op == "to_plain") return "reorders";
  if (op.rfind("zero_pad", 0) == 0) return "zero padding";
  if (op.rfind("dense", 0) == 0) return "dense";
  return op;
}

// 1-minute load average (/proc/loadavg), -1 where unreadable: benchmarks print it next to their
// numbers, which mean little on a loaded machine.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double l = -1;
  if (!(in >> l)) return -1;
  return l;
}

struct BenchOptions {
  std::string model = "resnet50-tutorial";
  int64_t batch = 0;  // 0: 32, or 1 in serve mode
  std::string input_shape;
  int64_t classes = 0;
  std::string mode = "train";
  int steps = 10;
  int warmup = 2;
  int threads = 0;
  bool json = false;
  bool profile = false;
  std::string optimizer = "adam";
  uint64_t seed = 0;
  bool no_fuse = false;
  bool recompute = false;
  bool no_recompute = false;
  int clients = 1;
  int intra_op_threads = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double p) {
  const size_t n = sorted.size();
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
  rank = std::clamp<size_t>(rank, 1, n);
  return sorted[rank - 1];
}

nlohmann::json kernels_json(const std::vector<ops::ConvKernelUse>& kernels) {
  nlohmann::json jk = nlohmann::json::array();
  for (const auto& k : kernels) {
    jk.push_back({{"kind", k.kind},
                  {"kernel", k.kernel},
                  {"algorithm", k.algorithm},
                  {"geometries", k.geometries}});
  }
  return jk;
}

// Which kernel ran each kind of convolution: "kernels: avx2 (oneDNN avx2)" and a line per kind.
void print_kernels(const std::vector<ops::ConvKernelUse>& kernels) {
  fmt::print(
      "  kernels: {} (oneDNN ISA {}); convolutions by kind, kernel (algorithm) x geometries\n",
      ops::kernel_isa(), ops::onednn_isa());
  std::string kind;
  std::string line;
  auto flush = [&] {
    if (!kind.empty()) fmt::print("    {:<18} {}\n", kind, line);
  };
  for (const auto& k : kernels) {
    if (k.kind != kind) {
      flush();
      kind = k.kind;
      line.clear();
    }
    line += fmt::format("{}{} ({}) x {}", line.empty() ? "" : ", ", k.kernel, k.algorithm,
                        k.geometries);
  }
  flush();
}

void run_serve(const BenchOptions& o, int64_t batch) {
  if (o.clients < 1 || o.clients > 256) {
    throw ConfigError(fmt::format("--clients must be 1 to 256, got {}", o.clients));
  }
  if (o.intra_op_threads < 0) {
    throw ConfigError(fmt::format("--intra-op-threads must be >= 0 (0: threads / clients), got {}",
                                  o.intra_op_threads));
  }
  if (o.profile || o.recompute || o.no_recompute) {
    throw ConfigError("--profile, --recompute and --no-recompute do not apply to --mode serve");
  }
  ops::set_backend(ops::Backend::OneDnn);
  if (o.threads > 0) ops::set_num_threads(o.threads);
  const int threads = ops::num_threads();
  const int intra = o.intra_op_threads > 0 ? o.intra_op_threads : std::max(1, threads / o.clients);

  Model model = build_model(o.model, parse_shape(o.input_shape), o.classes);
  model.set_inference_fusion(!o.no_fuse);
  model.set_intra_op_threads(intra);
  const Shape in_shape = model.input_shapes().at(0);
  std::vector<int64_t> xdims{batch};
  for (int64_t d : in_shape.dims()) xdims.push_back(d);
  std::vector<Tensor> inputs;
  for (int c = 0; c < o.clients; ++c) {
    Rng rng(o.seed + static_cast<uint64_t>(c));
    Tensor x = Tensor::empty(Shape(xdims));
    for (float& v : x.span<float>()) v = static_cast<float>(rng.uniform01());
    inputs.push_back(std::move(x));
  }
  const double load_before = load_average();
  ops::reset_conv_kernels_used();

  // Every client warms up, then all start at once; each records its requests' latencies and
  // when it finished.
  std::latch ready(o.clients), go(1);
  std::vector<std::vector<double>> latencies(o.clients);
  std::vector<Clock::time_point> finished(o.clients);
  std::vector<std::string> errors(o.clients);
  std::vector<std::thread> pool;
  for (int c = 0; c < o.clients; ++c) {
    pool.emplace_back([&, c] {
      bool ok = true;
      try {
        for (int i = 0; i < o.warmup; ++i) model.predict(inputs[c], batch);
      } catch (const std::exception& e) {
        errors[c] = e.what();
        ok = false;
      }
      ready.count_down();
      go.wait();
      if (!ok) return;
      try {
        for (int i = 0; i < o.steps; ++i) {
          const auto t0 = Clock::now();
          model.predict(inputs[c], batch);
          latencies[c].push_back(seconds_since(t0));
        }
      } catch (const std::exception& e) {
        errors[c] = e.what();
      }
      finished[c] = Clock::now();
    });
  }
  ready.wait();
  const auto start = Clock::now();
  go.count_down();
  for (std::thread& t : pool) t.join();
  for (int c = 0; c < o.clients; ++c) {
    if (!errors[c].empty()) throw Error(fmt::format("serve client {}: {}", c, errors[c]));
  }
  const auto end = *std::max_element(finished.begin(), finished.end());
  const double wall = std::chrono::duration<double>(end - start).count();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  const double mean = std::accumulate(all.begin(), all.end(), 0.0) / all.size();
  const int64_t requests = static_cast<int64_t>(all.size());
  const double img_s = static_cast<double>(requests * batch) / wall;

  nlohmann::json j;
  j["model"] = o.model;
  j["mode"] = "serve";
  j["batch"] = batch;
  j["input_shape"] = in_shape.dims();
  j["clients"] = o.clients;
  j["threads"] = threads;
  j["intra_op_threads"] = intra;
  j["requests_per_client"] = o.steps;
  j["warmup"] = o.warmup;
  j["fused_inference"] = !o.no_fuse;
  j["img_per_s"] = img_s;
  j["requests_per_s"] = static_cast<double>(requests) / wall;
  j["latency_ms_p50"] = percentile(all, 50) * 1e3;
  j["latency_ms_p90"] = percentile(all, 90) * 1e3;
  j["latency_ms_p99"] = percentile(all, 99) * 1e3;
  j["latency_ms_mean"] = mean * 1e3;
  j["latency_ms_max"] = all.back() * 1e3;
  j["p99_over_mean"] = percentile(all, 99) / mean;
  j["peak_rss_mb"] = vm_hwm_kib() / 1024.0;
  j["load_average_1m"] = load_before;
  j["kernel_isa"] = ops::kernel_isa();
  j["onednn_isa"] = ops::onednn_isa();
  const std::vector<ops::ConvKernelUse> kernels = ops::conv_kernels_used();
  j["conv_kernels"] = kernels_json(kernels);
  if (o.json) {
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print(
      "{} serve: {} client(s) x {} request(s) of batch {} input {}, {} intra-op thread(s) each "
      "({} threads), after {} warm-up\n",
      o.model, o.clients, o.steps, batch, in_shape.str(), intra, threads, o.warmup);
  fmt::print("  {:.2f} img/s ({:.2f} requests/s) over {:.3f} s\n", img_s, requests / wall, wall);
  fmt::print(
      "  latency ms: p50 {:.2f}  p90 {:.2f}  p99 {:.2f}  mean {:.2f}  max {:.2f}  (p99 / mean "
      "{:.2f})\n",
      percentile(all, 50) * 1e3, percentile(all, 90) * 1e3, percentile(all, 99) * 1e3, mean * 1e3,
      all.back() * 1e3, percentile(all, 99) / mean);
  fmt::print("  peak RSS {:.1f} MB (VmHWM); load average {:.2f} before\n", vm_hwm_kib() / 1024.0,
             load_before);
  print_kernels(kernels);
}

void run_bench(const BenchOptions& o_in) {
  BenchOptions o = o_in;
  if (o.mode != "train" && o.mode != "infer" && o.mode != "serve") {
    throw ConfigError(fmt::format("--mode must be train, infer or serve, got '{}'", o.mode));
  }
  if (o.batch == 0) o.batch = o.mode == "serve" ? 1 : 32;
  if (o.batch < 1) throw ConfigError(fmt::format("--batch must be positive, got {}", o.batch));
  if (o.steps < 1) throw ConfigError(fmt::format("--steps must be positive, got {}", o.steps));
  if (o.warmup < 0) throw ConfigError(fmt::format("--warmup must be >= 0, got {}", o.warmup));
  if (o.mode == "serve") {
    run_serve(o, o.batch);
    return;
  }
  if (o.clients != 1 || o.intra_op_threads != 0) {
    throw ConfigError("--clients and --intra-op-threads apply to --mode serve only");
  }
  const Model::Recompute recompute = recompute_mode(o.recompute, o.no_recompute);
  ops::set_backend(ops::Backend::OneDnn);
  if (o.threads > 0) ops::set_num_threads(o.threads);
  const int threads = ops::num_threads();
  const bool train = o.mode == "train";

  Model model = build_model(o.model, parse_shape(o.input_shape), o.classes);
  model.set_inference_fusion(!o.no_fuse);
  model.set_recompute(recompute);
  const Shape in_shape = model.input_shapes().at(0);
  const Shape out_shape = model.output_shapes().at(0);
  const int64_t classes = out_shape[-1];

  Rng rng(o.seed);
  std::vector<int64_t> xdims{o.batch};
  for (int64_t d : in_shape.dims()) xdims.push_back(d);
  Tensor x = Tensor::empty(Shape(xdims));
  for (float& v : x.span<float>()) v = static_cast<float>(rng.uniform01());
  Tensor y = Tensor::empty(Shape{o.batch}, DType::I64);
  for (int64_t i = 0; i < o.batch; ++i) {
    y.data<int64_t>()[i] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(classes)));
  }
  if (train) {
    model.compile({.optimizer = make_optimizer(o.optimizer),
                   .loss = "categorical_crossentropy",
                   .metrics = {}});
  }
  const double load_before = load_average();
  Peak peak;
  measure_peak(peak, threads);
  ops::reset_conv_kernels_used();
  const int64_t rss_before_kib = vm_rss_kib();
  const detail::MemoryStats mem_before = detail::memory_stats();
  detail::reset_peak_memory();

  // Per-layer and per-op timers (profile mode), filled during the timed steps only.
  struct LayerTime {
    std::string name, cls;
    double fwd = 0, bwd = 0;
  };
  std::vector<LayerTime> layer_times;
  std::map<const Layer*, size_t> layer_index;
  bool timing = false;
  Model::HookId profile_hook = 0;
  if (o.profile) {
    for (const auto& l : model.layers()) {
      layer_index[l.get()] = layer_times.size();
      layer_times.push_back({l->name(), l->class_name()});
    }
    profile_hook = model.add_layer_hook([&](const Layer& l, bool backward, double s) {
      if (!timing) return;
      LayerTime& t = layer_times[layer_index.at(&l)];
      (backward ? t.bwd : t.fwd) += s;
    });
  }

  auto step = [&] {
    if (train) {
      model.train_step(x, y);
    } else {
      model.forward(x, Mode::Inference);
    }
  };
  for (int i = 0; i < o.warmup; ++i) step();
  if (o.profile) {
    ops::profile::reset();
    ops::profile::set_enabled(true);
    timing = true;
  }
  std::vector<double> times;
  for (int i = 0; i < o.steps; ++i) {
    const auto t0 = Clock::now();
    step();
    times.push_back(seconds_since(t0));
  }
  ops::profile::set_enabled(false);
  timing = false;
  if (o.profile) model.remove_layer_hook(profile_hook);

  const double med = median(times);
  const double mean = std::accumulate(times.begin(), times.end(), 0.0) / times.size();
  const double best = *std::min_element(times.begin(), times.end());
  const double img_s = o.batch / med;
  const double flop_step = forward_flops_per_sample(model) * o.batch * (train ? 3.0 : 1.0);
  const double gflops = flop_step / med / 1e9;
  measure_peak(peak, threads);
  const double peak_used = peak.measured_gflops > 0 ? peak.measured_gflops : peak.flags_gflops;
  const int64_t hwm_kib = vm_hwm_kib();
  const detail::MemoryStats mem = detail::memory_stats();

  nlohmann::json j;
  j["model"] = o.model;
  j["mode"] = o.mode;
  j["batch"] = o.batch;
  j["input_shape"] = in_shape.dims();
  j["threads"] = threads;
  j["steps"] = o.steps;
  j["warmup"] = o.warmup;
  j["fused_inference"] = !o.no_fuse;
  j["recompute"] = model.recompute() == Model::Recompute::Off    ? "off"
                   : model.recompute() == Model::Recompute::Full ? "full"
                                                                 : "pointwise";
  j["img_per_s"] = img_s;
  j["ms_per_step"] = med * 1e3;
  j["ms_per_step_mean"] = mean * 1e3;
  j["ms_per_step_best"] = best * 1e3;
  j["gflop_per_step"] = flop_step / 1e9;
  j["gflop_per_s"] = gflops;
  j["peak_gflop_per_s"] = peak_used;
  j["peak_gflop_per_s_flags"] = peak.flags_gflops;
  j["peak_isa"] = peak.isa;
  j["kernel_isa"] = ops::kernel_isa();
  j["onednn_isa"] = ops::onednn_isa();
  const std::vector<ops::ConvKernelUse> kernels = ops::conv_kernels_used();
  j["conv_kernels"] = kernels_json(kernels);
  j["percent_of_peak"] = 100.0 * gflops / peak_used;
  j["peak_rss_mb"] = hwm_kib / 1024.0;
  j["rss_before_steps_mb"] = rss_before_kib / 1024.0;
  j["tensor_mb_before_steps"] = mem_before.live_bytes / 1048576.0;
  j["tensor_peak_mb"] = mem.peak_live_bytes / 1048576.0;
  j["tensor_arena_mapped_mb"] = mem.mapped_bytes / 1048576.0;
  j["load_average_1m"] = load_before;

  double fwd_total = 0, bwd_total = 0;
  std::map<std::string, std::pair<double, int64_t>> kinds;
  if (o.profile) {
    for (const LayerTime& t : layer_times) {
      fwd_total += t.fwd;
      bwd_total += t.bwd;
    }
    for (const auto& e : ops::profile::totals()) {
      auto& k = kinds[op_kind(e.name)];
      k.first += e.seconds;
      k.second += e.calls;
    }
    const double total = std::accumulate(times.begin(), times.end(), 0.0);
    double op_sum = 0;
    for (const auto& [k, v] : kinds) op_sum += v.first;
    if (train) {
      kinds["optimizer update + loss (step - executor)"] = {total - fwd_total - bwd_total, 0};
    }
    kinds["framework overhead (executor - ops)"] = {fwd_total + bwd_total - op_sum, 0};
    nlohmann::json by_kind = nlohmann::json::object();
    for (const auto& [k, v] : kinds) by_kind[k] = v.first * 1e3 / o.steps;
    j["profile_ms_per_step_by_kind"] = by_kind;
    nlohmann::json by_layer = nlohmann::json::array();
    for (const LayerTime& t : layer_times) {
      by_layer.push_back({{"layer", t.name},
                          {"class", t.cls},
                          {"fwd_ms", t.fwd * 1e3 / o.steps},
                          {"bwd_ms", t.bwd * 1e3 / o.steps}});
    }
    j["profile_layers"] = by_layer;
  }

  if (o.json) {
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{} {} batch {} input {} threads {}: {} steps after {} warm-up\n", o.model, o.mode,
             o.batch, in_shape.str(), threads, o.steps, o.warmup);
  fmt::print("  {:.2f} img/s   {:.2f} ms/step (median; mean {:.2f}, best {:.2f})\n", img_s,
             med * 1e3, mean * 1e3, best * 1e3);
  fmt::print("  {:.2f} GFLOP/step (conv+dense{})  {:.1f} GFLOP/s  {:.1f}% of peak {:.1f} GFLOP/s\n",
             flop_step / 1e9, train ? ", x3 for training" : "", gflops, 100.0 * gflops / peak_used,
             peak_used);
  fmt::print(
      "  peak: measured {} FMA loop on {} threads {:.1f} GFLOP/s (best of 20 runs before and 20 "
      "after the steps); CPU flags {} x {} FLOP/cycle x {:.2f} GHz = {:.1f} GFLOP/s\n",
      peak.isa, threads, peak.measured_gflops, threads, peak.flop_per_cycle, peak.ghz,
      peak.flags_gflops);
  print_kernels(kernels);
  fmt::print("  peak RSS {:.1f} MB (VmHWM; {:.1f} MB before the first step); load average {:.2f}\n",
             hwm_kib / 1024.0, rss_before_kib / 1024.0, load_before);
  fmt::print(
      "  tensors: {:.1f} MB before the first step, {:.1f} MB at most during the steps "
      "({:.1f} MB mapped)\n",
      mem_before.live_bytes / 1048576.0, mem.peak_live_bytes / 1048576.0,
      mem.mapped_bytes / 1048576.0);
  if (!o.profile) return;

  const double step_ms_total = std::accumulate(times.begin(), times.end(), 0.0) * 1e3 / o.steps;
  fmt::print("\nprofile, ms per step (step total {:.2f}; forward {:.2f}, backward {:.2f}):\n",
             step_ms_total, fwd_total * 1e3 / o.steps, bwd_total * 1e3 / o.steps);
  std::vector<std::pair<std::string, double>> kv;
  for (const auto& [k, v] : kinds) kv.emplace_back(k, v.first * 1e3 / o.steps);
  std::sort(kv.begin(), kv.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [k, ms] : kv) {
    fmt::print("  {:<44} {:>9.2f} {:>6.1f}%\n", k, ms, 100.0 * ms / step_ms_total);
  }
  std::map<std::string, std::pair<double, double>> by_class;
  for (const LayerTime& t : layer_times) {
    by_class[t.cls].first += t.fwd;
    by_class[t.cls].second += t.bwd;
  }
  fmt::print("\nby layer class, ms per step:   {:>9} {:>9}\n", "fwd", "bwd");
  for (const auto& [cls, v] : by_class) {
    fmt::print("  {:<28} {:>9.2f} {:>9.2f}\n", cls, v.first * 1e3 / o.steps,
               v.second * 1e3 / o.steps);
  }
  std::vector<LayerTime> sorted = layer_times;
  std::sort(sorted.begin(), sorted.end(),
            [](const LayerTime& a, const LayerTime& b) { return a.fwd + a.bwd > b.fwd + b.bwd; });
  fmt::print("\nslowest layers, ms per step:   {:>9} {:>9}\n", "fwd", "bwd");
  for (size_t i = 0; i < std::min<size_t>(15, sorted.size()); ++i) {
    fmt::print("  {:<28} {:>9.2f} {:>9.2f}  {}\n", sorted[i].name, sorted[i].fwd * 1e3 / o.steps,
               sorted[i].bwd * 1e3 / o.steps, sorted[i].cls);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Measure training or inference speed (img/s, GFLOP/s, % of peak, peak RSS), or serving "
      "throughput and latency with concurrent callers");
  cmd->add_option("--model", o->model, "Zoo model name (see `resnet models`)");
  cmd->add_option("--batch", o->batch,
                  "Batch size (default 32; per request in serve mode, default 1)");
  cmd->add_option("--input-shape", o->input_shape, "Per-sample input H,W,C (default: the model's)");
  cmd->add_option("--classes", o->classes, "Output classes (default: the model's)");
  cmd->add_option("--mode", o->mode,
                  "train (forward, loss, backward, update), infer (one forward per step) or serve "
                  "(--clients threads calling predict on one model at once: throughput, latency)")
      ->check(CLI::IsMember({"train", "infer", "serve"}));
  cmd->add_option("--clients", o->clients, "Serve mode: concurrent callers (1 to 256)");
  cmd->add_option("--intra-op-threads", o->intra_op_threads,
                  "Serve mode: threads of each call (0: max(1, threads / clients))");
  cmd->add_option("--steps", o->steps, "Timed steps (serve mode: requests per client)");
  cmd->add_option("--warmup", o->warmup,
                  "Untimed steps first (primitive creation, caches; serve mode: per client)");
  cmd->add_option("--threads", o->threads, "Compute threads (0: one per core)");
  cmd->add_option("--optimizer", o->optimizer, "Optimizer for --mode train");
  cmd->add_option("--seed", o->seed, "Seed of the random inputs and labels");
  cmd->add_flag("--json", o->json, "Print the results as JSON");
  cmd->add_flag("--no-fuse", o->no_fuse,
                "Inference without the fused plan (every layer on its own), for comparison");
  cmd->add_flag("--recompute", o->recompute,
                "Training with full recomputation (activation checkpointing, "
                "Model::Recompute::Full)");
  cmd->add_flag("--no-recompute", o->no_recompute,
                "Training without recomputing anything (Model::Recompute::Off; by default the 1x1 "
                "convolutions and their batch norms are recomputed in backward)");
  cmd->add_flag("--profile", o->profile,
                "Time every layer and every op kind (conv fwd/bwd, BN, eltwise, pooling, "
                "reorders, optimizer update)");
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace resnet::cli
