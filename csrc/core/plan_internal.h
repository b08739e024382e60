// What plan_copy and execute agree on: the shape classes of a canonical plan.
#pragma once

#include "copy.h"
#include "kernels.h"

namespace torchnp::core {

enum class CopyClass {
  kEmpty,      // numel == 0
  kMemcpy,     // one dim, unit strides, identical bytes on both sides
  kContig,     // one dim, unit strides, a cast or byte swap in between
  kTranspose,  // dst unit-stride on the last dim, src unit-stride on the one before (no swap)
  kStrided,    // anything else: an N-D loop around a strided 1-D inner loop
};

// A byte swap of 1-byte components (bool, int8, uint8, float8) is a no-op: the plan stores
// it as not swapped.
inline bool effective_swap(ScalarType t, bool swapped) {
  return swapped && itemsize(t) / swap_parts(t) > 1;
}

CopyClass classify(const CopyPlan& plan);

// Unsigned type of the given size, for bit-copy kernels; -1 for 16 bytes (complex128).
inline int bits_type(int64_t size) {
  switch (size) {
    case 1:
      return static_cast<int>(ScalarType::kUInt8);
    case 2:
      return static_cast<int>(ScalarType::kUInt16);
    case 4:
      return static_cast<int>(ScalarType::kUInt32);
    case 8:
      return static_cast<int>(ScalarType::kUInt64);
    default:
      return -1;
  }
}

// A transposing cast without a fused kernel runs as a fast bit-copy transpose into a buffer
// followed by a contiguous cast (execute.cpp, run_transpose_buffered).
inline bool transpose_via_buffer(const KernelSet& ks, ScalarType src, ScalarType dst) {
  const int s = static_cast<int>(src), d = static_cast<int>(dst);
  const int b = bits_type(itemsize(src));
  return s != d && !ks.transpose_vectorised[s][d] && b >= 0 && ks.transpose_vectorised[b][b];
}

// Largest number of canonical dims: more non-trivial dims than this would overflow numel.
inline constexpr int kMaxCanonicalDims = 64;

}  // namespace torchnp::core
