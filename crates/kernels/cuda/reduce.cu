// vaekit's reducing CUDA kernels: the decoder's Bernoulli log-likelihood summed over pixels
// (one block per row, terms and sum in double) with its backward, and the sum of squares of a
// gradient for clipping (fixed-size partial sums, then one block: deterministic, no atomics).
// They mirror vaekit-core's numerics/bernoulli_sum.rs and vaekit-train's clip.rs.

#include <stdint.h>

#define BLOCK 256

__device__ __forceinline__ double vk_softplus_r(double x) {
  return fmax(x, 0.0) + log1p(exp(-fabs(x)));
}

__device__ __forceinline__ double vk_bernoulli_r(double l, double x) {
  if (x == 1.0) return -vk_softplus_r(-l);
  if (x == 0.0) return -vk_softplus_r(l);
  return -x * vk_softplus_r(-l) - (1.0 - x) * vk_softplus_r(l);
}

__device__ __forceinline__ double vk_sigmoid_r(double l) {
  if (l >= 0.0) return 1.0 / (1.0 + exp(-l));
  double e = exp(l);
  return e / (1.0 + e);
}

// Sum of the block's `v` in thread 0 (BLOCK threads, tree order: deterministic).
__device__ double block_sum(double v) {
  __shared__ double buf[BLOCK];
  buf[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = BLOCK / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  return buf[0];
}

// out[r] = sum_p log Bernoulli(x[b, p]; l[r, p]) for rows r = b S + s; launch B S blocks.
template <typename T>
__device__ void bernoulli_sum(size_t rows, size_t s, size_t p, const T* l, const T* x, T* out) {
  for (size_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* lr = l + r * p;
    const T* xr = x + (r / s) * p;
    double acc = 0.0;
    for (size_t j = threadIdx.x; j < p; j += BLOCK) acc += vk_bernoulli_r((double)lr[j], (double)xr[j]);
    double total = block_sum(acc);
    if (threadIdx.x == 0) out[r] = (T)total;
    __syncthreads();
  }
}

// out[r, p] = g[r] (x[b, p] - sigmoid(l[r, p])), element-wise over rows * p.
template <typename T>
__device__ void bernoulli_sum_score(size_t rows, size_t s, size_t p, const T* l, const T* x,
                                    const T* g, T* out) {
  size_t n = rows * p;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
       i += (size_t)blockDim.x * gridDim.x) {
    size_t r = i / p, j = i % p;
    double xv = (double)x[(r / s) * p + j];
    out[i] = (T)((double)g[r] * (xv - vk_sigmoid_r((double)l[i])));
  }
}

// partial[blockIdx.x] = sum of x^2 over the block's grid-stride share, in double.
template <typename T>
__device__ void sum_squares_partial(size_t n, const T* x, double* partial) {
  double acc = 0.0;
  for (size_t i = blockIdx.x * (size_t)BLOCK + threadIdx.x; i < n; i += (size_t)BLOCK * gridDim.x) {
    double v = (double)x[i];
    acc += v * v;
  }
  double total = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// out[0] = sum of the m partial sums; one block.
extern "C" __global__ void vk_sum_f64(size_t m, const double* partial, double* out) {
  double acc = 0.0;
  for (size_t i = threadIdx.x; i < m; i += BLOCK) acc += partial[i];
  double total = block_sum(acc);
  if (threadIdx.x == 0) out[0] = total;
}

#define INSTANTIATE(T, S)                                                                      \
  extern "C" __global__ void vk_bernoulli_sum_##S(size_t rows, size_t s, size_t p, const T* l, \
                                                  const T* x, T* out) {                        \
    bernoulli_sum<T>(rows, s, p, l, x, out);                                                   \
  }                                                                                            \
  extern "C" __global__ void vk_bernoulli_sum_score_##S(size_t rows, size_t s, size_t p,       \
                                                        const T* l, const T* x, const T* g,    \
                                                        T* out) {                              \
    bernoulli_sum_score<T>(rows, s, p, l, x, g, out);                                          \
  }                                                                                            \
  extern "C" __global__ void vk_sum_squares_partial_##S(size_t n, const T* x, double* part) {  \
    sum_squares_partial<T>(n, x, part);                                                        \
  }

INSTANTIATE(float, f32)
INSTANTIATE(double, f64)
