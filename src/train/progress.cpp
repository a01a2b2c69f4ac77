// Keras Progbar lines (tf-keras utils/generic_utils.py, Progbar.update) and Python number repr.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <string_view>

#include "resnet/train.h"
#include "train/py_format.h"

namespace resnet {

namespace {
constexpr int kBarWidth = 30;

// Progbar._format_time: " 1s/step", " 350ms/step" or " 12us/step" (0 prints as "0s").
std::string format_time_per_step(double seconds) {
  if (seconds >= 1 || seconds == 0) return fmt::format(" {:.0f}s/step", seconds);
  if (seconds >= 1e-3) return fmt::format(" {:.0f}ms/step", seconds * 1e3);
  return fmt::format(" {:.0f}us/step", seconds * 1e6);
}

// Python's "%d" % eta truncates; Keras switches format strictly above 60 s and 3600 s.
std::string format_eta(double eta) {
  if (!std::isfinite(eta) || eta < 0) eta = 0;
  const auto s = static_cast<long long>(eta);
  if (eta > 3600) return fmt::format("{}:{:02d}:{:02d}", s / 3600, (s % 3600) / 60, s % 60);
  if (eta > 60) return fmt::format("{}:{:02d}", s / 60, s % 60);
  return fmt::format("{}s", s);
}
}  // namespace

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  // Shortest round-trip digits, as Python's repr (David Gay's mode 0) chooses them.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  const std::string sci(buf, res.ptr);  // "-d.ddde+XX" or "de-XX"
  const size_t e = sci.find('e');
  const bool negative = sci[0] == '-';
  const char* sign = negative ? "-" : "";
  std::string digits;
  for (size_t i = negative ? 1 : 0; i < e; ++i) {
    if (sci[i] != '.') digits.push_back(sci[i]);
  }
  const int exponent = std::atoi(sci.c_str() + e + 1);
  const int n = static_cast<int>(digits.size());
  const int decpt = exponent + 1;  // digits are 0.DDDD * 10^decpt
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return fmt::format("{}0.{}{}", sign, std::string(-decpt, '0'), digits);
    if (decpt >= n) return fmt::format("{}{}{}.0", sign, digits, std::string(decpt - n, '0'));
    return fmt::format("{}{}.{}", sign, digits.substr(0, decpt), digits.substr(decpt));
  }
  return fmt::format("{}{}{}{}e{}{:02d}", sign, digits[0], n > 1 ? "." : "",
                     std::string_view(digits).substr(1), exponent < 0 ? '-' : '+',
                     std::abs(exponent));
}

std::string format_metric(double v) {
  // Progbar: f" {avg:.4f}" when abs(avg) > 1e-3, else f" {avg:.4e}" (so 0 and NaN take %.4e).
  if (std::isnan(v)) return "nan";  // Python never prints "-nan"
  if (std::abs(v) > 1e-3) return fmt::format("{:.4f}", v);
  return fmt::format("{:.4e}", v);
}

std::string progress_line(int64_t step, int64_t total, double elapsed_s, const Logs& logs,
                          const std::vector<std::string>& order, bool running) {
  std::string line;
  if (total > 0) {
    const int digits = static_cast<int>(std::to_string(total).size());
    line = fmt::format("{:>{}}/{} [", step, digits, total);
    const double progress = static_cast<double>(step) / static_cast<double>(total);
    const int filled = std::clamp(static_cast<int>(kBarWidth * progress), 0, kBarWidth);
    if (filled > 0) {
      line.append(filled - 1, '=');
      line += running ? '>' : '=';
    }
    line.append(kBarWidth - filled, '.');
    line += ']';
  } else {
    line = fmt::format("{:7d}/Unknown", step);
  }

  const double per_step = step > 0 ? elapsed_s / static_cast<double>(step) : 0.0;
  if (running && total > 0) {
    line += fmt::format(" - ETA: {}", format_eta(per_step * static_cast<double>(total - step)));
  } else {
    line += fmt::format(" - {:.0f}s{}", elapsed_s, format_time_per_step(per_step));
  }
  for (const std::string& key : order) {
    const auto it = logs.find(key);
    if (it != logs.end()) line += fmt::format(" - {}: {}", key, format_metric(it->second));
  }
  return line;
}

}  // namespace resnet
