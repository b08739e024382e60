// ndarrays as core operands, and running plans from Python.
#include "bindings/arrays.h"

#include <torch/csrc/stable/c/shim.h>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace torchnp::bindings {

core::ScalarType to_scalar_type(int code) {
  if (code < 0 || code >= core::kNumTypes) {
    throw std::invalid_argument("torchnp._C: unknown dtype code " + std::to_string(code));
  }
  return static_cast<core::ScalarType>(code);
}

core::Negate to_negate(int code) {
  if (code < 0 || code > 3) {
    throw std::invalid_argument("torchnp._C: negate must be 0-3, got " + std::to_string(code));
  }
  return static_cast<core::Negate>(code);
}

core::Operand make_operand(const py::array& a, int dtype, bool byteswapped) {
  core::Operand op;
  op.dtype = to_scalar_type(dtype);
  if (a.itemsize() != core::itemsize(op.dtype)) {
    throw std::invalid_argument(std::string("torchnp._C: dtype code ") +
                                core::scalar_type_name(op.dtype) + " does not match an " +
                                std::to_string(a.itemsize()) + "-byte element");
  }
  op.data = static_cast<char*>(const_cast<void*>(a.data()));
  op.byteswapped = byteswapped;
  op.strides = strides_of(a);
  return op;
}

int torch_threads() {
  uint32_t n = 1;
  if (torch_get_num_threads(&n) != AOTI_TORCH_SUCCESS) return 1;
  return static_cast<int>(std::max<uint32_t>(n, 1));
}

void check_pair(const py::array& dst, const py::array& src) {
  if (dst.ndim() != src.ndim() || !std::equal(dst.shape(), dst.shape() + dst.ndim(), src.shape())) {
    throw std::invalid_argument("torchnp._C: source and destination shapes differ");
  }
  if (!dst.writeable()) {
    throw std::invalid_argument("torchnp._C: the destination array is read-only");
  }
}

core::Plan plan_arrays(const py::array& dst, int dst_dtype, bool dst_swapped, const py::array& src,
                       int src_dtype, bool src_swapped, int negate, int threads,
                       int64_t job_bytes) {
  check_pair(dst, src);
  return core::plan_copy(shape_of(dst), make_operand(dst, dst_dtype, dst_swapped),
                         make_operand(src, src_dtype, src_swapped), to_negate(negate),
                         threads > 0 ? threads : torch_threads(), job_bytes);
}

namespace {

bool long_work(const core::Plan& p) {
  return p.numel * (core::itemsize(p.src_dtype) + core::itemsize(p.dst_dtype)) >= kReleaseGilBytes;
}

}  // namespace

int run(const core::Plan& plan, const char* src, char* dst, const core::Slice* slice) {
  auto go = [&] {
    return slice != nullptr ? core::execute(plan, src, dst, *slice) : core::execute(plan, src, dst);
  };
  if (!long_work(plan)) return go();
  py::gil_scoped_release no_gil;
  return go();
}

}  // namespace torchnp::bindings
