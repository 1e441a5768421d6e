// int4 pack/unpack kernels behind the pointer-only C ABI in ditkit_kernels.h.
//
// Both tensors are row-major contiguous and cols is even, so a pair (2j, 2j + 1) never straddles
// a row: the kernels see flat byte arrays of n = rows * cols / 2 packed bytes. When both pointers
// are 16-byte aligned each thread moves 16 packed bytes (32 int8 values) with vector loads and
// stores, and the last n % 16 bytes go through the scalar path; otherwise everything is scalar.
#include "ditkit_kernels.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;  // grid-stride loops cover the rest
constexpr int64_t kVecBytes = 16;      // packed bytes per thread on the vector path

// Four int8 lanes (lane 0 in the low byte) -> 16 bits: byte 0 = a1:a0, byte 1 = a3:a2.
__host__ __device__ __forceinline__ uint32_t pack_word(uint32_t w) {
  const uint32_t m = w & 0x0F0F0F0Fu;  // low nibble of each lane
  const uint32_t x = m | (m >> 4);      // byte 0 = a1:a0, byte 2 = a3:a2
  return (x & 0xFFu) | ((x >> 8) & 0xFF00u);
}

// 16 bits of packed data (two bytes) -> four sign-extended int8 lanes.
__host__ __device__ __forceinline__ uint32_t unpack_half(uint32_t h) {
  const uint32_t n = (h & 0xFu) | ((h & 0xF0u) << 4) | ((h & 0xF00u) << 8) | ((h & 0xF000u) << 12);
  const uint32_t sign = n & 0x08080808u;  // bit 3 of each lane
  return n | (sign * 0x1Eu);              // copy the sign into bits 4..7 of its lane
}

__host__ __device__ __forceinline__ uint8_t pack_pair(int8_t lo, int8_t hi) {
  return static_cast<uint8_t>((static_cast<uint8_t>(lo) & 0xFu) |
                              ((static_cast<uint8_t>(hi) & 0xFu) << 4));
}

__host__ __device__ __forceinline__ int8_t low_nibble(uint8_t b) {
  return static_cast<int8_t>(static_cast<int8_t>(static_cast<uint8_t>(b << 4)) >> 4);
}

__host__ __device__ __forceinline__ int8_t high_nibble(uint8_t b) {
  return static_cast<int8_t>(static_cast<int8_t>(b) >> 4);
}

template <bool kVec>
__global__ void pack_int4_kernel(const int8_t* __restrict__ src, uint8_t* __restrict__ dst,
                                 int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (kVec) {
    const int64_t n_vec = n / kVecBytes;
    const uint4* s = reinterpret_cast<const uint4*>(src);
    uint4* d = reinterpret_cast<uint4*>(dst);
    for (int64_t i = tid; i < n_vec; i += stride) {
      const uint4 a = s[2 * i];
      const uint4 b = s[2 * i + 1];
      uint4 o;
      o.x = pack_word(a.x) | (pack_word(a.y) << 16);
      o.y = pack_word(a.z) | (pack_word(a.w) << 16);
      o.z = pack_word(b.x) | (pack_word(b.y) << 16);
      o.w = pack_word(b.z) | (pack_word(b.w) << 16);
      d[i] = o;
    }
    done = n_vec * kVecBytes;
  }
  for (int64_t j = done + tid; j < n; j += stride) {
    dst[j] = pack_pair(src[2 * j], src[2 * j + 1]);
  }
}

template <bool kVec>
__global__ void unpack_int4_kernel(const uint8_t* __restrict__ src, int8_t* __restrict__ dst,
                                   int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (kVec) {
    const int64_t n_vec = n / kVecBytes;
    const uint4* s = reinterpret_cast<const uint4*>(src);
    uint4* d = reinterpret_cast<uint4*>(dst);
    for (int64_t i = tid; i < n_vec; i += stride) {
      const uint4 p = s[i];
      uint4 lo;
      uint4 hi;
      lo.x = unpack_half(p.x & 0xFFFFu);
      lo.y = unpack_half(p.x >> 16);
      lo.z = unpack_half(p.y & 0xFFFFu);
      lo.w = unpack_half(p.y >> 16);
      hi.x = unpack_half(p.z & 0xFFFFu);
      hi.y = unpack_half(p.z >> 16);
      hi.z = unpack_half(p.w & 0xFFFFu);
      hi.w = unpack_half(p.w >> 16);
      d[2 * i] = lo;
      d[2 * i + 1] = hi;
    }
    done = n_vec * kVecBytes;
  }
  for (int64_t j = done + tid; j < n; j += stride) {
    const uint8_t b = src[j];
    dst[2 * j] = low_nibble(b);
    dst[2 * j + 1] = high_nibble(b);
  }
}

// Validates the shape and returns the packed byte count in *n.
cudaError_t packed_bytes(uintptr_t src, uintptr_t dst, int64_t rows, int64_t cols, int64_t* n) {
  if (rows < 0 || cols < 0 || cols % 2 != 0) return cudaErrorInvalidValue;
  if (cols > 0 && rows > INT64_MAX / cols) return cudaErrorInvalidValue;
  *n = rows * (cols / 2);
  if (*n > 0 && (src == 0 || dst == 0)) return cudaErrorInvalidValue;
  return cudaSuccess;
}

bool aligned16(uintptr_t p) { return p % 16 == 0; }

unsigned int grid_for(int64_t items) {
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

}  // namespace

extern "C" int ditkit_pack_int4(uintptr_t src, uintptr_t dst, int64_t rows, int64_t cols,
                                uintptr_t stream) {
  int64_t n = 0;
  cudaError_t err = packed_bytes(src, dst, rows, cols, &n);
  if (err != cudaSuccess || n == 0) return err;
  (void)cudaGetLastError();  // report only what this launch does
  const auto* s = reinterpret_cast<const int8_t*>(src);
  auto* d = reinterpret_cast<uint8_t*>(dst);
  auto st = reinterpret_cast<cudaStream_t>(stream);
  if (aligned16(src) && aligned16(dst)) {
    const int64_t items = n / kVecBytes > 0 ? n / kVecBytes : n;
    pack_int4_kernel<true><<<grid_for(items), kThreads, 0, st>>>(s, d, n);
  } else {
    pack_int4_kernel<false><<<grid_for(n), kThreads, 0, st>>>(s, d, n);
  }
  return cudaGetLastError();
}

extern "C" int ditkit_unpack_int4(uintptr_t src, uintptr_t dst, int64_t rows, int64_t cols,
                                  uintptr_t stream) {
  int64_t n = 0;
  cudaError_t err = packed_bytes(src, dst, rows, cols, &n);
  if (err != cudaSuccess || n == 0) return err;
  (void)cudaGetLastError();
  const auto* s = reinterpret_cast<const uint8_t*>(src);
  auto* d = reinterpret_cast<int8_t*>(dst);
  auto st = reinterpret_cast<cudaStream_t>(stream);
  if (aligned16(src) && aligned16(dst)) {
    const int64_t items = n / kVecBytes > 0 ? n / kVecBytes : n;
    unpack_int4_kernel<true><<<grid_for(items), kThreads, 0, st>>>(s, d, n);
  } else {
    unpack_int4_kernel<false><<<grid_for(n), kThreads, 0, st>>>(s, d, n);
  }
  return cudaGetLastError();
}

extern "C" int ditkit_device_count(int* count) {
  *count = 0;
  const cudaError_t err = cudaGetDeviceCount(count);
  if (err != cudaSuccess) {
    *count = 0;
    (void)cudaGetLastError();  // clear it so a later launch check does not see it
  }
  return err;
}

extern "C" int ditkit_runtime_version(int* version) { return cudaRuntimeGetVersion(version); }

extern "C" int ditkit_driver_version(int* version) {
  *version = 0;
  return cudaDriverGetVersion(version);
}

extern "C" const char* ditkit_error_string(int code) {
  thread_local std::string text;
  const auto err = static_cast<cudaError_t>(code);
  text = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
  return text.c_str();
}
