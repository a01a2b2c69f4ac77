// Internal: a safe reader for Python pickles (protocols 0-5), as far as torch.save files need.
//
// It builds inert values and never calls anything: a GLOBAL becomes a PyObject of kind Global
// (module and name), and REDUCE / NEWOBJ / BUILD on it become a kind Object recording the callable,
// its arguments and its state. The few globals a checkpoint needs are interpreted by the caller
// (src/io/torch/torch_file.cpp) from those records; everything else stays a placeholder that is
// never called. All values live in an arena owned by the Unpickler, so cyclic memo references
// cannot leak. Limits: object count, container sizes and nesting depth, all checked before
// anything is allocated; any violation, an unknown opcode or a truncated stream throws IoError
// naming the source.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace resnet::torch_detail {

struct PyObject {
  enum class Kind {
    None,
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    Tuple,
    List,
    Dict,
    Global,     // module + "." + name in `text`
    Object,     // `callable` applied to `items` (REDUCE / NEWOBJ), with `state` (BUILD)
    Persistent  // the value returned for a persistent id (BINPERSID): `items[0]` is the id
  };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  bool big_integer = false;  // an integer that did not fit in 64 bits (kept as 0)
  double real = 0;
  std::string text;                                      // Str, Bytes, Global
  std::vector<PyObject*> items;                          // Tuple, List, Object arguments
  std::vector<std::pair<PyObject*, PyObject*>> entries;  // Dict, in insertion order
  PyObject* callable = nullptr;                          // Object
  PyObject* state = nullptr;                             // Object: BUILD's argument
  bool newobj = false;  // Object made by NEWOBJ (cls.__new__), not by REDUCE

  bool is(Kind k) const { return kind == k; }
  bool is_global(std::string_view qualified) const {
    return kind == Kind::Global && text == qualified;
  }
  // Dict lookup by string key; nullptr when absent.
  PyObject* get(std::string_view key) const;
};

// A short description for messages: "str 'abc'", "global torch.FloatStorage", "dict of 3", ...
std::string describe(const PyObject* o);

class Unpickler {
 public:
  // `source` names the file (and member) in messages.
  explicit Unpickler(std::string source) : source_(std::move(source)) {}
  Unpickler(const Unpickler&) = delete;
  Unpickler& operator=(const Unpickler&) = delete;

  // Reads one pickle from data[pos...] up to its STOP and returns its value; `pos` is advanced past
  // the STOP. Values stay valid as long as this Unpickler lives.
  PyObject* load(std::string_view data, size_t& pos);

  PyObject* make(PyObject::Kind kind);
  const std::string& source() const { return source_; }
  [[noreturn]] void fail(const std::string& msg) const;

 private:
  std::string source_;
  std::deque<PyObject> arena_;
};

}  // namespace resnet::torch_detail
