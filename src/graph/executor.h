// The executor's one forward loop. Model::forward (every layer on its own), the fused inference
// plan (src/graph/inference_plan.cpp) and the replay of a recomputed stretch in backward all run
// their steps through run_steps; they differ only in what a step consumes and how it runs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "resnet/tensor.h"

namespace resnet::graph_detail {

// Live activation tensors while the loop runs, and their peak (Model::last_peak_live_tensors).
struct LiveCount {
  int64_t live = 0;
  int64_t peak = 0;
};

// Runs steps [begin, end) in order. values[i - base] holds step i's output until its last use:
// uses[i - base] counts the uses left (one per consuming input slot, one more for a model output),
// and a value is released when its count reaches zero. For each step, inputs_of(i) names the steps
// it consumes (a pointer to their indices; null skips the step: it runs inside another one), and
// run(i, ins) computes its output from their values (an input step gets no values and supplies
// its own). after(i) runs once step i's output is stored and its spent inputs released.
template <class InputsOf, class Run, class After>
void run_steps(int begin, int end, int base, std::vector<Tensor>& values, std::vector<int>& uses,
               InputsOf&& inputs_of, Run&& run, After&& after, LiveCount& count) {
  std::vector<Tensor> ins;
  for (int i = begin; i < end; ++i) {
    const std::vector<int>* in = inputs_of(i);
    if (in == nullptr) continue;
    ins.clear();
    for (int p : *in) ins.push_back(values[p - base]);
    values[i - base] = run(i, ins);
    ins.clear();
    ++count.live;
    count.peak = std::max(count.peak, count.live);
    for (int p : *in) {
      Tensor& v = values[p - base];
      if (--uses[p - base] == 0 && v.defined()) {
        v = Tensor();
        --count.live;
      }
    }
    after(i);
  }
}

}  // namespace resnet::graph_detail
