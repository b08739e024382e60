// The portable kernel set: compiled without ISA flags, runs on every CPU. Also the scalar
// reference the tests compare every other variant with.
#define TORCHNP_ISA baseline
#include <algorithm>
#include <cstring>

#include "core/kernels/portable-inl.h"

namespace torchnp::core {
namespace {

KernelSet make_baseline() {
  KernelSet ks{};
  ks.name = "baseline";
  baseline::fill_portable(ks);
  return ks;
}

void swap_components(ScalarType t, char* p) {
  const int parts = components(t);
  const int64_t part = itemsize(t) / parts;
  for (int q = 0; q < parts; ++q) std::reverse(p + q * part, p + (q + 1) * part);
}

}  // namespace

const KernelSet& baseline_kernels() {
  static const KernelSet ks = make_baseline();
  return ks;
}

void reference_cast(ScalarType src_type, bool src_swapped, const char* src, ScalarType dst_type,
                    bool dst_swapped, char* dst, Negate negate) {
  const auto& ks = baseline_kernels();
  // Element-wise and deliberately simple: swap into a native copy, flip signs, cast, swap back.
  alignas(16) char in[16], out[16];
  const int64_t es = itemsize(src_type), ed = itemsize(dst_type);
  std::memcpy(in, src, static_cast<size_t>(es));
  if (src_swapped) swap_components(src_type, in);
  const int s = static_cast<int>(src_type);
  int mode = static_cast<int>(negate);
  if (components(src_type) == 1) {  // a real type: only a real part (conj changes nothing)
    mode = (negate == Negate::kReal || negate == Negate::kBoth) ? static_cast<int>(Negate::kReal) : 0;
  }
  if (mode != 0) ks.negate_strided[s][mode - 1](in, 0, in, 0, 1);
  ks.strided[s][static_cast<int>(dst_type)](in, 0, out, 0, 1);
  if (dst_swapped) swap_components(dst_type, out);
  std::memcpy(dst, out, static_cast<size_t>(ed));
}

}  // namespace torchnp::core
