// Internal: a crash-proof pre-flight read of an HDF5 file in a child process.
//
// Debian's libhdf5 1.10 can crash (SIGSEGV in its global heap under H5Aread of a variable-length
// string, in attribute enumeration), loop forever or allocate without bound on a hostile file
// before resnet.cpp ever sees the data; nothing in the C API lets a caller validate those
// structures first. So the .h5 loaders (load_model, load_weights,
// read_model_attributes, load_h5_dataset) call preflight() before they touch the file: it forks
// a child that opens the file with HDF5 and reads every group, attribute and dataset the way the
// loaders do (variable-length strings as strings, floats as float32, integers as int64, fixed
// strings as bytes; of a contiguous dataset, plain bytes at a checked offset, only the first
// 64 KiB), under a time limit (alarm) and an address-space limit (RLIMIT_AS), and then _exits. The
// child calls only HDF5 and plain C++ (no OpenMP, no oneDNN, no stdio), and never runs exit
// handlers, so the parent's open files and threads are untouched.
//
// The child hands the variable-length strings it read back to the parent (PreflightStrings,
// through a memfd), so the parent never runs HDF5's global-heap code on the file.
//
// When the child dies from a signal, runs past the time limit or runs out of memory, preflight()
// throws IoError "'<file>': corrupt HDF5 file: the HDF5 library crashed (signal 11, Segmentation
// fault) reading attribute 'model_config' of '/'" (naming the object it was reading). When the
// child finishes, the caller does the real load in-process; HDF5 *errors* (as opposed to crashes)
// are left to the loader, which reports them with its own, more specific message.
//
// Environment: RESNET_H5_NO_PREFLIGHT=1 skips the check (trusted files, speed);
// RESNET_H5_PREFLIGHT_TIMEOUT=S changes the time limit (default 60 seconds). Where fork() is
// unavailable or fails, the file is loaded without the check.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace resnet::h5 {

// Default time limit of the child, in seconds.
constexpr unsigned kPreflightTimeoutSeconds = 60;

// The variable-length strings the child read. libhdf5 1.10 copies a variable-length string out
// of the global heap without checking the heap object's size against the string's length (a
// heap buffer overflow on a corrupt file that need not crash at once), so the loaders never read
// those through HDF5 in-process after a pre-flight: they take the child's copy from here.
// Keys are absolute paths ("/", "/model_weights/dense").
struct PreflightStrings {
  std::map<std::pair<std::string, std::string>, std::vector<std::string>>
      attributes;  // (obj, name)
  std::map<std::string, std::vector<std::string>> datasets;
  // An attribute or dataset the child read, or null.
  const std::vector<std::string>* attribute(const std::string& obj, const std::string& name) const;
  const std::vector<std::string>* dataset(const std::string& path) const;
};

// Runs the check described above. Throws IoError naming `path` and the object inside it when
// HDF5 crashes, hangs or exhausts memory reading the file. Returns the variable-length strings
// the child read, or null when the check is disabled or could not run (the caller then reads
// them itself).
std::shared_ptr<const PreflightStrings> preflight(const std::string& path);

// True unless RESNET_H5_NO_PREFLIGHT is set to a non-empty value other than "0".
bool preflight_enabled();

// "/" for "", "." or "/"; otherwise the path with exactly one leading slash.
std::string absolute_h5_path(const std::string& obj);

}  // namespace resnet::h5
