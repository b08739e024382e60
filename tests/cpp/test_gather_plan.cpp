// The CUDA gather kernel's index math (csrc/cuda/gather_plan.h), compiled by the host compiler
// and checked against a naive reference on random layouts: dimension merging, the widest unit
// each item may move in, every item's source offset, and the contiguous (cudaMemcpyAsync) case.
// No CUDA needed: the kernel runs exactly these functions on the GPU.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include "cuda/gather_plan.h"
#include "check.h"

using namespace torchnp::cuda;

namespace {

uint64_t addr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

}  // namespace

int main(int argc, char** argv) {
  const int cases = argc > 1 && std::string_view(argv[1]) == "--quick" ? 20000 : 200000;
  std::mt19937_64 rng(1);
  const int64_t sizes[] = {1, 2, 4, 8, 16};
  std::vector<unsigned char> mem(1 << 22);
  for (unsigned char& c : mem) c = static_cast<unsigned char>(rng());
  int64_t units[17] = {};
  for (int iter = 0; iter < cases; ++iter) {
    GatherArgs a;
    a.itemsize = sizes[rng() % 5];
    a.ndim = static_cast<int>(rng() % 9);
    int64_t numel = 1;
    for (int d = 0; d < a.ndim; ++d) {
      a.shape[d] = rng() % 5 == 0 ? 1 : 1 + static_cast<int64_t>(rng() % 4);
      numel *= a.shape[d];
    }
    // Strides: contiguous runs (to merge), reversed, or random of any sign; sometimes not
    // multiples of the itemsize (a misaligned view).
    int64_t acc = a.itemsize;
    const bool misalign = rng() % 4 == 0;
    for (int d = a.ndim - 1; d >= 0; --d) {
      const int mode = static_cast<int>(rng() % 3);
      if (mode == 0) {
        a.strides[d] = acc;
      } else if (mode == 1) {
        a.strides[d] = -acc;
      } else {
        a.strides[d] = (static_cast<int64_t>(rng() % 64) - 32) * (misalign ? 1 : a.itemsize);
      }
      acc *= a.shape[d] + static_cast<int64_t>(rng() % 2);
      if (acc > 4096) acc = a.itemsize;
    }
    const uint64_t middle = addr(mem.data()) + (1 << 21);
    a.src = misalign ? middle + rng() % 16 : middle - middle % 16;
    a.begin = numel ? static_cast<int64_t>(rng() % static_cast<uint64_t>(numel)) : 0;
    a.end = a.begin + static_cast<int64_t>(rng() % static_cast<uint64_t>(numel - a.begin + 1));
    const int64_t n = a.end - a.begin;
    std::vector<unsigned char> out(static_cast<size_t>(n * a.itemsize) + 64), ref(out.size());
    const size_t pad = (16 - addr(out.data()) % 16) % 16 + (misalign ? rng() % 8 : 0);
    a.dst = addr(out.data() + pad);
    const unsigned char* src = mem.data() + (a.src - addr(mem.data()));
    for (int64_t e = a.begin; e < a.end; ++e) {  // the reference: C order of the given shape
      int64_t rest = e, off = 0;
      for (int d = a.ndim - 1; d >= 0; --d) {
        off += (rest % a.shape[d]) * a.strides[d];
        rest /= a.shape[d];
      }
      std::memcpy(ref.data() + pad + (e - a.begin) * a.itemsize, src + off,
                  static_cast<size_t>(a.itemsize));
    }
    // What launch_gather does with the plan, item by item.
    const GatherArgs c = coalesce(a);
    CHECK(c.ndim <= a.ndim, "coalescing added dimensions");
    const int64_t unit = move_unit(c);
    CHECK(unit > 0 && a.itemsize % unit == 0, "unit %lld for itemsize %lld",
          static_cast<long long>(unit), static_cast<long long>(a.itemsize));
    ++units[unit];
    for (int64_t i = 0; i < n; ++i) {
      const int64_t from = source_offset(c, c.begin + i);
      CHECK((c.src + static_cast<uint64_t>(from)) % static_cast<uint64_t>(unit) == 0 &&
                (c.dst + static_cast<uint64_t>(i * c.itemsize)) % static_cast<uint64_t>(unit) == 0,
            "item %lld misaligned for unit %lld", static_cast<long long>(i),
            static_cast<long long>(unit));
      std::memcpy(out.data() + pad + i * c.itemsize, src + from, static_cast<size_t>(c.itemsize));
    }
    if (c.ndim == 0 || (c.ndim == 1 && c.strides[0] == c.itemsize)) {  // the memcpy path
      const int64_t first = c.ndim == 0 ? 0 : c.begin * c.strides[0];
      CHECK(std::memcmp(src + first, ref.data() + pad, static_cast<size_t>(n * a.itemsize)) == 0,
            "contiguous source but not one block");
    }
    CHECK(std::memcmp(out.data() + pad, ref.data() + pad, static_cast<size_t>(n * a.itemsize)) == 0,
          "case %d: gathered bytes differ", iter);
  }
  if (g_failures) {
    std::printf("test_gather_plan: %d failure(s)\n", g_failures);
    return 1;
  }
  std::printf("test_gather_plan: %d cases passed; units 1:%lld 2:%lld 4:%lld 8:%lld 16:%lld\n", cases,
              static_cast<long long>(units[1]), static_cast<long long>(units[2]),
              static_cast<long long>(units[4]), static_cast<long long>(units[8]),
              static_cast<long long>(units[16]));
  return 0;
}
