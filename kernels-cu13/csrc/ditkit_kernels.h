// The pointer-only C ABI of ditkit-kernels-cu13.
//
// Every kernel entry point takes raw device addresses, sizes and the CUDA stream as plain
// integers, so neither this library nor its callers need libtorch (or any tensor type) at build
// time. The Python side (ditkit_kernels_cu13.ops) passes `tensor.data_ptr()`, the shape and
// `torch.cuda.current_stream().cuda_stream`; the work is enqueued on that stream, asynchronously.
//
// Return value: 0 on success, otherwise a cudaError_t code (describe it with
// ditkit_error_string). Argument errors (negative sizes, odd column counts) return
// cudaErrorInvalidValue before anything is launched.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Pack signed int4 values held in int8 into bytes, two per byte.
//   src: int8 [rows, cols], row-major contiguous, values in [-8, 7]
//   dst: uint8 [rows, cols / 2], row-major contiguous; cols must be even
// Nibble order: dst[r, j] = (src[r, 2j] & 0xF) | ((src[r, 2j + 1] & 0xF) << 4), i.e. element 2j
// in the low nibble. Values outside [-8, 7] keep only their low 4 bits (two's complement wrap).
int ditkit_pack_int4(uintptr_t src, uintptr_t dst, int64_t rows, int64_t cols, uintptr_t stream);

// Unpack bytes into signed int4 values held in int8, with sign extension.
//   src: uint8 [rows, cols / 2], row-major contiguous
//   dst: int8 [rows, cols], row-major contiguous; cols must be even
// dst[r, 2j] = sext(src[r, j] & 0xF), dst[r, 2j + 1] = sext(src[r, j] >> 4), each in [-8, 7].
int ditkit_unpack_int4(uintptr_t src, uintptr_t dst, int64_t rows, int64_t cols, uintptr_t stream);

// Number of visible CUDA devices, written to *count (0 when the call fails, e.g. no driver).
int ditkit_device_count(int* count);

// CUDA runtime version this library was linked against (static cudart), e.g. 13000.
int ditkit_runtime_version(int* version);

// Highest CUDA version the installed driver supports (0 when there is no driver).
int ditkit_driver_version(int* version);

// Name of the error code, e.g. "cudaErrorNoDevice: no CUDA-capable device is detected".
const char* ditkit_error_string(int code);

#ifdef __cplusplus
}
#endif
