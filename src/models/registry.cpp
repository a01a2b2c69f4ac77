// The model zoo by CLI name.
#include <fmt/format.h>

#include <functional>
#include <map>

#include "resnet/models.h"

namespace resnet {

namespace {
struct Entry {
  Shape default_input;
  int64_t default_classes;
  Shape min_input;
  std::function<Model(Shape, int64_t)> build;
  int cifar_depth = 0;  // the CIFAR ResNets, which also take option-A shortcuts
};

ApplicationOptions app(Shape s, int64_t c) {
  return {.include_top = true, .input_shape = std::move(s), .classes = c};
}

const std::map<std::string, Entry>& registry() {
  static const std::map<std::string, Entry> r = [] {
    std::map<std::string, Entry> m;
    const Shape imagenet{224, 224, 3}, cifar{32, 32, 3}, min32{32, 32, 3};
    // The tutorial network needs 2x2 at stage 5 for its 2x2 average pool: at least 37x37.
    m["resnet50-tutorial"] = {{64, 64, 3}, 6, {37, 37, 3}, resnet50_tutorial};
    m["resnet50"] = {imagenet, 1000, min32, [](Shape s, int64_t c) { return ResNet50(app(s, c)); }};
    m["resnet101"] = {imagenet, 1000, min32,
                      [](Shape s, int64_t c) { return ResNet101(app(s, c)); }};
    m["resnet152"] = {imagenet, 1000, min32,
                      [](Shape s, int64_t c) { return ResNet152(app(s, c)); }};
    m["resnet50v2"] = {imagenet, 1000, min32,
                       [](Shape s, int64_t c) { return ResNet50V2(app(s, c)); }};
    m["resnet101v2"] = {imagenet, 1000, min32,
                        [](Shape s, int64_t c) { return ResNet101V2(app(s, c)); }};
    m["resnet152v2"] = {imagenet, 1000, min32,
                        [](Shape s, int64_t c) { return ResNet152V2(app(s, c)); }};
    m["resnet18"] = {imagenet, 1000, min32, resnet18};
    m["resnet34"] = {imagenet, 1000, min32, resnet34};
    for (int depth : {50, 101, 152}) {
      m[fmt::format("resnet{}-torchvision", depth)] = {
          imagenet, 1000, min32,
          [depth](Shape s, int64_t c) { return torchvision_resnet(depth, s, c); }};
    }
    for (int depth : {20, 32, 44, 56, 110, 1202}) {
      m[fmt::format("resnet{}", depth)] = {
          cifar,
          10,
          {4, 4, 3},
          [depth](Shape s, int64_t c) { return cifar_resnet(depth, s, c); },
          depth};
    }
    for (int depth : {164, 1001}) {
      m[fmt::format("preact-resnet{}", depth)] = {
          cifar, 10, {4, 4, 3}, [depth](Shape s, int64_t c) { return preact_resnet(depth, s, c); }};
    }
    return m;
  }();
  return r;
}

const Entry& find(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    throw ConfigError(
        fmt::format("unknown model '{}'; known models: {}", name, fmt::join(model_names(), ", ")));
  }
  return it->second;
}
}  // namespace

Model build_model(const std::string& name, const Shape& input_shape, int64_t classes,
                  Shortcut shortcut) {
  const Entry& e = find(name);
  if (classes < 0)
    throw ConfigError(fmt::format("{}: classes must be positive, got {}", name, classes));
  const Shape in = input_shape.rank() == 0 ? e.default_input : input_shape;
  const int64_t k = classes == 0 ? e.default_classes : classes;
  if (shortcut == Shortcut::A) {
    if (e.cifar_depth == 0) {
      throw ConfigError(fmt::format(
          "{}: option-A shortcuts are for the CIFAR ResNets (resnet20 ... resnet1202)", name));
    }
    return cifar_resnet(e.cifar_depth, in, k, Shortcut::A);
  }
  return e.build(in, k);
}

std::vector<std::string> model_names() {
  std::vector<std::string> v;
  for (const auto& [name, e] : registry()) v.push_back(name);
  return v;
}

Shape min_input_shape(const std::string& name) { return find(name).min_input; }

}  // namespace resnet
