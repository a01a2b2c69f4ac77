// Running a shell command from a test and capturing what it prints.
#pragma once

#include <string>

namespace resnet::testing {

struct CommandResult {
  int code = -1;    // exit status; -1 when it could not run or died from a signal
  std::string out;  // what the command wrote to stdout (redirect 2>&1 in `command` for stderr)
};

// Runs `command` through /bin/sh and reads its stdout to the end.
CommandResult run_command(const std::string& command);

}  // namespace resnet::testing
