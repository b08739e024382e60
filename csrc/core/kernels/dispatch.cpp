// Run-time choice of the kernel set: the best one this CPU supports, unless TORCHNP_CPU
// (read once, lazily) or set_cpu_variant says otherwise. TORCHNP_WITH_AVX2 is set by the build
// when the AVX2 kernel files are compiled in (x86-64 only).
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "core/kernels/kernel_set.h"

namespace torchnp::core {
namespace {

#if TORCHNP_WITH_AVX2
bool cpu_has_avx2() {
  // F16C and FMA come with every AVX2 CPU we target, but check them: the avx2 file uses both.
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
         __builtin_cpu_supports("fma");
}
#endif

const KernelSet* variant_by_name(const std::string& name) {
  // The CPU check comes first: avx2_kernels() itself runs AVX2 code.
  if (name.empty()) {
#if TORCHNP_WITH_AVX2
    if (cpu_has_avx2()) return &avx2_kernels();
#endif
    return &baseline_kernels();
  }
  if (name == "baseline") return &baseline_kernels();
  if (name == "avx2") {
#if TORCHNP_WITH_AVX2
    if (!cpu_has_avx2()) {
      throw std::invalid_argument("torchnp: this CPU lacks AVX2/F16C/FMA; use baseline");
    }
    return &avx2_kernels();
#else
    throw std::invalid_argument("torchnp: the avx2 kernels were not compiled in");
#endif
  }
  throw std::invalid_argument("torchnp: unknown CPU variant '" + name +
                              "' (expected baseline, avx2 or empty)");
}

std::atomic<const KernelSet*> g_active{nullptr};
std::once_flag g_env_once;

void init_from_env() {
  std::call_once(g_env_once, [] {
    const char* env = std::getenv("TORCHNP_CPU");
    const KernelSet* ks = nullptr;
    try {
      ks = variant_by_name(env ? std::string(env) : std::string());
    } catch (const std::invalid_argument& e) {
      // An unusable TORCHNP_CPU must not make every copy throw: say so once and fall back to
      // the best supported variant (set_cpu_variant raises for the same value).
      std::fprintf(stderr, "%s (from TORCHNP_CPU); using the best supported variant\n", e.what());
      ks = variant_by_name("");
    }
    const KernelSet* expected = nullptr;
    g_active.compare_exchange_strong(expected, ks);
  });
}

}  // namespace

const KernelSet& active_kernels() {
  const KernelSet* ks = g_active.load(std::memory_order_acquire);
  if (ks == nullptr) {
    init_from_env();
    ks = g_active.load(std::memory_order_acquire);
  }
  return *ks;
}

std::vector<std::string> compiled_cpu_variants() {
  std::vector<std::string> out{"baseline"};
#if TORCHNP_WITH_AVX2
  out.emplace_back("avx2");
#endif
  return out;
}

std::string active_cpu_variant() { return active_kernels().name; }

void set_cpu_variant(const std::string& name) {
  const KernelSet* ks = variant_by_name(name);
  init_from_env();  // so that a later first use does not override this choice
  g_active.store(ks, std::memory_order_release);
}

}  // namespace torchnp::core
