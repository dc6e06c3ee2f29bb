// vaekit's element-wise CUDA kernels: activations and their backward passes from the output,
// the Bernoulli log-likelihood of logits and its score, and the fused Adam / Adamax passes.
// Each kernel is instantiated for float and double (suffix _f32 / _f64); every one is a
// grid-stride loop over `n` contiguous elements. They mirror the CPU ops in vaekit-core
// (numerics/activation.rs, numerics/bernoulli.rs) and vaekit-train (fused_update.rs).

#include <stdint.h>

#define GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); \
       i += (size_t)blockDim.x * gridDim.x)

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|), in double.
__device__ __forceinline__ double vk_softplus(double x) {
  return fmax(x, 0.0) + log1p(exp(-fabs(x)));
}

// log p(x | l) = -x softplus(-l) - (1 - x) softplus(l), one softplus for binary x.
__device__ __forceinline__ double vk_bernoulli(double l, double x) {
  if (x == 1.0) return -vk_softplus(-l);
  if (x == 0.0) return -vk_softplus(l);
  return -x * vk_softplus(-l) - (1.0 - x) * vk_softplus(l);
}

__device__ __forceinline__ double vk_sigmoid(double l) {
  if (l >= 0.0) return 1.0 / (1.0 + exp(-l));
  double e = exp(l);
  return e / (1.0 + e);
}

template <typename T>
__device__ void tanh_fwd(size_t n, const T* x, T* y) {
  GRID_STRIDE(i, n) { y[i] = tanh(x[i]); }
}

template <typename T>
__device__ void elu_fwd(size_t n, const T* x, T* y) {
  GRID_STRIDE(i, n) {
    T v = x[i];
    y[i] = v > T(0) ? v : expm1(v);
  }
}

// g (1 - y^2)
template <typename T>
__device__ void tanh_bwd(size_t n, const T* y, const T* g, T* out) {
  GRID_STRIDE(i, n) { out[i] = g[i] * (T(1) - y[i] * y[i]); }
}

// g where y > 0, g (y + 1) elsewhere (NaN in y propagates).
template <typename T>
__device__ void elu_bwd(size_t n, const T* y, const T* g, T* out) {
  GRID_STRIDE(i, n) {
    T v = y[i];
    out[i] = v > T(0) ? g[i] : g[i] * (v + T(1));
  }
}

template <typename T>
__device__ void bernoulli_log_prob(size_t n, const T* l, const T* x, T* out) {
  GRID_STRIDE(i, n) { out[i] = (T)vk_bernoulli((double)l[i], (double)x[i]); }
}

// x - sigmoid(l)
template <typename T>
__device__ void bernoulli_score(size_t n, const T* l, const T* x, T* out) {
  GRID_STRIDE(i, n) { out[i] = (T)((double)x[i] - vk_sigmoid((double)l[i])); }
}

// m <- beta1 m + (1 - beta1) g
template <typename T>
__device__ void first_moment(size_t n, T* m, const T* g, T a, T b) {
  GRID_STRIDE(i, n) { m[i] = a * m[i] + b * g[i]; }
}

// v <- beta2 v + (1 - beta2) g^2
template <typename T>
__device__ void second_moment(size_t n, T* v, const T* g, T a, T b) {
  GRID_STRIDE(i, n) { v[i] = a * v[i] + b * (g[i] * g[i]); }
}

// u <- max(beta2 u, |g|)
template <typename T>
__device__ void infinity_norm(size_t n, T* u, const T* g, T a) {
  GRID_STRIDE(i, n) { u[i] = fmax(a * u[i], fabs(g[i])); }
}

// p <- keep p - step_m m / (sqrt(v scale_v) + eps)
template <typename T>
__device__ void adam_param(size_t n, T* p, const T* m, const T* v, T step_m, T scale_v, T eps,
                           T keep) {
  GRID_STRIDE(i, n) { p[i] = keep * p[i] - step_m * m[i] / (sqrt(v[i] * scale_v) + eps); }
}

// p <- keep p - step_m m / (u + eps)
template <typename T>
__device__ void adamax_param(size_t n, T* p, const T* m, const T* u, T step_m, T eps, T keep) {
  GRID_STRIDE(i, n) { p[i] = keep * p[i] - step_m * m[i] / (u[i] + eps); }
}

#define INSTANTIATE(T, S)                                                                     \
  extern "C" __global__ void vk_tanh_##S(size_t n, const T* x, T* y) { tanh_fwd<T>(n, x, y); } \
  extern "C" __global__ void vk_elu_##S(size_t n, const T* x, T* y) { elu_fwd<T>(n, x, y); }   \
  extern "C" __global__ void vk_tanh_grad_##S(size_t n, const T* y, const T* g, T* o) {       \
    tanh_bwd<T>(n, y, g, o);                                                                  \
  }                                                                                           \
  extern "C" __global__ void vk_elu_grad_##S(size_t n, const T* y, const T* g, T* o) {        \
    elu_bwd<T>(n, y, g, o);                                                                   \
  }                                                                                           \
  extern "C" __global__ void vk_bernoulli_log_prob_##S(size_t n, const T* l, const T* x,      \
                                                       T* o) {                                \
    bernoulli_log_prob<T>(n, l, x, o);                                                        \
  }                                                                                           \
  extern "C" __global__ void vk_bernoulli_score_##S(size_t n, const T* l, const T* x, T* o) { \
    bernoulli_score<T>(n, l, x, o);                                                           \
  }                                                                                           \
  extern "C" __global__ void vk_first_moment_##S(size_t n, T* m, const T* g, T a, T b) {      \
    first_moment<T>(n, m, g, a, b);                                                           \
  }                                                                                           \
  extern "C" __global__ void vk_second_moment_##S(size_t n, T* v, const T* g, T a, T b) {     \
    second_moment<T>(n, v, g, a, b);                                                          \
  }                                                                                           \
  extern "C" __global__ void vk_infinity_norm_##S(size_t n, T* u, const T* g, T a) {          \
    infinity_norm<T>(n, u, g, a);                                                             \
  }                                                                                           \
  extern "C" __global__ void vk_adam_param_##S(size_t n, T* p, const T* m, const T* v,        \
                                               T step_m, T scale_v, T eps, T keep) {          \
    adam_param<T>(n, p, m, v, step_m, scale_v, eps, keep);                                    \
  }                                                                                           \
  extern "C" __global__ void vk_adamax_param_##S(size_t n, T* p, const T* m, const T* u,      \
                                                 T step_m, T eps, T keep) {                   \
    adamax_param<T>(n, p, m, u, step_m, eps, keep);                                           \
  }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
