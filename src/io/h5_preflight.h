// Internal: a crash-proof pre-flight read of an HDF5 file in a child process.
//
// Debian's libhdf5 1.10 can crash (SIGSEGV in its global heap under H5Aread of a variable-length
// string, in attribute enumeration), loop forever or allocate without bound on a hostile file
// before resnet.cpp ever sees the data; nothing in the C API lets a caller validate those
// structures first. So the .h5 loaders (load_model, load_keras_model, load_weights,
// read_model_attributes, load_h5_dataset) call preflight() before they touch the file: it forks
// a child that opens the file with HDF5 and reads every group, attribute and dataset the way the
// loaders do (variable-length strings as strings, floats as float32, integers as int64, fixed
// strings as bytes), under a time limit (alarm) and an address-space limit (RLIMIT_AS), and then
// _exits. The child calls only HDF5 and plain C++ (no OpenMP, no oneDNN, no stdio), and never
// runs exit handlers, so the parent's open files and threads are untouched.
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

#include <string>

namespace resnet::h5 {

// Default time limit of the child, in seconds.
constexpr unsigned kPreflightTimeoutSeconds = 60;

// Runs the check described above (no-op when disabled). Throws IoError naming `path` and the
// object inside it when HDF5 crashes, hangs or exhausts memory reading the file.
void preflight(const std::string& path);

// True unless RESNET_H5_NO_PREFLIGHT is set to a non-empty value other than "0".
bool preflight_enabled();

}  // namespace resnet::h5
