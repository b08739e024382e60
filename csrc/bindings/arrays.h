// What the binding's translation units share: ndarrays as core operands, the calling thread's
// torch thread count, and running a plan with the GIL released around long work.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <span>

#include "core/buffer_pool.h"
#include "core/torchnp_core.h"

namespace torchnp::bindings {

namespace py = pybind11;
namespace core = torchnp::core;

static_assert(sizeof(py::ssize_t) == sizeof(int64_t), "ndarray strides are 64-bit here");

// Work above this much traffic releases the GIL (below it, releasing costs more than it frees).
inline constexpr int64_t kReleaseGilBytes = 64 * 1024;

core::ScalarType to_scalar_type(int code);
core::Negate to_negate(int code);

inline std::span<const int64_t> strides_of(const py::array& a) {
  return {reinterpret_cast<const int64_t*>(a.strides()), static_cast<size_t>(a.ndim())};
}
inline std::span<const int64_t> shape_of(const py::array& a) {
  return {reinterpret_cast<const int64_t*>(a.shape()), static_cast<size_t>(a.ndim())};
}

// The element type comes from Python (ml_dtypes types have no fixed NumPy type number); it must
// describe the array's elements, or the core would step outside the array's memory.
core::Operand make_operand(const py::array& a, int dtype, bool byteswapped);

// The calling thread's torch.get_num_threads(), through torch's stable C shim.
int torch_threads();

// Same shapes, writable destination; std::invalid_argument otherwise.
void check_pair(const py::array& dst, const py::array& src);

core::Plan plan_arrays(const py::array& dst, int dst_dtype, bool dst_swapped, const py::array& src,
                       int src_dtype, bool src_swapped, int negate, int threads,
                       int64_t job_bytes = 0);

// Runs the plan (or a slice of it), releasing the GIL when the copy moves kReleaseGilBytes.
int run(const core::Plan& plan, const char* src, char* dst, const core::Slice* slice);

// The output pool (output_pool.cpp): the pool large results come from, and a fresh array of
// `descr` over a buffer of it (`nbytes` for the dims and byte strides given, which must address
// no byte past nbytes) as a new reference, or nullptr when the pool does not serve the size.
std::shared_ptr<core::BufferPool> output_pool();
PyObject* pooled_array(const std::shared_ptr<core::BufferPool>& pool, const py::dtype& descr,
                       int nd, const py::ssize_t* dims, const py::ssize_t* strides,
                       int64_t nbytes);
void add_output_pool(py::module_& m);

// The fast path's functions (fast_path.cpp).
void add_fast_path(py::module_& m);
// Device transfers through a link (transfer.cpp).
void add_transfers(py::module_& m);

}  // namespace torchnp::bindings
