#include "ops/profile.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

namespace resnet::ops::profile {
namespace {

std::atomic<bool> g_enabled{false};

struct Totals {
  std::mutex mu;
  std::map<std::string, Entry> by_name;
};

Totals& totals_store() {
  static Totals t;
  return t;
}

thread_local Scope* t_current = nullptr;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void set_enabled(bool on) { g_enabled.store(on); }
bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void reset() {
  Totals& t = totals_store();
  std::lock_guard lock(t.mu);
  t.by_name.clear();
}

std::vector<Entry> totals() {
  Totals& t = totals_store();
  std::vector<Entry> v;
  {
    std::lock_guard lock(t.mu);
    for (const auto& [name, e] : t.by_name) v.push_back(e);
  }
  std::sort(v.begin(), v.end(),
            [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
  return v;
}

Scope::Scope(const char* name) {
  if (!enabled()) return;
  name_ = name;
  parent_ = t_current;
  t_current = this;
  start_ns_ = now_ns();
}

Scope::~Scope() {
  if (name_ == nullptr) return;
  const int64_t elapsed = now_ns() - start_ns_;
  t_current = parent_;
  if (parent_ != nullptr) parent_->child_ns_ += elapsed;
  Totals& t = totals_store();
  std::lock_guard lock(t.mu);
  Entry& e = t.by_name[name_];
  e.name = name_;
  e.seconds += static_cast<double>(elapsed - child_ns_) * 1e-9;
  e.calls += 1;
}

}  // namespace resnet::ops::profile
