// CLI conventions for every subcommand: --help, --version, exit codes (0 ok, 1 failure, 2 usage),
// errors on stderr, machine-readable output with --json (evaluate, predict).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace {

namespace fs = std::filesystem;

struct CliResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Runs the CLI with stdout and stderr captured separately.
CliResult run(const std::string& args) {
  static const resnet::testing::TempDir scratch("resnet_cli_conventions_io");
  const fs::path& dir = scratch.path();
  const fs::path out = dir / "stdout", err = dir / "stderr";
  const std::string cmd = std::string(RESNET_CLI_PATH) + " " + args + " >" + out.string() + " 2>" +
                          err.string() + " </dev/null";
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// The subcommands listed by `resnet --help`.
std::vector<std::string> subcommands() {
  const CliResult r = run("--help");
  std::vector<std::string> subs;
  std::istringstream in(r.out);
  bool listing = false;
  for (std::string line; std::getline(in, line);) {
    if (line.find("ubcommands:") != std::string::npos ||
        line.find("UBCOMMANDS:") != std::string::npos) {
      listing = true;
      continue;
    }
    if (!listing) continue;
    if (line.empty() || line[0] != ' ') break;
    std::istringstream words(line);
    std::string name;
    words >> name;
    if (!name.empty()) subs.push_back(name);
  }
  return subs;
}

TEST(CliConventions, TopLevelHelpListsTheSubcommands) {
  const CliResult r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(r.err.empty()) << r.err;
  const std::vector<std::string> subs = subcommands();
  const std::set<std::string> have(subs.begin(), subs.end());
  for (const char* s : {"demo", "summary", "plot", "models", "train", "evaluate", "predict"}) {
    EXPECT_TRUE(have.count(s)) << s << " missing from `resnet --help`:\n" << r.out;
  }
}

TEST(CliConventions, VersionOnStdout) {
  const CliResult r = run("--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("resnet.cpp ", 0), 0u) << r.out;
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST(CliConventions, EverySubcommandHasHelpOnStdout) {
  const std::vector<std::string> subs = subcommands();
  ASSERT_FALSE(subs.empty());
  for (const std::string& s : subs) {
    for (const char* flag : {"--help", "-h"}) {
      const CliResult r = run(s + " " + flag);
      EXPECT_EQ(r.code, 0) << s << " " << flag << ": " << r.err;
      EXPECT_NE(r.out.find("Usage"), std::string::npos) << s << " " << flag << ":\n" << r.out;
      EXPECT_NE(r.out.find("--help"), std::string::npos) << s << ":\n" << r.out;
      EXPECT_TRUE(r.err.empty()) << s << " " << flag << ": " << r.err;
    }
  }
}

TEST(CliConventions, UsageErrorsExitWithTwoAndTalkOnStderr) {
  const CliResult none = run("");
  EXPECT_EQ(none.code, 2);
  EXPECT_FALSE(none.err.empty());
  const CliResult unknown = run("frobnicate");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("frobnicate"), std::string::npos) << unknown.err;
  EXPECT_TRUE(unknown.out.empty()) << unknown.out;
  // An unknown flag on every subcommand (those with required arguments may report these first).
  for (const std::string& s : subcommands()) {
    const CliResult r = run(s + " --no-such-flag");
    EXPECT_EQ(r.code, 2) << s << ": " << r.err;
    EXPECT_TRUE(r.err.find("--no-such-flag") != std::string::npos ||
                r.err.find("required") != std::string::npos)
        << s << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << s << ": " << r.out;
  }
  const CliResult flag = run("models --no-such-flag");
  EXPECT_EQ(flag.code, 2);
  EXPECT_NE(flag.err.find("--no-such-flag"), std::string::npos) << flag.err;
  // A bad value.
  const CliResult value = run("summary --model resnet20 --classes -3");
  EXPECT_EQ(value.code, 2);
  EXPECT_NE(value.err.find("--classes"), std::string::npos) << value.err;
  EXPECT_TRUE(value.out.empty()) << value.out;
}

TEST(CliConventions, FailuresExitWithOneAndNameTheFileOnStderr) {
  const CliResult e = run("evaluate /nonexistent/model.h5 --dataset fashion-mnist --json");
  EXPECT_EQ(e.code, 1);
  EXPECT_NE(e.err.find("/nonexistent/model.h5"), std::string::npos) << e.err;
  EXPECT_TRUE(e.out.empty()) << e.out;
  const CliResult p = run("predict /nonexistent/model.h5 /nonexistent/img.png --json");
  EXPECT_EQ(p.code, 1);
  EXPECT_NE(p.err.find("/nonexistent/model.h5"), std::string::npos) << p.err;
  EXPECT_TRUE(p.out.empty()) << p.out;
}

// A tiny MNIST-style data set (raw IDX files; the loader detects that they are not gzip'd).
void write_idx(const fs::path& dir, const std::string& split, int n, uint32_t seed) {
  auto be32 = [](std::ofstream& f, uint32_t v) {
    const unsigned char b[4] = {static_cast<unsigned char>(v >> 24),
                                static_cast<unsigned char>(v >> 16),
                                static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
    f.write(reinterpret_cast<const char*>(b), 4);
  };
  std::ofstream images(dir / (split + "-images-idx3-ubyte.gz"), std::ios::binary);
  be32(images, 0x00000803);
  be32(images, n);
  be32(images, 28);
  be32(images, 28);
  std::ofstream labels(dir / (split + "-labels-idx1-ubyte.gz"), std::ios::binary);
  be32(labels, 0x00000801);
  be32(labels, n);
  uint32_t s = seed;
  for (int i = 0; i < n; ++i) {
    const unsigned char label = static_cast<unsigned char>(i % 10);
    labels.put(static_cast<char>(label));
    for (int p = 0; p < 28 * 28; ++p) {
      s = s * 1664525u + 1013904223u;
      // A class-dependent bright row over noise.
      const int row = p / 28;
      images.put(static_cast<char>(row == 2 * label + 4 ? 250 : (s >> 24) % 64));
    }
  }
}

void write_pgm(const fs::path& path, int shade) {
  std::ofstream f(path, std::ios::binary);
  f << "P5\n28 28\n255\n";
  for (int p = 0; p < 28 * 28; ++p) f.put(static_cast<char>((p * 7 + shade) % 256));
}

TEST(CliConventions, EvaluateAndPredictPrintJson) {
  const resnet::testing::TempDir scratch("resnet_cli_conventions_json");
  const fs::path& dir = scratch.path();
  write_idx(dir, "train", 40, 1);
  write_idx(dir, "t10k", 20, 2);
  const std::string data = "--dataset mnist --data-dir " + dir.string();
  const std::string model = (dir / "m.h5").string();
  const CliResult t = run("train " + data +
                          " --model resnet20 --epochs 1 --batch-size 20 --seed 1 "
                          "--verbose 0 --out " +
                          model);
  ASSERT_EQ(t.code, 0) << t.out << t.err;

  const CliResult text = run("evaluate " + model + " " + data);
  ASSERT_EQ(text.code, 0) << text.err;
  const CliResult e = run("evaluate " + model + " " + data + " --json");
  ASSERT_EQ(e.code, 0) << e.err;
  // stdout is exactly one JSON document (no progress bar).
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(e.out)) << e.out;
  ASSERT_TRUE(j.is_object()) << e.out;
  EXPECT_EQ(j.at("model").get<std::string>(), model);
  EXPECT_EQ(j.at("samples").get<int64_t>(), 20);
  const double loss = j.at("loss").get<double>();
  const double accuracy = j.at("accuracy").get<double>();
  EXPECT_TRUE(std::isfinite(loss) && loss > 0) << e.out;
  EXPECT_GE(accuracy, 0.0);
  EXPECT_LE(accuracy, 1.0);
  // The same numbers as the text output.
  char expected[64];
  std::snprintf(expected, sizeof expected, "accuracy: %.4f", accuracy);
  EXPECT_NE(text.out.find(expected), std::string::npos) << text.out << " vs " << e.out;
  std::snprintf(expected, sizeof expected, "loss: %.4f", loss);
  EXPECT_NE(text.out.find(expected), std::string::npos) << text.out << " vs " << e.out;

  write_pgm(dir / "a.pgm", 0);
  write_pgm(dir / "b.pgm", 100);
  const std::string images = (dir / "a.pgm").string() + " " + (dir / "b.pgm").string();
  const CliResult p = run("predict " + model + " " + images + " --top-k 3 --json");
  ASSERT_EQ(p.code, 0) << p.err;
  nlohmann::json pj;
  ASSERT_NO_THROW(pj = nlohmann::json::parse(p.out)) << p.out;
  EXPECT_EQ(pj.at("model").get<std::string>(), model);
  const nlohmann::json& preds = pj.at("predictions");
  ASSERT_EQ(preds.size(), 2u) << p.out;
  EXPECT_EQ(preds[0].at("image").get<std::string>(), (dir / "a.pgm").string());
  EXPECT_EQ(preds[1].at("image").get<std::string>(), (dir / "b.pgm").string());
  for (const nlohmann::json& pred : preds) {
    const nlohmann::json& top = pred.at("top_k");
    ASSERT_EQ(top.size(), 3u) << p.out;
    double previous = 1.0, sum = 0.0;
    std::set<int64_t> seen;
    for (const nlohmann::json& c : top) {
      const int64_t cls = c.at("class").get<int64_t>();
      const double prob = c.at("probability").get<double>();
      EXPECT_TRUE(cls >= 0 && cls < 10) << p.out;
      EXPECT_TRUE(seen.insert(cls).second) << p.out;
      EXPECT_EQ(c.at("label").get<std::string>(), std::to_string(cls));  // MNIST: no names
      EXPECT_LE(prob, previous + 1e-7) << "not sorted: " << p.out;
      previous = prob;
      sum += prob;
    }
    EXPECT_LE(sum, 1.0 + 1e-5);
  }
  // The text form ranks the same first class.
  const CliResult pt = run("predict " + model + " " + (dir / "a.pgm").string() + " --top-k 1");
  ASSERT_EQ(pt.code, 0) << pt.err;
  EXPECT_NE(pt.out.find("1. " + preds[0].at("top_k")[0].at("label").get<std::string>() + " "),
            std::string::npos)
      << pt.out;
  fs::remove_all(dir);
}

}  // namespace
