// The `resnet` command-line tool. Only this file turns errors into messages and exit codes:
// 0 success, 1 failure, 2 usage error.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "resnet/dist.h"
#include "resnet/error.h"
#include "resnet/runtime.h"

namespace {
// Under mpirun (docs/distributed.md) a rank that fails ends the whole job: the other ranks would
// otherwise wait for it in their next collective.
int finish(int code) {
  if (code != 0 && resnet::dist::active()) {
    std::fflush(stderr);
    resnet::dist::abort(code);
  }
  resnet::dist::finalize();
  return code;
}
}  // namespace

int main(int argc, char** argv) {
  try {
    resnet::runtime_options();  // a malformed RESNET_* variable is a usage error, before any work
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resnet: error: %s\n", e.what());
    return 2;
  }
  try {
    resnet::dist::init(&argc, &argv);  // MPI, only when started by mpirun/mpiexec
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resnet: error: %s\n", e.what());
    return 1;
  }
  CLI::App app{"resnet.cpp: residual networks in C++ (train, evaluate, inspect)", "resnet"};
  app.set_version_flag("--version", std::string("resnet.cpp ") + RESNET_VERSION);
  app.require_subcommand(1);
  // --help shows every option's default value.
  app.option_defaults()->always_capture_default();
  // A repeated option takes its last value, so scripts can append overrides.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  resnet::cli::add_demo_command(app);
  resnet::cli::add_model_commands(app);
  resnet::cli::add_train_commands(app);
  resnet::cli::add_finetune_command(app);
  resnet::cli::add_bench_command(app);
  resnet::cli::add_onnx_commands(app);
  // An unknown command is named (CLI11 alone only says that a subcommand is required).
  if (argc > 1 && argv[1][0] != '-' &&
      app.get_subcommands([&](const CLI::App* sub) { return sub->check_name(argv[1]); }).empty()) {
    std::fprintf(stderr, "resnet: error: unknown command '%s' (see resnet --help)\n", argv[1]);
    return finish(2);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return finish(app.exit(e) == 0 ? 0 : 2);
  } catch (const resnet::ConfigError& e) {
    std::fprintf(stderr, "resnet: error: %s\n", e.what());
    return finish(2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resnet: error: %s\n", e.what());
    return finish(1);
  }
  return finish(0);
}
