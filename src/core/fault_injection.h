// Test seam: named points inside writes that must be all-or-nothing (save_model's "model_weights"
// and "optimizer_weights"), where a test can make the write fail to check that the previous file
// survives. The library installs nothing; with no injector a fault point is one atomic load.
#pragma once

#include <string>

namespace resnet {

class FaultInjector {
 public:
  virtual ~FaultInjector() = default;
  // Called at each fault point with its name; throws to simulate a failure there.
  virtual void at(const std::string& point) = 0;
};

// Installs `injector` (not owned; nullptr removes it). Tests only.
void set_fault_injector(FaultInjector* injector);
// Calls the installed injector, if any.
void fault_point(const std::string& point);

}  // namespace resnet
