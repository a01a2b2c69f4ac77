// See fault_injection.h.
#include "core/fault_injection.h"

#include <atomic>

namespace resnet {

namespace {
std::atomic<FaultInjector*> g_injector{nullptr};
}  // namespace

void set_fault_injector(FaultInjector* injector) { g_injector.store(injector); }

void fault_point(const std::string& point) {
  if (FaultInjector* f = g_injector.load()) f->at(point);
}

}  // namespace resnet
