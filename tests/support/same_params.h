// Two models of the same architecture hold bit-identical parameters (trainable or not: moving
// statistics too): for tests of training paths that must give exactly the same updates.
#pragma once

#include <gtest/gtest.h>

#include <cstring>

#include "resnet/model.h"

namespace resnet::testing {

inline void expect_same_params(Model& a, Model& b) {
  ASSERT_EQ(a.layers().size(), b.layers().size());
  for (size_t i = 0; i < a.layers().size(); ++i) {
    auto& pa = a.layers()[i]->params();
    auto& pb = b.layers()[i]->params();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t k = 0; k < pa.size(); ++k) {
      ASSERT_EQ(pa[k].value.numel(), pb[k].value.numel());
      EXPECT_EQ(std::memcmp(pa[k].value.f32(), pb[k].value.f32(), pa[k].value.numel() * 4), 0)
          << a.layers()[i]->name() << "/" << pa[k].name;
    }
  }
}

}  // namespace resnet::testing
