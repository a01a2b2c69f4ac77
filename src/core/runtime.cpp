// The one reader of the environment: see include/resnet/runtime.h and docs/runtime.md.
#include "resnet/runtime.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

#include "resnet/error.h"

namespace resnet {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

// "0" / "1" (also "false"/"true", "off"/"on"); anything else is refused.
bool flag(const char* name, bool fallback) {
  const char* v = env(name);
  if (v == nullptr) return fallback;
  const std::string s = v;
  if (s == "0" || s == "false" || s == "off") return false;
  if (s == "1" || s == "true" || s == "on") return true;
  throw ConfigError(fmt::format("{} must be 0 or 1, got '{}'", name, s));
}

int64_t integer(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* v = env(name);
  if (v == nullptr) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v, &end, 10);
  if (end == v || *end != '\0' || errno != 0 || x < lo || x > hi) {
    throw ConfigError(
        fmt::format("{} must be an integer from {} to {}, got '{}'", name, lo, hi, v));
  }
  return x;
}

double seconds(const char* name, double fallback) {
  const char* v = env(name);
  if (v == nullptr) return fallback;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(x >= 0.0) || x > 1e9) {
    throw ConfigError(fmt::format("{} must be a number of seconds >= 0, got '{}'", name, v));
  }
  return x;
}

std::mutex& mutex() {
  static std::mutex m;
  return m;
}
std::optional<RuntimeOptions>& current() {
  static std::optional<RuntimeOptions> o;
  return o;
}

}  // namespace

RuntimeOptions runtime_options_from_environment() {
  RuntimeOptions o;
  o.small_conv = flag("RESNET_SMALL_CONV", o.small_conv);
  o.winograd = flag("RESNET_WINOGRAD", o.winograd);
  o.dist_bucket_kb = integer("RESNET_DIST_BUCKET_KB", o.dist_bucket_kb, 1, int64_t(1) << 30);
  o.dist_timeout_seconds = seconds("RESNET_DIST_TIMEOUT", o.dist_timeout_seconds);
  o.dist_verbose = flag("RESNET_DIST_VERBOSE", o.dist_verbose);
  o.h5_preflight = !flag("RESNET_H5_NO_PREFLIGHT", !o.h5_preflight);
  o.h5_preflight_timeout_seconds =
      integer("RESNET_H5_PREFLIGHT_TIMEOUT", o.h5_preflight_timeout_seconds, 1, 86399);
  return o;
}

RuntimeOptions runtime_options() {
  std::lock_guard<std::mutex> lock(mutex());
  if (!current()) current() = runtime_options_from_environment();
  return *current();
}

void set_runtime_options(const RuntimeOptions& options) {
  if (options.dist_bucket_kb < 1) {
    throw ConfigError(
        fmt::format("RuntimeOptions: dist_bucket_kb must be >= 1, got {}", options.dist_bucket_kb));
  }
  if (!(options.dist_timeout_seconds >= 0.0)) {
    throw ConfigError(fmt::format("RuntimeOptions: dist_timeout_seconds must be >= 0, got {}",
                                  options.dist_timeout_seconds));
  }
  if (options.h5_preflight_timeout_seconds < 1 || options.h5_preflight_timeout_seconds > 86399) {
    throw ConfigError(
        fmt::format("RuntimeOptions: h5_preflight_timeout_seconds must be 1 to 86399, got {}",
                    options.h5_preflight_timeout_seconds));
  }
  std::lock_guard<std::mutex> lock(mutex());
  current() = options;
}

}  // namespace resnet
