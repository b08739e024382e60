// The index math of the gather kernel, as host-and-device inline functions: gather.cu runs them
// on the GPU, and a host compiler can compile this header alone (no CUDA headers needed), so the
// math is testable on a machine without a GPU against a naive reference.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define TORCHNP_HD __host__ __device__
#else
#define TORCHNP_HD
#endif

namespace torchnp::cuda {

inline constexpr int kGatherMaxDims = 8;

// Passed to the kernel by value (kernel parameters live in constant memory): no device-side
// copy of the shape has to be allocated, freed or ordered against the copy stream.
struct GatherArgs {
  uint64_t dst = 0;      // device address of the dense output
  uint64_t src = 0;      // device address of element (0, ..., 0)
  int64_t itemsize = 0;  // 1, 2, 4, 8 or 16 bytes
  int ndim = 0;          // 0..kGatherMaxDims
  int64_t shape[kGatherMaxDims] = {};
  int64_t strides[kGatherMaxDims] = {};  // bytes, any sign
  int64_t begin = 0, end = 0;            // element range, C order; 0 <= begin <= end <= numel
};

// Fewer dimensions, fewer 64-bit divisions per item: extent-1 dimensions carry no offset, and a
// dimension whose stride steps exactly over the next one's whole extent continues it. Neither
// changes which element has which C-order number.
inline GatherArgs coalesce(const GatherArgs& in) {
  GatherArgs out = in;
  out.ndim = 0;
  for (int d = 0; d < in.ndim; ++d) {
    if (in.shape[d] == 1) continue;
    if (out.ndim > 0) {
      const int last = out.ndim - 1;
      if (out.strides[last] == in.strides[d] * in.shape[d]) {
        out.shape[last] *= in.shape[d];
        out.strides[last] = in.strides[d];
        continue;
      }
    }
    out.shape[out.ndim] = in.shape[d];
    out.strides[out.ndim] = in.strides[d];
    ++out.ndim;
  }
  return out;
}

// The widest power of two, at most itemsize, that the source and output addresses and every
// stride are multiples of: the width each item moves in. A misaligned global load is a sticky
// device error that would poison the whole CUDA context (torch's included), so alignment, not
// itemsize alone, decides. Expects a coalesced `a` (no extent-1 dimension whose stride could be
// anything).
inline int64_t move_unit(const GatherArgs& a) {
  uint64_t bits = a.src | a.dst;
  for (int d = 0; d < a.ndim; ++d) bits |= static_cast<uint64_t>(a.strides[d]);
  int64_t unit = a.itemsize;
  while (unit > 1 && (bits & static_cast<uint64_t>(unit - 1)) != 0) unit /= 2;
  return unit;
}

// The byte offset from element (0, ..., 0) of the element with C-order number `n` (< numel).
// Innermost dimension first; the outermost needs no division, since n < numel keeps it in range.
TORCHNP_HD inline int64_t source_offset(const GatherArgs& a, int64_t n) {
  int64_t offset = 0;
  for (int d = a.ndim - 1; d > 0; --d) {
    const int64_t q = n / a.shape[d];
    offset += (n - q * a.shape[d]) * a.strides[d];
    n = q;
  }
  if (a.ndim > 0) offset += n * a.strides[0];
  return offset;
}

}  // namespace torchnp::cuda
