// torchnp._C: the thin glue between Python and the torch-free core.
//
// Reads ndarrays' addresses, shapes and byte strides straight from the array objects, plans and
// runs copies with the GIL released around long ones, and exposes plans (what runs, for tests
// and the benchmark) and the pool's test hooks. From torch it needs only the calling thread's
// intra-op thread count, through torch's stable C shim: the copies run on the core's own
// threads, so torch.set_num_threads() sizes them without tying this module to torch's C++ API
// or its OpenMP runtime.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "bindings/arrays.h"
#include "core/torchnp_core.h"

// The pybind11 in use must be the one CMake found (PyPI's), not the copy in torch's headers.
#define TORCHNP_STR2(x) #x
#define TORCHNP_STR(x) TORCHNP_STR2(x)
static_assert(std::string_view(TORCHNP_STR(PYBIND11_VERSION_MAJOR) "." TORCHNP_STR(
                  PYBIND11_VERSION_MINOR) "." TORCHNP_STR(PYBIND11_VERSION_MICRO)) ==
                  std::string_view(TORCHNP_BUILD_PYBIND11_VERSION),
              "pybind11 headers from another copy than the one CMake found (torch's?)");

namespace py = pybind11;
namespace core = torchnp::core;
using namespace torchnp::bindings;

namespace {

const char* method_name(core::Method m) {
  switch (m) {
    case core::Method::kEmpty:
      return "empty";
    case core::Method::kFlat:
      return "flat";
    case core::Method::kStrided:
      return "strided";
    case core::Method::kTranspose:
      return "transpose";
    case core::Method::kTransposeBuffered:
      return "transpose_buffered";
  }
  return "?";
}

// A plan as Python sees it: the core's decisions, plus the layout it was made for, which every
// execute() checks (a plan run on memory of another shape would step outside it).
struct PyPlan {
  core::Plan plan;
  std::vector<int64_t> shape, dst_strides, src_strides;
  py::dtype dst_dtype, src_dtype;  // byte order included: the plan's kernels assume them

  int execute(const py::array& dst, const py::array& src, py::object begin, py::object end,
              const std::string& order) const {
    check_pair(dst, src);
    const auto matches = [](const py::array& a, const std::vector<int64_t>& strides,
                            const py::dtype& dtype) {
      return std::equal(strides.begin(), strides.end(), strides_of(a).begin()) &&
             a.dtype().attr("__eq__")(dtype).cast<bool>();
    };
    if (static_cast<size_t>(dst.ndim()) != shape.size() ||
        !std::equal(shape.begin(), shape.end(), reinterpret_cast<const int64_t*>(dst.shape())) ||
        !matches(dst, dst_strides, dst_dtype) || !matches(src, src_strides, src_dtype)) {
      throw std::invalid_argument(
          "torchnp._C: these arrays do not have the planned layout and element types");
    }
    const auto* s = static_cast<const char*>(src.data());
    auto* d = static_cast<char*>(const_cast<void*>(dst.data()));
    if (begin.is_none() && end.is_none()) return run(plan, s, d, nullptr);
    core::Slice slice;
    if (order == "destination") {
      slice.order = core::Order::kDestination;
    } else if (order == "source") {
      slice.order = core::Order::kSource;
    } else {
      throw std::invalid_argument("torchnp._C: order must be 'destination' or 'source'");
    }
    slice.begin = begin.is_none() ? 0 : begin.cast<int64_t>();
    slice.end = end.is_none() ? plan.numel : end.cast<int64_t>();
    return run(plan, s, d, &slice);
  }
};

template <size_t N>
std::vector<int64_t> head(const std::array<int64_t, N>& a, int n) {
  return {a.begin(), a.begin() + n};
}

py::dict build_info() {
  py::dict d;
  d["abi"] = "stable";  // torch's stable C ABI only: runs with every torch from the floor up
  d["torch_floor"] = TORCHNP_BUILD_TORCH_FLOOR;
  d["torch_version"] = TORCHNP_BUILD_TORCH_VERSION;  // the torch it was built against
  d["pybind11_version"] = TORCHNP_BUILD_PYBIND11_VERSION;
  d["cuda_version"] = TORCHNP_BUILD_CUDA_VERSION;
  d["with_cuda"] = static_cast<bool>(TORCHNP_BUILD_WITH_CUDA);
  d["compiler"] = TORCHNP_BUILD_COMPILER;
  d["cxx_flags"] = TORCHNP_BUILD_CXX_FLAGS;
  d["build_type"] = TORCHNP_BUILD_TYPE;
  d["parallel"] = "torchnp thread pool";
  d["cpu_variants"] = core::compiled_cpu_variants();
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "torchnp native engine: planned, fused, multi-threaded strided copies";
  add_fast_path(m);
  add_transfers(m);
  add_output_pool(m);

  py::class_<PyPlan>(m, "Plan", "A planned copy: what will run, and the layout it is for.")
      .def_property_readonly("name", [](const PyPlan& p) { return core::plan_name(p.plan); })
      .def_property_readonly("method", [](const PyPlan& p) { return method_name(p.plan.method); })
      .def_property_readonly("streaming", [](const PyPlan& p) { return p.plan.streaming; })
      .def_property_readonly("dst_cold", [](const PyPlan& p) { return p.plan.dst_cold; })
      .def_property_readonly("threads", [](const PyPlan& p) { return p.plan.threads; })
      .def_property_readonly("numel", [](const PyPlan& p) { return p.plan.numel; })
      .def_property_readonly("shape", [](const PyPlan& p) { return head(p.plan.shape, p.plan.ndim); })
      .def_property_readonly("src_strides",
                             [](const PyPlan& p) { return head(p.plan.src_strides, p.plan.ndim); })
      .def_property_readonly("dst_strides",
                             [](const PyPlan& p) { return head(p.plan.dst_strides, p.plan.ndim); })
      .def_property_readonly("tile", [](const PyPlan& p) {
        return py::make_tuple(p.plan.tile_i, p.plan.tile_j);
      })
      .def_property_readonly("block", [](const PyPlan& p) { return p.plan.block; })
      .def_property_readonly("grain", [](const PyPlan& p) { return p.plan.grain; })
      .def_property_readonly("cpu_variant", [](const PyPlan& p) { return p.plan.cpu_variant; })
      .def("execute", &PyPlan::execute, py::arg("dst").noconvert(), py::arg("src").noconvert(),
           py::arg("begin") = py::none(), py::arg("end") = py::none(),
           py::arg("order") = "destination",
           "Run the plan on arrays of the planned layout (and alignment), whole or the elements "
           "[begin, end) in the destination's or the source's memory order. Returns the number "
           "of threads that took part.")
      .def("__repr__", [](const PyPlan& p) {
        return "<torchnp._C.Plan " + core::plan_name(p.plan) + ", " +
               std::to_string(p.plan.threads) + " thread(s)>";
      });

  m.def(
      "copy",
      [](const py::array& dst, int dst_dtype, bool dst_swapped, const py::array& src, int src_dtype,
         bool src_swapped, int negate) {
        const core::Plan plan =
            plan_arrays(dst, dst_dtype, dst_swapped, src, src_dtype, src_swapped, negate, 0);
        run(plan, static_cast<const char*>(src.data()),
            static_cast<char*>(const_cast<void*>(dst.data())), nullptr);
      },
      py::arg("dst").noconvert(), py::arg("dst_dtype"), py::arg("dst_swapped"),
      py::arg("src").noconvert(), py::arg("src_dtype"), py::arg("src_swapped"),
      py::arg("negate") = 0,
      "Copy ndarray src into ndarray dst (same shape; element types as core codes) with the cast, "
      "byte swaps and sign flips (negate: 1 real, 2 imaginary, 3 both components) fused, on up "
      "to torch.get_num_threads() threads.");

  m.def(
      "copy_many",
      [](const py::list& copies) {
        // (dst, dst_dtype, dst_swapped, src, src_dtype, src_swapped, negate) each; the list
        // keeps the arrays alive while the GIL is released.
        std::vector<py::tuple> items;
        items.reserve(copies.size());
        int64_t job_bytes = 0;  // what the whole batch writes: it decides streaming stores
        for (const py::handle item : copies) {
          if (!py::isinstance<py::tuple>(item) || py::len(item) != 7) {
            throw std::invalid_argument("torchnp._C.copy_many: 7-tuples");
          }
          const auto c = py::reinterpret_borrow<py::tuple>(item);
          if (!py::isinstance<py::array>(c[0]) || !py::isinstance<py::array>(c[3])) {
            throw std::invalid_argument("torchnp._C.copy_many: dst and src must be ndarrays");
          }
          job_bytes += py::reinterpret_borrow<py::array>(c[0]).nbytes();
          items.push_back(c);
        }
        // Reserved up front: the tasks point into `plans`.
        std::vector<core::Plan> plans;
        plans.reserve(items.size());
        std::vector<core::Task> tasks;
        tasks.reserve(items.size());
        int64_t traffic = 0;
        for (const py::tuple& c : items) {
          const auto dst = py::reinterpret_borrow<py::array>(c[0]);
          const auto src = py::reinterpret_borrow<py::array>(c[3]);
          plans.push_back(plan_arrays(dst, c[1].cast<int>(), c[2].cast<bool>(), src,
                                      c[4].cast<int>(), c[5].cast<bool>(), c[6].cast<int>(), 1,
                                      job_bytes));
          const core::Plan& p = plans.back();
          traffic += p.numel * (core::itemsize(p.src_dtype) + core::itemsize(p.dst_dtype));
          tasks.push_back({&p, static_cast<const char*>(src.data()),
                           static_cast<char*>(const_cast<void*>(dst.data()))});
        }
        const int threads = torch_threads();
        if (traffic < kReleaseGilBytes) return core::execute_batch(tasks, threads);
        py::gil_scoped_release no_gil;
        return core::execute_batch(tasks, threads);
      },
      py::arg("copies"),
      "Run several copies as one job, sharing one hand-off to the core's threads: each item "
      "(dst, dst_dtype, dst_swapped, src, src_dtype, src_swapped, negate) as copy() takes it. "
      "Returns the number of threads that took part.");

  m.def(
      "plan",
      [](const py::array& dst, int dst_dtype, bool dst_swapped, const py::array& src, int src_dtype,
         bool src_swapped, int negate, int threads) {
        PyPlan p{plan_arrays(dst, dst_dtype, dst_swapped, src, src_dtype, src_swapped, negate,
                             threads),
                 std::vector<int64_t>(dst.shape(), dst.shape() + dst.ndim()),
                 std::vector<int64_t>(strides_of(dst).begin(), strides_of(dst).end()),
                 std::vector<int64_t>(strides_of(src).begin(), strides_of(src).end()),
                 dst.dtype(),
                 src.dtype()};
        return p;
      },
      py::arg("dst").noconvert(), py::arg("dst_dtype"), py::arg("dst_swapped"),
      py::arg("src").noconvert(), py::arg("src_dtype"), py::arg("src_swapped"),
      py::arg("negate") = 0, py::arg("threads") = 0,
      "Plan the copy that copy() would run (threads <= 0: the calling thread's torch count).");

  m.def("build_info", &build_info, "Facts recorded when this binary was built.");
  m.def(
      "element_types",
      [] {
        py::list out;
        for (int c = 0; c < core::kNumTypes; ++c) {
          const auto t = static_cast<core::ScalarType>(c);
          out.append(py::make_tuple(c, core::scalar_type_name(t), core::itemsize(t)));
        }
        return out;
      },
      "(code, name, itemsize) of every element type this binary was built with.");
  m.def("num_threads", &torch_threads, "The calling thread's torch.get_num_threads().");
  m.def(
      "parallel_probe",
      [](int64_t units) {
        const int threads = torch_threads();
        py::gil_scoped_release no_gil;
        return core::parallel_probe(units, threads);
      },
      py::arg("units"),
      "Distinct threads the core's pool runs `units` tasks on, sized like a copy (by the calling "
      "thread's torch.get_num_threads()).");
  m.def("pool_helpers", &core::pool_helpers, "Helper threads the core's pool has started.");
  m.def("set_pool_gate", &core::set_pool_gate, py::arg("closed"),
        "Test hook: while closed, pool helpers that wake for a job wait instead of joining it.");
  m.def("pool_solo_us", &core::pool_solo_us,
        "Microseconds the pool's solo mode has left (0: threaded calls use helpers).");
  m.def("pool_solo_calls", &core::pool_solo_calls,
        "Calls that must still run alone for the pool's solo mode (0: none).");
  m.def("end_pool_solo", &core::end_pool_solo, "End the pool's solo mode and its back-off.");

  m.def("cpu_variants", &core::compiled_cpu_variants);
  m.def("active_cpu_variant", &core::active_cpu_variant);
  m.def("set_cpu_variant", &core::set_cpu_variant, py::arg("name"),
        "Force a compiled CPU kernel set ('baseline', 'avx2'); '' picks the best supported.");
}
