// Atomic file replacement: write to temp_path_for(path), then commit_temp_file().
#pragma once

#include <string>

namespace resnet {

// A temporary name in the same folder as `path` (so the final rename stays on one filesystem):
// `path` + ".tmp-" + this process's id. Temporary files of `path` left by processes that no
// longer run (a killed save) are removed first.
std::string temp_path_for(const std::string& path);
// Flushes `tmp` to disk and renames it over `path`; removes `tmp` and throws IoError on failure.
void commit_temp_file(const std::string& tmp, const std::string& path);
// Checks, before any work, that an atomic write of `path` can happen: `path` is not a folder, its
// folder exists, and a temporary file can be created there (it is removed again). Throws IoError
// naming `what` (a flag such as "--out") and the path, with the system's reason.
void check_writable(const std::string& path, const std::string& what);

}  // namespace resnet
