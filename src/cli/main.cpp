// The `resnet` command-line tool. Only this file turns errors into messages and exit codes:
// 0 success, 1 failure, 2 usage error.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.h"
#include "resnet/error.h"

int main(int argc, char** argv) {
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const resnet::ConfigError& e) {
    std::fprintf(stderr, "resnet: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resnet: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
