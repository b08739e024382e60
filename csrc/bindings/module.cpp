// torchnp._C: the thin glue between Python and the torch-free core.
//
// The only translation unit that includes torch headers (each costs ~1 min to compile).
// It converts Python-side descriptions (addresses, dtype codes, byte strides) into core
// Operands, releases the GIL around the copy, and runs the core's parallel loops on torch's
// intra-op pool so that torch.set_num_threads() is respected.
#include <ATen/Parallel.h>
#include <pybind11/numpy.h>
#include <torch/extension.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/copy.h"

namespace py = pybind11;
using torchnp::core::CopyPlan;
using torchnp::core::Operand;
using torchnp::core::ScalarType;

namespace {

ScalarType to_scalar_type(int code) {
  if (code < 0 || code >= static_cast<int>(ScalarType::kNumScalarTypes)) {
    throw std::invalid_argument("torchnp._C: unknown dtype code " + std::to_string(code));
  }
  return static_cast<ScalarType>(code);
}

// Reads an ndarray's address, shape and byte strides straight from the array object: no
// __array_interface__ dict, no Python lists, which is most of the per-call cost of small copies.
// The element type comes from Python (ml_dtypes types have no fixed NumPy type number).
Operand make_operand(const py::array& a, int dtype, bool byteswapped) {
  Operand op;
  op.dtype = to_scalar_type(dtype);
  // The code must describe the array's elements, or the core would step outside its memory.
  if (a.itemsize() != torchnp::core::itemsize(op.dtype)) {
    throw std::invalid_argument(std::string("torchnp._C: dtype code ") +
                                torchnp::core::scalar_type_name(op.dtype) + " does not match an " +
                                std::to_string(a.itemsize()) + "-byte element");
  }
  op.data = static_cast<char*>(const_cast<void*>(a.data()));
  op.byteswapped = byteswapped;
  op.strides.assign(a.strides(), a.strides() + a.ndim());
  return op;
}

// Runs the core's chunks on torch's intra-op thread pool.
void torch_parallel_for(int64_t n, int64_t grain,
                        const std::function<void(int64_t, int64_t)>& body) {
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) { body(begin, end); });
}

CopyPlan plan_arrays(const py::array& dst, int dst_dtype, bool dst_swapped, const py::array& src,
                     int src_dtype, bool src_swapped) {
  if (dst.ndim() != src.ndim() || !std::equal(dst.shape(), dst.shape() + dst.ndim(), src.shape())) {
    throw std::invalid_argument("torchnp._C: source and destination shapes differ");
  }
  if (!dst.writeable()) {
    throw std::invalid_argument("torchnp._C: the destination array is read-only");
  }
  const std::vector<int64_t> shape(dst.shape(), dst.shape() + dst.ndim());
  return torchnp::core::plan_copy(shape, make_operand(dst, dst_dtype, dst_swapped),
                                  make_operand(src, src_dtype, src_swapped));
}

py::dict plan_to_dict(const CopyPlan& plan) {
  py::dict d;
  d["kernel"] = plan.kernel;
  d["shape"] = plan.shape;
  d["src_strides"] = plan.src_strides;
  d["dst_strides"] = plan.dst_strides;
  d["numel"] = plan.numel;
  return d;
}

py::dict build_info() {
  py::dict d;
  d["torch_version"] = TORCHNP_BUILD_TORCH_VERSION;
  d["cuda_version"] = TORCHNP_BUILD_CUDA_VERSION;
  d["with_cuda"] = static_cast<bool>(TORCHNP_BUILD_WITH_CUDA);
  d["compiler"] = TORCHNP_BUILD_COMPILER;
  d["cxx_flags"] = TORCHNP_BUILD_CXX_FLAGS;
  d["build_type"] = TORCHNP_BUILD_TYPE;
  d["parallel"] = TORCHNP_BUILD_PARALLEL;
  d["cpu_variants"] = torchnp::core::compiled_cpu_variants();
  return d;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "torchnp native engine: planned, fused, multi-threaded strided copies";

  m.def(
      "copy",
      [](const py::array& dst, int dst_dtype, bool dst_swapped, const py::array& src, int src_dtype,
         bool src_swapped) {
        const CopyPlan plan = plan_arrays(dst, dst_dtype, dst_swapped, src, src_dtype, src_swapped);
        {
          py::gil_scoped_release no_gil;
          torchnp::core::execute(plan, torch_parallel_for);
        }
        return plan.kernel;
      },
      py::arg("dst").noconvert(), py::arg("dst_dtype"), py::arg("dst_swapped"),
      py::arg("src").noconvert(), py::arg("src_dtype"), py::arg("src_swapped"),
      "Copy ndarray src into ndarray dst (same shape; element types given as core codes) with "
      "the cast and byte swaps fused. Returns the name of the kernel that ran.");

  m.def(
      "plan",
      [](const py::array& dst, int dst_dtype, bool dst_swapped, const py::array& src, int src_dtype,
         bool src_swapped) {
        return plan_to_dict(plan_arrays(dst, dst_dtype, dst_swapped, src, src_dtype, src_swapped));
      },
      py::arg("dst").noconvert(), py::arg("dst_dtype"), py::arg("dst_swapped"),
      py::arg("src").noconvert(), py::arg("src_dtype"), py::arg("src_swapped"),
      "Plan a copy without running it (for inspection and tests).");

  m.def("build_info", &build_info, "Facts recorded when this binary was built.");
  m.def(
      "parallel_probe",
      [](int64_t units) {
        // The distinct threads at::parallel_for runs `units` one-unit tasks on: a build that
        // lost OpenMP runs them all on the caller, silently, and this is how tests see it.
        std::mutex mu;
        std::set<int> ids;
        py::gil_scoped_release no_gil;
        at::parallel_for(0, units, 1, [&](int64_t, int64_t) {
          const std::lock_guard<std::mutex> lock(mu);
          ids.insert(at::get_thread_num());
        });
        return static_cast<int>(ids.size());
      },
      py::arg("units"), "Number of threads torch's intra-op pool runs `units` tasks on.");
  m.def("cpu_variants", &torchnp::core::compiled_cpu_variants);
  m.def("active_cpu_variant", &torchnp::core::active_cpu_variant);
  m.def("set_cpu_variant", &torchnp::core::set_cpu_variant, py::arg("name"),
        "Force a compiled CPU kernel set ('baseline', 'avx2'); '' picks the best supported.");
}
