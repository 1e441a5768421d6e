// pybind11 module ditkit_kernels_cu13._C: thin wrappers over the C ABI in ditkit_kernels.h.
//
// Nothing here knows about torch: arguments are Python ints (device addresses, sizes, the stream
// handle). Shape errors raise ValueError before any launch; CUDA errors raise RuntimeError with
// the CUDA error name. The GIL is released while a kernel is enqueued.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>

#include "ditkit_kernels.h"

#ifndef DITKIT_CUDA_ARCHS
#define DITKIT_CUDA_ARCHS "unknown"
#endif

namespace py = pybind11;

namespace {

// Bumped whenever a signature below changes; the Python side refuses a mismatched build.
constexpr int kAbiVersion = 1;

void check_shape(const char* op, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0) {
    throw py::value_error(std::string(op) + ": rows and cols must be >= 0, got rows=" +
                          std::to_string(rows) + ", cols=" + std::to_string(cols));
  }
  if (cols % 2 != 0) {
    throw py::value_error(std::string(op) + ": cols (the unpacked int8 width) must be even, got " +
                          std::to_string(cols));
  }
}

void check_status(const char* op, int code) {
  if (code != 0) {
    throw std::runtime_error(std::string(op) + " failed: " + ditkit_error_string(code));
  }
}

using Launcher = int (*)(uintptr_t, uintptr_t, int64_t, int64_t, uintptr_t);

void launch(const char* op, Launcher fn, uintptr_t src, uintptr_t dst, int64_t rows, int64_t cols,
            uintptr_t stream) {
  check_shape(op, rows, cols);
  int code = 0;
  {
    py::gil_scoped_release release;
    code = fn(src, dst, rows, cols, stream);
  }
  check_status(op, code);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "ditkit CUDA 13 kernels behind a pointer-only ABI (no torch at build or link time).";
  m.attr("ABI_VERSION") = kAbiVersion;
  m.attr("CUDA_ARCHS") = DITKIT_CUDA_ARCHS;

  m.def(
      "pack_int4",
      [](uintptr_t src, uintptr_t dst, int64_t rows, int64_t cols, uintptr_t stream) {
        launch("pack_int4", ditkit_pack_int4, src, dst, rows, cols, stream);
      },
      py::arg("src"), py::arg("dst"), py::arg("rows"), py::arg("cols"), py::arg("stream"),
      "Enqueue int8 [rows, cols] -> uint8 [rows, cols/2] on `stream` (element 2j in the low "
      "nibble).");
  m.def(
      "unpack_int4",
      [](uintptr_t src, uintptr_t dst, int64_t rows, int64_t cols, uintptr_t stream) {
        launch("unpack_int4", ditkit_unpack_int4, src, dst, rows, cols, stream);
      },
      py::arg("src"), py::arg("dst"), py::arg("rows"), py::arg("cols"), py::arg("stream"),
      "Enqueue uint8 [rows, cols/2] -> int8 [rows, cols] on `stream`, sign-extending each nibble.");
  m.def(
      "device_count",
      []() {
        int count = 0;
        const int code = ditkit_device_count(&count);
        return std::make_tuple(count, code == 0 ? std::string() : ditkit_error_string(code));
      },
      "Return (visible CUDA devices, error text or '').");
  m.def(
      "runtime_version",
      []() {
        int version = 0;
        check_status("runtime_version", ditkit_runtime_version(&version));
        return version;
      },
      "CUDA runtime version linked in (static cudart), e.g. 13000.");
  m.def(
      "driver_version",
      []() {
        int version = 0;
        ditkit_driver_version(&version);
        return version;
      },
      "Highest CUDA version the installed driver supports; 0 without a driver.");
}
