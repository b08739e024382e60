// The native engine's output pool (core/buffer_pool.h) as Python sees it: _C.BufferPool, with
// the interface of python/torchnp/_pool.BufferPool, and the pool the fast path and the native
// engine's policy allocate large results from (_C.output_pool / set_output_pool).
//
// An array from the pool does not own its data: its base is a capsule (the lease) that hands
// the buffer back when NumPy frees the last array over it; the lease holds the pool alive.
// Nothing Python runs while the pool's lock is held (core/buffer_pool.h), and creating the
// array and its lease costs ~0.3 us, against ~6 us for the Python pool's mmap object, weakref
// finalizer and two ndarrays.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "bindings/arrays.h"
#include "core/buffer_pool.h"

namespace torchnp::bindings {
namespace {

namespace npy = py::detail;
using core::BufferPool;

struct Lease {
  std::shared_ptr<BufferPool> pool;
  BufferPool::Buffer buffer;
};

constexpr const char* kLeaseName = "torchnp.pool_lease";

void end_lease(PyObject* capsule) {
  auto* lease = static_cast<Lease*>(PyCapsule_GetPointer(capsule, kLeaseName));
  if (lease == nullptr) {
    PyErr_Clear();
    return;
  }
  lease->pool->release(lease->buffer);
  delete lease;
}

// Leaked on purpose: arrays on lease may be freed during interpreter shutdown, after statics.
std::shared_ptr<BufferPool>& current_pool() {
  static auto* pool = new std::shared_ptr<BufferPool>(std::make_shared<BufferPool>(0));
  return *pool;
}

std::vector<py::ssize_t> c_strides(const std::vector<py::ssize_t>& shape, int64_t itemsize) {
  std::vector<py::ssize_t> strides(shape.size());
  int64_t step = itemsize;
  for (size_t k = shape.size(); k-- > 0;) {
    strides[k] = step;
    step *= std::max<int64_t>(shape[k], 1);
  }
  return strides;
}

}  // namespace

PyObject* pooled_array(const std::shared_ptr<BufferPool>& pool, const py::dtype& descr, int nd,
                       const py::ssize_t* dims, const py::ssize_t* strides, int64_t nbytes) {
  if (!pool) return nullptr;
  BufferPool::Buffer buffer;
  if (nbytes < BufferPool::kMinBytes) return nullptr;
  {
    const py::gil_scoped_release unlocked;  // a fresh mapping may be faulted in (milliseconds)
    buffer = pool->acquire(nbytes);
  }
  if (!buffer) return nullptr;
  auto* lease = new Lease{pool, buffer};
  PyObject* capsule = PyCapsule_New(lease, kLeaseName, &end_lease);
  if (capsule == nullptr) {
    pool->release(buffer);
    delete lease;
    throw py::error_already_set();
  }
  auto& api = npy::npy_api::get();
  PyObject* raw = api.PyArray_NewFromDescr_(
      api.PyArray_Type_, descr.inc_ref().ptr(), nd, const_cast<py::ssize_t*>(dims),
      const_cast<py::ssize_t*>(strides), buffer.data,
      npy::npy_api::NPY_ARRAY_WRITEABLE_ | npy::npy_api::NPY_ARRAY_ALIGNED_, nullptr);
  if (raw == nullptr) {
    Py_DECREF(capsule);  // hands the buffer back
    throw py::error_already_set();
  }
  if (api.PyArray_SetBaseObject_(raw, capsule) != 0) {  // steals the capsule, even on failure
    Py_DECREF(raw);
    throw py::error_already_set();
  }
  return raw;
}

std::shared_ptr<BufferPool> output_pool() { return current_pool(); }

void add_output_pool(py::module_& m) {
  py::class_<BufferPool, std::shared_ptr<BufferPool>>(
      m, "BufferPool",
      "Recycled memory for large fresh outputs (the native twin of torchnp._pool.BufferPool).")
      .def(py::init<int64_t>(), py::arg("limit"))
      .def(
          "empty",
          [](const std::shared_ptr<BufferPool>& self, const std::vector<py::ssize_t>& shape,
             const py::dtype& dtype) -> py::object {
            int64_t numel = 1;
            for (py::ssize_t n : shape) {
              if (n < 0) throw py::value_error("negative dimension");
              numel *= n;
            }
            const std::vector<py::ssize_t> strides = c_strides(shape, dtype.itemsize());
            PyObject* raw = pooled_array(self, dtype, static_cast<int>(shape.size()),
                                         shape.data(), strides.data(), numel * dtype.itemsize());
            if (raw == nullptr) return py::none();
            return py::reinterpret_steal<py::object>(raw);
          },
          py::arg("shape"), py::arg("dtype"),
          "A C-ordered uninitialised array from the pool, or None when the pool does not serve "
          "this size.")
      .def("clear", &BufferPool::clear, "Unmap every idle buffer; returns the bytes released.")
      .def_property_readonly("cached_bytes", &BufferPool::cached_bytes)
      .def_property_readonly("hits", &BufferPool::hits)
      .def_property_readonly("cold_blocks", &BufferPool::cold_blocks)
      .def_property_readonly("misses", &BufferPool::misses)
      .def_property("limit", &BufferPool::limit, &BufferPool::set_limit)
      .def_property("idle_seconds", &BufferPool::idle_seconds, &BufferPool::set_idle_seconds)
      .def_property("fresh_hugepage_max", &BufferPool::fresh_hugepage_max,
                    &BufferPool::set_fresh_hugepage_max)
      .def_property("cold_block_seconds", &BufferPool::cold_block_seconds,
                    &BufferPool::set_cold_block_seconds)
      .def("fail_maps", &BufferPool::fail_maps, py::arg("n"),
           "Test hook: the next n mappings fail as if mmap had.");
  m.def("output_pool", &output_pool,
        "The pool the native engine's large results come from (its fast path's too).");
  m.def(
      "set_output_pool",
      [](std::shared_ptr<BufferPool> pool) {
        if (!pool) throw py::value_error("set_output_pool needs a BufferPool");
        current_pool() = std::move(pool);
      },
      py::arg("pool"), "Make `pool` the one the native engine's large results come from.");
}

}  // namespace torchnp::bindings
