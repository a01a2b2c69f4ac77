#include "resnet/layers.h"

namespace resnet {

Node::~Node() {
  // The outermost destructor drains a work list; nested ones (triggered by dropping the last
  // reference to an input node) only hand their inputs to that list and return.
  thread_local std::vector<std::shared_ptr<Node>>* pending = nullptr;
  std::vector<std::shared_ptr<Node>> mine;
  std::vector<std::shared_ptr<Node>>& list = pending ? *pending : mine;
  for (SymTensor& in : inputs) {
    if (in.node_) list.push_back(std::move(in.node_));
  }
  if (pending) return;
  pending = &mine;
  while (!mine.empty()) {
    std::shared_ptr<Node> next = std::move(mine.back());
    mine.pop_back();
    next.reset();
  }
  pending = nullptr;
}

}  // namespace resnet
