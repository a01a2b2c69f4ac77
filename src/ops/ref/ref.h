// Reference kernels: plain loops over raw pointers in the logical layout, templated on the element
// type (float for the `ref` backend, double for finite-difference gradient checks). They are the
// test oracle: written for clarity, not speed. Every kernel overwrites every element of its
// outputs (never accumulates into them), so a NaN-prefilled output that survives is a bug.
#pragma once

#include <cstdint>

#include "ops/ops.h"

namespace resnet::ops::ref {

// y[n,oh,ow,f] = b[f] + sum_{i,j,c} x[n, oh*sh - pt + i*dh, ow*sw - pl + j*dw, c] * w[i,j,c,f]
template <class T>
void conv2d_forward(const T* x, const T* w, const T* b /*nullable*/, T* y, const ConvGeom& g);
template <class T>
void conv2d_backward_data(const T* dy, const T* w, T* dx, const ConvGeom& g);
template <class T>
void conv2d_backward_weights(const T* x, const T* dy, T* dw, T* db /*nullable*/, const ConvGeom& g);

// x, y: (M, C); gamma, beta, mean, var: (C).
template <class T>
void batchnorm_forward_training(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* var,
                                int64_t m, int64_t c, double eps);
template <class T>
void batchnorm_forward_inference(const T* x, const T* gamma, const T* beta, const T* mean,
                                 const T* var, T* y, int64_t m, int64_t c, double eps);
template <class T>
void batchnorm_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* var, T* dx,
                        T* dgamma, T* dbeta, int64_t m, int64_t c, double eps, bool stats_fixed);

template <class T>
void eltwise_forward(Eltwise e, const T* x, T* y, int64_t count, double alpha = 0.0);
template <class T>
void eltwise_backward(Eltwise e, const T* dy, const T* x, const T* y, T* dx, int64_t count,
                      double alpha = 0.0);

// Rows of length c.
template <class T>
void softmax_forward(const T* x, T* y, int64_t rows, int64_t c);
template <class T>
void softmax_backward(const T* dy, const T* y, T* dx, int64_t rows, int64_t c);

// Max: ties go to the first element in window order; padded cells never win.
// Avg: divides by the number of non-padded cells in the window.
template <class T>
void pool_forward(const T* x, T* y, const PoolGeom& g);
template <class T>
void pool_backward(const T* dy, const T* x, T* dx, const PoolGeom& g);

template <class T>
void zero_pad_forward(const T* x, T* y, int64_t n, int64_t h, int64_t w, int64_t c, const Pad2& p);
template <class T>
void zero_pad_backward(const T* dy, T* dx, int64_t n, int64_t h, int64_t w, int64_t c,
                       const Pad2& p);  // h, w: unpadded size

// x (M,K), w (K,U).
template <class T>
void dense_forward(const T* x, const T* w, const T* b /*nullable*/, T* y, int64_t m, int64_t k,
                   int64_t u);
template <class T>
void dense_backward_data(const T* dy, const T* w, T* dx, int64_t m, int64_t k, int64_t u);
template <class T>
void dense_backward_weights(const T* x, const T* dy, T* dw, T* db /*nullable*/, int64_t m,
                            int64_t k, int64_t u);

template <class T>
void add(const T* const* xs, int64_t count_inputs, T* y, int64_t count);

}  // namespace resnet::ops::ref
