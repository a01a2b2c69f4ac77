// RuntimeOptions: every RESNET_* switch read from the environment in one place, malformed values
// refused naming the variable, and options set in code replacing the environment's.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "resnet/error.h"
#include "resnet/runtime.h"
#include "support/runtime_options.h"

namespace resnet {
namespace {

// Sets environment variables for one test, removing them afterwards.
class Env {
 public:
  ~Env() {
    for (const std::string& n : names_) ::unsetenv(n.c_str());
  }
  void set(const char* name, const char* value) {
    ASSERT_EQ(::getenv(name), nullptr) << name << " is set in the test's environment";
    ::setenv(name, value, 1);
    names_.push_back(name);
  }

 private:
  std::vector<std::string> names_;
};

TEST(RuntimeOptions, DefaultsWithoutTheVariables) {
  for (const char* v :
       {"RESNET_SMALL_CONV", "RESNET_WINOGRAD", "RESNET_DIST_BUCKET_KB", "RESNET_DIST_TIMEOUT",
        "RESNET_DIST_VERBOSE", "RESNET_H5_NO_PREFLIGHT", "RESNET_H5_PREFLIGHT_TIMEOUT"}) {
    if (::getenv(v) != nullptr) GTEST_SKIP() << v << " is set in the test's environment";
  }
  const RuntimeOptions o = runtime_options_from_environment();
  const RuntimeOptions d;
  EXPECT_EQ(o.small_conv, d.small_conv);
  EXPECT_TRUE(o.small_conv);
  EXPECT_TRUE(o.winograd);
  EXPECT_EQ(o.dist_bucket_kb, 4096);
  EXPECT_EQ(o.dist_timeout_seconds, 300.0);
  EXPECT_FALSE(o.dist_verbose);
  EXPECT_TRUE(o.h5_preflight);
  EXPECT_EQ(o.h5_preflight_timeout_seconds, 60);
}

TEST(RuntimeOptions, ReadsEveryVariable) {
  Env env;
  env.set("RESNET_SMALL_CONV", "0");
  env.set("RESNET_WINOGRAD", "0");
  env.set("RESNET_DIST_BUCKET_KB", "256");
  env.set("RESNET_DIST_TIMEOUT", "2.5");
  env.set("RESNET_DIST_VERBOSE", "1");
  env.set("RESNET_H5_NO_PREFLIGHT", "1");
  env.set("RESNET_H5_PREFLIGHT_TIMEOUT", "7");
  const RuntimeOptions o = runtime_options_from_environment();
  EXPECT_FALSE(o.small_conv);
  EXPECT_FALSE(o.winograd);
  EXPECT_EQ(o.dist_bucket_kb, 256);
  EXPECT_EQ(o.dist_timeout_seconds, 2.5);
  EXPECT_TRUE(o.dist_verbose);
  EXPECT_FALSE(o.h5_preflight);
  EXPECT_EQ(o.h5_preflight_timeout_seconds, 7);
}

TEST(RuntimeOptions, MalformedValuesNameTheVariable) {
  const std::pair<const char*, const char*> bad[] = {
      {"RESNET_WINOGRAD", "maybe"},         {"RESNET_DIST_BUCKET_KB", "0"},
      {"RESNET_DIST_BUCKET_KB", "4k"},      {"RESNET_DIST_TIMEOUT", "-1"},
      {"RESNET_H5_PREFLIGHT_TIMEOUT", "0"}, {"RESNET_H5_NO_PREFLIGHT", "yes please"}};
  for (const auto& [name, value] : bad) {
    Env env;
    env.set(name, value);
    try {
      runtime_options_from_environment();
      ADD_FAILURE() << name << "=" << value << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(value), std::string::npos) << e.what();
    }
  }
}

TEST(RuntimeOptions, SetInCodeReplacesTheEnvironmentAndIsRestored) {
  const RuntimeOptions before = runtime_options();
  {
    testing::ScopedRuntimeOptions scoped([](RuntimeOptions& o) {
      o.h5_preflight_timeout_seconds = 3;
      o.dist_verbose = true;
    });
    EXPECT_EQ(runtime_options().h5_preflight_timeout_seconds, 3);
    EXPECT_TRUE(runtime_options().dist_verbose);
  }
  EXPECT_EQ(runtime_options().h5_preflight_timeout_seconds, before.h5_preflight_timeout_seconds);
  EXPECT_EQ(runtime_options().dist_verbose, before.dist_verbose);
}

TEST(RuntimeOptions, SetRefusesValuesOutOfRange) {
  RuntimeOptions o;
  o.dist_bucket_kb = 0;
  EXPECT_THROW(set_runtime_options(o), ConfigError);
  o = RuntimeOptions{};
  o.dist_timeout_seconds = -1;
  EXPECT_THROW(set_runtime_options(o), ConfigError);
  o = RuntimeOptions{};
  o.h5_preflight_timeout_seconds = 0;
  EXPECT_THROW(set_runtime_options(o), ConfigError);
}

}  // namespace
}  // namespace resnet
