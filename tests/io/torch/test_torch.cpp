// PyTorch files: the zip container, the pickle reader, both torch.save formats, the mapping onto
// the zoo, and damaged or hostile files. Small fixtures are committed (tests/reference/fixtures/
// torch/, written by tests/reference/generate_torch_checkpoints.py --small); the networks are
// written by the same script at test time (skipped with a message without python3-torch).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "io/torch/pickle.h"
#include "io/torch/torch_file.h"
#include "io/zip/zip.h"
#include "resnet/error.h"
#include "resnet/io.h"
#include "resnet/models.h"
#include "resnet/optim.h"
#include "support/allclose.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace resnet {
namespace {

namespace fs = std::filesystem;
using testing::AllClose;

std::string fixture(const std::string& name) {
  return std::string(RESNET_FIXTURE_DIR) + "/torch/" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// --- zip

TEST(Zip, WriterAndReaderRoundTripWithAlignedData) {
  zip_detail::ZipWriter w;
  w.add("a/data.pkl", "hello");
  std::string big(100000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  w.add("a/data/0", big);
  w.add("a/version", "3\n");
  std::string bytes = w.finish();
  zip_detail::ZipReader r(bytes, "mem.zip");
  ASSERT_EQ(r.members().size(), 3u);
  EXPECT_EQ(r.read("a/data.pkl"), "hello");
  EXPECT_EQ(r.read("a/data/0"), big);
  EXPECT_EQ(r.read("a/version"), "3\n");
  // Every member's data starts on a 64-byte boundary.
  for (const auto& m : r.members()) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + m.local_header_offset);
    const uint64_t data =
        m.local_header_offset + 30 + (p[26] | (p[27] << 8)) + (p[28] | (p[29] << 8));
    EXPECT_EQ(data % 64, 0u) << m.name;
  }
  EXPECT_EQ(r.find("nope"), nullptr);
  EXPECT_NE(error_of([&] { r.read("nope"); }).find("no member 'nope'"), std::string::npos);
}

TEST(Zip, ReadsPythonsDeflatedArchives) {
  if (std::system("/usr/bin/python3 -c 'import zipfile' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3 missing";
  }
  testing::TempDir dir;
  const std::string path = dir.file("d.zip");
  const std::string cmd =
      "/usr/bin/python3 -c \"import zipfile; z = zipfile.ZipFile('" + path +
      "', 'w', zipfile.ZIP_DEFLATED); z.writestr('x/config.json', 'abc' * 1000); "
      "z.writestr('x/empty', ''); z.close()\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  zip_detail::ZipReader r(path);
  EXPECT_EQ(r.members()[0].method, 8);
  std::string want;
  for (int i = 0; i < 1000; ++i) want += "abc";
  EXPECT_EQ(r.read("x/config.json"), want);
  EXPECT_EQ(r.read("x/empty"), "");
}

TEST(Zip, DamagedArchivesNameTheFileAndMember) {
  zip_detail::ZipWriter w;
  w.add("m/data/0", std::string(1000, 'x'));
  const std::string good = w.finish();
  // Truncated: the end record is gone.
  EXPECT_NE(error_of([&] {
              zip_detail::ZipReader(good.substr(0, good.size() / 2), "t.zip");
            }).find("t.zip: not a zip archive"),
            std::string::npos);
  // A flipped byte in the data: CRC mismatch.
  std::string flipped = good;
  flipped[200] ^= 0x20;
  zip_detail::ZipReader r(flipped, "f.zip");
  EXPECT_NE(error_of([&] { r.read("m/data/0"); }).find("f.zip: member 'm/data/0': CRC-32 mismatch"),
            std::string::npos);
  // A member name leaving the folder.
  EXPECT_THROW(w.add("../evil", "x"), IoError);
  std::string evil = good;
  const size_t at = evil.rfind("m/data/0");  // the central-directory copy of the name
  evil.replace(at, 8, "../../x1");
  EXPECT_NE(error_of([&] { zip_detail::ZipReader(evil, "e.zip"); }).find("outside the archive"),
            std::string::npos);
}

TEST(Zip, RefusesAMemberClaimingMoreThanDeflateCanGive) {
  zip_detail::ZipWriter w;
  w.add("m/x", "abcdefgh");
  std::string bytes = w.finish();
  // Patch the central directory: method 8 (deflated) and an uncompressed size of 4 GiB - 1.
  const size_t cd = bytes.rfind(std::string("PK\1\2", 4));
  bytes[cd + 10] = 8;
  for (int i = 0; i < 4; ++i) bytes[cd + 24 + i] = static_cast<char>(0xff);
  bytes[cd + 24] = static_cast<char>(0xfe);
  zip_detail::ZipReader r(bytes, "bomb.zip");
  EXPECT_NE(error_of([&] { r.read("m/x"); }).find("not a real deflate stream"), std::string::npos);
}

// --- pickles

TEST(Pickle, BuildsInertValuesAndNeverCalls) {
  // posix.system('touch FILE') as REDUCE: the reader records it and calls nothing.
  testing::TempDir dir;
  const std::string victim = dir.file("pwned");
  std::string p =
      "\x80\x02"
      "cposix\nsystem\n"
      "X";
  const std::string arg = "touch " + victim;
  const uint32_t n = static_cast<uint32_t>(arg.size());
  p.append(reinterpret_cast<const char*>(&n), 4);
  p += arg + "\x85R.";
  torch_detail::Unpickler u("hostile.pkl");
  size_t pos = 0;
  torch_detail::PyObject* o = u.load(p, pos);
  EXPECT_EQ(o->kind, torch_detail::PyObject::Kind::Object);
  EXPECT_EQ(o->callable->text, "posix.system");
  EXPECT_FALSE(fs::exists(victim));
  // As a whole file: no state_dict, the global named, nothing run.
  const std::string file = dir.file("hostile.pth");
  zip_detail::ZipWriter w;
  w.add("hostile/data.pkl", p);
  write_file(file, w.finish());
  const std::string msg = error_of([&] { load_torch_state_dict(file); });
  EXPECT_NE(msg.find("posix.system"), std::string::npos) << msg;
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(victim));
}

TEST(Pickle, DamagedStreamsThrowNamingTheSource) {
  auto fails = [](const std::string& bytes, const std::string& words) {
    torch_detail::Unpickler u("bad.pkl");
    size_t pos = 0;
    const std::string msg = error_of([&] { u.load(bytes, pos); });
    EXPECT_NE(msg.find("bad.pkl"), std::string::npos) << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
  };
  fails("", "empty pickle");
  fails("\x80\x02", "truncated");
  fails("\x80\x02\xff", "unsupported pickle opcode 0xff");
  fails(std::string("\x80\x02X\xff\xff\xff\xff", 7), "truncated");  // a 4 GiB string
  fails("\x80\x02h\x05.", "memo entry 5");
  fails("\x80\x02R.", "empty stack");
  fails("\x80\x02NN.", "STOP with 2 values");
  fails("\x80\x09N.", "protocol 9");
  // Deep nesting costs nothing: the machine is iterative.
  std::string deep = "\x80\x02";
  for (int i = 0; i < 100000; ++i) deep += "]";
  for (int i = 0; i < 99999; ++i) deep += "a";
  deep += ".";
  torch_detail::Unpickler u("deep.pkl");
  size_t pos = 0;
  EXPECT_EQ(u.load(deep, pos)->kind, torch_detail::PyObject::Kind::List);
}

// --- the small committed checkpoints

void expect_small_state_dict(const TorchStateDict& sd, bool wrapped) {
  if (wrapped) {
    EXPECT_EQ(sd.key, "state_dict");
    EXPECT_EQ(sd.stripped_prefix, "module.");
    EXPECT_EQ(sd.scalars.at("epoch"), 7);
    EXPECT_DOUBLE_EQ(sd.scalars.at("lr"), 0.1);
    EXPECT_FLOAT_EQ(static_cast<float>(sd.scalars.at("best_prec1")), 91.25f);
    EXPECT_NE(std::find(sd.placeholders.begin(), sd.placeholders.end(), "argparse.Namespace"),
              sd.placeholders.end());
  }
  ASSERT_EQ(sd.tensors.size(), 8u);
  EXPECT_EQ(sd.tensors[0].name, "conv.weight");  // file order
  const TorchTensorEntry* conv = sd.find("conv.weight");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->dtype, "float32");
  EXPECT_EQ(conv->value.shape(), (Shape{2, 3, 2, 2}));
  for (int i = 0; i < 24; ++i) EXPECT_EQ(conv->value.f32()[i], i / 8.0f);
  const TorchTensorEntry* half = sd.find("half");
  ASSERT_NE(half, nullptr);
  EXPECT_EQ(half->dtype, "float16");
  for (int i = 0; i < 6; ++i) EXPECT_EQ(half->value.f32()[i], i * 0.5f - 1);
  const TorchTensorEntry* dbl = sd.find("double");
  ASSERT_NE(dbl, nullptr);
  EXPECT_EQ(dbl->value.dtype(), DType::F64);
  EXPECT_EQ(dbl->value.data<double>()[0], 1.0 / 3);
  EXPECT_EQ(dbl->value.data<double>()[1], -2.5);
  const TorchTensorEntry* nbt = sd.find("bn.num_batches_tracked");
  ASSERT_NE(nbt, nullptr);
  EXPECT_EQ(nbt->value.dtype(), DType::I64);
  EXPECT_EQ(nbt->value.shape().rank(), 0);
  EXPECT_EQ(nbt->value.data<int64_t>()[0], 123456789012);
  const TorchTensorEntry* t = sd.find("transposed");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->value.shape(), (Shape{4, 3}));
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(t->value.f32()[r * 3 + c], c * 4 + r);
  const TorchTensorEntry* s = sd.find("row_slice");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->value.shape(), (Shape{2, 2}));
  const float want[4] = {5, 6, 9, 10};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(s->value.f32()[i], want[i]);
  const TorchTensorEntry* e = sd.find("empty");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->value.shape(), (Shape{0, 3}));
}

TEST(TorchFile, ReadsTheZipFormat) {
  const TorchStateDict sd = load_torch_state_dict(fixture("checkpoint_zip.pth"));
  EXPECT_EQ(sd.format, "zip");
  expect_small_state_dict(sd, true);
}

TEST(TorchFile, ReadsTheLegacyFormat) {
  const TorchStateDict sd = load_torch_state_dict(fixture("checkpoint_legacy.pth"));
  EXPECT_EQ(sd.format, "legacy");
  expect_small_state_dict(sd, true);
}

TEST(TorchFile, ReadsPickleProtocol4) {
  const TorchStateDict sd = load_torch_state_dict(fixture("state_dict_protocol4.pth"));
  EXPECT_EQ(sd.key, "");
  EXPECT_EQ(sd.stripped_prefix, "");
  expect_small_state_dict(sd, false);
}

TEST(TorchFile, KeyOptionChoosesTheEntry) {
  const TorchStateDict sd =
      load_torch_state_dict(fixture("checkpoint_zip.pth"), {.key = "state_dict"});
  EXPECT_EQ(sd.tensors.size(), 8u);
  const std::string msg =
      error_of([] { load_torch_state_dict(fixture("checkpoint_zip.pth"), {.key = "ema"}); });
  EXPECT_NE(msg.find("no entry 'ema'"), std::string::npos) << msg;
}

TEST(TorchFile, DamagedFilesThrowIoErrorNamingTheFile) {
  testing::TempDir dir;
  for (const std::string name : {"checkpoint_zip.pth", "checkpoint_legacy.pth"}) {
    const std::string good = read_file(fixture(name));
    // Every truncation point either loads (never: the tail holds data) or throws IoError.
    for (size_t cut : {size_t{0}, size_t{1}, size_t{10}, good.size() / 3, good.size() / 2,
                       good.size() - 30, good.size() - 1}) {
      const std::string path = dir.file("cut.pth");
      write_file(path, good.substr(0, cut));
      const std::string msg = error_of([&] { load_torch_state_dict(path); });
      EXPECT_NE(msg.find(path), std::string::npos) << name << " cut at " << cut << ": " << msg;
    }
  }
  // A flipped byte inside a zip storage: the member's CRC names it.
  std::string zip = read_file(fixture("checkpoint_zip.pth"));
  zip_detail::ZipReader r(zip, "x");
  const zip_detail::ZipMember* m = nullptr;
  for (const auto& mem : r.members()) {
    if (mem.name.find("/data/") != std::string::npos && mem.size >= 16) m = &mem;
  }
  ASSERT_NE(m, nullptr);
  const auto* h = reinterpret_cast<const unsigned char*>(zip.data() + m->local_header_offset);
  const size_t start =
      m->local_header_offset + 30 + (h[26] | (h[27] << 8)) + (h[28] | (h[29] << 8));
  zip[start + 3] ^= 0x40;
  const std::string path = dir.file("flipped.pth");
  write_file(path, zip);
  const std::string msg = error_of([&] { load_torch_state_dict(path); });
  EXPECT_NE(msg.find("CRC-32 mismatch"), std::string::npos) << msg;
  EXPECT_NE(msg.find(m->name), std::string::npos) << msg;
  // Not a PyTorch file at all; a folder; a missing file.
  write_file(path, "hello world, this is text");
  EXPECT_NE(error_of([&] { load_torch_state_dict(path); }).find("not a PyTorch file"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_torch_state_dict(dir.file("")); }).find("folder"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_torch_state_dict(dir.file("none.pth")); }).find("no such file"),
            std::string::npos);
}

std::string pickle_file_with(const std::string& dir, const std::string& pkl,
                             const std::string& storage = std::string(64, '\0')) {
  zip_detail::ZipWriter w;
  w.add("x/data.pkl", pkl);
  w.add("x/data/0", storage);
  const std::string path = dir + "/crafted.pth";
  write_file(path, w.finish());
  return path;
}

std::string u32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string unicode(const std::string& s) { return "X" + u32(static_cast<uint32_t>(s.size())) + s; }

// {"w": _rebuild_tensor_v2(storage(FloatStorage, "0", numel), offset, size, stride, False, {})}
std::string tensor_pickle(int numel, int offset, std::vector<int> size, std::vector<int> stride,
                          const std::string& storage_type = "FloatStorage") {
  std::string p = "\x80\x02}(" + unicode("w") + "ctorch._utils\n_rebuild_tensor_v2\n(";
  p += "(" + unicode("storage") + "ctorch\n" + storage_type + "\n" + unicode("0") + unicode("cpu") +
       "J" + u32(static_cast<uint32_t>(numel)) + "tQ";
  p.append("J").append(u32(static_cast<uint32_t>(offset)));
  p += "(";
  for (int s : size) p.append("J").append(u32(static_cast<uint32_t>(s)));
  p += "t(";
  for (int s : stride) p.append("J").append(u32(static_cast<uint32_t>(s)));
  p += "t\x89}tRu.";
  return p;
}

TEST(TorchFile, HostileTensorRecordsAreRefused) {
  testing::TempDir dir;
  const std::string d = dir.file("");
  // A well-formed record loads.
  TorchStateDict ok =
      load_torch_state_dict(pickle_file_with(d, tensor_pickle(16, 0, {4, 4}, {4, 1})));
  ASSERT_EQ(ok.tensors.size(), 1u);
  auto refused = [&](const std::string& pkl, const std::string& words,
                     const std::string& storage = std::string(64, '\0')) {
    const std::string msg =
        error_of([&] { load_torch_state_dict(pickle_file_with(d, pkl, storage)); });
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
    EXPECT_NE(msg.find("crafted.pth"), std::string::npos) << msg;
  };
  refused(tensor_pickle(16, 10, {4, 4}, {4, 1}), "reaches element");  // offset past the end
  refused(tensor_pickle(16, 0, {4, 4}, {8, 1}), "reaches element");   // stride past the end
  refused(tensor_pickle(1 << 30, 0, {1 << 15, 1 << 15}, {1 << 15, 1}),
          "fewer than");  // claims 4 GiB
  refused(tensor_pickle(16, 0, {4, 4}, {4, 1}, "ComplexFloatStorage"), "unsupported type");
  refused(tensor_pickle(16, 0, {-4, 4}, {4, 1}), "damaged size");
  // A storage member that is missing.
  {
    zip_detail::ZipWriter w;
    w.add("x/data.pkl", tensor_pickle(16, 0, {4, 4}, {4, 1}));
    const std::string path = d + "/nostorage.pth";
    write_file(path, w.finish());
    const std::string msg = error_of([&] { load_torch_state_dict(path); });
    EXPECT_NE(msg.find("no member 'x/data/0'"), std::string::npos) << msg;
  }
  // A TorchScript archive is named as such.
  {
    zip_detail::ZipWriter w;
    w.add("m/constants.pkl", "\x80\x02).");
    w.add("m/code/__torch__.py", "def forward(self): pass");
    const std::string path = d + "/script.pt";
    write_file(path, w.finish());
    EXPECT_NE(error_of([&] { load_torch_state_dict(path); }).find("TorchScript"),
              std::string::npos);
  }
}

// --- networks written by PyTorch at test time

// CTest runs every test in a process of its own: the networks are written once per version of the
// script into a shared folder under the temporary directory (written aside, then renamed into
// place, so concurrent tests never see a half-written folder).
class TorchNetworks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string script =
        std::string(RESNET_SOURCE_DIR) + "/tests/reference/generate_torch_checkpoints.py";
    const size_t version = std::hash<std::string>{}(read_file(script));
    dir_ = (fs::temp_directory_path() / fmt::format("resnet_torch_nets_{:x}", version)).string();
    ok_ = fs::exists(dir_ + "/done");
    if (ok_) return;
    const std::string tmp = fmt::format("{}.tmp-{}", dir_, ::getpid());
    fs::remove_all(tmp);
    const testing::CommandResult r =
        testing::run_command("/usr/bin/python3 " + script + " --models " + tmp + " 2>&1");
    if (r.code != 0) {
      std::fprintf(stderr, "generate_torch_checkpoints.py failed:\n%s\n", r.out.c_str());
      fs::remove_all(tmp);
      return;
    }
    write_file(tmp + "/done", "");
    std::error_code ec;
    fs::rename(tmp, dir_, ec);
    if (ec) fs::remove_all(tmp);  // another test process got there first
    ok_ = fs::exists(dir_ + "/done");
  }
  void SetUp() override {
    if (!ok_) GTEST_SKIP() << "python3-torch / python3-torchvision missing (scripts/setup.sh)";
  }
  static std::string file(const std::string& name) { return dir_ + "/" + name; }
  // `name` in the networks' folder, or an absolute path.
  static Tensor read_floats(const std::string& name, Shape shape) {
    const std::string bytes = read_file(name.front() == '/' ? name : file(name));
    Tensor t = Tensor::empty(shape);
    EXPECT_EQ(bytes.size(), static_cast<size_t>(t.numel()) * 4) << name;
    std::memcpy(t.raw(), bytes.data(), std::min<size_t>(bytes.size(), t.numel() * 4));
    return t;
  }
  // NCHW -> NHWC.
  static Tensor input_nhwc(const std::string& name, int64_t n, int64_t c, int64_t h, int64_t w) {
    Tensor nchw = read_floats(name, Shape{n, c, h, w});
    Tensor out = Tensor::empty(Shape{n, h, w, c});
    for (int64_t a = 0; a < n; ++a)
      for (int64_t k = 0; k < c; ++k)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t x = 0; x < w; ++x)
            out.f32()[((a * h + y) * w + x) * c + k] = nchw.f32()[((a * c + k) * h + y) * w + x];
    return out;
  }
  static std::string dir_;
  static bool ok_;
};
std::string TorchNetworks::dir_;
bool TorchNetworks::ok_ = false;

TEST_F(TorchNetworks, ResNet18PredictsAsPyTorchInEveryFormat) {
  const Tensor x = input_nhwc("resnet18_input.bin", 2, 3, 32, 32);
  const Tensor want = read_floats("resnet18_output.bin", Shape{2, 1000});
  for (const std::string name :
       {"resnet18.pth", "resnet18_legacy.pth", "resnet18_checkpoint.pth.tar"}) {
    reset_name_counters();
    Model m = resnet18({32, 32, 3}, 1000);
    LoadWeightsReport report;
    const TorchStateDict sd = load_torch_weights(m, file(name), {.report = &report});
    EXPECT_EQ(report.loaded.size(), 41u) << name;  // 20 convolutions, 20 batch norms, fc
    EXPECT_TRUE(report.missing.empty()) << name;
    EXPECT_TRUE(report.skipped.empty()) << name;
    EXPECT_TRUE(AllClose(m.predict(x), want, 1e-4, name));
    if (name == "resnet18_checkpoint.pth.tar") {
      EXPECT_EQ(sd.stripped_prefix, "module.");
      EXPECT_EQ(sd.scalars.at("epoch"), 12);
      EXPECT_EQ(sd.scalars.at("best_prec1"), 0.5);
    }
  }
}

TEST_F(TorchNetworks, TorchvisionResNet50PredictsAsPyTorch) {
  const Tensor x = input_nhwc("resnet50_input.bin", 2, 3, 32, 32);
  const Tensor want = read_floats("resnet50_output.bin", Shape{2, 1000});
  for (const std::string name : {"resnet50.pth", "resnet50_legacy.pth"}) {
    reset_name_counters();
    Model m = build_model("resnet50-torchvision", {32, 32, 3}, 1000);
    LoadWeightsReport report;
    load_torch_weights(m, file(name), {.report = &report});
    EXPECT_EQ(report.loaded.size(), 107u);  // 53 convolutions, 53 batch norms, fc
    EXPECT_TRUE(AllClose(m.predict(x), want, 1e-4, name));
  }
  // keras.applications' ResNet50 (v1, convolution biases) does not take torchvision's file.
  reset_name_counters();
  Model keras = ResNet50({.input_shape = {32, 32, 3}});
  const std::string msg = error_of([&] { load_torch_weights(keras, file("resnet50.pth")); });
  EXPECT_NE(msg.find("conv1.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("resnet50-torchvision"), std::string::npos) << msg;
}

TEST_F(TorchNetworks, CifarResNet20WithProjectionShortcutsPredictsAsPyTorch) {
  const Tensor x = input_nhwc("cifar_resnet20_input.bin", 2, 3, 32, 32);
  const Tensor want = read_floats("cifar_resnet20_output.bin", Shape{2, 10});
  for (const std::string name : {"cifar_resnet20.pth", "cifar_resnet20_legacy.pth"}) {
    reset_name_counters();
    Model m = cifar_resnet(20, {32, 32, 3}, 10);
    load_torch_weights(m, file(name));
    EXPECT_TRUE(AllClose(m.predict(x), want, 1e-4, name));
  }
}

TEST_F(TorchNetworks, CifarResNet20WithOptionAShortcutsPredictsAsPyTorchAndRoundTrips) {
  const Tensor x = input_nhwc("cifar_resnet20_a_input.bin", 2, 3, 32, 32);
  const Tensor want = read_floats("cifar_resnet20_a_output.bin", Shape{2, 10});
  reset_name_counters();
  Model m = cifar_resnet(20, {32, 32, 3}, 10, Shortcut::A);
  EXPECT_EQ(m.count_trainable_params(), 269722);  // He et al.: 0.27M
  for (const std::string name : {"cifar_resnet20_a_legacy.pth", "cifar_resnet20_a.pth"}) {
    LoadWeightsReport report;
    load_torch_weights(m, file(name), {.report = &report});
    EXPECT_TRUE(report.missing.empty());
    EXPECT_TRUE(AllClose(m.predict(x), want, 1e-4, name));
  }
  // Option B's model does not take the file: its projections are missing.
  reset_name_counters();
  Model b = cifar_resnet(20, {32, 32, 3}, 10);
  EXPECT_NE(error_of([&] {
              load_torch_weights(b, file("cifar_resnet20_a.pth"));
            }).find("layer2.0.shortcut.0.weight"),
            std::string::npos);
  // Keras .h5 and ONNX hold the shortcut as a fixed Conv2D: the same outputs after a round trip.
  testing::TempDir own;
  save_model(m, own.file("a.h5"));
  Model h5 = load_model(own.file("a.h5"));
  EXPECT_FALSE(h5.layer("conv3_block1_shortcut_a").trainable());
  EXPECT_TRUE(AllClose(h5.predict(x), want, 1e-4, "option A from .h5"));
  // Written back as a state_dict, PyTorch's option-A network loads it strictly.
  save_torch_state_dict(m, own.file("a.pth"));
  const testing::CommandResult r = testing::run_command(
      "/usr/bin/python3 " + std::string(RESNET_SOURCE_DIR) +
      "/tests/reference/generate_torch_checkpoints.py --load cifar_resnet20_a " +
      own.file("a.pth") + " " + file("cifar_resnet20_a_input.bin") + " " + own.file("out.bin") +
      " 2>&1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(AllClose(read_floats(own.file("out.bin"), Shape{2, 10}), want, 1e-4, "in PyTorch"));
  // Training leaves the fixed shortcut as it is.
  m.compile({.optimizer = SGD({.common = {.learning_rate = 0.1}}),
             .loss = "sparse_categorical_crossentropy"});
  const Tensor before = m.layer("conv3_block1_shortcut_a").params()[0].value.clone();
  m.train_step(x, Tensor::zeros(Shape{2}));
  EXPECT_TRUE(AllClose(m.layer("conv3_block1_shortcut_a").params()[0].value, before, 0));
}

// Three plain SGD steps (lr 0.01, batch statistics) from a loaded file: PyTorch's losses.
TEST_F(TorchNetworks, SgdStepsFromALoadedFileGivePyTorchsLosses) {
  struct Case {
    std::string name;
    int64_t classes;
    Shortcut shortcut;
  };
  for (const Case& c :
       {Case{"resnet18", 1000, Shortcut::B}, Case{"cifar_resnet20", 10, Shortcut::B},
        Case{"cifar_resnet20_a", 10, Shortcut::A}}) {
    SCOPED_TRACE(c.name);
    reset_name_counters();
    Model m = c.name == "resnet18" ? resnet18({64, 64, 3}, 1000)
                                   : cifar_resnet(20, {32, 32, 3}, 10, c.shortcut);
    load_torch_weights(m, file(c.name + "_sgd_start.pth"));
    m.compile({.optimizer = SGD({.common = {.learning_rate = 0.01}}),
               .loss = "sparse_categorical_crossentropy"});
    const int64_t size = c.name == "resnet18" ? 64 : 32;
    const Tensor x = input_nhwc(c.name + "_sgd_input.bin", 12, 3, size, size);
    const Tensor labels = read_floats(c.name + "_sgd_labels.bin", Shape{12});
    const std::string want = read_file(file(c.name + "_sgd_losses.bin"));
    ASSERT_EQ(want.size(), 3 * sizeof(double));
    for (int step = 0; step < 3; ++step) {
      Tensor xb = Tensor::empty(Shape{4, size, size, 3});
      Tensor yb = Tensor::empty(Shape{4});
      std::memcpy(xb.raw(), x.f32() + step * xb.numel(), xb.numel() * 4);
      std::memcpy(yb.raw(), labels.f32() + step * 4, 16);
      const double loss = m.train_step(xb, yb);
      double expected;
      std::memcpy(&expected, want.data() + step * 8, 8);
      EXPECT_NEAR(loss, expected, 1e-4 * std::abs(expected)) << "step " << step + 1;
    }
  }
}

TEST_F(TorchNetworks, StrictLoadingListsMissingUnexpectedAndMisshapenKeys) {
  reset_name_counters();
  Model r34 = resnet34({32, 32, 3}, 1000);
  std::string msg = error_of([&] { load_torch_weights(r34, file("resnet18.pth")); });
  EXPECT_NE(msg.find("resnet18.pth"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing key(s): layer1.2.conv1.weight (64, 64, 3, 3)"), std::string::npos)
      << msg;
  reset_name_counters();
  Model ten = resnet18({32, 32, 3}, 10);
  const Tensor kernel_before = ten.layer("conv1_conv").params()[0].value.clone();
  msg = error_of([&] { load_torch_weights(ten, file("resnet18.pth")); });
  EXPECT_NE(msg.find("fc.weight: expected (10, 512) for layer predictions, found (1000, 512)"),
            std::string::npos)
      << msg;
  reset_name_counters();
  Model cifar = cifar_resnet(20, {32, 32, 3}, 10);
  msg = error_of([&] { load_torch_weights(cifar, file("resnet18.pth")); });
  EXPECT_NE(msg.find("unexpected key(s)"), std::string::npos) << msg;
  // A refused load leaves the model as it was.
  EXPECT_TRUE(AllClose(ten.layer("conv1_conv").params()[0].value, kernel_before, 0));
}

TEST_F(TorchNetworks, NonStrictLoadingTakesWhatFitsAndReportsTheRest) {
  reset_name_counters();
  Model ten = resnet18({32, 32, 3}, 10);
  const Tensor head_before = ten.layer("predictions").params()[0].value.clone();
  LoadWeightsReport report;
  load_torch_weights(ten, file("resnet18.pth"), {.strict = false, .report = &report});
  EXPECT_EQ(report.loaded.size(), 40u);
  ASSERT_EQ(report.skipped.size(), 2u);  // fc.weight and fc.bias
  EXPECT_NE(report.skipped[0].find("fc.weight"), std::string::npos);
  EXPECT_TRUE(AllClose(ten.layer("predictions").params()[0].value, head_before, 0));
  // The loaded layers equal the file's tensors (OIHW -> HWIO).
  const TorchStateDict sd = load_torch_state_dict(file("resnet18.pth"));
  const Tensor& w = sd.find("conv1.weight")->value;             // (64, 3, 7, 7)
  const Tensor& k = ten.layer("conv1_conv").params()[0].value;  // (7, 7, 3, 64)
  EXPECT_EQ(k.f32()[((2 * 7 + 5) * 3 + 1) * 64 + 9], w.f32()[((9 * 3 + 1) * 7 + 2) * 7 + 5]);
}

// resnet.cpp writes a state_dict; PyTorch loads it (weights_only=True, strict=True) into
// torchvision's network and predicts what resnet.cpp predicts.
TEST_F(TorchNetworks, StateDictsWrittenHereLoadInPyTorch) {
  struct Case {
    std::string arch, source;
    int64_t classes;
  };
  testing::TempDir own;
  for (const Case& c :
       {Case{"resnet18", "resnet18.pth", 1000}, Case{"cifar_resnet20", "cifar_resnet20.pth", 10}}) {
    reset_name_counters();
    Model m =
        c.arch == "resnet18" ? resnet18({32, 32, 3}, 1000) : cifar_resnet(20, {32, 32, 3}, 10);
    load_torch_weights(m, file(c.source));
    const std::string out = own.file("ours_" + c.arch + ".pth");
    save_torch_state_dict(m, out);
    // Read back here: the same tensors, num_batches_tracked included.
    const TorchStateDict back = load_torch_state_dict(out);
    const TorchStateDict orig = load_torch_state_dict(file(c.source));
    ASSERT_EQ(back.tensors.size(), orig.tensors.size()) << c.arch;
    for (const TorchTensorEntry& e : orig.tensors) {
      const TorchTensorEntry* b = back.find(e.name);
      ASSERT_NE(b, nullptr) << e.name;
      if (e.dtype == "float32") {
        EXPECT_TRUE(AllClose(b->value, e.value, 0, e.name));
      }
    }
    const testing::CommandResult r = testing::run_command(
        "/usr/bin/python3 " + std::string(RESNET_SOURCE_DIR) +
        "/tests/reference/generate_torch_checkpoints.py --load " + c.arch + " " + out + " " +
        file(c.arch + "_input.bin") + " " + own.file("torch_" + c.arch + ".bin") + " 2>&1");
    ASSERT_EQ(r.code, 0) << r.out;
    const Tensor x = input_nhwc(c.arch + "_input.bin", 2, 3, 32, 32);
    EXPECT_TRUE(AllClose(m.predict(x),
                         read_floats(own.file("torch_" + c.arch + ".bin"), Shape{2, c.classes}),
                         1e-4, c.arch));
  }
}

TEST_F(TorchNetworks, FileDispatchLoadsAndSavesPyTorchFiles) {
  EXPECT_EQ(file_format("m.pth"), FileFormat::Torch);
  EXPECT_EQ(file_format("m.PT"), FileFormat::Torch);
  EXPECT_EQ(file_format("checkpoint.pth.tar"), FileFormat::Torch);
  EXPECT_EQ(file_format("data.tar"), FileFormat::Rnw);
  reset_name_counters();
  Model m = cifar_resnet(20, {32, 32, 3}, 10);
  load_weights(m, file("cifar_resnet20_checkpoint.pth.tar"));
  testing::TempDir own;
  const std::string out = own.file("saved.pth");
  save_weights(m, out, {.attributes = {{"zoo_model", "resnet20"}, {"classes", "10"}}});
  const auto attrs = read_model_attributes(out);
  EXPECT_EQ(attrs.at("zoo_model"), "resnet20");
  EXPECT_EQ(attrs.at("model_name"), "resnet20");
  reset_name_counters();
  Model again = cifar_resnet(20, {32, 32, 3}, 10);
  load_weights(again, out);
  const Tensor x = input_nhwc("cifar_resnet20_input.bin", 2, 3, 32, 32);
  EXPECT_TRUE(AllClose(again.predict(x), m.predict(x), 0));
  EXPECT_NE(error_of([&] { load_model(out); }).find("PyTorch file"), std::string::npos);
  EXPECT_NE(error_of([&] { save_model(m, out); }).find("weights only"), std::string::npos);
}

// Transfer learning from torchvision weights: the base takes every weight it has, the new head
// stays new (resnet finetune --base FILE.pth).
TEST_F(TorchNetworks, TransferModelTakesItsBaseFromAPyTorchFile) {
  reset_name_counters();
  Model m = transfer_model({.base_model = "resnet18",
                            .input_shape = {32, 32, 3},
                            .classes = 3,
                            .weights_path = file("resnet18_checkpoint.pth.tar")});
  const TorchStateDict sd = load_torch_state_dict(file("resnet18.pth"));
  const Tensor& w = sd.find("layer4.1.conv2.weight")->value;           // (512, 512, 3, 3)
  const Tensor& k = m.layer("conv5_block2_2_conv").params()[0].value;  // (3, 3, 512, 512)
  EXPECT_EQ(k.f32()[((1 * 3 + 2) * 512 + 7) * 512 + 11], w.f32()[((11 * 512 + 7) * 3 + 1) * 3 + 2]);
  EXPECT_EQ(m.output_shapes()[0], (Shape{3}));
  // A file of another architecture is refused, naming a layer it lacks.
  reset_name_counters();
  const std::string msg = error_of([&] {
    transfer_model({.base_model = "resnet34",
                    .input_shape = {32, 32, 3},
                    .classes = 3,
                    .weights_path = file("resnet18.pth")});
  });
  EXPECT_NE(msg.find("no weights for layer 'conv2_block3_1_conv'"), std::string::npos) << msg;
}

TEST(TorchKeys, FollowTorchvisionAndCifarNames) {
  EXPECT_EQ(torch_key_for("conv1_conv", "Conv2D", "kernel"), "conv1.weight");
  EXPECT_EQ(torch_key_for("conv1_bn", "BatchNormalization", "moving_variance"), "bn1.running_var");
  EXPECT_EQ(torch_key_for("conv3_block1_0_conv", "Conv2D", "kernel"),
            "layer2.0.downsample.0.weight");
  EXPECT_EQ(torch_key_for("conv3_block1_0_bn", "BatchNormalization", "gamma"),
            "layer2.0.downsample.1.weight");
  EXPECT_EQ(torch_key_for("conv3_block1_0_bn", "BatchNormalization", "beta", "fc", "shortcut"),
            "layer2.0.shortcut.1.bias");
  EXPECT_EQ(torch_key_for("conv5_block2_2_bn", "BatchNormalization", "moving_mean"),
            "layer4.1.bn2.running_mean");
  EXPECT_EQ(torch_key_for("predictions", "Dense", "bias", "linear"), "linear.bias");
  EXPECT_EQ(torch_key_for("my_dense", "Dense", "kernel"), "my_dense.weight");
}

}  // namespace
}  // namespace resnet
