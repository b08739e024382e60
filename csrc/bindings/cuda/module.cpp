// torchnp._cuda: the CUDA runtime's torchnp_link, handed to the transfer pipeline in torchnp._C
// as a PyCapsule, plus what a caller needs to decide whether to ask for one.
//
// Importing it touches no CUDA function (a machine without a driver imports it fine); the first
// call that needs the driver is the first device_count(), status() or link(). It knows nothing
// of torch: the pipeline gets device addresses and stream handles as integers.
//
// A binding like _C's, so it lives under csrc/bindings (the only place Python appears), in its
// own folder: _C compiles csrc/bindings/*.cpp, and this must not end up in the CUDA-free _C.
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <sstream>
#include <string>
#include <vector>

#include "cuda/cuda_link.h"

namespace py = pybind11;

namespace {

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// The first call may initialise the driver (cuInit: up to seconds on a large machine), so other
// Python threads keep running meanwhile.
int count_devices(std::string* cause) {
  py::gil_scoped_release unlocked;
  return torchnp::cuda::device_count(cause);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "torchnp's CUDA link (CUDA runtime only; no CUDA call at import)";

  m.def(
      "device_count", [] { return count_devices(nullptr); },
      "Visible CUDA devices; 0 when there is no driver or device (never raises).");

  m.def(
      "status",
      [] {
        std::string cause;
        const int n = count_devices(&cause);
        return n > 0 ? std::to_string(n) + " device(s)" : "no device (" + cause + ")";
      },
      "'N device(s)', or 'no device (<cause>)'.");

  m.def(
      "link",
      [](int device) {
        if (device < 0) throw py::value_error("torchnp._cuda.link: negative device index");
        std::string cause;
        const int n = count_devices(&cause);
        if (n == 0) throw std::runtime_error("torchnp._cuda.link: no CUDA device (" + cause + ")");
        if (device >= n) {
          throw py::value_error("torchnp._cuda.link: device " + std::to_string(device) +
                                " out of range (" + std::to_string(n) + " device(s))");
        }
        // The link outlives every capsule (it is never freed), so the capsule owns nothing.
        return py::capsule(torchnp::cuda::link_for(device), "torchnp.link");
      },
      py::arg("device"),
      "A PyCapsule 'torchnp.link' holding the device's const torchnp_link* (valid until exit).");

  m.def(
      "runtime_version",
      [] {
        int v = 0;
        return cudaRuntimeGetVersion(&v) == cudaSuccess ? v : 0;
      },
      "The linked CUDA runtime's version (e.g. 13000), known without a driver.");

  m.def(
      "driver_version",
      [] {
        int v = 0;
        return cudaDriverGetVersion(&v) == cudaSuccess ? v : 0;
      },
      "The installed driver's CUDA version (e.g. 13000); 0 when there is no driver.");

  m.def(
      "build_info",
      [] {
        py::dict info;
        info["cuda_version"] = TORCHNP_CUDA_BUILD_CUDA_VERSION;
        info["torch_cuda_version"] = TORCHNP_CUDA_BUILD_TORCH_CUDA_VERSION;
        info["archs"] = split_list(TORCHNP_CUDA_BUILD_ARCHS);
        info["cmake_archs"] = TORCHNP_CUDA_BUILD_CMAKE_ARCHS;
        info["arch_source"] = TORCHNP_CUDA_BUILD_ARCH_SOURCE;
        info["cudart"] = TORCHNP_CUDA_BUILD_CUDART;
        info["compiler"] = TORCHNP_CUDA_BUILD_COMPILER;
        return info;
      },
      "How this module was built: CUDA version, device code (sm_XX / compute_XX), cudart mode.");
}
