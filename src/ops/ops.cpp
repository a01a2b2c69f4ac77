// The backend dispatcher: every ops:: call goes to the reference loops or to oneDNN.
// The reference path converts its inputs to the plain layout and allocates plain outputs.
#include "ops/ops.h"

#include <fmt/format.h>

#include <atomic>
#include <cmath>

#include "ops/onednn/onednn.h"
#include "ops/ref/ref.h"
#include "resnet/error.h"

namespace resnet::ops {

namespace {
std::atomic<Backend> current_backend{Backend::OneDnn};

bool use_ref() { return current_backend.load(std::memory_order_relaxed) == Backend::Ref; }

const float* cf(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }

void expect_f32(const Tensor& t, const char* op, const char* what) {
  if (!t.defined()) throw Error(fmt::format("{}: {} is undefined", op, what));
  if (t.dtype() != DType::F32) {
    throw Error(fmt::format("{}: {} must be float32, got {}", op, what, t.str()));
  }
}
}  // namespace

void set_backend(Backend b) { current_backend.store(b); }
Backend backend() { return current_backend.load(); }
const char* backend_name(Backend b) { return b == Backend::Ref ? "ref" : "onednn"; }

namespace {
thread_local int transient_weights_depth = 0;
}  // namespace

TransientWeightsScope::TransientWeightsScope() { ++transient_weights_depth; }
TransientWeightsScope::~TransientWeightsScope() { --transient_weights_depth; }
bool TransientWeightsScope::active() { return transient_weights_depth > 0; }

void set_num_threads(int n) {
  if (n < 1) throw ConfigError(fmt::format("thread count must be at least 1, got {}", n));
  onednn::set_num_threads(n);
}
int num_threads() { return onednn::num_threads(); }

NumThreadsScope::NumThreadsScope(int n) {
  if (n <= 0 || n == num_threads()) return;
  prev_ = num_threads();
  onednn::set_num_threads(n);
}
NumThreadsScope::~NumThreadsScope() {
  if (prev_ > 0) onednn::set_num_threads(prev_);
}

Tensor plain(const Tensor& t) {
  if (!t.defined() || t.is_plain()) return t;
  return onednn::to_plain(t);
}

// ---------------------------------------------------------------------------------------------
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g) {
  expect_f32(x, "conv2d_forward", "input");
  expect_f32(w, "conv2d_forward", "kernel");
  if (!use_ref()) return onednn::conv2d_forward(x, w, b, g);
  Tensor xp = plain(x), wp = plain(w), bp = plain(b);
  Tensor y = Tensor::empty({g.n, g.oh, g.ow, g.f});
  ref::conv2d_forward(xp.f32(), wp.f32(), cf(bp), y.f32(), g);
  return y;
}

Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const ConvGeom& g) {
  if (!use_ref()) return onednn::conv2d_backward_data(dy, w, g);
  Tensor dyp = plain(dy), wp = plain(w);
  Tensor dx = Tensor::empty({g.n, g.h, g.w, g.c});
  ref::conv2d_backward_data(dyp.f32(), wp.f32(), dx.f32(), g);
  return dx;
}

void conv2d_backward_weights(const Tensor& x, const Tensor& dy, const ConvGeom& g, bool with_bias,
                             Tensor& dw, Tensor& db) {
  if (!use_ref()) return onednn::conv2d_backward_weights(x, dy, g, with_bias, dw, db);
  Tensor xp = plain(x), dyp = plain(dy);
  dw = Tensor::empty({g.kh, g.kw, g.c, g.f});
  db = with_bias ? Tensor::empty({g.f}) : Tensor();
  ref::conv2d_backward_weights(xp.f32(), dyp.f32(), dw.f32(), with_bias ? db.f32() : nullptr, g);
}

// ---------------------------------------------------------------------------------------------
Tensor batchnorm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  double eps, Tensor& mean, Tensor& var) {
  expect_f32(x, "batchnorm_forward_training", "input");
  if (!use_ref()) return onednn::batchnorm_forward_training(x, gamma, beta, eps, mean, var);
  Tensor xp = plain(x);
  const int64_t c = x.shape()[-1], m = x.numel() / c;
  Tensor y = Tensor::empty(x.shape());
  mean = Tensor::empty({c});
  var = Tensor::empty({c});
  ref::batchnorm_forward_training(xp.f32(), plain(gamma).f32(), plain(beta).f32(), y.f32(),
                                  mean.f32(), var.f32(), m, c, eps);
  return y;
}

Tensor batchnorm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                   const Tensor& mean, const Tensor& var, double eps) {
  expect_f32(x, "batchnorm_forward_inference", "input");
  if (!use_ref()) return onednn::batchnorm_forward_inference(x, gamma, beta, mean, var, eps);
  Tensor xp = plain(x);
  const int64_t c = x.shape()[-1], m = x.numel() / c;
  Tensor y = Tensor::empty(x.shape());
  ref::batchnorm_forward_inference(xp.f32(), plain(gamma).f32(), plain(beta).f32(),
                                   plain(mean).f32(), plain(var).f32(), y.f32(), m, c, eps);
  return y;
}

void batchnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                        const Tensor& var, double eps, bool stats_fixed, Tensor& dx, Tensor& dgamma,
                        Tensor& dbeta) {
  if (!use_ref()) {
    return onednn::batchnorm_backward(dy, x, gamma, mean, var, eps, stats_fixed, dx, dgamma, dbeta);
  }
  Tensor dyp = plain(dy), xp = plain(x);
  const int64_t c = x.shape()[-1], m = x.numel() / c;
  dx = Tensor::empty(x.shape());
  dgamma = Tensor::empty({c});
  dbeta = Tensor::empty({c});
  ref::batchnorm_backward(dyp.f32(), xp.f32(), plain(gamma).f32(), plain(mean).f32(),
                          plain(var).f32(), dx.f32(), dgamma.f32(), dbeta.f32(), m, c, eps,
                          stats_fixed);
}

// ---------------------------------------------------------------------------------------------
namespace {
void check_alpha(double alpha, const char* op) {
  if (!(alpha >= 0.0) || !std::isfinite(alpha)) {
    throw ConfigError(
        fmt::format("{}: the negative slope must be finite and >= 0, got {}", op, alpha));
  }
}
}  // namespace

Tensor eltwise_forward(Eltwise e, const Tensor& x, double alpha) {
  expect_f32(x, "eltwise_forward", "input");
  check_alpha(alpha, "eltwise_forward");
  if (!use_ref()) return onednn::eltwise_forward(e, x, alpha);
  Tensor xp = plain(x);
  Tensor y = Tensor::empty(x.shape());
  ref::eltwise_forward(e, xp.f32(), y.f32(), x.numel(), alpha);
  return y;
}

Tensor eltwise_backward(Eltwise e, const Tensor& dy, const Tensor& x, const Tensor& y,
                        double alpha) {
  check_alpha(alpha, "eltwise_backward");
  if (!use_ref()) return onednn::eltwise_backward(e, dy, x, y, alpha);
  Tensor dyp = plain(dy), xp = plain(x), yp = plain(y);
  Tensor dx = Tensor::empty(dy.shape());
  ref::eltwise_backward(e, dyp.f32(), cf(xp), cf(yp), dx.f32(), dy.numel(), alpha);
  return dx;
}

Tensor softmax_forward(const Tensor& x) {
  expect_f32(x, "softmax_forward", "input");
  if (!use_ref()) return onednn::softmax_forward(x);
  Tensor xp = plain(x);
  const int64_t c = x.shape()[-1];
  Tensor y = Tensor::empty(x.shape());
  ref::softmax_forward(xp.f32(), y.f32(), x.numel() / c, c);
  return y;
}

Tensor softmax_backward(const Tensor& dy, const Tensor& y) {
  if (!use_ref()) return onednn::softmax_backward(dy, y);
  Tensor dyp = plain(dy), yp = plain(y);
  const int64_t c = y.shape()[-1];
  Tensor dx = Tensor::empty(y.shape());
  ref::softmax_backward(dyp.f32(), yp.f32(), dx.f32(), y.numel() / c, c);
  return dx;
}

Tensor add(const std::vector<Tensor>& xs) {
  if (xs.empty()) throw Error("add: no inputs");
  for (const Tensor& x : xs) {
    expect_f32(x, "add", "input");
    if (x.shape() != xs[0].shape()) {
      throw ShapeError(
          fmt::format("add: shapes {} and {} differ", xs[0].shape().str(), x.shape().str()));
    }
  }
  if (!use_ref()) return onednn::add(xs);
  std::vector<Tensor> ps;
  std::vector<const float*> ptrs;
  for (const Tensor& x : xs) ps.push_back(plain(x));
  for (const Tensor& p : ps) ptrs.push_back(p.f32());
  Tensor y = Tensor::empty(xs[0].shape());
  ref::add(ptrs.data(), static_cast<int64_t>(ptrs.size()), y.f32(), y.numel());
  return y;
}

// ---------------------------------------------------------------------------------------------
Tensor pool_forward(const Tensor& x, const PoolGeom& g, Tensor& workspace) {
  expect_f32(x, "pool_forward", "input");
  if (!use_ref()) return onednn::pool_forward(x, g, workspace);
  Tensor xp = plain(x);
  Tensor y = Tensor::empty({g.n, g.oh, g.ow, g.c});
  ref::pool_forward(xp.f32(), y.f32(), g);
  workspace = Tensor();
  return y;
}

Tensor pool_backward(const Tensor& dy, const Tensor& x, const Tensor& workspace,
                     const PoolGeom& g) {
  if (!use_ref()) return onednn::pool_backward(dy, x, workspace, g);
  Tensor dyp = plain(dy), xp = plain(x);
  Tensor dx = Tensor::empty({g.n, g.h, g.w, g.c});
  ref::pool_backward(dyp.f32(), xp.f32(), dx.f32(), g);
  return dx;
}

Tensor zero_pad_forward(const Tensor& x, const Pad2& p) {
  expect_f32(x, "zero_pad_forward", "input");
  if (!use_ref()) return onednn::zero_pad_forward(x, p);
  Tensor xp = plain(x);
  const Shape& s = x.shape();
  Tensor y = Tensor::empty({s[0], s[1] + p.top + p.bottom, s[2] + p.left + p.right, s[3]});
  ref::zero_pad_forward(xp.f32(), y.f32(), s[0], s[1], s[2], s[3], p);
  return y;
}

Tensor zero_pad_backward(const Tensor& dy, const Pad2& p) {
  if (!use_ref()) return onednn::zero_pad_backward(dy, p);
  Tensor dyp = plain(dy);
  const Shape& s = dy.shape();
  const int64_t h = s[1] - p.top - p.bottom, w = s[2] - p.left - p.right;
  Tensor dx = Tensor::empty({s[0], h, w, s[3]});
  ref::zero_pad_backward(dyp.f32(), dx.f32(), s[0], h, w, s[3], p);
  return dx;
}

// ---------------------------------------------------------------------------------------------
Tensor dense_forward(const Tensor& x, const Tensor& w, const Tensor& b) {
  expect_f32(x, "dense_forward", "input");
  if (!use_ref()) return onednn::dense_forward(x, w, b);
  Tensor xp = plain(x), wp = plain(w), bp = plain(b);
  const int64_t m = x.shape()[0], k = w.shape()[0], u = w.shape()[1];
  Tensor y = Tensor::empty({m, u});
  ref::dense_forward(xp.f32(), wp.f32(), cf(bp), y.f32(), m, k, u);
  return y;
}

Tensor dense_backward_data(const Tensor& dy, const Tensor& w) {
  if (!use_ref()) return onednn::dense_backward_data(dy, w);
  Tensor dyp = plain(dy), wp = plain(w);
  const int64_t m = dy.shape()[0], k = w.shape()[0], u = w.shape()[1];
  Tensor dx = Tensor::empty({m, k});
  ref::dense_backward_data(dyp.f32(), wp.f32(), dx.f32(), m, k, u);
  return dx;
}

void dense_backward_weights(const Tensor& x, const Tensor& dy, bool with_bias, Tensor& dw,
                            Tensor& db) {
  if (!use_ref()) return onednn::dense_backward_weights(x, dy, with_bias, dw, db);
  Tensor xp = plain(x), dyp = plain(dy);
  const int64_t m = x.shape()[0], k = x.shape()[1], u = dy.shape()[1];
  dw = Tensor::empty({k, u});
  db = with_bias ? Tensor::empty({u}) : Tensor();
  ref::dense_backward_weights(xp.f32(), dyp.f32(), dw.f32(), with_bias ? db.f32() : nullptr, m, k,
                              u);
}

}  // namespace resnet::ops
