// History::to_csv: the layout of keras.callbacks.CSVLogger (header "epoch" + sorted keys, 0-based
// epochs, Python float repr).
#include <string>

#include "resnet/train.h"
#include "train/py_format.h"

namespace resnet {

std::string History::to_csv() const {
  // std::map orders keys bytewise, which is Python's sorted() order for ASCII and UTF-8 names.
  std::string csv = "epoch";
  for (const auto& [key, column] : values) {
    csv += ',';
    csv += key;
  }
  csv += "\n";
  for (size_t i = 0; i < epochs.size(); ++i) {
    csv += std::to_string(epochs[i]);
    for (const auto& [key, column] : values) {
      // A key missing at some epoch prints as CSVLogger prints it: "NA".
      csv += ',';
      csv += i < column.size() ? python_float_repr(column[i]) : std::string("NA");
    }
    csv += "\n";
  }
  return csv;
}

}  // namespace resnet
