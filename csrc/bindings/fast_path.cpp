// The small-call fast path: the native halves of python/torchnp/_fast.py.
//
// The policy decides once per call signature (element types, requested dtype, copy, order) and
// memoises the decision; these functions replay it in one native call: share the source when the
// decision allows and the layout fits, else allocate the result (through NumPy) in the decided
// layout and copy into it. Nothing here decides what a call means.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <torch/csrc/stable/c/shim.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <numeric>
#include <vector>

#include "bindings/arrays.h"

namespace torchnp::bindings {
namespace {

namespace npy = py::detail;

// Result layouts, as the policy's order argument after its checks.
enum class Layout : int { kKeep = 0, kC = 1, kF = 2, kA = 3 };

int array_flags(const py::array& a) { return npy::array_proxy(a.ptr())->flags; }

// Strides of a fresh result of `src`'s shape in `layout` (into `out`, nd entries). kKeep follows
// torchnp's 'K' rule (_memory.memory_order_permutation): broadcast dims outermost, then by
// decreasing |stride|, size-1 dims innermost, ties in dim order; each dim then gets the
// contiguous stride of that order, an empty dim counting as 1 (as NumPy's own strides do).
void fresh_strides(int nd, const py::ssize_t* shape, const py::ssize_t* strides, int64_t itemsize,
                   Layout layout, py::ssize_t* out) {
  std::array<int, core::kMaxDims> perm;
  std::iota(perm.begin(), perm.begin() + nd, 0);
  if (layout == Layout::kF) {
    std::reverse(perm.begin(), perm.begin() + nd);
  } else if (layout == Layout::kKeep) {
    auto group = [&](int d) { return shape[d] <= 1 ? 2 : strides[d] == 0 ? 0 : 1; };
    auto before = [&](int a, int b) {
      const int ga = group(a), gb = group(b);
      if (ga != gb) return ga < gb;
      return ga == 1 && std::llabs(strides[a]) > std::llabs(strides[b]);
    };
    // Insertion sort: stable, allocation-free (std::stable_sort takes a heap buffer on every
    // call, ~40 ns of a 1 us small copy) and linear for the usual, already ordered strides.
    for (int i = 1; i < nd; ++i) {
      const int d = perm[i];
      int k = i;
      for (; k > 0 && before(d, perm[k - 1]); --k) perm[k] = perm[k - 1];
      perm[k] = d;
    }
  }
  int64_t step = itemsize;
  for (int k = nd - 1; k >= 0; --k) {
    out[perm[k]] = step;
    step *= std::max<int64_t>(shape[perm[k]], 1);
  }
}

// A source's memory as the copy reads it: a NumPy array's fields, or a tensor's (TensorMeta).
struct Source {
  void* data;
  int nd;
  const py::ssize_t* dims;
  const py::ssize_t* strides;  // bytes
  int64_t itemsize;
  bool c, f;  // NumPy's C / F contiguity flags of this layout
};

Source source_of(const py::array& src) {
  const auto* proxy = npy::array_proxy(src.ptr());
  return {proxy->data,
          proxy->nd,
          proxy->dimensions,
          proxy->strides,
          src.itemsize(),
          (proxy->flags & npy::npy_api::NPY_ARRAY_C_CONTIGUOUS_) != 0,
          (proxy->flags & npy::npy_api::NPY_ARRAY_F_CONTIGUOUS_) != 0};
}

// dst = src cast to dst_code (same shape as `src`; dst's strides in bytes), in one plan: one
// thread and the GIL held for small copies, torch's thread count for large ones.
void copy_from(const Source& src, int src_code, bool src_swap, char* dst,
               const py::ssize_t* dst_strides, int dst_code, bool dst_swap, int64_t dst_itemsize) {
  const int nd = src.nd;
  core::Operand s_op, d_op;
  s_op.data = static_cast<char*>(src.data);
  s_op.dtype = to_scalar_type(src_code);
  s_op.byteswapped = src_swap;
  s_op.strides = {reinterpret_cast<const int64_t*>(src.strides), static_cast<size_t>(nd)};
  d_op.data = dst;
  d_op.dtype = to_scalar_type(dst_code);
  d_op.byteswapped = dst_swap;
  d_op.strides = {reinterpret_cast<const int64_t*>(dst_strides), static_cast<size_t>(nd)};
  if (core::itemsize(s_op.dtype) != src.itemsize || core::itemsize(d_op.dtype) != dst_itemsize) {
    throw std::invalid_argument("torchnp._C: dtype codes do not match the arrays");
  }
  int64_t numel = 1;
  for (int d = 0; d < nd; ++d) numel *= src.dims[d];
  const int64_t traffic = numel * (src.itemsize + dst_itemsize);
  const std::span<const int64_t> shape{reinterpret_cast<const int64_t*>(src.dims),
                                       static_cast<size_t>(nd)};
  // A loop over same-layout calls plans once per thread (the memo's plan stays valid while
  // this thread runs it, the GIL released or not).
  thread_local core::PlanMemo memo;
  const core::Plan& plan = memo.plan(shape, d_op, s_op, core::Negate::kNone,
                                     traffic < kReleaseGilBytes ? 1 : torch_threads());
  run(plan, s_op.data, d_op.data, nullptr);
}

// A fresh array of `descr` in `layout` holding the cast of `src`. Results of `pool_bytes` or
// more come from the output pool (warm recycled memory, see output_pool.cpp) when it serves
// them, the others straight from PyArray_NewFromDescr; the plan from the fields.
py::object fresh_copy(const Source& src, const py::dtype& descr, int dst_code, bool dst_swap,
                      int src_code, bool src_swap, Layout layout, int64_t pool_bytes) {
  const int nd = src.nd;
  const int64_t itemsize = descr.itemsize();
  int64_t numel = 1;
  for (int d = 0; d < nd; ++d) numel *= src.dims[d];
  if (layout == Layout::kA) layout = (src.f && !src.c) ? Layout::kF : Layout::kC;
  std::array<py::ssize_t, core::kMaxDims> strides;
  fresh_strides(nd, src.dims, src.strides, itemsize, layout, strides.data());
  PyObject* raw = nullptr;
  if (numel * itemsize >= pool_bytes) {
    raw = pooled_array(output_pool(), descr, nd, src.dims, strides.data(), numel * itemsize);
  }
  if (raw == nullptr) {
    auto& api = npy::npy_api::get();
    raw = api.PyArray_NewFromDescr_(api.PyArray_Type_, descr.inc_ref().ptr(), nd,
                                    const_cast<py::ssize_t*>(src.dims), strides.data(), nullptr,
                                    0, nullptr);  // NumPy owns the data
    if (raw == nullptr) throw py::error_already_set();
  }
  auto dst = py::reinterpret_steal<py::array>(raw);
  if (numel > 0) {
    copy_from(src, src_code, src_swap, npy::array_proxy(raw)->data, strides.data(), dst_code,
              dst_swap, itemsize);
  }
  return dst;
}

Layout layout_of(int layout_code) {
  if (layout_code < 0 || layout_code > 3) throw std::invalid_argument("torchnp._C: bad layout");
  return static_cast<Layout>(layout_code);
}

// Whether a decision to share (same element type, no copy asked for) gives the source itself:
// its layout fits the requested one.
bool shared_layout_fits(Layout layout, bool c, bool f) {
  return layout == Layout::kKeep || layout == Layout::kA || (layout == Layout::kC && c) ||
         (layout == Layout::kF && f);
}

// The replay of a to_numpy / from_numpy copy decision: the source itself when `share` and its
// layout fits `layout`; otherwise fresh_copy.
py::object convert(const py::array& src, const py::dtype& descr, int dst_code, bool dst_swap,
                   int src_code, bool src_swap, int layout_code, bool share, int64_t pool_bytes) {
  const Layout layout = layout_of(layout_code);
  const Source source = source_of(src);
  if (share && shared_layout_fits(layout, source.c, source.f)) return src;
  return fresh_copy(source, descr, dst_code, dst_swap, src_code, src_swap, layout, pool_bytes);
}

// NumPy type numbers torch.from_numpy holds as the same torch type (bool, the integers, half,
// float, double, and the complex types when aligned to their full size).
bool torch_holds(int type_num) {
  switch (type_num) {
    case 0:                                // bool
    case 1: case 2: case 3: case 4:        // byte, ubyte, short, ushort
    case 5: case 6: case 7: case 8:        // int, uint, long, ulong
    case 9: case 10:                       // longlong, ulonglong (64-bit on every target)
    case 11: case 12: case 23:             // float, double, half
    case 14: case 15:                      // cfloat, cdouble
      return true;
    default:
      return false;
  }
}

// How torch can hold an array: 1 as it is (torch.from_numpy shares it; writable, native byte
// order, a type torch holds, data aligned to the itemsize, strides non-negative multiples of
// the itemsize), 2 only with some stride that never addresses memory replaced (a length-1 or
// empty dim: the policy's normalised strides), or of a type only the policy maps (ml_dtypes),
// 0 not without a copy. The same rule as the policy's torch_can_view: 0 and 1 agree with it.
int layout_class(const py::array& a) {
  const auto* proxy = npy::array_proxy(a.ptr());
  if ((proxy->flags & npy::npy_api::NPY_ARRAY_WRITEABLE_) == 0) return 0;
  const auto* descr = npy::array_descriptor_proxy(proxy->descr);
  if (!torch_holds(descr->type_num)) return 2;
  const int64_t itemsize = a.itemsize();
  // (A one-byte element has no byte order, whatever the flag says.)
  if (itemsize > 1 && descr->byteorder != '=' && descr->byteorder != '|') return 0;
  const int64_t size = a.size();
  if (size > 0 && reinterpret_cast<uintptr_t>(proxy->data) % static_cast<uintptr_t>(itemsize)) {
    return 0;
  }
  int cls = 1;
  const auto shape = shape_of(a);
  const auto strides = strides_of(a);
  for (size_t d = 0; d < strides.size(); ++d) {
    if (strides[d] >= 0 && strides[d] % itemsize == 0) continue;
    if (shape[d] == 1 || size == 0) {
      cls = 2;  // a dead dim's stride: fine once normalised
    } else {
      return 0;
    }
  }
  return cls;
}

// An attribute of a torch.Tensor read the way PyObject_GetAttr reads a data descriptor of the
// class (torch's getters: dtype, layout, shape, ...), minus the lookups on every call (~15 ns
// of a ~40 ns read): the class's getset descriptor, called directly while the class is the one
// it was found on, unmodified since (its version tag); anything else reads the attribute.
struct TensorAttr {
  PyObject* name = nullptr;   // interned
  PyObject* descr = nullptr;  // the class's getset descriptor, or nullptr: always look up
  PyTypeObject* type = nullptr;
  mutable unsigned int version = 0;  // (updated under the GIL, by still_found)

  void init(PyObject* tensor_type, const char* attr) {
    name = PyUnicode_InternFromString(attr);
    if (name == nullptr) throw py::error_already_set();
    descr = nullptr;
    if (!PyType_Check(tensor_type)) return;
    auto* t = reinterpret_cast<PyTypeObject*>(tensor_type);
    // type.__getattribute__ gives a getset descriptor itself (and tags the class's version).
    PyObject* d = PyObject_GetAttr(tensor_type, name);
    if (d == nullptr) {
      PyErr_Clear();
      return;
    }
    if (Py_IS_TYPE(d, &PyGetSetDescr_Type) && t->tp_getattro == PyObject_GenericGetAttr &&
        PyType_HasFeature(t, Py_TPFLAGS_VALID_VERSION_TAG)) {
      descr = d;  // kept for the process's life
      type = t;
      version = t->tp_version_tag;
    } else {
      Py_DECREF(d);
    }
  }

  // A new reference, or nullptr with the error set (as PyObject_GetAttr).
  PyObject* get(PyObject* obj) const {
    PyTypeObject* t = Py_TYPE(obj);
    if (descr != nullptr && t == type && (current(t) || still_found(t))) {
      return Py_TYPE(descr)->tp_descr_get(descr, obj, reinterpret_cast<PyObject*>(t));
    }
    return PyObject_GetAttr(obj, name);
  }

  // Whether reading the attribute on an instance of `t` still means calling the descriptor
  // found at init (the class, or attribute access, unchanged in that respect).
  bool intact(PyTypeObject* t) const {
    return descr != nullptr && t == type && (current(t) || still_found(t));
  }

 private:
  bool current(PyTypeObject* t) const {
    return t->tp_version_tag == version && PyType_HasFeature(t, Py_TPFLAGS_VALID_VERSION_TAG);
  }
  // The class was changed since (any attribute set on it or a base): look the name up again;
  // when it still finds this descriptor and attribute access is still the generic one (no
  // __getattribute__ set since), the new version is trusted from now on.
  bool still_found(PyTypeObject* t) const {
    PyObject* d = PyObject_GetAttr(reinterpret_cast<PyObject*>(t), name);
    if (d == nullptr) {
      PyErr_Clear();
      return false;
    }
    Py_DECREF(d);  // (the class holds it)
    if (d != descr || t->tp_getattro != PyObject_GenericGetAttr ||
        !PyType_HasFeature(t, Py_TPFLAGS_VALID_VERSION_TAG)) {
      return false;
    }
    version = t->tp_version_tag;
    return true;
  }
};

struct FastState {
  PyObject* tensor_type = nullptr;   // torch.Tensor (exactly; subclasses take the policy)
  PyObject* to_numpy_memo = nullptr;
  PyObject* from_numpy_memo = nullptr;
  PyObject* to_numpy_out_memo = nullptr;  // set by out_init
  TensorAttr dtype, requires_grad;
  // torch dtypes Tensor.numpy() refuses (bf16, float8, complex32) that torchnp reads through an
  // integer carrier: tensor_view says no at once instead of letting torch raise (a C++ exception
  // with its backtrace costs torch ~9 us).
  std::vector<PyObject*> carried;
  PyObject* metadata_name = nullptr;  // interned "metadata"
  PyObject* tensor_numpy = nullptr;   // torch's own Tensor.numpy (never a patched one)
  // Tensor.untyped_storage and the storage's data_ptr and nbytes, as the unbound C methods
  // (called directly: a lookup through torch.UntypedStorage's Python class costs more).
  PyObject* untyped_storage = nullptr;
  PyObject* storage_data_ptr = nullptr;
  PyObject* storage_nbytes = nullptr;
  // The direct view (view_init): torch dtype -> the NumPy dtype torch's own Tensor.numpy()
  // gives it, torch.strided, and Tensor's data_ptr / stride / is_conj / is_neg as unbound C
  // methods; nullptr until view_init.
  PyObject* numpy_types = nullptr;
  PyObject* strided = nullptr;
  PyObject* data_ptr = nullptr;
  PyObject* stride = nullptr;
  PyObject* is_conj = nullptr;
  PyObject* is_neg = nullptr;
  TensorAttr layout, is_cpu, shape;
  // Whether a torch.Tensor's metadata is read through torch's stable C ABI (handle_of), as
  // checked by stable_init; else through the Python methods above.
  bool stable = false;
};
FastState g_fast;

// A Python int as a 64-bit integer (-1 with the error set if it does not fit). CPython 3.11's
// PyLong_As(Unsigned)LongLong go through _PyLong_AsByteArray for anything above one digit
// (~25 ns for a data pointer); the long versions walk the digits directly.
uint64_t as_u64(PyObject* v) {
  if constexpr (sizeof(unsigned long) == sizeof(uint64_t)) {
    return static_cast<uint64_t>(PyLong_AsUnsignedLong(v));
  } else {
    return static_cast<uint64_t>(PyLong_AsUnsignedLongLong(v));
  }
}

int64_t as_i64(PyObject* v) {
  if constexpr (sizeof(long) == sizeof(int64_t)) {
    return static_cast<int64_t>(PyLong_AsLong(v));
  } else {
    return static_cast<int64_t>(PyLong_AsLongLong(v));
  }
}

// The outcome of a call into Python (`r`: its new reference, or nullptr with the error set): the
// result, or nothing when it raised one of the refusals torch's conversions raise (RuntimeError,
// TypeError), cleared. Any other error (RecursionError above all: a patched torch calling back)
// propagates.
py::object refusable(PyObject* r) {
  if (r != nullptr) return py::reinterpret_steal<py::object>(r);
  if (PyErr_ExceptionMatches(PyExc_RecursionError) ||
      !(PyErr_ExceptionMatches(PyExc_RuntimeError) || PyErr_ExceptionMatches(PyExc_TypeError))) {
    throw py::error_already_set();
  }
  PyErr_Clear();
  return py::object();
}

py::object call_refusable(PyObject* fn, PyObject* arg) {
  return refusable(PyObject_CallOneArg(fn, arg));
}

// Whether [data + low, data + high) (the bytes a layout addresses) lies inside
// [first, first + nbytes), without overflow.
bool within(uint64_t data, int64_t low, int64_t high, uint64_t first, int64_t nbytes) {
  if (data + static_cast<uint64_t>(low) < first) return false;  // (low <= 0)
  const uint64_t offset = data + static_cast<uint64_t>(low) - first;
  return nbytes >= 0 && offset <= static_cast<uint64_t>(nbytes) &&
         static_cast<uint64_t>(high - low) <= static_cast<uint64_t>(nbytes) - offset;
}

// Whether every byte `view` (torch's .numpy() of `tensor`, or of a view of it) addresses lies
// inside the tensor's storage as the storage is now. torch checks that only when a tensor is
// made: a storage resized or freed afterwards (FSDP frees parameters' storage with resize_(0))
// leaves older tensors over freed memory, and a functionalize wrapper's storage has no data of
// its own (its data_ptr() raises). Neither may be read: the policy then says why
// (_memory.check_storage, the same rule).
py::object storage_holding(PyObject* tensor, uint64_t data, int nd, const py::ssize_t* dims,
                           const py::ssize_t* strides, int64_t itemsize) {
  int64_t low = 0, high = itemsize;  // the bytes addressed, relative to the data pointer
  for (int d = 0; d < nd; ++d) {
    const int64_t n = dims[d], stride = strides[d];
    if (n == 0) return py::none();  // no byte is read
    (stride < 0 ? low : high) += (n - 1) * stride;
  }
  py::object storage = call_refusable(g_fast.untyped_storage, tensor);
  if (!storage) return storage;
  py::object base = call_refusable(g_fast.storage_data_ptr, storage.ptr());
  if (!base) return base;
  py::object size = call_refusable(g_fast.storage_nbytes, storage.ptr());
  if (!size) return size;
  const auto first = as_u64(base.ptr());
  const int64_t nbytes = as_i64(size.ptr());
  if (PyErr_Occurred()) throw py::error_already_set();
  return within(data, low, high, first, nbytes) ? storage : py::object();
}

bool inside_storage(PyObject* tensor, const py::array& view) {
  const auto* proxy = npy::array_proxy(view.ptr());
  return static_cast<bool>(storage_holding(tensor, reinterpret_cast<uint64_t>(proxy->data),
                                           proxy->nd, proxy->dimensions, proxy->strides,
                                           view.itemsize()));
}

// The attribute of `obj`, or nothing when reading it raised one of torch's refusals
// (RuntimeError, TypeError: a nested tensor's sizes, say), as call_refusable.
py::object attr_of(PyObject* obj, const TensorAttr& attr) { return refusable(attr.get(obj)); }

// A plain CPU tensor's memory, read from its metadata: what a view of it (view_of) or a copy
// from it (ToNumpyReplay) needs, and its storage, which holds the memory.
struct TensorMeta {
  uint64_t data = 0;
  int nd = 0;
  std::array<py::ssize_t, core::kMaxDims> dims, strides;  // strides in bytes
  PyObject* descr = nullptr;  // borrowed: the element type read
  int64_t itemsize = 0;
  py::object storage;

  // NumPy's contiguity flags of this layout (its rule: size-1 dims do not count; no dim here
  // is empty).
  bool contiguous(bool fortran) const {
    int64_t step = itemsize;
    for (int k = 0; k < nd; ++k) {
      const int d = fortran ? k : nd - 1 - k;
      if (dims[d] == 1) continue;
      if (strides[d] != step) return false;
      step *= dims[d];
    }
    return true;
  }
  Source source() const {
    return {reinterpret_cast<void*>(data), nd, dims.data(), strides.data(), itemsize,
            contiguous(false), contiguous(true)};
  }
};

// The bit flags the stable C ABI cannot read (conj: complex tensors only, and ml_dtypes types are
// checked anyway; neg), asked of torch's methods: true when neither is set.
bool no_bits(PyObject* tensor, PyObject* descr) {
  const auto* d = npy::array_descriptor_proxy(descr);
  if (d->kind == 'c' || d->type_num >= 256) {
    py::object conj = call_refusable(g_fast.is_conj, tensor);
    if (!conj || conj.ptr() != Py_False) return false;
  }
  py::object neg = call_refusable(g_fast.is_neg, tensor);
  return neg && neg.ptr() == Py_False;
}

// The at::Tensor a torch.Tensor holds, as the AtenTensorHandle torch's stable C ABI takes (an
// at::Tensor*): the instance's one member after PyObject_HEAD (THPVariable::cdata). stable_init
// checks that layout against torch itself before anything reads through it.
AtenTensorHandle handle_of(PyObject* tensor) {
  return reinterpret_cast<AtenTensorHandle>(reinterpret_cast<char*>(tensor) + sizeof(PyObject));
}

// read_meta through the stable C ABI: ~10 ns per field instead of a ~60-100 ns Python call.
// Declines (false) where torch's Python methods might say more: the caller then reads them.
bool read_meta_stable(PyObject* tensor, TensorMeta& m, int64_t dst_itemsize) {
  AtenTensorHandle h = handle_of(tensor);
  int32_t layout = 0, device = 0;
  if (aoti_torch_get_layout(h, &layout) != AOTI_TORCH_SUCCESS ||
      layout != aoti_torch_layout_strided() ||
      aoti_torch_get_device_type(h, &device) != AOTI_TORCH_SUCCESS ||
      device != aoti_torch_device_type_cpu()) {
    return false;
  }
  // Before any read that throws for a tensor without memory of its own (functionalize and
  // functorch wrappers): those are rare, and their refusal is torch's to give.
  if (!no_bits(tensor, m.descr)) return false;
  void* data = nullptr;
  int64_t nd = 0, offset = 0, nbytes = 0;
  int64_t *sizes = nullptr, *strides = nullptr;
  if (aoti_torch_get_data_ptr(h, &data) != AOTI_TORCH_SUCCESS || data == nullptr ||
      aoti_torch_get_dim(h, &nd) != AOTI_TORCH_SUCCESS || nd > core::kMaxDims ||
      aoti_torch_get_sizes(h, &sizes) != AOTI_TORCH_SUCCESS ||
      aoti_torch_get_strides(h, &strides) != AOTI_TORCH_SUCCESS ||
      aoti_torch_get_storage_offset(h, &offset) != AOTI_TORCH_SUCCESS ||
      aoti_torch_get_storage_size(h, &nbytes) != AOTI_TORCH_SUCCESS) {
    return false;
  }
  m.data = reinterpret_cast<uint64_t>(data);
  m.nd = static_cast<int>(nd);
  int64_t low = 0, high = m.itemsize, numel = 1;
  for (int k = 0; k < m.nd; ++k) {
    if (sizes[k] <= 0) return false;  // empty: torch's own answer (its own data pointer)
    m.dims[k] = sizes[k];
    if (__builtin_mul_overflow(strides[k], m.itemsize, &m.strides[k])) return false;
    int64_t extent = 0;
    if (__builtin_mul_overflow(sizes[k] - 1, m.strides[k], &extent)) return false;
    (extent < 0 ? low : high) += extent;
    numel *= sizes[k];
  }
  // The storage begins storage_offset elements before the data (torch's data_ptr rule).
  int64_t before = 0;
  if (offset < 0 || __builtin_mul_overflow(offset, m.itemsize, &before)) return false;
  if (!within(m.data, low, high, m.data - static_cast<uint64_t>(before), nbytes)) return false;
  // The storage object keeps the memory alive for a view, and through a copy long enough to run
  // without the GIL (another thread may meanwhile drop the tensor's last reference to it).
  int64_t traffic = 0;
  if (dst_itemsize == 0 || __builtin_mul_overflow(numel, m.itemsize + dst_itemsize, &traffic) ||
      traffic >= kReleaseGilBytes) {
    m.storage = call_refusable(g_fast.untyped_storage, tensor);
    if (!m.storage) return false;
  }
  return true;
}

// Reads `tensor`'s memory as elements of `descr` into `m` (`descr` must be the tensor's bits
// exactly: torch's own NumPy type for it, or the ml_dtypes type of a replay); false for
// anything but a strided CPU tensor without conj/neg bits, with memory, not empty, lying inside
// its storage (the caller then asks torch, whose refusals stay the reference). requires_grad
// does not matter: the values are read, as the policy's detached view reads them.
// `dst_itemsize`: the element size of the copy that reads the memory, 0 for a view (whose base,
// m.storage, is then always set).
bool read_meta(PyObject* tensor, PyObject* descr, TensorMeta& m, int64_t dst_itemsize) {
  m.descr = descr;
  m.itemsize = py::reinterpret_borrow<py::dtype>(descr).itemsize();
  // Plain tensors, while the getters below are torch's own (a property set on torch.Tensor is
  // what Python code would read, so it is read too); a declined read is read again below,
  // where torch's methods decide.
  auto* type = Py_TYPE(tensor);
  if (g_fast.stable && type == reinterpret_cast<PyTypeObject*>(g_fast.tensor_type) &&
      g_fast.layout.intact(type) && g_fast.is_cpu.intact(type) && g_fast.shape.intact(type)) {
    if (read_meta_stable(tensor, m, dst_itemsize)) return true;
    m.storage = py::object();
  }
  py::object layout = attr_of(tensor, g_fast.layout);
  if (!layout || layout.ptr() != g_fast.strided) return false;
  py::object cpu = attr_of(tensor, g_fast.is_cpu);
  if (!cpu || cpu.ptr() != Py_True) return false;
  if (!no_bits(tensor, descr)) return false;
  py::object address = call_refusable(g_fast.data_ptr, tensor);
  if (!address) return false;
  m.data = as_u64(address.ptr());
  if (PyErr_Occurred()) throw py::error_already_set();
  if (m.data == 0) return false;  // no memory: torch's own answer
  py::object shape = attr_of(tensor, g_fast.shape);
  if (!shape) return false;
  py::object strides = call_refusable(g_fast.stride, tensor);
  if (!strides || !PyTuple_Check(shape.ptr()) || !PyTuple_Check(strides.ptr())) return false;
  const Py_ssize_t nd = PyTuple_GET_SIZE(shape.ptr());
  if (nd > core::kMaxDims || PyTuple_GET_SIZE(strides.ptr()) != nd) return false;
  m.nd = static_cast<int>(nd);
  for (int k = 0; k < m.nd; ++k) {
    m.dims[k] = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape.ptr(), k));
    m.strides[k] = PyLong_AsSsize_t(PyTuple_GET_ITEM(strides.ptr(), k)) * m.itemsize;
  }
  if (PyErr_Occurred()) throw py::error_already_set();
  for (int k = 0; k < m.nd; ++k) {
    if (m.dims[k] == 0) return false;  // empty: torch's own answer (its own data pointer)
  }
  m.storage = storage_holding(tensor, m.data, m.nd, m.dims.data(), m.strides.data(), m.itemsize);
  return m.storage && !m.storage.is_none();
}

// The view torch's Tensor.numpy() gives of the tensor `m` was read from (same dtype, shape, byte
// strides, data pointer and flags), made here from the metadata instead of through torch's,
// which builds a detached alias tensor as the array's base. The base here is the tensor's
// storage, which keeps the memory alive just as that alias does.
py::object view_of(TensorMeta& m) {
  auto& api = npy::npy_api::get();
  Py_INCREF(m.descr);  // PyArray_NewFromDescr steals it
  PyObject* raw = api.PyArray_NewFromDescr_(
      api.PyArray_Type_, m.descr, m.nd, m.dims.data(), m.strides.data(),
      reinterpret_cast<void*>(m.data),
      npy::npy_api::NPY_ARRAY_ALIGNED_ | npy::npy_api::NPY_ARRAY_WRITEABLE_, nullptr);
  if (raw == nullptr) throw py::error_already_set();
  auto view = py::reinterpret_steal<py::object>(raw);
  if (api.PyArray_SetBaseObject_(raw, m.storage.release().ptr()) != 0) {
    throw py::error_already_set();
  }
  return view;
}

// torch's NumPy type for a torch dtype (borrowed), or nullptr: a type its .numpy() refuses.
PyObject* numpy_type_of(PyObject* dt) {
  if (g_fast.numpy_types == nullptr) return nullptr;
  PyObject* descr = PyDict_GetItemWithError(g_fast.numpy_types, dt);
  if (descr == nullptr && PyErr_Occurred()) throw py::error_already_set();
  return descr;
}

// torch's own view of `tensor` when it gives one and it lies inside the tensor's storage; else
// nothing (the policy then converts the tensor another way or says why it cannot).
py::object checked_view(PyObject* numpy, PyObject* tensor) {
  py::object view = call_refusable(numpy, tensor);
  if (view && !inside_storage(tensor, py::reinterpret_borrow<py::array>(view))) return py::object();
  return view;
}

// A memoised to_numpy decision (python/torchnp/_fast.py), replayed in one call: torch's own
// Tensor.numpy() view (of the carrier integer type for ml_dtypes types; of the detached tensor
// when it requires grad), then convert(). None where the replay cannot follow the decision.
class ToNumpyReplay {
 public:
  ToNumpyReplay(py::object numpy, py::object carrier, py::object stored, py::dtype target,
                int d_code, bool d_swap, int s_code, int layout, bool share, int64_t pool_bytes)
      : numpy_(std::move(numpy)), carrier_(std::move(carrier)), stored_(std::move(stored)),
        target_(std::move(target)), d_code_(d_code), d_swap_(d_swap), s_code_(s_code),
        layout_(layout), share_(share), pool_bytes_(pool_bytes) {}

  py::object operator()(py::handle tensor) const { return run(tensor); }

  py::object run(py::handle tensor) const {
    // Read from the tensor's metadata where it can be (of the stored element type, an ml_dtypes
    // one included): a shared result is the view made from it; a copy reads the memory as it is.
    TensorMeta meta;
    // (A decision to share may give the view itself, which holds the storage: dst_itemsize 0.)
    const int64_t dst_itemsize = share_ ? 0 : target_.itemsize();
    if (g_fast.numpy_types != nullptr &&
        read_meta(tensor.ptr(), stored_.ptr(), meta, dst_itemsize)) {
      const Layout layout = layout_of(layout_);
      const Source source = meta.source();
      if (share_ && shared_layout_fits(layout, source.c, source.f)) return view_of(meta);
      return fresh_copy(source, target_, d_code_, d_swap_, s_code_, false, layout, pool_bytes_);
    }
    // Else torch's own view. A tensor that requires grad: the values are what is converted (the
    // policy detaches too), detached first rather than after torch refuses it (its C++
    // exception costs ~9 us).
    py::object grad = py::reinterpret_steal<py::object>(
        g_fast.requires_grad.get(tensor.ptr()));
    if (!grad) throw py::error_already_set();
    py::object view = grad.ptr() == Py_False ? torch_view(tensor) : torch_view(tensor.attr("detach")());
    if (!view) return py::none();
    const auto array = py::reinterpret_borrow<py::array>(view);
    py::object result = convert(array, target_, d_code_, d_swap_, s_code_, false, layout_, share_,
                                pool_bytes_);
    if (result.is(view) && !carrier_.is_none()) return array.attr("view")(stored_);
    return result;
  }

 private:
  py::object torch_view(py::handle tensor) const {
    if (carrier_.is_none()) return checked_view(numpy_.ptr(), tensor.ptr());
    // The carrier view is refused like .numpy() is (a tensor with the negative bit, say).
    py::object view_method = tensor.attr("view");
    py::object carried = call_refusable(view_method.ptr(), carrier_.ptr());
    if (!carried) return carried;
    return checked_view(numpy_.ptr(), carried.ptr());
  }

  py::object numpy_, carrier_, stored_;
  py::dtype target_;
  int d_code_;
  bool d_swap_;
  int s_code_, layout_;
  bool share_;
  int64_t pool_bytes_;
};

// A memoised from_numpy decision, replayed: torch.from_numpy of the array itself where the
// decision shares and torch holds the layout as it is; otherwise the cast into a fresh array
// laid out like the source, then torch.from_numpy of that (through the carrier integer type for
// ml_dtypes targets). None where the policy must decide (a layout torch holds only once
// normalised).
class FromNumpyReplay {
 public:
  FromNumpyReplay(py::object from_numpy, py::dtype target_np, py::object target,
                  py::object carrier_np, int d_code, bool d_swap, int s_code, bool s_swap,
                  bool share, int64_t pool_bytes)
      : from_numpy_(std::move(from_numpy)), target_np_(std::move(target_np)),
        target_(std::move(target)), carrier_np_(std::move(carrier_np)), d_code_(d_code),
        d_swap_(d_swap), s_code_(s_code), s_swap_(s_swap), share_(share), pool_bytes_(pool_bytes) {}

  py::object operator()(const py::array& array) const { return run(array); }

  py::object run(const py::array& array) const {
    if (share_) {
      const int cls = layout_class(array);
      if (cls == 1) return torch_of(array);
      if (cls == 2) return py::none();
    }
    py::object result = convert(array, target_np_, d_code_, d_swap_, s_code_, s_swap_, 0, false,
                                pool_bytes_);
    if (carrier_np_.is_none()) return torch_of(result);
    return from_numpy_(result.attr("view")(carrier_np_)).attr("view")(target_);
  }

 private:
  // torch.from_numpy(array), called without the argument tuple a pybind11 call builds.
  py::object torch_of(py::handle array) const {
    PyObject* r = PyObject_CallOneArg(from_numpy_.ptr(), array.ptr());
    if (r == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(r);
  }

  py::object from_numpy_;
  py::dtype target_np_;
  py::object target_, carrier_np_;
  int d_code_;
  bool d_swap_;
  int s_code_;
  bool s_swap_, share_;
  int64_t pool_bytes_;
};

// A memoised to_numpy(..., out=out) decision, replayed: the tensor's values (read from its
// metadata), cast to out's element type, written into `out`. None (the policy's turn) where the
// replay cannot follow the decision: a tensor read_meta declines (bits, empty, outside its
// storage...), an `out` of another shape or read-only, or one whose memory may overlap the
// tensor's (the policy stages the source first).
class ToNumpyOutReplay {
 public:
  ToNumpyOutReplay(py::object stored, int d_code, bool d_swap, int s_code)
      : stored_(std::move(stored)), d_code_(d_code), d_swap_(d_swap), s_code_(s_code) {}

  py::object run(PyObject* tensor, PyObject* out) const {
    TensorMeta m;
    const auto* o = npy::array_proxy(out);
    const int64_t out_itemsize = py::reinterpret_borrow<py::dtype>(o->descr).itemsize();
    if (g_fast.numpy_types == nullptr || !read_meta(tensor, stored_.ptr(), m, out_itemsize)) {
      return py::none();
    }
    if (o->nd != m.nd || !std::equal(m.dims.begin(), m.dims.begin() + m.nd, o->dimensions) ||
        (o->flags & npy::npy_api::NPY_ARRAY_WRITEABLE_) == 0) {
      return py::none();
    }
    if (overlap(m.data, m.nd, m.dims.data(), m.strides.data(), m.itemsize,
                reinterpret_cast<uint64_t>(o->data), o->strides, out_itemsize)) {
      return py::none();
    }
    copy_from(m.source(), s_code_, false, o->data, o->strides, d_code_, d_swap_, out_itemsize);
    return py::reinterpret_borrow<py::object>(out);
  }

 private:
  // Whether the bytes two layouts address may overlap (their extents intersect: the test
  // numpy.may_share_memory makes). No dim is empty here.
  static bool overlap(uint64_t a, int nd, const py::ssize_t* dims, const py::ssize_t* sa,
                      int64_t ia, uint64_t b, const py::ssize_t* sb, int64_t ib) {
    int64_t alo = 0, ahi = ia, blo = 0, bhi = ib;
    for (int d = 0; d < nd; ++d) {
      (sa[d] < 0 ? alo : ahi) += (dims[d] - 1) * sa[d];
      (sb[d] < 0 ? blo : bhi) += (dims[d] - 1) * sb[d];
    }
    const auto a0 = static_cast<int64_t>(a) + alo, a1 = static_cast<int64_t>(a) + ahi;
    const auto b0 = static_cast<int64_t>(b) + blo, b1 = static_cast<int64_t>(b) + bhi;
    return a0 < b1 && b0 < a1;
  }

  py::object stored_;
  int d_code_;
  bool d_swap_;
  int s_code_;
};

// ---- the entries: one C call from to_numpy / from_numpy -------------------------------------
//
// fast_to_numpy(tensor, dtype, copy, order) and fast_from_numpy(array, dtype, copy) look the
// call's signature up in the memo dicts python/torchnp/_fast.py keeps (handed over once by
// fast_init) and run the replay found there, or return None: then the policy runs. Written
// against the CPython API directly (METH_FASTCALL): pybind11's general argument handling would
// cost more than the small copies they serve.

// The memo holds native replays as capsules (a pointer lookup, not a pybind11 cast); the
// capsule's context keeps the replay object alive.
constexpr const char* kToNumpyCapsule = "torchnp.ToNumpyReplay";
constexpr const char* kFromNumpyCapsule = "torchnp.FromNumpyReplay";

template <class T>
py::object capsule_of(py::object owner, const char* name) {
  T* ptr = owner.cast<T*>();
  PyObject* cap = PyCapsule_New(ptr, name, [](PyObject* c) {
    Py_XDECREF(static_cast<PyObject*>(PyCapsule_GetContext(c)));
  });
  if (cap == nullptr) throw py::error_already_set();
  PyCapsule_SetContext(cap, owner.release().ptr());
  return py::reinterpret_steal<py::object>(cap);
}


// Whether a requested dtype carries metadata (equal, and hashing equal, to the same dtype
// without it: the memo must not conflate the two).
bool has_metadata(PyObject* dtype) {
  if (dtype == Py_None || PyUnicode_Check(dtype) || PyType_Check(dtype)) return false;
  PyObject* md = PyObject_GetAttr(dtype, g_fast.metadata_name);
  if (md == nullptr) {
    PyErr_Clear();
    return false;
  }
  const bool has = md != Py_None;
  Py_DECREF(md);
  return has;
}

// memo[k0][k1]...: the nested dicts _fast.py keeps (borrowed), or nullptr for a miss or an
// unhashable key (both mean "ask the policy").
PyObject* memo_get(PyObject* memo, std::initializer_list<PyObject*> keys) {
  PyObject* node = memo;
  for (PyObject* k : keys) {
    if (!PyDict_Check(node)) return nullptr;
    node = PyDict_GetItemWithError(node, k);
    if (node == nullptr) {
      if (PyErr_Occurred()) PyErr_Clear();
      return nullptr;
    }
  }
  return node;
}

// A dtype argument as _fast.arg_key makes it: a native NumPy dtype without metadata as its
// scalar type, anything else as itself. Returns a borrowed reference.
PyObject* arg_key(PyObject* dtype) {
  auto& api = npy::npy_api::get();
  if (dtype == Py_None || !api.PyArrayDescr_Check_(dtype)) return dtype;
  const auto* d = npy::array_descriptor_proxy(dtype);
  if (d->byteorder != '=' && d->byteorder != '|') return dtype;
  if (has_metadata(dtype)) return dtype;
  return d->typeobj;
}

template <class Fn>
PyObject* guarded(const Fn& fn) {
  try {
    return fn().release().ptr();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

PyObject* fast_to_numpy(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 4 || g_fast.to_numpy_memo == nullptr) {
    PyErr_SetString(PyExc_TypeError, "fast_to_numpy(tensor, dtype, copy, order) before fast_init");
    return nullptr;
  }
  PyObject* tensor = args[0];
  if (reinterpret_cast<PyObject*>(Py_TYPE(tensor)) != g_fast.tensor_type) Py_RETURN_NONE;
  PyObject* dt = g_fast.dtype.get(tensor);
  if (dt == nullptr) return nullptr;
  PyObject* replay = memo_get(g_fast.to_numpy_memo, {dt, arg_key(args[1]), args[2], args[3]});
  Py_DECREF(dt);
  if (replay == nullptr) Py_RETURN_NONE;
  const auto* r = static_cast<const ToNumpyReplay*>(PyCapsule_GetPointer(replay, kToNumpyCapsule));
  if (r == nullptr) return nullptr;  // not a native replay: TypeError set
  return guarded([&] { return r->run(py::handle(tensor)); });
}

PyObject* fast_from_numpy(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 3 || g_fast.from_numpy_memo == nullptr) {
    PyErr_SetString(PyExc_TypeError, "fast_from_numpy(array, dtype, copy) before fast_init");
    return nullptr;
  }
  PyObject* array = args[0];
  if (!py::isinstance<py::array>(array)) Py_RETURN_NONE;
  // The array's element type as its scalar type and byte order (array_key in _fast.py): a
  // NumPy dtype's own hash is computed from all its fields on every call.
  const auto* descr = npy::array_descriptor_proxy(npy::array_proxy(array)->descr);
  PyObject* order = PyLong_FromLong(descr->byteorder);  // a cached small int
  PyObject* replay =
      memo_get(g_fast.from_numpy_memo, {descr->typeobj, order, arg_key(args[1]), args[2]});
  Py_DECREF(order);
  if (replay == nullptr) Py_RETURN_NONE;  // (a tensor has no dtype metadata to keep)
  const auto* r =
      static_cast<const FromNumpyReplay*>(PyCapsule_GetPointer(replay, kFromNumpyCapsule));
  if (r == nullptr) return nullptr;
  return guarded([&] { return r->run(py::reinterpret_borrow<py::array>(array)); });
}

constexpr const char* kToNumpyOutCapsule = "torchnp.ToNumpyOutReplay";

PyObject* fast_to_numpy_out(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 5 || g_fast.to_numpy_out_memo == nullptr) {
    PyErr_SetString(PyExc_TypeError,
                    "fast_to_numpy_out(tensor, dtype, copy, order, out) before out_init");
    return nullptr;
  }
  PyObject* tensor = args[0];
  PyObject* out = args[4];
  if (reinterpret_cast<PyObject*>(Py_TYPE(tensor)) != g_fast.tensor_type ||
      Py_TYPE(out) != npy::npy_api::get().PyArray_Type_) {
    Py_RETURN_NONE;
  }
  PyObject* dt = g_fast.dtype.get(tensor);
  if (dt == nullptr) return nullptr;
  PyObject* out_dtype = reinterpret_cast<PyObject*>(npy::array_proxy(out)->descr);
  PyObject* replay = memo_get(g_fast.to_numpy_out_memo,
                              {dt, arg_key(args[1]), args[2], args[3], arg_key(out_dtype)});
  Py_DECREF(dt);
  if (replay == nullptr) Py_RETURN_NONE;
  const auto* r =
      static_cast<const ToNumpyOutReplay*>(PyCapsule_GetPointer(replay, kToNumpyOutCapsule));
  if (r == nullptr) return nullptr;
  return guarded([&] { return r->run(tensor, out); });
}

// tensor_view(tensor): torch's own Tensor.numpy() view when it gives one over memory the
// tensor's storage holds, else None (the policy's turn). The commonest call, to_numpy(t).
PyObject* tensor_view(PyObject*, PyObject* tensor) {
  if (g_fast.tensor_numpy == nullptr) {
    PyErr_SetString(PyExc_TypeError, "tensor_view(tensor) before fast_init");
    return nullptr;
  }
  return guarded([&]() -> py::object {
    PyObject* dt = g_fast.dtype.get(tensor);
    if (dt == nullptr) throw py::error_already_set();
    Py_DECREF(dt);  // a torch dtype is immortal for the process: comparing the pointer is safe
    // The view made from the tensor's metadata (requires_grad included: its values, as the
    // policy's detached view).
    if (PyObject* descr = numpy_type_of(dt)) {
      TensorMeta meta;
      if (read_meta(tensor, descr, meta, 0)) return view_of(meta);
    }
    // torch refuses these; asking would cost its C++ exception (~9 us): the policy's turn.
    if (std::find(g_fast.carried.begin(), g_fast.carried.end(), dt) != g_fast.carried.end()) {
      return py::object(py::none());
    }
    PyObject* grad = g_fast.requires_grad.get(tensor);
    if (grad == nullptr) throw py::error_already_set();
    const bool needs_grad = grad != Py_False;
    Py_DECREF(grad);
    if (needs_grad) return py::object(py::none());
    py::object view = checked_view(g_fast.tensor_numpy, tensor);
    return view ? view : py::none();
  });
}

// ---- the public entries: torchnp.to_numpy / torchnp.from_numpy as native callables --------
//
// Calling a Python function costs ~0.2 us, a third of a zero-copy conversion. An Entry takes the
// calls the fast path answers, with the same checks in the same order as the fast branches at
// the top of _to_numpy.to_numpy and _from_numpy.from_numpy, in one C call, and hands every
// other call unchanged (vectorcall: the same arguments objects) to that Python function, which
// is the policy. While the Python engine is active (entries_enabled(False)) it hands over all.

struct EntryState {
  bool enabled = false;
  PyObject* copy_types = nullptr;        // _fast.COPY_TYPES: the copy values the memo takes
  PyObject* torch_from_numpy = nullptr;  // torch's own torch.from_numpy
  PyObject* dtype_kw = nullptr;          // interned "dtype", "copy", "order", "K"
  PyObject* copy_kw = nullptr;
  PyObject* order_kw = nullptr;
  PyObject* out_kw = nullptr;
  PyObject* keep = nullptr;
};
EntryState g_entry;

enum class EntryKind : int { kToNumpy = 0, kFromNumpy = 1 };

struct EntryObject {
  PyObject_HEAD
  vectorcallfunc vectorcall;
  PyObject* dict;  // __doc__, __wrapped__, __name__, ...: the Python function's (see _fast)
  PyObject* impl;  // the Python function
  EntryKind kind;
};

bool same_name(PyObject* name, PyObject* interned) {
  return name == interned || PyUnicode_Compare(name, interned) == 0;  // keywords are str
}

// The call's (dtype, copy, order) from positional (first, dtype) and keywords among `allowed`;
// false for any other shape of call (more positionals, out=, device=, a keyword twice...).
// to_numpy's keywords order and out (`with_order`; from_numpy has neither) default to "K" and
// None.
bool entry_args(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, bool with_order,
                PyObject*& dtype, PyObject*& copy, PyObject*& order, PyObject*& out) {
  if (nargs < 1 || nargs > 2) return false;
  dtype = nargs == 2 ? args[1] : Py_None;
  copy = Py_None;
  order = g_entry.keep;
  out = Py_None;
  const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  bool seen_dtype = nargs == 2, seen_copy = false, seen_order = false, seen_out = false;
  for (Py_ssize_t i = 0; i < nkw; ++i) {
    PyObject* name = PyTuple_GET_ITEM(kwnames, i);
    PyObject* value = args[nargs + i];
    if (!seen_dtype && same_name(name, g_entry.dtype_kw)) {
      dtype = value, seen_dtype = true;
    } else if (!seen_copy && same_name(name, g_entry.copy_kw)) {
      copy = value, seen_copy = true;
    } else if (with_order && !seen_order && same_name(name, g_entry.order_kw)) {
      order = value, seen_order = true;
    } else if (with_order && !seen_out && same_name(name, g_entry.out_kw)) {
      out = value, seen_out = true;
    } else {
      return false;
    }
  }
  return true;
}

bool copy_memoisable(PyObject* copy) {
  const int in = PySet_Contains(g_entry.copy_types, reinterpret_cast<PyObject*>(Py_TYPE(copy)));
  if (in < 0) PyErr_Clear();
  return in == 1;
}

// The fast path's answer (a new reference), Py_None (borrowed, not incremented) when it has
// none, or nullptr with an error set.
PyObject* entry_to_numpy(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject *dtype, *copy, *order, *out;
  PyObject* tensor = args[0];
  if (reinterpret_cast<PyObject*>(Py_TYPE(tensor)) != g_fast.tensor_type ||
      !entry_args(args, nargs, kwnames, true, dtype, copy, order, out) ||
      !PyUnicode_CheckExact(order)) {
    return Py_None;
  }
  if (out != Py_None) {
    if (Py_TYPE(out) != npy::npy_api::get().PyArray_Type_ || !copy_memoisable(copy) ||
        g_fast.to_numpy_out_memo == nullptr) {
      return Py_None;
    }
    PyObject* out_args[5] = {tensor, dtype, copy, order, out};
    PyObject* r = fast_to_numpy_out(nullptr, out_args, 5);
    if (r != Py_None) return r;
    Py_DECREF(r);
    return Py_None;
  }
  PyObject* replay_args[4] = {tensor, dtype, copy, order};
  if (dtype == Py_None && copy == Py_None && PyUnicode_Compare(order, g_entry.keep) == 0) {
    PyObject* view = tensor_view(nullptr, tensor);
    if (view != Py_None) return view;  // (or nullptr: an error)
    Py_DECREF(view);
    replay_args[3] = g_entry.keep;
  } else if (!copy_memoisable(copy)) {
    return Py_None;
  }
  PyObject* r = fast_to_numpy(nullptr, replay_args, 4);
  if (r != Py_None) return r;
  Py_DECREF(r);
  return Py_None;
}

PyObject* entry_from_numpy(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject *dtype, *copy, *order, *out;
  PyObject* array = args[0];
  auto& api = npy::npy_api::get();
  if (Py_TYPE(array) != api.PyArray_Type_ ||
      !entry_args(args, nargs, kwnames, false, dtype, copy, order, out)) {
    return Py_None;
  }
  if (dtype == Py_None && copy == Py_None &&
      layout_class(py::reinterpret_borrow<py::array>(array)) == 1) {
    return PyObject_CallOneArg(g_entry.torch_from_numpy, array);
  }
  if (!copy_memoisable(copy)) return Py_None;
  PyObject* replay_args[3] = {array, dtype, copy};
  PyObject* r = fast_from_numpy(nullptr, replay_args, 3);
  if (r != Py_None) return r;
  Py_DECREF(r);
  return Py_None;
}

PyObject* entry_call(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  auto* e = reinterpret_cast<EntryObject*>(self);
  const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  if (g_entry.enabled && nargs >= 1) {
    PyObject* r = nullptr;
    try {
      r = e->kind == EntryKind::kToNumpy ? entry_to_numpy(args, nargs, kwnames)
                                          : entry_from_numpy(args, nargs, kwnames);
    } catch (py::error_already_set& err) {
      err.restore();
    } catch (const std::exception& err) {
      PyErr_SetString(PyExc_RuntimeError, err.what());
    }
    if (r != Py_None) return r;  // the answer, or nullptr: its error
  }
  return PyObject_Vectorcall(e->impl, args, nargsf, kwnames);
}

int entry_traverse(PyObject* self, visitproc visit, void* arg) {
  auto* e = reinterpret_cast<EntryObject*>(self);
  Py_VISIT(e->dict);
  Py_VISIT(e->impl);
  return 0;
}

int entry_clear(PyObject* self) {
  auto* e = reinterpret_cast<EntryObject*>(self);
  Py_CLEAR(e->dict);
  Py_CLEAR(e->impl);
  return 0;
}

void entry_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  entry_clear(self);
  Py_TYPE(self)->tp_free(self);
}

PyObject* entry_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  PyObject* impl = nullptr;
  int kind = 0;
  static const char* names[] = {"impl", "kind", nullptr};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oi", const_cast<char**>(names), &impl, &kind)) {
    return nullptr;
  }
  if (!PyCallable_Check(impl) || (kind != 0 && kind != 1)) {
    PyErr_SetString(PyExc_TypeError, "Entry(impl, kind): a callable and 0 (to_numpy) or 1");
    return nullptr;
  }
  auto* e = reinterpret_cast<EntryObject*>(type->tp_alloc(type, 0));
  if (e == nullptr) return nullptr;
  e->vectorcall = &entry_call;
  e->dict = PyDict_New();
  if (e->dict == nullptr) {
    Py_DECREF(e);
    return nullptr;
  }
  Py_INCREF(impl);
  e->impl = impl;
  e->kind = static_cast<EntryKind>(kind);
  return reinterpret_cast<PyObject*>(e);
}

PyObject* entry_repr(PyObject* self) {
  PyObject* name = PyDict_GetItemString(reinterpret_cast<EntryObject*>(self)->dict, "__qualname__");
  return name != nullptr ? PyUnicode_FromFormat("<native function torchnp.%U>", name)
                         : PyUnicode_FromString("<native function>");
}

// A function looked up on a class is not bound to the instance: neither is an Entry.
PyObject* entry_get(PyObject* self, PyObject*, PyObject*) {
  Py_INCREF(self);
  return self;
}

// Pickled by name, as a function is (its module's attribute of that name).
PyObject* entry_reduce(PyObject* self, PyObject*) {
  PyObject* name = PyDict_GetItemString(reinterpret_cast<EntryObject*>(self)->dict, "__qualname__");
  if (name == nullptr) {
    PyErr_SetString(PyExc_TypeError, "an Entry without __qualname__ cannot be pickled");
    return nullptr;
  }
  Py_INCREF(name);
  return name;
}

PyMethodDef g_entry_methods[] = {
    {"__reduce__", &entry_reduce, METH_NOARGS, "Pickled by name, as a function."},
    {nullptr, nullptr, 0, nullptr}};

PyTypeObject g_entry_type = [] {
  PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
  t.tp_name = "torchnp._C.Entry";
  t.tp_basicsize = sizeof(EntryObject);
  t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL;
  t.tp_doc = "A public conversion function answered natively where the fast path can (see "
             "fast_path.cpp); every other call goes to the Python function `impl`.";
  t.tp_vectorcall_offset = offsetof(EntryObject, vectorcall);
  t.tp_call = PyVectorcall_Call;
  t.tp_dictoffset = offsetof(EntryObject, dict);
  t.tp_traverse = &entry_traverse;
  t.tp_clear = &entry_clear;
  t.tp_dealloc = &entry_dealloc;
  t.tp_new = &entry_new;
  t.tp_repr = &entry_repr;
  t.tp_descr_get = &entry_get;
  t.tp_methods = g_entry_methods;
  return t;
}();

// ---- torchnp.patch(): the two calls whose patched version must cost (almost) nothing -------
//
// Tensor.numpy() and torch.from_numpy() under the patch: torch's own call for everything torch
// answers by itself as torchnp would (a plain numpy() of a type NumPy has; an array both share
// as it is), in one C call; anything else goes to the Python versions in _patch.py, which
// decide (bf16 views, what torch refuses, torch's own errors). Installed by _patch.py when the
// native module is loaded.

struct PatchState {
  PyObject* from_numpy = nullptr;       // torch's own torch.from_numpy
  PyObject* slow_numpy = nullptr;       // _patch.numpy
  PyObject* slow_from_numpy = nullptr;  // _patch.from_numpy
  PyObject* slow_array = nullptr;       // _patch.__array__
  PyObject* force_name = nullptr;       // interned "force"
  PyObject* dtype_kw = nullptr;         // interned "dtype"
  PyObject* copy_kw = nullptr;          // interned "copy"
  PyObject* requires_grad_name = nullptr;
};
PatchState g_patch;

bool plain_numpy_type(PyObject* self, bool& ok);

// fn(self, *args, **kwargs) for a method's vectorcall arguments (the Python version of a patched
// method, which takes self like any function).
PyObject* call_with_self(PyObject* fn, PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                         PyObject* kwnames) {
  const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  std::vector<PyObject*> stack(static_cast<size_t>(1 + nargs + nkw));
  stack[0] = self;
  std::copy(args, args + nargs + nkw, stack.begin() + 1);
  return PyObject_Vectorcall(fn, stack.data(), 1 + nargs, kwnames);
}

// A method of torch.Tensor (a method descriptor, like torch's own: called without a bound
// method object): `self` is the tensor, `args` the rest.
PyObject* patched_numpy(PyObject* self, PyObject* const* args, Py_ssize_t nargsf,
                        PyObject* kwnames) {
  const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  if (g_patch.slow_numpy == nullptr || g_fast.tensor_numpy == nullptr) {
    PyErr_SetString(PyExc_TypeError, "patched_numpy before patch_init");
    return nullptr;
  }
  // self only (or self and force=False), and a plain torch.Tensor: a subclass's
  // __torch_function__ sees its call first, in the Python version.
  bool plain = nargs == 0;
  if (plain && nkw != 0) {
    plain = nkw == 1 && args[0] == Py_False &&
            PyUnicode_Compare(PyTuple_GET_ITEM(kwnames, 0), g_patch.force_name) == 0;
    if (PyErr_Occurred()) return nullptr;
  }
  if (plain) {
    bool ok = true;
    plain = plain_numpy_type(self, ok);
    if (!ok) return nullptr;
  }
  if (plain) return PyObject_CallOneArg(g_fast.tensor_numpy, self);
  return call_with_self(g_patch.slow_numpy, self, args, nargs, kwnames);
}

PyMethodDef g_patched_numpy_def = {
    "numpy", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&patched_numpy)),
    METH_FASTCALL | METH_KEYWORDS,
    "numpy(*, force=False) -> numpy.ndarray\n\nTensor.numpy under torchnp.patch(): torch's own "
    "view where torch gives one; bf16/float8 as shared ml_dtypes views; force=True through "
    "torchnp.to_numpy."};

// Whether `self` is a plain torch.Tensor of a type NumPy has (not bf16/float8/complex32).
bool plain_numpy_type(PyObject* self, bool& ok) {
  ok = true;
  if (reinterpret_cast<PyObject*>(Py_TYPE(self)) != g_fast.tensor_type) return false;
  if (g_fast.carried.empty()) return true;
  PyObject* dt = g_fast.dtype.get(self);
  if (dt == nullptr) {
    ok = false;
    return false;
  }
  const bool plain =
      std::find(g_fast.carried.begin(), g_fast.carried.end(), dt) == g_fast.carried.end();
  Py_DECREF(dt);  // torch dtypes live as long as the process: the pointer comparison holds
  return plain;
}

// Tensor.__array__(dtype=None, copy=None) under the patch, a method descriptor: for a plain
// tensor of a type NumPy has that does not require grad, asked for no dtype and no copy, torch's
// own Tensor.numpy() view, as torch's __array__ gives it (one C call where torch's is a Python
// function); everything else, and whatever torch refuses, in the Python version.
PyObject* patched_array(PyObject* self, PyObject* const* args, Py_ssize_t nargsf,
                        PyObject* kwnames) {
  const Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  const Py_ssize_t nkw = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  if (g_patch.slow_array == nullptr || g_fast.tensor_numpy == nullptr) {
    PyErr_SetString(PyExc_TypeError, "patched_array before patch_init");
    return nullptr;
  }
  // dtype and copy, positional or by keyword: plain when dtype is None and copy is not True.
  bool plain = nargs <= 2;
  for (Py_ssize_t i = 0; plain && i < nargs; ++i) {
    plain = args[i] == Py_None || (i == 1 && args[i] == Py_False);
  }
  for (Py_ssize_t k = 0; plain && k < nkw; ++k) {
    PyObject* name = PyTuple_GET_ITEM(kwnames, k);
    PyObject* value = args[nargs + k];
    if (PyUnicode_Compare(name, g_patch.dtype_kw) == 0) {
      plain = value == Py_None;
    } else if (PyUnicode_Compare(name, g_patch.copy_kw) == 0) {
      plain = value == Py_None || value == Py_False;
    } else {
      plain = false;
    }
    if (PyErr_Occurred()) return nullptr;
  }
  if (plain) {
    bool ok = true;
    plain = plain_numpy_type(self, ok);
    if (!ok) return nullptr;
  }
  if (plain) {
    PyObject* grad = PyObject_GetAttr(self, g_patch.requires_grad_name);
    if (grad == nullptr) return nullptr;
    plain = grad == Py_False;  // (torch's numpy() refuses those: the Python version detaches)
    Py_DECREF(grad);
  }
  if (plain) {
    PyObject* view = PyObject_CallOneArg(g_fast.tensor_numpy, self);
    if (view != nullptr) return view;
    // torch refused it (a conj/neg bit, a device, a layout): the Python version resolves it.
    if (PyErr_ExceptionMatches(PyExc_RecursionError) ||
        !(PyErr_ExceptionMatches(PyExc_RuntimeError) || PyErr_ExceptionMatches(PyExc_TypeError))) {
      return nullptr;
    }
    PyErr_Clear();
  }
  return call_with_self(g_patch.slow_array, self, args, nargs, kwnames);
}

PyMethodDef g_patched_array_def = {
    "__array__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&patched_array)),
    METH_FASTCALL | METH_KEYWORDS,
    "__array__(dtype=None, copy=None) -> numpy.ndarray\n\nTensor.__array__ under torchnp.patch(): "
    "NumPy 2's protocol through torchnp.to_numpy; torch's own view for a plain tensor."};

// `def` as a method descriptor of `tensor_type` (like torch's own methods: called without a bound
// method object).
py::object method_of(const py::object& tensor_type, PyMethodDef* def) {
  if (!PyType_Check(tensor_type.ptr())) throw std::invalid_argument("a type, torch.Tensor");
  PyObject* descr = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(tensor_type.ptr()), def);
  if (descr == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(descr);
}

PyObject* patched_from_numpy(PyObject*, PyObject* array) {
  if (g_patch.slow_from_numpy == nullptr) {
    PyErr_SetString(PyExc_TypeError, "patched_from_numpy before patch_init");
    return nullptr;
  }
  return guarded([&]() -> py::object {
    const bool shares = py::isinstance<py::array>(array) &&
                        layout_class(py::reinterpret_borrow<py::array>(array)) == 1;
    PyObject* r = PyObject_CallOneArg(shares ? g_patch.from_numpy : g_patch.slow_from_numpy, array);
    if (r == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(r);
  });
}

PyMethodDef g_fast_methods[] = {
    {"patched_from_numpy", &patched_from_numpy, METH_O,
     "from_numpy(ndarray): torch.from_numpy under torchnp.patch() (see _patch.py)."},
    {"tensor_view", &tensor_view, METH_O,
     "tensor_view(tensor): torch's Tensor.numpy() of it when that lies inside the tensor's "
     "storage as the storage is now; None when torch refuses it or it does not."},
    {"fast_to_numpy", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_to_numpy)),
     METH_FASTCALL,
     "fast_to_numpy(tensor, dtype, copy, order): the memoised decision for this signature, "
     "replayed; None when the policy must run."},
    {"fast_from_numpy",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_from_numpy)), METH_FASTCALL,
     "fast_from_numpy(array, dtype, copy): the memoised decision, replayed; or None."},
    {"fast_to_numpy_out",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_to_numpy_out)),
     METH_FASTCALL,
     "fast_to_numpy_out(tensor, dtype, copy, order, out): the memoised out= decision, "
     "replayed (out, written); or None."},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

void add_fast_path(py::module_& m) {
  m.def(
      "fast_init",
      [](py::object tensor_type, py::object tensor_numpy, py::tuple storage_methods,
         py::dict to_numpy_memo, py::dict from_numpy_memo, py::tuple carried) {
        if (storage_methods.size() != 3) throw std::invalid_argument("fast_init: 3 storage methods");
        // Kept for the life of the process (the module's memo dicts are never replaced).
        g_fast.tensor_type = tensor_type.release().ptr();
        g_fast.tensor_numpy = tensor_numpy.release().ptr();
        g_fast.untyped_storage = py::object(storage_methods[0]).release().ptr();
        g_fast.storage_data_ptr = py::object(storage_methods[1]).release().ptr();
        g_fast.storage_nbytes = py::object(storage_methods[2]).release().ptr();
        g_fast.to_numpy_memo = to_numpy_memo.release().ptr();
        g_fast.from_numpy_memo = from_numpy_memo.release().ptr();
        g_fast.dtype.init(g_fast.tensor_type, "dtype");
        g_fast.requires_grad.init(g_fast.tensor_type, "requires_grad");
        g_fast.metadata_name = PyUnicode_InternFromString("metadata");
        g_fast.carried.clear();
        for (auto dt : carried) g_fast.carried.push_back(py::object(dt, true).release().ptr());
      },
      py::arg("tensor_type"), py::arg("tensor_numpy"), py::arg("storage_methods"),
      py::arg("to_numpy_memo"), py::arg("from_numpy_memo"), py::arg("carried") = py::tuple(),
      "Hand the fast path torch.Tensor, its own numpy method, (Tensor.untyped_storage, "
      "StorageBase.data_ptr, StorageBase.nbytes), the memo dicts of torchnp._fast and the torch "
      "dtypes Tensor.numpy() refuses that torchnp reads through a carrier (tensor_view returns "
      "None for those without asking torch).");
  if (PyType_Ready(&g_entry_type) != 0) throw py::error_already_set();
  Py_INCREF(&g_entry_type);
  if (PyModule_AddObject(m.ptr(), "Entry", reinterpret_cast<PyObject*>(&g_entry_type)) != 0) {
    Py_DECREF(&g_entry_type);
    throw py::error_already_set();
  }
  m.def(
      "entry_init",
      [](py::object copy_types, py::object torch_from_numpy) {
        if (!PySet_Check(copy_types.ptr()) && !PyFrozenSet_Check(copy_types.ptr())) {
          throw std::invalid_argument("entry_init: copy_types must be a (frozen)set");
        }
        g_entry.copy_types = copy_types.release().ptr();  // kept for the process's life
        g_entry.torch_from_numpy = torch_from_numpy.release().ptr();
        g_entry.dtype_kw = PyUnicode_InternFromString("dtype");
        g_entry.copy_kw = PyUnicode_InternFromString("copy");
        g_entry.order_kw = PyUnicode_InternFromString("order");
        g_entry.out_kw = PyUnicode_InternFromString("out");
        g_entry.keep = PyUnicode_InternFromString("K");
      },
      py::arg("copy_types"), py::arg("torch_from_numpy"),
      "Hand the entries _fast.COPY_TYPES and torch's own torch.from_numpy (after fast_init).");
  m.def(
      "entries_enabled",
      [](bool on) {
        if (on && g_entry.keep == nullptr) throw std::logic_error("entries_enabled before entry_init");
        g_entry.enabled = on;
      },
      py::arg("on"),
      "Whether the entries answer calls natively (the native engine is active) or hand every "
      "call to their Python functions.");
  m.def(
      "view_init",
      [](py::dict numpy_types, py::object strided, py::tuple methods) {
        if (methods.size() != 4) throw std::invalid_argument("view_init: 4 tensor methods");
        // Kept for the life of the process, as fast_init's.
        g_fast.numpy_types = numpy_types.release().ptr();
        g_fast.strided = strided.release().ptr();
        g_fast.data_ptr = py::object(methods[0]).release().ptr();
        g_fast.stride = py::object(methods[1]).release().ptr();
        g_fast.is_conj = py::object(methods[2]).release().ptr();
        g_fast.is_neg = py::object(methods[3]).release().ptr();
        g_fast.layout.init(g_fast.tensor_type, "layout");
        g_fast.is_cpu.init(g_fast.tensor_type, "is_cpu");
        g_fast.shape.init(g_fast.tensor_type, "shape");
      },
      py::arg("numpy_types"), py::arg("strided"), py::arg("methods"),
      "Hand tensor_view's direct view {torch dtype: the NumPy dtype Tensor.numpy() gives it}, "
      "torch.strided and (Tensor.data_ptr, Tensor.stride, Tensor.is_conj, Tensor.is_neg); "
      "call after fast_init. Without it tensor_view asks torch's Tensor.numpy() every time.");
  m.def(
      "stable_init",
      [](py::list probes, bool enabled) {
        g_fast.stable = false;
        if (!enabled || g_fast.tensor_type == nullptr || probes.empty()) return false;
        auto* type = reinterpret_cast<PyTypeObject*>(g_fast.tensor_type);
        if (type->tp_basicsize < static_cast<Py_ssize_t>(sizeof(PyObject) + sizeof(void*))) {
          return false;
        }
        for (py::handle t : probes) {
          if (Py_TYPE(t.ptr()) != type) return false;
          // The member after PyObject_HEAD must be the tensor's TensorImpl pointer (an
          // at::Tensor's one field), as torch's own Tensor._cdata reports it...
          void* word = nullptr;
          std::memcpy(&word, reinterpret_cast<char*>(t.ptr()) + sizeof(PyObject), sizeof(word));
          if (reinterpret_cast<uintptr_t>(word) != t.attr("_cdata").cast<uintptr_t>()) return false;
          // ...and the stable C ABI must read through it what torch's methods say.
          AtenTensorHandle h = handle_of(t.ptr());
          void* data = nullptr;
          int64_t nd = 0, offset = 0, nbytes = 0;
          int64_t *sizes = nullptr, *strides = nullptr;
          int32_t layout = 0, device = 0;
          if (aoti_torch_get_layout(h, &layout) || aoti_torch_get_device_type(h, &device) ||
              aoti_torch_get_data_ptr(h, &data) || aoti_torch_get_dim(h, &nd) ||
              aoti_torch_get_sizes(h, &sizes) || aoti_torch_get_strides(h, &strides) ||
              aoti_torch_get_storage_offset(h, &offset) ||
              aoti_torch_get_storage_size(h, &nbytes)) {
            return false;
          }
          const auto ints = [](py::handle seq) {
            std::vector<int64_t> v;
            for (py::handle x : seq) v.push_back(x.cast<int64_t>());
            return v;
          };
          const auto shape = ints(t.attr("shape")), stride = ints(t.attr("stride")());
          const bool same =
              layout == aoti_torch_layout_strided() && device == aoti_torch_device_type_cpu() &&
              reinterpret_cast<uintptr_t>(data) == t.attr("data_ptr")().cast<uintptr_t>() &&
              std::vector<int64_t>(sizes, sizes + nd) == shape &&
              std::vector<int64_t>(strides, strides + nd) == stride &&
              offset == t.attr("storage_offset")().cast<int64_t>() &&
              nbytes == t.attr("untyped_storage")().attr("nbytes")().cast<int64_t>();
          if (!same) return false;
        }
        g_fast.stable = true;
        return true;
      },
      py::arg("probes"), py::arg("enabled") = true,
      "Read plain tensors' metadata through torch's stable C ABI from now on, if `probes` (CPU "
      "torch.Tensor objects of varied layouts) show it reads there what torch's methods say; "
      "else (or with enabled=False) through those methods. Returns whether it does. Call after "
      "view_init.");
  m.def(
      "stable_read", [] { return g_fast.stable; },
      "Whether plain tensors' metadata is read through torch's stable C ABI (stable_init).");
  m.def(
      "patch_init",
      [](py::object from_numpy, py::object slow_numpy, py::object slow_from_numpy,
         py::object slow_array) {
        // Kept for the life of the process (the Python functions are module-level).
        g_patch.from_numpy = from_numpy.release().ptr();
        g_patch.slow_numpy = slow_numpy.release().ptr();
        g_patch.slow_from_numpy = slow_from_numpy.release().ptr();
        g_patch.slow_array = slow_array.release().ptr();
        g_patch.force_name = PyUnicode_InternFromString("force");
        g_patch.dtype_kw = PyUnicode_InternFromString("dtype");
        g_patch.copy_kw = PyUnicode_InternFromString("copy");
        g_patch.requires_grad_name = PyUnicode_InternFromString("requires_grad");
      },
      py::arg("from_numpy"), py::arg("slow_numpy"), py::arg("slow_from_numpy"),
      py::arg("slow_array"),
      "Hand patched_numpy / patched_from_numpy torch's own from_numpy and the Python versions "
      "they defer to (call after fast_init).");
  m.def(
      "patched_numpy_method",
      [](py::object tensor_type) { return method_of(tensor_type, &g_patched_numpy_def); },
      py::arg("tensor_type"),
      "Tensor.numpy under torchnp.patch(), as a method descriptor of `tensor_type`.");
  m.def(
      "patched_array_method",
      [](py::object tensor_type) { return method_of(tensor_type, &g_patched_array_def); },
      py::arg("tensor_type"),
      "Tensor.__array__ under torchnp.patch(), as a method descriptor of `tensor_type`.");
  if (PyModule_AddFunctions(m.ptr(), g_fast_methods) != 0) throw py::error_already_set();
  m.def("convert", &convert, py::arg("src").noconvert(), py::arg("descr"), py::arg("dst_code"),
        py::arg("dst_swap"), py::arg("src_code"), py::arg("src_swap"), py::arg("layout"),
        py::arg("share"), py::arg("pool_bytes"),
        "Replay a memoised conversion decision: the source itself (share, layout fits) or a "
        "fresh array of descr in the layout (0 K, 1 C, 2 F, 3 A) holding the cast (from the "
        "output pool when it is pool_bytes or more).");
  m.def(
      "shareable",
      [](const py::handle& obj) {
        return py::isinstance<py::array>(obj) &&
               layout_class(py::reinterpret_borrow<py::array>(obj)) == 1;
      },
      py::arg("array"), "Whether torch.from_numpy can share this ndarray as it is (and torchnp would).");
  m.def("layout_class", &layout_class, py::arg("array").noconvert(),
        "How torch can hold the array: 1 as it is, 2 once dead strides are normalised (or a "
        "type only the policy maps), 0 not without a copy.");
  py::class_<ToNumpyReplay>(m, "ToNumpyReplay", "A memoised to_numpy decision (see _fast.py).")
      .def(py::init<py::object, py::object, py::object, py::dtype, int, bool, int, int, bool,
                    int64_t>())
      .def("__call__", &ToNumpyReplay::operator(), py::arg("tensor"))
      .def("capsule", [](py::object self) { return capsule_of<ToNumpyReplay>(self, kToNumpyCapsule); },
           "The replay as the capsule the memo holds.");
  m.def(
      "out_init",
      [](py::dict memo) {
        g_fast.to_numpy_out_memo = memo.release().ptr();  // kept for the process's life
      },
      py::arg("to_numpy_out_memo"),
      "Hand fast_to_numpy_out the out= memo dict of torchnp._fast (after fast_init).");
  py::class_<ToNumpyOutReplay>(m, "ToNumpyOutReplay", "A memoised to_numpy(out=) decision.")
      .def(py::init<py::object, int, bool, int>(), py::arg("stored"), py::arg("d_code"),
           py::arg("d_swap"), py::arg("s_code"))
      .def("__call__",
           [](const ToNumpyOutReplay& r, py::object tensor, py::array out) {
             return r.run(tensor.ptr(), out.ptr());
           },
           py::arg("tensor"), py::arg("out").noconvert())
      .def("capsule",
           [](py::object self) { return capsule_of<ToNumpyOutReplay>(self, kToNumpyOutCapsule); },
           "The replay as the capsule the memo holds.");
  py::class_<FromNumpyReplay>(m, "FromNumpyReplay", "A memoised from_numpy decision.")
      .def(py::init<py::object, py::dtype, py::object, py::object, int, bool, int, bool, bool,
                    int64_t>())
      .def("__call__", &FromNumpyReplay::operator(), py::arg("array").noconvert())
      .def("capsule",
           [](py::object self) { return capsule_of<FromNumpyReplay>(self, kFromNumpyCapsule); },
           "The replay as the capsule the memo holds.");
}

}  // namespace torchnp::bindings
