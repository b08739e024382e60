// torchnp._C: the thin glue between Python and the torch-free core.
//
// The only translation unit that includes torch headers (each costs ~1 min to compile).
// It converts Python-side descriptions (addresses, dtype codes, byte strides) into core
// Operands, releases the GIL around the copy, and runs the core's parallel loops on torch's
// intra-op pool so that torch.set_num_threads() is respected.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <cstdint>
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

Operand make_operand(uintptr_t address, int dtype, bool byteswapped,
                     std::vector<int64_t> strides) {
  Operand op;
  op.data = reinterpret_cast<char*>(address);
  op.dtype = to_scalar_type(dtype);
  op.byteswapped = byteswapped;
  op.strides = std::move(strides);
  return op;
}

// Runs the core's chunks on torch's intra-op thread pool.
void torch_parallel_for(int64_t n, int64_t grain,
                        const std::function<void(int64_t, int64_t)>& body) {
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) { body(begin, end); });
}

CopyPlan plan_from_python(const std::vector<int64_t>& shape, uintptr_t dst, int dst_dtype,
                          bool dst_swapped, std::vector<int64_t> dst_strides, uintptr_t src,
                          int src_dtype, bool src_swapped, std::vector<int64_t> src_strides) {
  const Operand d = make_operand(dst, dst_dtype, dst_swapped, std::move(dst_strides));
  const Operand s = make_operand(src, src_dtype, src_swapped, std::move(src_strides));
  return torchnp::core::plan_copy(shape, d, s);
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
  d["cpu_variants"] = torchnp::core::compiled_cpu_variants();
  return d;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "torchnp native engine: planned, fused, multi-threaded strided copies";

  m.def(
      "copy",
      [](const std::vector<int64_t>& shape, uintptr_t dst, int dst_dtype, bool dst_swapped,
         std::vector<int64_t> dst_strides, uintptr_t src, int src_dtype, bool src_swapped,
         std::vector<int64_t> src_strides) {
        const CopyPlan plan =
            plan_from_python(shape, dst, dst_dtype, dst_swapped, std::move(dst_strides), src,
                             src_dtype, src_swapped, std::move(src_strides));
        {
          py::gil_scoped_release no_gil;
          torchnp::core::execute(plan, torch_parallel_for);
        }
        return plan.kernel;
      },
      py::arg("shape"), py::arg("dst"), py::arg("dst_dtype"), py::arg("dst_swapped"),
      py::arg("dst_strides"), py::arg("src"), py::arg("src_dtype"), py::arg("src_swapped"),
      py::arg("src_strides"),
      "Copy src to dst (raw addresses, byte strides) with the cast and byte swaps fused. "
      "Returns the name of the kernel that ran.");

  m.def(
      "plan",
      [](const std::vector<int64_t>& shape, uintptr_t dst, int dst_dtype, bool dst_swapped,
         std::vector<int64_t> dst_strides, uintptr_t src, int src_dtype, bool src_swapped,
         std::vector<int64_t> src_strides) {
        return plan_to_dict(plan_from_python(shape, dst, dst_dtype, dst_swapped,
                                             std::move(dst_strides), src, src_dtype, src_swapped,
                                             std::move(src_strides)));
      },
      py::arg("shape"), py::arg("dst"), py::arg("dst_dtype"), py::arg("dst_swapped"),
      py::arg("dst_strides"), py::arg("src"), py::arg("src_dtype"), py::arg("src_swapped"),
      py::arg("src_strides"), "Plan a copy without running it (for inspection and tests).");

  m.def("build_info", &build_info, "Facts recorded when this binary was built.");
  m.def("cpu_variants", &torchnp::core::compiled_cpu_variants);
  m.def("active_cpu_variant", &torchnp::core::active_cpu_variant);
  m.def("set_cpu_variant", &torchnp::core::set_cpu_variant, py::arg("name"),
        "Force a compiled CPU kernel set ('baseline', 'avx2'); '' picks the best supported.");
}
