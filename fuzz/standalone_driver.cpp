// A libFuzzer-compatible driver for compilers without -fsanitize=fuzzer (GCC): replays every
// input of the given files/folders, then mutates them (bit flips, byte changes, insertions,
// erasures, truncation, splices) until -max_total_time seconds or -runs executions are spent.
// On a crash (signal) the current input is written to crash-<pid>-<signal> in the working
// folder; an input running longer than -timeout seconds (default 20) counts as a crash (SIGALRM).
//   fuzz_keras_h5 [-max_total_time=S] [-runs=N] [-seed=N] [-timeout=S] CORPUS_DIR_OR_FILE...
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

const std::vector<uint8_t>* g_current = nullptr;

void on_crash(int sig) {
  if (g_current != nullptr) {
    char name[64];
    std::snprintf(name, sizeof(name), "crash-%d-%d", static_cast<int>(::getpid()), sig);
    FILE* f = std::fopen(name, "wb");
    if (f != nullptr) {
      std::fwrite(g_current->data(), 1, g_current->size(), f);
      std::fclose(f);
    }
    const char msg[] = "fuzz: crash; input written to crash-<pid>-<signal>\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

std::vector<uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();
  return {s.begin(), s.end()};
}

unsigned g_timeout = 20;

void run_one(const std::vector<uint8_t>& input) {
  g_current = &input;
  ::alarm(g_timeout);
  LLVMFuzzerTestOneInput(input.data(), input.size());
  ::alarm(0);
  g_current = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  double max_time = 0;
  long long max_runs = -1;
  uint64_t seed = 1;
  std::vector<std::vector<uint8_t>> corpus;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("-max_total_time=", 0) == 0) {
      max_time = std::stod(a.substr(16));
    } else if (a.rfind("-runs=", 0) == 0) {
      max_runs = std::stoll(a.substr(6));
    } else if (a.rfind("-timeout=", 0) == 0) {
      g_timeout = static_cast<unsigned>(std::stoul(a.substr(9)));
    } else if (a.rfind("-seed=", 0) == 0) {
      seed = std::stoull(a.substr(6));
    } else if (a.rfind("-", 0) == 0) {
      std::fprintf(stderr, "fuzz: ignoring option %s\n", a.c_str());
    } else if (std::filesystem::is_directory(a)) {
      for (const auto& e : std::filesystem::directory_iterator(a)) {
        if (e.is_regular_file()) corpus.push_back(read_file(e.path()));
      }
    } else {
      corpus.push_back(read_file(a));
    }
  }
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGALRM}) std::signal(sig, on_crash);
  std::set_terminate([] {
    std::fprintf(stderr, "fuzz: an exception escaped LLVMFuzzerTestOneInput\n");
    std::abort();
  });
  if (corpus.empty()) corpus.push_back({});
  long long runs = 0;
  for (const auto& input : corpus) {
    run_one(input);
    ++runs;
  }
  std::fprintf(stderr, "fuzz: replayed %zu inputs\n", corpus.size());
  std::mt19937_64 rng(seed);
  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  while ((max_runs < 0 || runs < max_runs) &&
         (max_time <= 0 ? max_runs >= 0 : elapsed() < max_time)) {
    std::vector<uint8_t> x = corpus[rng() % corpus.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t n = x.size();
      switch (rng() % 7) {
        case 0:  // flip a bit
          if (n) x[rng() % n] ^= static_cast<uint8_t>(1u << (rng() % 8));
          break;
        case 1:  // random byte
          if (n) x[rng() % n] = static_cast<uint8_t>(rng());
          break;
        case 2: {  // interesting byte run
          static const uint8_t vals[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe};
          if (n) {
            const size_t at = rng() % n, len = 1 + rng() % 8;
            for (size_t k = at; k < n && k < at + len; ++k) x[k] = vals[rng() % sizeof(vals)];
          }
          break;
        }
        case 3:  // truncate
          if (n) x.resize(rng() % n);
          break;
        case 4: {  // erase a run
          if (n) {
            const size_t at = rng() % n;
            const size_t len = 1 + static_cast<size_t>(rng() % std::min<size_t>(64, n - at));
            x.erase(x.begin() + static_cast<std::ptrdiff_t>(at),
                    x.begin() + static_cast<std::ptrdiff_t>(at + len));
          }
          break;
        }
        case 5: {  // insert random bytes
          const size_t at = n ? rng() % n : 0, len = 1 + rng() % 16;
          std::vector<uint8_t> ins(len);
          for (auto& b : ins) b = static_cast<uint8_t>(rng());
          x.insert(x.begin() + static_cast<std::ptrdiff_t>(at), ins.begin(), ins.end());
          break;
        }
        default: {  // splice a chunk of another input over this one
          const auto& other = corpus[rng() % corpus.size()];
          if (n && !other.empty()) {
            const size_t from = rng() % other.size(), to = rng() % n;
            const size_t len = std::min<size_t>(
                {other.size() - from, n - to, 1 + static_cast<size_t>(rng() % 256)});
            std::memcpy(x.data() + to, other.data() + from, len);
          }
          break;
        }
      }
    }
    run_one(x);
    ++runs;
  }
  std::fprintf(stderr, "fuzz: %lld runs in %.1f s, no crash\n", runs, elapsed());
  return 0;
}
