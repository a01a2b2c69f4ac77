// One function per subcommand: each registers its options and its callback on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace resnet::cli {

void add_demo_command(CLI::App& app);

}  // namespace resnet::cli
