// The kernel sets plans choose from: one per instruction set, each a table of loops indexed by
// (source type, destination type). Byte swaps and sign flips are loops of their own that a plan
// chains with a cast through L1 buffers (InnerOp), which keeps the cast table at 21 x 21.
// Kernels know nothing about planning: plan.cpp picks entries, execute.cpp calls them.
#pragma once

#include "core/torchnp_core.h"

namespace torchnp::core {

struct KernelSet {
  const char* name;  // "baseline", "avx2"
  StridedLoop strided[kNumTypes][kNumTypes];
  // Unit strides on both sides (src_stride == itemsize(S), dst_stride == itemsize(D)).
  StridedLoop contig[kNumTypes][kNumTypes];
  // Same with non-temporal stores, for destinations much larger than the last-level cache;
  // nullptr where a kernel set has none.
  StridedLoop contig_streaming[kNumTypes][kNumTypes];
  TransposeLoop transpose[kNumTypes][kNumTypes];
  // True where `transpose` is a hand-vectorised kernel rather than the portable blocked loop.
  bool transpose_vectorised[kNumTypes][kNumTypes];
  // Non-temporal stores; needs a destination row stride that is a multiple of 64 bytes (rows
  // that do not start on a 32-byte boundary are written with normal stores). nullptr: none.
  TransposeLoop transpose_streaming[kNumTypes][kNumTypes];
  // Copies elements made of `parts` components of 2^log2_part bytes each, reversing the bytes
  // of every component: swap_*[log2_part - 1][parts - 1].
  StridedLoop swap_strided[3][2];
  StridedLoop swap_contig[3][2];
  StridedLoop swap_contig_streaming[3][2];
  // dst = the source element with the components of `Negate` mode m negated, same type:
  // negate_*[type][m - 1]. nullptr for bool (negation is undefined).
  StridedLoop negate_strided[kNumTypes][3];
  StridedLoop negate_contig[kNumTypes][3];
  StridedLoop negate_contig_streaming[kNumTypes][3];
  // Byte copy (n = bytes) with non-temporal stores; nullptr: plans use std::memcpy.
  StridedLoop copy_streaming;
};

const KernelSet& baseline_kernels();

#if TORCHNP_WITH_AVX2
// Builds (once) and returns the AVX2 kernel set. This runs AVX2 code: call it only after
// checking that the CPU has AVX2, F16C and FMA (dispatch.cpp does).
const KernelSet& avx2_kernels();
#endif

// The kernel set selected by TORCHNP_CPU / set_cpu_variant / the CPU's features.
const KernelSet& active_kernels();

// Casts one element with the baseline scalar code, after undoing a source byte swap and
// applying `negate`, then swaps for the destination (the reference the tests compare with).
void reference_cast(ScalarType src_type, bool src_swapped, const char* src, ScalarType dst_type,
                    bool dst_swapped, char* dst, Negate negate = Negate::kNone);

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

// log2 of a byte-swap component size (2, 4 or 8 bytes): the swap_* table's first index + 1.
inline int log2_part(int64_t part_bytes) { return part_bytes == 2 ? 1 : part_bytes == 4 ? 2 : 3; }

}  // namespace torchnp::core
