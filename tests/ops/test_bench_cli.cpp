// `resnet bench` (src/cli/bench_command.cpp) runs the real binary on a tiny model: the JSON report
// has every field the performance issue asks for, --profile breaks the step down by op kind and by
// layer, the inference plan can be switched off, and bad options are usage errors (exit 2).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "support/process.h"

namespace {

struct CliRun {
  int status = -1;
  std::string out;
};

CliRun run_cli(const std::string& args) {
  const std::string cmd = std::string(RESNET_CLI_PATH) + " " + args + " 2>/dev/null";
  const resnet::testing::CommandResult c = resnet::testing::run_command(cmd);
  return {c.code, c.out};
}

const char* kTiny = "--model resnet20 --input-shape 16,16,3 --classes 3 --batch 2 --threads 1";

TEST(BenchCli, TrainJsonWithProfile) {
  const CliRun r = run_cli(std::string("bench ") + kTiny +
                           " --mode train --steps 2 --warmup 1 --json --profile");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  for (const char* key : {"img_per_s", "ms_per_step", "gflop_per_s", "percent_of_peak",
                          "peak_gflop_per_s", "peak_rss_mb"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j[key].get<double>(), 0.0) << key;
  }
  EXPECT_EQ(j["batch"].get<int>(), 2);
  EXPECT_EQ(j["mode"].get<std::string>(), "train");
  const auto& kinds = j["profile_ms_per_step_by_kind"];
  for (const char* kind : {"conv fwd", "conv bwd data", "conv bwd weights", "BN fwd", "BN bwd",
                           "optimizer update + loss (step - executor)"}) {
    EXPECT_TRUE(kinds.contains(kind)) << kind << " in " << kinds.dump();
  }
  bool conv_seen = false;
  for (const auto& l : j["profile_layers"]) {
    if (l["class"] == "Conv2D" && l["bwd_ms"].get<double>() > 0.0) conv_seen = true;
  }
  EXPECT_TRUE(conv_seen);
}

// Which kernel ran each kind of convolution: every kind the step uses is listed with a kernel,
// an algorithm and a geometry count, and the list follows what ran (training: forward and both
// gradients; inference: the prepared convolutions, on the small-output kernels where every output
// has at most 16 pixels and the CPU has AVX2).
std::map<std::string, int> kernel_kinds(const nlohmann::json& j) {
  std::map<std::string, int> kinds;
  for (const auto& k : j.at("conv_kernels")) {
    EXPECT_FALSE(k.at("kernel").get<std::string>().empty()) << k.dump();
    const std::string alg = k.at("algorithm").get<std::string>();
    EXPECT_TRUE(alg == "direct" || alg == "winograd" || alg == "small-output" || alg == "gemm")
        << k.dump();
    EXPECT_GT(k.at("geometries").get<int>(), 0) << k.dump();
    kinds[k.at("kind").get<std::string>()] += k.at("geometries").get<int>();
  }
  return kinds;
}

TEST(BenchCli, KernelsOfEachConvolutionKind) {
  const CliRun train = run_cli(std::string("bench ") + kTiny + " --mode train --steps 1 --json");
  ASSERT_EQ(train.status, 0) << train.out;
  const nlohmann::json jt = nlohmann::json::parse(train.out);
  const auto kinds = kernel_kinds(jt);
  for (const char* kind : {"forward", "backward data", "backward weights"}) {
    EXPECT_GT(kinds.count(kind), 0u) << kind << " in " << jt["conv_kernels"].dump();
  }
  EXPECT_EQ(kinds.count("forward inference"), 0u) << jt["conv_kernels"].dump();
  for (const char* key : {"kernel_isa", "onednn_isa", "peak_isa"}) {
    EXPECT_FALSE(jt.at(key).get<std::string>().empty()) << key;
  }
  EXPECT_EQ(jt["kernel_isa"], jt["peak_isa"]);

  const CliRun infer = run_cli(
      "bench --model resnet20 --input-shape 4,4,3 --classes 3 --batch 1 --threads 1 --mode infer "
      "--steps 1 --json");
  ASSERT_EQ(infer.status, 0) << infer.out;
  const nlohmann::json ji = nlohmann::json::parse(infer.out);
  EXPECT_EQ(kernel_kinds(ji).count("forward inference"), 1u) << ji["conv_kernels"].dump();
  bool small = false;
  for (const auto& k : ji["conv_kernels"]) small |= k["algorithm"] == "small-output";
  // 4x4 inputs: every convolution has at most 16 output pixels.
  EXPECT_EQ(small, ji["kernel_isa"] != "scalar") << ji["conv_kernels"].dump();

  const CliRun text = run_cli(std::string("bench ") + kTiny + " --mode train --steps 1");
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_NE(text.out.find("kernels: "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("backward weights"), std::string::npos) << text.out;
}

// ONEDNN_MAX_CPU_ISA caps resnet.cpp's own kernels and the measured peak too: SSE4.1 leaves no
// ISA that the small-output kernels or the FMA peak loop use.
TEST(BenchCli, IsaCapCoversOwnKernelsAndPeak) {
  const std::string cmd = "ONEDNN_MAX_CPU_ISA=SSE41 " + std::string(RESNET_CLI_PATH) +
                          " bench --model resnet20 --input-shape 4,4,3 --classes 3 --batch 1 "
                          "--threads 1 --mode infer --steps 1 --json 2>/dev/null";
  const resnet::testing::CommandResult c = resnet::testing::run_command(cmd);
  ASSERT_EQ(c.code, 0) << c.out;
  const nlohmann::json j = nlohmann::json::parse(c.out);
  EXPECT_EQ(j["kernel_isa"], "scalar");
  EXPECT_EQ(j["peak_isa"], "scalar");
  EXPECT_EQ(j["onednn_isa"], "sse41");
  for (const auto& k : j["conv_kernels"]) {
    EXPECT_NE(k["algorithm"], "small-output") << k.dump();
    EXPECT_EQ(k["kernel"].get<std::string>().find("avx"), std::string::npos) << k.dump();
  }
}

TEST(BenchCli, InferenceFusedAndUnfused) {
  const CliRun fused = run_cli(std::string("bench ") + kTiny +
                               " --mode infer --steps 2 --warmup 1 --json --profile");
  ASSERT_EQ(fused.status, 0) << fused.out;
  const nlohmann::json jf = nlohmann::json::parse(fused.out);
  EXPECT_TRUE(jf["fused_inference"].get<bool>());
  EXPECT_TRUE(jf["profile_ms_per_step_by_kind"].contains("conv fwd (fused BN/add/ReLU, inference)"))
      << jf["profile_ms_per_step_by_kind"].dump();
  const CliRun plain = run_cli(std::string("bench ") + kTiny +
                               " --mode infer --steps 2 --warmup 1 --json --profile --no-fuse");
  ASSERT_EQ(plain.status, 0) << plain.out;
  const nlohmann::json jp = nlohmann::json::parse(plain.out);
  EXPECT_FALSE(jp["fused_inference"].get<bool>());
  EXPECT_TRUE(jp["profile_ms_per_step_by_kind"].contains("BN fwd"));
}

TEST(BenchCli, TextOutputAndUsageErrors) {
  const CliRun r = run_cli(std::string("bench ") + kTiny + " --mode infer --steps 1 --warmup 0");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("img/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("peak RSS"), std::string::npos) << r.out;
  EXPECT_EQ(run_cli(std::string("bench ") + kTiny + " --mode sideways").status, 2);
  EXPECT_EQ(run_cli(std::string("bench ") + kTiny + " --steps 0").status, 2);
  EXPECT_EQ(run_cli("bench --model no-such-model").status, 2);
}

}  // namespace

namespace {

TEST(BenchCli, RecomputeModes) {
  // Training keeps every activation (--no-recompute), recomputes the 1x1 convolutions (the
  // default) or whole blocks (--recompute); the report says which.
  for (const auto& [flag, mode] : {std::pair<std::string, std::string>{"", "pointwise"},
                                   {" --recompute", "full"},
                                   {" --no-recompute", "off"}}) {
    const CliRun r =
        run_cli(std::string("bench ") + kTiny + " --mode train --steps 1 --warmup 0 --json" + flag);
    ASSERT_EQ(r.status, 0) << flag << ": " << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out)["recompute"].get<std::string>(), mode) << flag;
  }
  EXPECT_NE(
      run_cli(std::string("bench ") + kTiny + " --mode train --steps 1 --recompute --no-recompute")
          .status,
      0);
}

}  // namespace

namespace {

TEST(BenchCli, ServeConcurrentClients) {
  // --mode serve: N threads calling predict on one model at once; every request is counted and
  // timed, each call runs on threads / clients intra-op threads.
  const CliRun r = run_cli(
      "bench --model resnet20 --input-shape 16,16,3 --classes 3 --threads 2 --mode serve "
      "--clients 3 --steps 4 --warmup 1 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["mode"].get<std::string>(), "serve");
  EXPECT_EQ(j["batch"].get<int>(), 1);  // serve's default request
  EXPECT_EQ(j["clients"].get<int>(), 3);
  EXPECT_EQ(j["intra_op_threads"].get<int>(), 1);
  EXPECT_EQ(j["requests_per_client"].get<int>(), 4);
  EXPECT_NEAR(j["requests_per_s"].get<double>(), j["img_per_s"].get<double>(), 1e-9);
  const double p50 = j["latency_ms_p50"].get<double>(), p99 = j["latency_ms_p99"].get<double>();
  EXPECT_GT(p50, 0.0);
  EXPECT_LE(p50, p99);
  EXPECT_LE(p99, j["latency_ms_max"].get<double>());
  EXPECT_LE(j["latency_ms_mean"].get<double>(), j["latency_ms_max"].get<double>());
  EXPECT_GT(j["p99_over_mean"].get<double>(), 0.0);
  EXPECT_GT(j["peak_rss_mb"].get<double>(), 0.0);

  const CliRun text = run_cli(
      "bench --model resnet20 --input-shape 16,16,3 --classes 3 --threads 2 --mode serve "
      "--clients 1 --batch 2 --steps 2 --warmup 0");
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_NE(text.out.find("1 client(s) x 2 request(s) of batch 2"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("2 intra-op thread(s)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("p99"), std::string::npos) << text.out;
}

TEST(BenchCli, ServeUsageErrors) {
  const std::string serve = std::string("bench ") + kTiny + " --steps 1 --mode serve";
  EXPECT_EQ(run_cli(serve + " --clients 0").status, 2);
  EXPECT_EQ(run_cli(serve + " --clients 257").status, 2);
  EXPECT_EQ(run_cli(serve + " --intra-op-threads -1").status, 2);
  EXPECT_EQ(run_cli(serve + " --profile").status, 2);
  EXPECT_EQ(run_cli(std::string("bench ") + kTiny + " --mode infer --clients 2").status, 2);
}

}  // namespace
