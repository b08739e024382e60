// What plan_copy and execute agree on: the shape classes of a canonical plan.
#pragma once

#include "copy.h"

namespace torchnp::core {

enum class CopyClass {
  kEmpty,      // numel == 0
  kMemcpy,     // one dim, unit strides, identical bytes on both sides
  kContig,     // one dim, unit strides, a cast or byte swap in between
  kTranspose,  // dst unit-stride on the last dim, src unit-stride on the one before (no swap)
  kStrided,    // anything else: an N-D loop around a strided 1-D inner loop
};

// A byte swap of 1-byte elements is a no-op: the plan stores it as not swapped.
inline bool effective_swap(ScalarType t, bool swapped) {
  return swapped && itemsize(t) > (t == ScalarType::kComplex32 || t == ScalarType::kComplex64 ||
                                           t == ScalarType::kComplex128
                                       ? 2
                                       : 1);
}

CopyClass classify(const CopyPlan& plan);

// Largest number of canonical dims: more non-trivial dims than this would overflow numel.
inline constexpr int kMaxCanonicalDims = 64;

}  // namespace torchnp::core
