// The pickle virtual machine, without its calls: see pickle.h.
#include "io/torch/pickle.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "resnet/error.h"

namespace resnet::torch_detail {

namespace {
constexpr size_t kMaxObjects = size_t{1} << 23;  // 8M values: far more than any state_dict
constexpr size_t kMaxStack = size_t{1} << 22;
constexpr size_t kMaxMemo = size_t{1} << 22;

int64_t signed_le(const unsigned char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  if (n < 8 && n > 0 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
  return static_cast<int64_t>(v);
}
}  // namespace

PyObject* PyObject::get(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k != nullptr && k->kind == Kind::Str && k->text == key) return v;
  }
  return nullptr;
}

std::string describe(const PyObject* o) {
  using K = PyObject::Kind;
  if (o == nullptr) return "nothing";
  switch (o->kind) {
    case K::None:
      return "None";
    case K::Bool:
      return o->boolean ? "True" : "False";
    case K::Int:
      return o->big_integer ? "a large int" : fmt::format("int {}", o->integer);
    case K::Float:
      return fmt::format("float {}", o->real);
    case K::Str:
      return fmt::format("str '{}'", o->text.size() > 60 ? o->text.substr(0, 60) + "..." : o->text);
    case K::Bytes:
      return fmt::format("bytes of length {}", o->text.size());
    case K::Tuple:
      return fmt::format("tuple of {}", o->items.size());
    case K::List:
      return fmt::format("list of {}", o->items.size());
    case K::Dict:
      return fmt::format("dict of {}", o->entries.size());
    case K::Global:
      return "global " + o->text;
    case K::Object:
      return "an object of " + (o->callable ? o->callable->text : std::string("?"));
    case K::Persistent:
      return "a persistent id";
  }
  return "?";
}

PyObject* Unpickler::make(PyObject::Kind kind) {
  if (arena_.size() >= kMaxObjects) fail("too many objects in the pickle");
  arena_.emplace_back();
  arena_.back().kind = kind;
  return &arena_.back();
}

void Unpickler::fail(const std::string& msg) const {
  throw IoError(fmt::format("{}: {}", source_, msg));
}

PyObject* Unpickler::load(std::string_view data, size_t& pos) {
  using K = PyObject::Kind;
  std::vector<PyObject*> stack;
  std::vector<size_t> marks;
  std::unordered_map<uint64_t, PyObject*> memo;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());

  auto need = [&](size_t n, const char* what) {
    if (n > data.size() - pos) fail(fmt::format("truncated pickle (in {})", what));
  };
  auto take = [&](size_t n, const char* what) {
    need(n, what);
    const unsigned char* p = bytes + pos;
    pos += n;
    return p;
  };
  auto line = [&](const char* what) {
    const size_t end = data.find('\n', pos);
    if (end == std::string_view::npos) fail(fmt::format("truncated pickle (in {})", what));
    std::string s(data.substr(pos, end - pos));
    pos = end + 1;
    return s;
  };
  auto push = [&](PyObject* o) {
    if (stack.size() >= kMaxStack) fail("pickle stack too deep");
    stack.push_back(o);
  };
  auto pop = [&](const char* op) {
    if (stack.empty() || (!marks.empty() && stack.size() <= marks.back())) {
      fail(fmt::format("damaged pickle: {} on an empty stack", op));
    }
    PyObject* o = stack.back();
    stack.pop_back();
    return o;
  };
  auto top = [&](const char* op) {
    if (stack.empty() || (!marks.empty() && stack.size() <= marks.back())) {
      fail(fmt::format("damaged pickle: {} on an empty stack", op));
    }
    return stack.back();
  };
  auto pop_mark = [&](const char* op) {
    if (marks.empty()) fail(fmt::format("damaged pickle: {} without a MARK", op));
    const size_t m = marks.back();
    marks.pop_back();
    std::vector<PyObject*> items(stack.begin() + static_cast<std::ptrdiff_t>(m), stack.end());
    stack.resize(m);
    return items;
  };
  auto str = [&](std::string s, K kind) {
    PyObject* o = make(kind);
    o->text = std::move(s);
    return o;
  };
  auto integer = [&](int64_t v) {
    PyObject* o = make(K::Int);
    o->integer = v;
    return o;
  };
  auto long_bytes = [&](size_t n) {
    const unsigned char* p = take(n, "LONG");
    PyObject* o = make(K::Int);
    if (n <= 8) {
      o->integer = signed_le(p, n);
    } else {
      o->big_integer = true;
      o->text.assign(reinterpret_cast<const char*>(p), n);
    }
    return o;
  };
  auto memo_put = [&](uint64_t key) {
    if (memo.size() >= kMaxMemo && !memo.count(key)) fail("pickle memo too large");
    memo[key] = top("PUT");
  };
  auto memo_get = [&](uint64_t key) {
    auto it = memo.find(key);
    if (it == memo.end()) fail(fmt::format("damaged pickle: memo entry {} is not defined", key));
    push(it->second);
  };
  auto tuple = [&](std::vector<PyObject*> items) {
    PyObject* t = make(K::Tuple);
    t->items = std::move(items);
    return t;
  };
  auto set_items = [&](PyObject* target, std::vector<PyObject*>& kv, const char* op) {
    if (kv.size() % 2 != 0) fail(fmt::format("damaged pickle: {} with an odd item count", op));
    if (target->kind != K::Dict && target->kind != K::Object) {
      fail(fmt::format("damaged pickle: {} on {}", op, describe(target)));
    }
    for (size_t i = 0; i < kv.size(); i += 2) target->entries.emplace_back(kv[i], kv[i + 1]);
  };
  auto append_items = [&](PyObject* target, std::vector<PyObject*>& items, const char* op) {
    if (target->kind == K::List) {
      target->items.insert(target->items.end(), items.begin(), items.end());
    } else if (target->kind == K::Object) {
      for (PyObject* v : items) target->entries.emplace_back(nullptr, v);
    } else {
      fail(fmt::format("damaged pickle: {} on {}", op, describe(target)));
    }
  };
  auto reduce = [&](PyObject* callable, PyObject* args, bool newobj) -> PyObject* {
    if (args->kind != K::Tuple) fail("damaged pickle: REDUCE arguments are not a tuple");
    // An empty OrderedDict (or dict) is plain data: build it so SETITEMS can fill it.
    if (!newobj && args->items.empty() &&
        (callable->is_global("collections.OrderedDict") || callable->is_global("builtins.dict") ||
         callable->is_global("__builtin__.dict"))) {
      return make(K::Dict);
    }
    PyObject* o = make(K::Object);
    o->callable = callable;
    o->items = args->items;
    o->newobj = newobj;
    return o;
  };

  if (pos >= data.size()) fail("empty pickle");
  while (true) {
    const unsigned char op = *take(1, "opcode");
    switch (op) {
      case 0x80: {  // PROTO
        const unsigned char proto = *take(1, "PROTO");
        if (proto > 5) fail(fmt::format("unsupported pickle protocol {}", proto));
        break;
      }
      case 0x95:  // FRAME: the framing is only a read-ahead hint
        take(8, "FRAME");
        break;
      case '.':  // STOP
        if (stack.size() != 1 || !marks.empty()) {
          fail(fmt::format("damaged pickle: STOP with {} values on the stack", stack.size()));
        }
        return stack.back();
      case '(':
        marks.push_back(stack.size());
        break;
      case '0':
        pop("POP");
        break;
      case '1':
        pop_mark("POP_MARK");
        break;
      case '2':
        push(top("DUP"));
        break;
      case 'N':
        push(make(K::None));
        break;
      case 0x88:
      case 0x89: {
        PyObject* o = make(K::Bool);
        o->boolean = op == 0x88;
        push(o);
        break;
      }
      case 'K':
        push(integer(*take(1, "BININT1")));
        break;
      case 'M': {
        const unsigned char* p = take(2, "BININT2");
        push(integer(p[0] | (p[1] << 8)));
        break;
      }
      case 'J':
        push(integer(signed_le(take(4, "BININT"), 4)));
        break;
      case 0x8a:
        push(long_bytes(*take(1, "LONG1")));
        break;
      case 0x8b: {
        const int64_t n = signed_le(take(4, "LONG4"), 4);
        if (n < 0) fail("damaged pickle: negative LONG4 size");
        push(long_bytes(static_cast<size_t>(n)));
        break;
      }
      case 'I':
      case 'L': {
        std::string s = line("INT");
        if (!s.empty() && s.back() == 'L') s.pop_back();
        if (op == 'I' && (s == "00" || s == "01")) {
          PyObject* o = make(K::Bool);
          o->boolean = s == "01";
          push(o);
          break;
        }
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || end != s.c_str() + s.size()) fail("damaged pickle: bad INT text");
        PyObject* o = integer(v);
        o->big_integer = errno == ERANGE;
        push(o);
        break;
      }
      case 'G': {
        const unsigned char* p = take(8, "BINFLOAT");
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
        PyObject* o = make(K::Float);
        std::memcpy(&o->real, &bits, 8);
        push(o);
        break;
      }
      case 'F': {
        const std::string s = line("FLOAT");
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size()) fail("damaged pickle: bad FLOAT text");
        PyObject* o = make(K::Float);
        o->real = v;
        push(o);
        break;
      }
      case 'X':
      case 'T':
      case 'B': {
        const int64_t n =
            static_cast<int64_t>(static_cast<uint32_t>(signed_le(take(4, "size"), 4)));
        const unsigned char* p = take(static_cast<size_t>(n), "string");
        push(str(std::string(reinterpret_cast<const char*>(p), n), op == 'B' ? K::Bytes : K::Str));
        break;
      }
      case 0x8c:
      case 'U':
      case 'C': {
        const size_t n = *take(1, "size");
        const unsigned char* p = take(n, "string");
        push(str(std::string(reinterpret_cast<const char*>(p), n), op == 'C' ? K::Bytes : K::Str));
        break;
      }
      case 0x8d:
      case 0x8e:
      case 0x96: {
        const uint64_t n = static_cast<uint64_t>(signed_le(take(8, "size"), 8));
        if (n > data.size() - pos) fail("truncated pickle (in a string)");
        const unsigned char* p = take(static_cast<size_t>(n), "string");
        push(str(std::string(reinterpret_cast<const char*>(p), n), op == 0x8d ? K::Str : K::Bytes));
        break;
      }
      case 'S': {  // STRING: a quoted repr; kept without its quotes (escapes left as they are)
        std::string s = line("STRING");
        if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front()) {
          s = s.substr(1, s.size() - 2);
        }
        push(str(std::move(s), K::Str));
        break;
      }
      case 'V':
        push(str(line("UNICODE"), K::Str));
        break;
      case ')':
        push(tuple({}));
        break;
      case 't':
        push(tuple(pop_mark("TUPLE")));
        break;
      case 0x85: {
        PyObject* a = pop("TUPLE1");
        push(tuple({a}));
        break;
      }
      case 0x86: {
        PyObject* b = pop("TUPLE2");
        PyObject* a = pop("TUPLE2");
        push(tuple({a, b}));
        break;
      }
      case 0x87: {
        PyObject* c = pop("TUPLE3");
        PyObject* b = pop("TUPLE3");
        PyObject* a = pop("TUPLE3");
        push(tuple({a, b, c}));
        break;
      }
      case ']':
      case 0x8f:  // EMPTY_SET: kept as a list
        push(make(K::List));
        break;
      case 'l': {
        PyObject* l = make(K::List);
        l->items = pop_mark("LIST");
        push(l);
        break;
      }
      case 0x91: {  // FROZENSET
        PyObject* l = make(K::List);
        l->items = pop_mark("FROZENSET");
        push(l);
        break;
      }
      case 'a': {
        PyObject* v = pop("APPEND");
        std::vector<PyObject*> one{v};
        append_items(top("APPEND"), one, "APPEND");
        break;
      }
      case 'e':
      case 0x90: {  // APPENDS, ADDITEMS
        std::vector<PyObject*> items = pop_mark("APPENDS");
        append_items(top("APPENDS"), items, "APPENDS");
        break;
      }
      case '}':
        push(make(K::Dict));
        break;
      case 'd': {
        std::vector<PyObject*> kv = pop_mark("DICT");
        PyObject* d = make(K::Dict);
        set_items(d, kv, "DICT");
        push(d);
        break;
      }
      case 's': {
        PyObject* v = pop("SETITEM");
        PyObject* k = pop("SETITEM");
        std::vector<PyObject*> kv{k, v};
        set_items(top("SETITEM"), kv, "SETITEM");
        break;
      }
      case 'u': {
        std::vector<PyObject*> kv = pop_mark("SETITEMS");
        set_items(top("SETITEMS"), kv, "SETITEMS");
        break;
      }
      case 'c': {
        std::string module = line("GLOBAL");
        std::string name = line("GLOBAL");
        push(str(module + "." + name, K::Global));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        PyObject* name = pop("STACK_GLOBAL");
        PyObject* module = pop("STACK_GLOBAL");
        if (name->kind != K::Str || module->kind != K::Str) {
          fail("damaged pickle: STACK_GLOBAL without module and name strings");
        }
        push(str(module->text + "." + name->text, K::Global));
        break;
      }
      case 'R': {
        PyObject* args = pop("REDUCE");
        PyObject* callable = pop("REDUCE");
        push(reduce(callable, args, false));
        break;
      }
      case 0x81: {  // NEWOBJ
        PyObject* args = pop("NEWOBJ");
        PyObject* cls = pop("NEWOBJ");
        push(reduce(cls, args, true));
        break;
      }
      case 0x92: {  // NEWOBJ_EX: keyword arguments are dropped (inert anyway)
        pop("NEWOBJ_EX");
        PyObject* args = pop("NEWOBJ_EX");
        PyObject* cls = pop("NEWOBJ_EX");
        push(reduce(cls, args, true));
        break;
      }
      case 'i': {  // INST module\nname\n with MARKed arguments
        std::string module = line("INST");
        std::string name = line("INST");
        PyObject* cls = str(module + "." + name, K::Global);
        push(reduce(cls, tuple(pop_mark("INST")), true));
        break;
      }
      case 'o': {  // OBJ: MARK cls args...
        std::vector<PyObject*> items = pop_mark("OBJ");
        if (items.empty()) fail("damaged pickle: OBJ without a class");
        PyObject* cls = items.front();
        items.erase(items.begin());
        push(reduce(cls, tuple(std::move(items)), true));
        break;
      }
      case 'b': {
        PyObject* state = pop("BUILD");
        top("BUILD")->state = state;
        break;
      }
      case 'Q': {
        PyObject* pid = pop("BINPERSID");
        PyObject* p = make(K::Persistent);
        p->items = {pid};
        push(p);
        break;
      }
      case 'P': {
        PyObject* p = make(K::Persistent);
        p->items = {str(line("PERSID"), K::Str)};
        push(p);
        break;
      }
      case 'q':
        memo_put(*take(1, "BINPUT"));
        break;
      case 'r':
        memo_put(static_cast<uint32_t>(signed_le(take(4, "LONG_BINPUT"), 4)));
        break;
      case 0x94:  // MEMOIZE
        memo_put(memo.size());
        break;
      case 'p': {
        const std::string s = line("PUT");
        char* end = nullptr;
        const unsigned long long k = std::strtoull(s.c_str(), &end, 10);
        if (s.empty() || end != s.c_str() + s.size()) fail("damaged pickle: bad PUT index");
        memo_put(k);
        break;
      }
      case 'h':
        memo_get(*take(1, "BINGET"));
        break;
      case 'j':
        memo_get(static_cast<uint32_t>(signed_le(take(4, "LONG_BINGET"), 4)));
        break;
      case 'g': {
        const std::string s = line("GET");
        char* end = nullptr;
        const unsigned long long k = std::strtoull(s.c_str(), &end, 10);
        if (s.empty() || end != s.c_str() + s.size()) fail("damaged pickle: bad GET index");
        memo_get(k);
        break;
      }
      case 0x98:  // READONLY_BUFFER: no-op on our values
        top("READONLY_BUFFER");
        break;
      default:
        fail(fmt::format("unsupported pickle opcode 0x{:02x} at byte {}", op, pos - 1));
    }
  }
}

}  // namespace resnet::torch_detail
