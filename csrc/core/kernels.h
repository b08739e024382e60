// The kernel sets the executor chooses from: one per instruction set, each a table of
// loops indexed by (source type, destination type). Byte-swapped operands are handled by the
// executor around these loops (swap into a small buffer, NumPy-style), which keeps the
// table at 21 x 21 entries and the compile time reasonable.
// Kernels know nothing about planning; execute.cpp drives them.
#pragma once

#include <cstdint>

#include "copy.h"

namespace torchnp::core {

inline constexpr int kNumTypes = static_cast<int>(ScalarType::kNumScalarTypes);

// dst[k * dst_stride] = cast(src[k * src_stride]) for k in [0, n). Strides in bytes, any sign.
using StridedLoop = void (*)(const char* src, int64_t src_stride, char* dst, int64_t dst_stride,
                             int64_t n);

// 2-D transpose with the cast fused: for i in [0, ni), j in [0, nj):
//   dst[i * dst_stride_i + j * sizeof(D)] = cast(src[i * sizeof(S) + j * src_stride_j]).
// The source is unit-stride along i, the destination along j.
using TransposeLoop = void (*)(const char* src, int64_t src_stride_j, char* dst,
                               int64_t dst_stride_i, int64_t ni, int64_t nj);

struct KernelSet {
  const char* name;  // "baseline", "avx2"
  StridedLoop strided[kNumTypes][kNumTypes];
  // Unit strides on both sides (src_stride == itemsize(S), dst_stride == itemsize(D)).
  StridedLoop contig[kNumTypes][kNumTypes];
  TransposeLoop transpose[kNumTypes][kNumTypes];
  // Same with non-temporal stores, for destinations much larger than the last-level cache;
  // needs a 64-byte aligned destination base and row stride. nullptr where not provided.
  TransposeLoop transpose_streaming[kNumTypes][kNumTypes];
  // True where `transpose` is a hand-vectorised kernel rather than the portable blocked loop.
  bool transpose_vectorised[kNumTypes][kNumTypes];
  // Copies elements made of `parts` components of 2^log2_part bytes each, reversing the
  // bytes of every component: swap[log2_part - 1][parts - 1] (strided and unit-stride).
  StridedLoop swap_strided[3][2];
  StridedLoop swap_contig[3][2];
  // Unit-stride loops with non-temporal stores, for destinations much larger than the
  // last-level cache; nullptr where a kernel set has none (then `contig` runs).
  StridedLoop contig_streaming[kNumTypes][kNumTypes];
  StridedLoop swap_contig_streaming[3][2];
  // Byte copy (n = bytes) with non-temporal stores; nullptr: use std::memcpy.
  StridedLoop copy_streaming;
};

const KernelSet& baseline_kernels();

// Set in kernels_avx2.cpp when that file is part of the build. Plain data: reading it is safe
// on any CPU, unlike calling into the file.
extern const bool kAvx2CompiledIn;
// Builds (once) and returns the AVX2 kernel set. This runs AVX2 code: call it only after
// checking that the CPU has AVX2, F16C and FMA (cpu_dispatch.cpp does).
const KernelSet& avx2_kernels();

// The kernel set selected by TORCHNP_CPU / set_cpu_variant / the CPU's features.
const KernelSet& active_kernels();

// Casts one element with the baseline scalar code (the reference the tests compare with).
void reference_cast(ScalarType src_type, bool src_swapped, const char* src, ScalarType dst_type,
                    bool dst_swapped, char* dst);

// Component layout of an element for byte swapping: 1 or 2 parts of 1, 2, 4 or 8 bytes.
inline int swap_parts(ScalarType t) {
  return (t == ScalarType::kComplex32 || t == ScalarType::kComplex64 ||
          t == ScalarType::kComplex128)
             ? 2
             : 1;
}

}  // namespace torchnp::core
