// plan_copy: reduce a strided copy to canonical form and pick the kernel class
// (HPTT-style "plan once, execute many"; NumPy's dimension coalescing).
#include <algorithm>
#include <array>
#include <cstdlib>
#include <numeric>
#include <stdexcept>

#include "kernels.h"
#include "plan_internal.h"

namespace torchnp::core {
namespace {

const char* short_name(ScalarType t) {
  static constexpr const char* kNames[] = {
      "b1",  "i8",   "i16",    "i32",  "i64",      "u8",       "u16",
      "u32", "u64",  "f16",    "bf16", "f32",      "f64",      "c32",
      "c64", "c128", "e4m3fn", "e5m2", "e4m3fnuz", "e5m2fnuz", "e8m0fnu"};
  return kNames[static_cast<int>(t)];
}

struct Dim {
  int64_t size, src, dst;
};

bool valid_dtype(ScalarType t) {
  return static_cast<int>(t) < kNumTypes;  // the enum is unsigned
}

}  // namespace

CopyClass classify(const CopyPlan& p) {
  if (p.numel == 0) return CopyClass::kEmpty;
  const size_t nd = p.shape.size();
  const int64_t es = itemsize(p.src_dtype), ed = itemsize(p.dst_dtype);
  if (nd == 1 && p.src_strides[0] == es && p.dst_strides[0] == ed) {
    return (p.src_dtype == p.dst_dtype && p.src_swapped == p.dst_swapped) ? CopyClass::kMemcpy
                                                                          : CopyClass::kContig;
  }
  if (nd >= 2 && p.dst_strides[nd - 1] == ed && p.src_strides[nd - 1] != es &&
      p.src_strides[nd - 2] == es && !p.src_swapped && !p.dst_swapped) {
    return CopyClass::kTranspose;
  }
  return CopyClass::kStrided;
}

CopyPlan plan_copy(std::span<const int64_t> shape, const Operand& dst, const Operand& src) {
  if (!valid_dtype(dst.dtype) || !valid_dtype(src.dtype)) {
    throw std::invalid_argument("torchnp: unknown dtype code");
  }
  if (dst.strides.size() != shape.size() || src.strides.size() != shape.size()) {
    throw std::invalid_argument("torchnp: strides and shape have different lengths");
  }
  CopyPlan p;
  p.src_dtype = src.dtype;
  p.dst_dtype = dst.dtype;
  p.src_swapped = effective_swap(src.dtype, src.byteswapped);
  p.dst_swapped = effective_swap(dst.dtype, dst.byteswapped);
  if (p.src_dtype == p.dst_dtype && p.src_swapped == p.dst_swapped) {
    p.src_swapped = p.dst_swapped = false;  // same bytes on both sides: a plain copy
  }
  const int64_t es = itemsize(src.dtype), ed = itemsize(dst.dtype);

  int64_t numel = 1;
  bool empty = false;
  for (int64_t s : shape) {
    if (s < 0) throw std::invalid_argument("torchnp: negative dimension size");
    if (s == 0) empty = true;
  }
  // Fixed storage: more than kMaxCanonicalDims dims of size >= 2 would overflow numel first.
  std::array<Dim, kMaxCanonicalDims> dims;
  size_t nd = 0;
  const char* src_base = src.data;
  char* dst_base = dst.data;
  if (!empty) {
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 1) continue;  // a size-1 dim's stride is meaningless
      if (__builtin_mul_overflow(numel, shape[i], &numel)) {
        throw std::invalid_argument("torchnp: number of elements overflows int64");
      }
      Dim d{shape[i], src.strides[i], dst.strides[i]};
      if (d.dst < 0) {
        // Walk this dim backwards on both sides: same pairs of elements, ascending dst.
        // Pointer arithmetic is done on integers: the base may move outside [data, data+n).
        dst_base =
            reinterpret_cast<char*>(reinterpret_cast<intptr_t>(dst_base) + (d.size - 1) * d.dst);
        src_base = reinterpret_cast<const char*>(reinterpret_cast<intptr_t>(src_base) +
                                                 (d.size - 1) * d.src);
        d.dst = -d.dst;
        d.src = -d.src;
      }
      dims[nd++] = d;
    }
  }
  p.src_base = src_base;
  p.dst_base = dst_base;
  if (empty) {
    p.numel = 0;
    p.shape = {0};
    p.src_strides = {es};
    p.dst_strides = {ed};
    p.kernel = "empty";
    return p;
  }
  p.numel = numel;

  // Loop order: outermost = largest dst stride; ties broken by the source's stride, so that
  // the inner loops walk both operands as contiguously as possible.
  // (Insertion sort: stable, allocation-free, and the dim count is small.)
  auto outer_first = [](const Dim& a, const Dim& b) {
    if (a.dst != b.dst) return a.dst > b.dst;
    return std::llabs(a.src) > std::llabs(b.src);
  };
  for (size_t i = 1; i < nd; ++i) {
    const Dim d = dims[i];
    size_t k = i;
    for (; k > 0 && outer_first(d, dims[k - 1]); --k) dims[k] = dims[k - 1];
    dims[k] = d;
  }

  // Merge an outer dim into the next inner one when both operands step through it as one run.
  std::array<Dim, kMaxCanonicalDims> out;
  size_t n_out = 0;
  for (size_t i = 0; i < nd; ++i) {
    Dim d = dims[i];
    while (i + 1 < nd) {
      const Dim& inner = dims[i + 1];
      if (d.dst == inner.dst * inner.size && d.src == inner.src * inner.size) {
        d = Dim{d.size * inner.size, inner.src, inner.dst};
        ++i;
      } else {
        break;
      }
    }
    out[n_out++] = d;
  }
  if (n_out == 0) out[n_out++] = Dim{1, es, ed};  // 0-d or all size-1: one element

  // Transpose class: the destination is unit-stride innermost; bring the dim that is
  // unit-stride in the source right before it (outer loop order is free).
  const size_t m = n_out;
  if (m >= 2 && out[m - 1].dst == ed && out[m - 1].src != es && out[m - 2].src != es) {
    for (size_t k = m - 1; k-- > 0;) {
      if (out[k].src == es) {
        const Dim t = out[k];
        for (size_t q = k; q + 2 < m; ++q) out[q] = out[q + 1];
        out[m - 2] = t;
        break;
      }
    }
  }

  p.shape.resize(m);
  p.src_strides.resize(m);
  p.dst_strides.resize(m);
  for (size_t k = 0; k < m; ++k) {
    p.shape[k] = out[k].size;
    p.src_strides[k] = out[k].src;
    p.dst_strides[k] = out[k].dst;
  }

  // Kernel name, NumPy-like grammar: <layout>_<src>_to_<dst>/<cpu variant>; '>' marks a
  // byte-swapped operand.
  const KernelSet& ks = active_kernels();
  auto name = [&](const char* layout) {
    // Appends, no formatting: this runs for every copy, small ones included.
    std::string k;
    k.reserve(64);
    k += layout;
    if (p.src_swapped) k += '>';
    k += short_name(p.src_dtype);
    k += "_to_";
    if (p.dst_swapped) k += '>';
    k += short_name(p.dst_dtype);
    k += '/';
    k += ks.name;
    return k;
  };
  switch (classify(p)) {
    case CopyClass::kEmpty:
      p.kernel = "empty";
      break;
    case CopyClass::kMemcpy:
      p.kernel = "memcpy";
      break;
    case CopyClass::kContig:
      p.kernel = name("contig_");
      break;
    case CopyClass::kTranspose:
      p.kernel = name(transpose_via_buffer(ks, p.src_dtype, p.dst_dtype) ? "transpose_buffered_"
                                                                         : "transpose_tile_");
      break;
    case CopyClass::kStrided: {
      static constexpr const char* kStrided[] = {
          "strided_0d_", "strided_1d_", "strided_2d_", "strided_3d_", "strided_4d_",
          "strided_5d_", "strided_6d_", "strided_7d_", "strided_8d_", "strided_nd_"};
      p.kernel = name(kStrided[std::min<size_t>(p.shape.size(), 9)]);
      break;
    }
  }
  return p;
}

}  // namespace torchnp::core
