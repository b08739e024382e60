// The portable kernel set: compiled without ISA flags, runs on every x86-64 (and any other)
// CPU. Also the scalar reference the tests compare every other variant with.
#define TORCHNP_ISA baseline
#include <algorithm>
#include <cstring>

#include "kernel_table.h"

namespace torchnp::core {
namespace {

KernelSet make_baseline() {
  KernelSet ks{};
  ks.name = "baseline";
  baseline::fill_portable(ks);
  return ks;
}

}  // namespace

const KernelSet& baseline_kernels() {
  static const KernelSet ks = make_baseline();
  return ks;
}

void reference_cast(ScalarType src_type, bool src_swapped, const char* src, ScalarType dst_type,
                    bool dst_swapped, char* dst) {
  const auto& ks = baseline_kernels();
  // Element-wise and deliberately simple: swap into a native copy, cast, swap back.
  alignas(16) char in[16], out[16];
  const int64_t es = itemsize(src_type), ed = itemsize(dst_type);
  std::memcpy(in, src, static_cast<size_t>(es));
  if (src_swapped) {
    const int parts = swap_parts(src_type);
    const int64_t part = es / parts;
    for (int q = 0; q < parts; ++q) std::reverse(in + q * part, in + (q + 1) * part);
  }
  ks.strided[static_cast<int>(src_type)][static_cast<int>(dst_type)](in, 0, out, 0, 1);
  if (dst_swapped) {
    const int parts = swap_parts(dst_type);
    const int64_t part = ed / parts;
    for (int q = 0; q < parts; ++q) std::reverse(out + q * part, out + (q + 1) * part);
  }
  std::memcpy(dst, out, static_cast<size_t>(ed));
}

}  // namespace torchnp::core
