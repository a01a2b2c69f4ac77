// Python's number formatting, for output that matches Keras character for character.
#pragma once

#include <string>

namespace resnet {

// repr(float) / str(float) of Python 3: the shortest text that reads back as `v`, in fixed
// notation when the decimal exponent is in [-4, 16), else scientific ("1e-05", "1.5e+16");
// integral values keep ".0"; "nan", "inf", "-inf".
std::string python_float_repr(double v);

}  // namespace resnet
