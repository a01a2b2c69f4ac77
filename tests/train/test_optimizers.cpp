// Optimizers and schedules: hand-computed steps of SGD, Adam, AdamW and RMSprop, clipping, weight
// decay, slots, schedule values, configs and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "resnet/error.h"
#include "resnet/optim.h"

namespace resnet {
namespace {

// A parameter with the given value and gradient (1-D).
Param make_param(const std::string& name, const std::vector<float>& w,
                 const std::vector<float>& g) {
  Param p;
  p.name = name;
  p.value = Tensor::from_vector(Shape{static_cast<int64_t>(w.size())}, w);
  p.grad = Tensor::from_vector(Shape{static_cast<int64_t>(g.size())}, g);
  return p;
}

void set_grad(Param& p, const std::vector<float>& g) {
  p.grad = Tensor::from_vector(Shape{static_cast<int64_t>(g.size())}, g);
}

void expect_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-6) {
  ASSERT_EQ(t.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(t.f32()[i], expected[i], tol * std::max(1.0, std::abs(expected[i])))
        << "element " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// SGD

TEST(OptimSGD, PlainStep) {
  // w -= lr * g
  Param p = make_param("kernel", {1, -2}, {0.5f, 0.25f});
  auto opt = SGD({.common = {.learning_rate = 0.1}});
  opt->apply({&p});
  expect_values(p.value, {0.95, -2.025});
  EXPECT_EQ(opt->iterations(), 1);
  ASSERT_EQ(opt->slots().size(), 1u);
  EXPECT_TRUE(opt->slots()[0].empty());  // no momentum: no slot
}

TEST(OptimSGD, Momentum) {
  // v = 0.9 v - 0.1 g; w += v. g = 1 twice: v = -0.1, w = 0.9; v = -0.19, w = 0.71.
  Param p = make_param("kernel", {1}, {1});
  auto opt = SGD({.common = {.learning_rate = 0.1}, .momentum = 0.9});
  opt->apply({&p});
  expect_values(p.value, {0.9});
  opt->apply({&p});
  expect_values(p.value, {0.71});
  ASSERT_EQ(opt->slots()[0].size(), 1u);
  EXPECT_EQ(opt->slots()[0][0].name, "momentum");
  expect_values(opt->slots()[0][0].value, {-0.19});
}

TEST(OptimSGD, Nesterov) {
  // v = 0.9 v - 0.1 g; w += 0.9 v - 0.1 g: w = 1 - 0.19 = 0.81, then 0.81 - 0.271 = 0.539.
  Param p = make_param("kernel", {1}, {1});
  auto opt = SGD({.common = {.learning_rate = 0.1}, .momentum = 0.9, .nesterov = true});
  opt->apply({&p});
  expect_values(p.value, {0.81});
  opt->apply({&p});
  expect_values(p.value, {0.539});
}

TEST(OptimSGD, ResumesFromLoadedSlots) {
  Param p = make_param("kernel", {1}, {1});
  auto opt = SGD({.common = {.learning_rate = 0.1}, .momentum = 0.9});
  opt->slots() = {{{"momentum", Tensor::from_vector(Shape{1}, {-0.1f})}}};
  opt->set_iterations(1);
  opt->apply({&p});
  expect_values(p.value, {0.81});  // v = -0.09 - 0.1
  EXPECT_EQ(opt->iterations(), 2);
}

// ---------------------------------------------------------------------------------------------
// Adam

// Keras Adam in double precision, for a single element and a sequence of gradients.
double adam_reference(double w, const std::vector<double>& grads, double lr, bool amsgrad,
                      double weight_decay = 0.0, bool decoupled = false) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-7;
  double m = 0, v = 0, vhat = 0;
  for (size_t i = 0; i < grads.size(); ++i) {
    const double t = static_cast<double>(i + 1);
    double g = grads[i];
    if (weight_decay > 0 && !decoupled) g += weight_decay * w;
    if (weight_decay > 0 && decoupled) w -= lr * weight_decay * w;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    vhat = std::max(vhat, v);
    const double lr_t = lr * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
    w -= lr_t * m / (std::sqrt(amsgrad ? vhat : v) + eps);
  }
  return w;
}

TEST(OptimAdam, FirstStepIsAboutTheLearningRate) {
  // t = 1: lr_t m / (sqrt(v) + eps) = lr g sqrt(1 - b2) / (sqrt(1 - b2) |g| + eps) ~ lr sign(g).
  Param p = make_param("kernel", {1, 1}, {0.5f, -2.0f});
  auto opt = Adam({.common = {.learning_rate = 0.1}});
  opt->apply({&p});
  const double s = std::sqrt(0.001);
  expect_values(p.value, {1 - 0.1 * 0.5 * s / (0.5 * s + 1e-7), 1 + 0.1 * 2 * s / (2 * s + 1e-7)});
  ASSERT_EQ(opt->slots()[0].size(), 2u);
  EXPECT_EQ(opt->slots()[0][0].name, "m");
  EXPECT_EQ(opt->slots()[0][1].name, "v");
  expect_values(opt->slots()[0][0].value, {0.05, -0.2});
  expect_values(opt->slots()[0][1].value, {0.00025, 0.004});
}

TEST(OptimAdam, StepsMatchKerasFormula) {
  const std::vector<double> grads = {0.5, -0.3, 0.8, 0.1, -1.2};
  for (bool amsgrad : {false, true}) {
    Param p = make_param("kernel", {1}, {0});
    auto opt = Adam({.common = {.learning_rate = 0.01}, .amsgrad = amsgrad});
    for (double g : grads) {
      set_grad(p, {static_cast<float>(g)});
      opt->apply({&p});
    }
    expect_values(p.value, {adam_reference(1.0, grads, 0.01, amsgrad)}, 1e-6);
    EXPECT_EQ(opt->slots()[0].size(), amsgrad ? 3u : 2u);
  }
}

TEST(OptimAdam, AmsgradKeepsTheMaximum) {
  // A large gradient, then small ones: vhat keeps the early maximum, so steps are smaller.
  const std::vector<double> grads = {2.0, 0.01, 0.01, 0.01};
  Param a = make_param("kernel", {0}, {0}), b = make_param("kernel", {0}, {0});
  auto plain = Adam({.common = {.learning_rate = 0.1}});
  auto ams = Adam({.common = {.learning_rate = 0.1}, .amsgrad = true});
  for (double g : grads) {
    set_grad(a, {static_cast<float>(g)});
    set_grad(b, {static_cast<float>(g)});
    plain->apply({&a});
    ams->apply({&b});
  }
  expect_values(b.value, {adam_reference(0, grads, 0.1, true)});
  const Tensor& v = ams->slots()[0][1].value;
  const Tensor& vhat = ams->slots()[0][2].value;
  EXPECT_EQ(ams->slots()[0][2].name, "vhat");
  EXPECT_GT(vhat.f32()[0], v.f32()[0]);
  EXPECT_NE(a.value.f32()[0], b.value.f32()[0]);
}

TEST(OptimAdam, CoupledWeightDecay) {
  // g = 0 + 0.1 * w: the Adam step moves w by about lr.
  Param p = make_param("kernel", {1}, {0});
  auto opt = Adam({.common = {.learning_rate = 0.1, .weight_decay = 0.1}});
  opt->apply({&p});
  expect_values(p.value, {adam_reference(1, {0}, 0.1, false, 0.1, false)});
  EXPECT_NEAR(p.value.f32()[0], 0.9, 1e-4);
}

TEST(OptimAdamW, DecoupledWeightDecay) {
  // Zero gradient: the Adam step is zero, decay alone gives w = 1 - 0.1 * 0.1 * 1.
  Param p = make_param("kernel", {1, -2}, {0, 0});
  auto opt = AdamW({.common = {.learning_rate = 0.1, .weight_decay = 0.1}});
  opt->apply({&p});
  expect_values(p.value, {0.99, -1.98});
  set_grad(p, {0.5f, -0.5f});
  opt->apply({&p});
  expect_values(p.value, {adam_reference(1, {0, 0.5}, 0.1, false, 0.1, true),
                          adam_reference(-2, {0, -0.5}, 0.1, false, 0.1, true)});
  EXPECT_EQ(opt->class_name(), "AdamW");
  // Keras default weight decay.
  EXPECT_NE(AdamW()->config_json().find("\"weight_decay\":0.004"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// RMSprop

// Keras RMSprop in double precision.
double rmsprop_reference(double w, const std::vector<double>& grads, double lr, double rho,
                         double momentum, bool centered) {
  double rms = 0, mg = 0, mom = 0;
  for (double g : grads) {
    rms = rho * rms + (1 - rho) * g * g;
    double denom = rms;
    if (centered) {
      mg = rho * mg + (1 - rho) * g;
      denom = rms - mg * mg;
    }
    const double step = lr * g / (std::sqrt(denom) + 1e-7);
    if (momentum > 0) {
      mom = momentum * mom + step;
      w -= mom;
    } else {
      w -= step;
    }
  }
  return w;
}

TEST(OptimRMSprop, HandComputedFirstStep) {
  // rms = 0.1 * 0.25 = 0.025; w -= 0.01 * 0.5 / (sqrt(0.025) + 1e-7).
  Param p = make_param("kernel", {1}, {0.5f});
  auto opt = RMSprop({.common = {.learning_rate = 0.01}});
  opt->apply({&p});
  expect_values(p.value, {1 - 0.005 / (std::sqrt(0.025) + 1e-7)});
  ASSERT_EQ(opt->slots()[0].size(), 1u);
  EXPECT_EQ(opt->slots()[0][0].name, "rms");
  // Centered: mg = 0.05, denom = 0.025 - 0.0025 = 0.0225, step = 0.005 / 0.15.
  Param q = make_param("kernel", {1}, {0.5f});
  auto centered = RMSprop({.common = {.learning_rate = 0.01}, .centered = true});
  centered->apply({&q});
  expect_values(q.value, {1 - 0.005 / (0.15 + 1e-7)});
}

TEST(OptimRMSprop, StepsMatchKerasFormula) {
  const std::vector<double> grads = {0.5, -0.3, 0.8, 0.1, -1.2};
  for (double momentum : {0.0, 0.5}) {
    for (bool centered : {false, true}) {
      Param p = make_param("kernel", {1}, {0});
      auto opt = RMSprop({.common = {.learning_rate = 0.01},
                          .rho = 0.9,
                          .momentum = momentum,
                          .centered = centered});
      for (double g : grads) {
        set_grad(p, {static_cast<float>(g)});
        opt->apply({&p});
      }
      expect_values(p.value, {rmsprop_reference(1, grads, 0.01, 0.9, momentum, centered)}, 1e-6);
      std::vector<std::string> names;
      for (const auto& s : opt->slots()[0]) names.push_back(s.name);
      std::vector<std::string> expected = {"rms"};
      if (momentum > 0) expected.push_back("momentum");
      if (centered) expected.push_back("mg");
      EXPECT_EQ(names, expected) << "momentum " << momentum << " centered " << centered;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Clipping, apply contract

TEST(OptimClip, ByValue) {
  Param p = make_param("kernel", {0, 0, 0}, {2, -3, 0.1f});
  auto opt = SGD({.common = {.learning_rate = 1, .clipvalue = 0.5}});
  opt->apply({&p});
  expect_values(p.value, {-0.5, 0.5, -0.1});
  expect_values(p.grad, {2, -3, 0.1});  // the gradient itself is not modified
}

TEST(OptimClip, ByNormPerTensor) {
  // ||(3, 4)|| = 5 > 1: scaled to (0.6, 0.8); ||(0.3, 0.4)|| = 0.5 <= 1: unchanged.
  Param a = make_param("a", {0, 0}, {3, 4});
  Param b = make_param("b", {0, 0}, {0.3f, 0.4f});
  auto opt = SGD({.common = {.learning_rate = 1, .clipnorm = 1}});
  opt->apply({&a, &b});
  expect_values(a.value, {-0.6, -0.8});
  expect_values(b.value, {-0.3, -0.4});
}

TEST(OptimClip, ByGlobalNorm) {
  // Global norm of (3) and (4) is 5: both scaled by 1/5 (per tensor they would be clipped to 1).
  Param a = make_param("a", {0}, {3});
  Param b = make_param("b", {0}, {4});
  auto opt = SGD({.common = {.learning_rate = 1, .global_clipnorm = 1}});
  opt->apply({&a, &b});
  expect_values(a.value, {-0.6});
  expect_values(b.value, {-0.8});
}

TEST(OptimApply, BumpsVersionAndCountsIterations) {
  Param p = make_param("kernel", {1}, {1});
  const uint64_t v0 = p.value.version();
  auto opt = SGD();
  opt->apply({&p});
  EXPECT_GT(p.value.version(), v0);
  opt->apply({&p});
  EXPECT_EQ(opt->iterations(), 2);
}

TEST(OptimApply, CoupledWeightDecayForSGD) {
  // g = 0 + 0.1 * 1; w = 1 - 0.1 * 0.1.
  Param p = make_param("kernel", {1}, {0});
  auto opt = SGD({.common = {.learning_rate = 0.1, .weight_decay = 0.1}});
  opt->apply({&p});
  expect_values(p.value, {0.99});
}

TEST(OptimApply, CoupledWeightDecayKeepsGradientsAndHandlesSizes) {
  // Two params of different sizes share the decay buffer; the gradients stay as they were.
  Param a = make_param("a", {1, 2, 3}, {0.5f, 0, -1});
  Param b = make_param("b", {2}, {1});
  auto opt = SGD({.common = {.learning_rate = 0.1, .weight_decay = 0.1}});
  opt->apply({&b, &a});  // the smaller first: the buffer grows
  // w -= 0.1 * (g + 0.1 * w)
  expect_values(a.value, {1 - 0.1 * (0.5 + 0.1), 2 - 0.1 * 0.2, 3 - 0.1 * (-1 + 0.3)});
  expect_values(b.value, {2 - 0.1 * (1 + 0.2)});
  expect_values(a.grad, {0.5, 0, -1});
  expect_values(b.grad, {1});
}

TEST(OptimApply, WeightDecayAfterClipping) {
  // Clipped first (to 0.5), then decayed: g = 0.5 + 0.1 * 2; the gradient is untouched.
  Param p = make_param("kernel", {2}, {3});
  auto opt = SGD({.common = {.learning_rate = 1, .weight_decay = 0.1, .clipvalue = 0.5}});
  opt->apply({&p});
  expect_values(p.value, {2 - 0.7});
  expect_values(p.grad, {3});
}

TEST(OptimApply, ErrorsNameTheParam) {
  Param p = make_param("my_kernel", {1, 2}, {1, 2});
  p.grad = Tensor();
  auto opt = Adam();
  try {
    opt->apply({&p});
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("my_kernel"), std::string::npos) << e.what();
  }
  p.grad = Tensor::zeros(Shape{3});
  try {
    opt->apply({&p});
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("my_kernel"), std::string::npos) << msg;
    EXPECT_NE(msg.find("(3,)"), std::string::npos) << msg;
  }
  EXPECT_EQ(opt->iterations(), 0);
}

TEST(OptimApply, InvalidHyperParameters) {
  EXPECT_THROW(SGD({.common = {.learning_rate = -1}}), ConfigError);
  EXPECT_THROW(SGD({.momentum = 1.5}), ConfigError);
  EXPECT_THROW(Adam({.beta_1 = 1.0}), ConfigError);
  EXPECT_THROW(RMSprop({.rho = -0.1}), ConfigError);
  EXPECT_THROW(make_optimizer("adagrad"), ConfigError);
}

// ---------------------------------------------------------------------------------------------
// Learning rate and schedules

TEST(OptimSchedule, StepDecay) {
  auto s = step_decay(0.1, 0.5, 10);
  EXPECT_DOUBLE_EQ((*s)(0), 0.1);
  EXPECT_DOUBLE_EQ((*s)(9), 0.1);
  EXPECT_DOUBLE_EQ((*s)(10), 0.05);
  EXPECT_DOUBLE_EQ((*s)(25), 0.025);
  EXPECT_THROW(step_decay(0.1, 0.5, 0), ConfigError);
}

TEST(OptimSchedule, ExponentialDecay) {
  auto s = exponential_decay(0.1, 10, 0.5);
  EXPECT_DOUBLE_EQ((*s)(0), 0.1);
  EXPECT_NEAR((*s)(5), 0.1 * std::sqrt(0.5), 1e-15);
  EXPECT_NEAR((*s)(20), 0.025, 1e-15);
  auto st = exponential_decay(0.1, 10, 0.5, true);
  EXPECT_DOUBLE_EQ((*st)(5), 0.1);
  EXPECT_DOUBLE_EQ((*st)(15), 0.05);
  EXPECT_THROW(exponential_decay(0.1, 0, 0.5), ConfigError);
}

TEST(OptimSchedule, CosineDecay) {
  auto s = cosine_decay(0.1, 100);
  EXPECT_NEAR((*s)(0), 0.1, 1e-15);
  EXPECT_NEAR((*s)(50), 0.05, 1e-15);
  EXPECT_NEAR((*s)(25), 0.1 * 0.5 * (1 + std::cos(M_PI / 4)), 1e-15);
  EXPECT_NEAR((*s)(100), 0.0, 1e-15);
  EXPECT_NEAR((*s)(1000), 0.0, 1e-15);
  auto a = cosine_decay(0.1, 100, 0.1);
  EXPECT_NEAR((*a)(50), 0.1 * (0.9 * 0.5 + 0.1), 1e-15);
  EXPECT_NEAR((*a)(100), 0.01, 1e-15);
  EXPECT_THROW(cosine_decay(0.1, 0), ConfigError);
}

TEST(OptimSchedule, CosineDecayWithWarmup) {
  // Linear 0 -> 0.1 over 10 steps, then cosine from 0.1 over 100 steps.
  auto s = cosine_decay(0.0, 100, 0.0, 10, 0.1);
  EXPECT_NEAR((*s)(0), 0.0, 1e-15);
  EXPECT_NEAR((*s)(5), 0.05, 1e-15);
  EXPECT_NEAR((*s)(10), 0.1, 1e-15);
  EXPECT_NEAR((*s)(60), 0.05, 1e-15);
  EXPECT_NEAR((*s)(110), 0.0, 1e-15);
  EXPECT_NEAR((*s)(5000), 0.0, 1e-15);
  // No warm-up target: the rate stays at `initial` during the warm-up steps.
  auto flat = cosine_decay(0.1, 100, 0.0, 10);
  EXPECT_NEAR((*flat)(5), 0.1, 1e-15);
  EXPECT_NEAR((*flat)(60), 0.05, 1e-15);
}

TEST(OptimSchedule, OptimizerUsesTheScheduleAtEachIteration) {
  // SGD with lr 1, 0.5, 0.25 (step decay every step) and g = 1: w = 1 - 1.75.
  Param p = make_param("kernel", {1}, {1});
  auto opt = SGD({.common = {.schedule = step_decay(1.0, 0.5, 1)}});
  EXPECT_DOUBLE_EQ(opt->learning_rate(), 1.0);
  for (int i = 0; i < 3; ++i) opt->apply({&p});
  expect_values(p.value, {-0.75});
  EXPECT_DOUBLE_EQ(opt->learning_rate(), 0.125);
  opt->set_learning_rate(0.01);  // drops the schedule
  opt->apply({&p});
  expect_values(p.value, {-0.76});
  EXPECT_DOUBLE_EQ(opt->learning_rate(), 0.01);
  EXPECT_THROW(opt->set_learning_rate(-1), ConfigError);
}

// ---------------------------------------------------------------------------------------------
// Names and configs

TEST(OptimConfig, AdamDefaultsAsKeras) {
  EXPECT_EQ(Adam()->config_json(),
            R"({"class_name":"Adam","config":{"name":"Adam","learning_rate":0.001,"decay":0.0,)"
            R"("beta_1":0.9,"beta_2":0.999,"epsilon":1e-07,"amsgrad":false}})");
}

TEST(OptimConfig, OthersParse) {
  auto sgd = nlohmann::json::parse(SGD({.momentum = 0.9, .nesterov = true})->config_json());
  EXPECT_EQ(sgd["class_name"], "SGD");
  EXPECT_EQ(sgd["config"]["learning_rate"], 0.01);
  EXPECT_EQ(sgd["config"]["momentum"], 0.9);
  EXPECT_EQ(sgd["config"]["nesterov"], true);
  auto rms = nlohmann::json::parse(RMSprop()->config_json());
  EXPECT_EQ(rms["class_name"], "RMSprop");
  EXPECT_EQ(rms["config"]["rho"], 0.9);
  EXPECT_EQ(rms["config"]["centered"], false);
  auto clip = nlohmann::json::parse(
      SGD({.common = {.learning_rate = 0.1, .clipnorm = 1.0}})->config_json());
  EXPECT_EQ(clip["config"]["clipnorm"], 1.0);
  auto sched =
      nlohmann::json::parse(Adam({.common = {.schedule = cosine_decay(0.1, 100)}})->config_json());
  EXPECT_EQ(sched["config"]["learning_rate"]["class_name"], "CosineDecay");
  EXPECT_EQ(sched["config"]["learning_rate"]["config"]["decay_steps"], 100);
}

TEST(OptimConfig, MakeOptimizerByName) {
  EXPECT_EQ(make_optimizer("sgd")->class_name(), "SGD");
  EXPECT_DOUBLE_EQ(make_optimizer("sgd")->learning_rate(), 0.01);
  EXPECT_EQ(make_optimizer("Adam")->class_name(), "Adam");
  EXPECT_DOUBLE_EQ(make_optimizer("adam", 0.05)->learning_rate(), 0.05);
  EXPECT_EQ(make_optimizer("adamw")->class_name(), "AdamW");
  EXPECT_EQ(make_optimizer("RMSprop")->class_name(), "RMSprop");
  EXPECT_DOUBLE_EQ(make_optimizer("rmsprop", 0)->learning_rate(), 0.001);
}

}  // namespace
}  // namespace resnet
