// Micro-benchmark of csrc/core on the PERFORMANCE.md cases (warm destination, median of 7), on
// the core's own thread pool. GB/s counts bytes read + bytes written.
// Usage: bench_core [threads] [variant] [name filter]; TORCHNP_BENCH_HUGE=src,dst, TORCHNP_BENCH_MISALIGN=1
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <sys/mman.h>

#include "core/torchnp_core.h"

using namespace torchnp::core;

namespace {

// Page-aligned anonymous memory; huge pages (madvise) when `huge`, as NumPy asks for large
// arrays; torch's CPU allocator does not, so its tensors sit on 4 KiB pages.
struct Buffer {
  char* p = nullptr;
  size_t n = 0;
  Buffer(size_t bytes, bool huge) : n(bytes) {
    void* m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    p = static_cast<char*>(m);
    madvise(p, n, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  }
  ~Buffer() { munmap(p, n); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

bool env_has(const char* var, const char* word) {
  const char* v = std::getenv(var);
  return v != nullptr && std::strstr(v, word) != nullptr;
}

struct Case {
  std::string name;
  std::vector<int64_t> shape, sstr, dstr;  // strides in elements
  ScalarType st, dt;
  bool sswap = false;
};

double run(const Case& c, int threads) {
  const int64_t es = itemsize(c.st), ed = itemsize(c.dt);
  int64_t n = 1;
  for (auto s : c.shape) n *= s;
  // TORCHNP_BENCH_HUGE=src,dst: huge pages for those operands (default: 4 KiB pages).
  Buffer src(n * es + 128, env_has("TORCHNP_BENCH_HUGE", "src"));
  Buffer dst(n * ed + 128, env_has("TORCHNP_BENCH_HUGE", "dst"));
  for (size_t i = 0; i < src.n; ++i) src.p[i] = static_cast<char>(i * 7 + (i >> 9));
  // 64-byte aligned like torch's CPU allocator, unless TORCHNP_BENCH_MISALIGN is set
  // (NumPy's large arrays come from malloc: 16-byte aligned).
  const uintptr_t mis = std::getenv("TORCHNP_BENCH_MISALIGN") ? 16 : 0;
  auto align = [mis](char* p) {
    return p + ((64 - reinterpret_cast<uintptr_t>(p) % 64) % 64) + mis;
  };
  std::vector<int64_t> sstr, dstr;
  for (auto s : c.sstr) sstr.push_back(s * es);
  for (auto s : c.dstr) dstr.push_back(s * ed);
  const Operand so{align(src.p), c.st, c.sswap, sstr};
  const Operand dop{align(dst.p), c.dt, false, dstr};
  const Plan plan = plan_copy(c.shape, dop, so, Negate::kNone, threads);
  execute(plan, so.data, dop.data);  // warm-up, touches the destination
  std::vector<double> t;
  for (int r = 0; r < 7; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    execute(plan, so.data, dop.data);
    auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  std::sort(t.begin(), t.end());
  const double gbs = static_cast<double>(n * (es + ed)) / t[3] / 1e9;
  std::printf("  %-34s %-40s %7.2f ms %6.2f GB/s\n", c.name.c_str(), plan_name(plan).c_str(),
              t[3] * 1e3, gbs);
  return gbs;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  if (argc > 2) set_cpu_variant(argv[2]);
  std::printf("threads %d, variant %s\n", threads, active_cpu_variant().c_str());
  const int64_t M = 16 << 20;
  using ST = ScalarType;
  const int64_t N = 8192, C = 3, HW = 224 * 224, B = 64;
  std::vector<Case> cases = {
      {"copy f32 64MiB", {M}, {1}, {1}, ST::kFloat32, ST::kFloat32},
      {"f64->f32", {M}, {1}, {1}, ST::kFloat64, ST::kFloat32},
      {"f32->f64", {M}, {1}, {1}, ST::kFloat32, ST::kFloat64},
      {"bf16->f32", {M}, {1}, {1}, ST::kBFloat16, ST::kFloat32},
      {"f32->bf16", {M}, {1}, {1}, ST::kFloat32, ST::kBFloat16},
      {"f16->f32", {M}, {1}, {1}, ST::kFloat16, ST::kFloat32},
      {"f32->f16", {M}, {1}, {1}, ST::kFloat32, ST::kFloat16},
      {">f32->f32 (byte swap)", {M}, {1}, {1}, ST::kFloat32, ST::kFloat32, true},
      {"f32->u8", {M}, {1}, {1}, ST::kFloat32, ST::kUInt8},
      {"transpose f32 8192^2", {N, N}, {1, N}, {N, 1}, ST::kFloat32, ST::kFloat32},
      {"NCHW->NHWC f32 (64,3,224,224)",
       {B, HW, C},
       {C * HW, 1, HW},
       {HW * C, C, 1},
       ST::kFloat32,
       ST::kFloat32},
      {"NCHW f32->NHWC u8", {B, HW, C}, {C * HW, 1, HW}, {HW * C, C, 1}, ST::kFloat32, ST::kUInt8},
      {"NHWC->NCHW f32", {B, C, HW}, {C * HW, 1, C}, {HW * C, HW, 1}, ST::kFloat32, ST::kFloat32},
      {"NCHW->NHWC u8", {B, HW, C}, {C * HW, 1, HW}, {HW * C, C, 1}, ST::kUInt8, ST::kUInt8},
      {"NHWC->NCHW u8", {B, C, HW}, {C * HW, 1, C}, {HW * C, HW, 1}, ST::kUInt8, ST::kUInt8},
      {"NHWC u8->NCHW f32", {B, C, HW}, {C * HW, 1, C}, {HW * C, HW, 1}, ST::kUInt8, ST::kFloat32},
      {"transpose f32 4096^2", {N / 2, N / 2}, {1, N / 2}, {N / 2, 1}, ST::kFloat32, ST::kFloat32},
      {"transpose f64 4096^2", {N / 2, N / 2}, {1, N / 2}, {N / 2, 1}, ST::kFloat64, ST::kFloat64},
      {"transpose f64->f32 4096^2",
       {N / 2, N / 2},
       {1, N / 2},
       {N / 2, 1},
       ST::kFloat64,
       ST::kFloat32},
      {"transpose f32->f16 4096^2",
       {N / 2, N / 2},
       {1, N / 2},
       {N / 2, 1},
       ST::kFloat32,
       ST::kFloat16},
      {"transpose bf16->f32 4096^2",
       {N / 2, N / 2},
       {1, N / 2},
       {N / 2, 1},
       ST::kBFloat16,
       ST::kFloat32},
      {"permute 4-D f32 (0,2,1,3) 64x64x64x64",
       {64, 64, 64, 64},
       {64 * 64 * 64, 64, 64 * 64, 1},
       {64 * 64 * 64, 64 * 64, 64, 1},
       ST::kFloat32,
       ST::kFloat32},
  };
  const char* only = argc > 3 ? argv[3] : nullptr;  // run only cases whose name contains it
  for (const auto& c : cases) {
    if (only == nullptr || c.name.find(only) != std::string::npos) run(c, threads);
  }
  if (only != nullptr) return 0;
  // Fixed cost: plan + execute of tiny copies (what every small conversion pays).
  {
    float a[64] = {}, b[64];
    const int64_t row_major[2] = {32, 4}, col_major[2] = {4, 32};
    for (auto [name, tr] : {std::pair<const char*, bool>{"tiny 8x8 f32 copy", false},
                            {"tiny 8x8 f32 transpose", true}}) {
      const Operand so{reinterpret_cast<char*>(a), ST::kFloat32, false,
                       tr ? col_major : row_major};
      const Operand dop{reinterpret_cast<char*>(b), ST::kFloat32, false, row_major};
      const int64_t shape[2] = {8, 8};
      const int reps = 200000;
      auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; ++r) {
        execute(plan_copy(shape, dop, so, Negate::kNone, threads), so.data, dop.data);
      }
      auto t1 = std::chrono::steady_clock::now();
      std::printf("  %-34s plan+execute %.0f ns\n", name,
                  std::chrono::duration<double>(t1 - t0).count() / reps * 1e9);
    }
  }
  return 0;
}
