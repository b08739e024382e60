// C++ tests of csrc/core that need no Python:
//  1. NumPy / ml_dtypes oracle (gen_oracle.py): every dtype pair, contiguous, reversed-strided
//     and byte-swapped, on every compiled CPU variant;
//  2. exhaustive float16 / bfloat16 round trips through float32;
//  3. random shapes / strides (negative, zero, unaligned bases, byte-swapped operands) against
//     the element-wise reference, on every variant, serial and threaded;
//  4. plan canonicalisation and argument errors.
// Usage: test_core ORACLE_FILE [--big]
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "copy.h"
#include "kernels.h"

using namespace torchnp::core;

namespace {

int g_failures = 0;
#define CHECK(cond, ...)                                            \
  do {                                                              \
    if (!(cond)) {                                                  \
      if (++g_failures < 50) {                                      \
        std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        std::printf(__VA_ARGS__);                                   \
        std::printf("\n");                                          \
      }                                                             \
    }                                                               \
  } while (0)

ScalarType T(int i) { return static_cast<ScalarType>(i); }

// Compiled-in variants this CPU can run (tests cover each of them).
std::vector<std::string> usable_cpu_variants() {
  std::vector<std::string> out;
  for (const auto& v : compiled_cpu_variants()) {
    try {
      set_cpu_variant(v);
      out.push_back(v);
    } catch (const std::invalid_argument&) {
      std::printf("variant %s not supported by this CPU: skipped\n", v.c_str());
    }
  }
  set_cpu_variant("");
  return out;
}

bool is_float_type(ScalarType t) {
  int i = static_cast<int>(t);
  return (i >= 9 && i <= 15) || i >= 16;
}

// NaN test on one stored element of a floating type (any component).
bool part_is_nan(ScalarType t, const unsigned char* p) {
  switch (t) {
    case ScalarType::kFloat16:
    case ScalarType::kComplex32: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return (v & 0x7fff) > 0x7c00;
    }
    case ScalarType::kBFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return (v & 0x7fff) > 0x7f80;
    }
    case ScalarType::kFloat32:
    case ScalarType::kComplex64: {
      float v;
      std::memcpy(&v, p, 4);
      return std::isnan(v);
    }
    case ScalarType::kFloat64:
    case ScalarType::kComplex128: {
      double v;
      std::memcpy(&v, p, 8);
      return std::isnan(v);
    }
    case ScalarType::kFloat8_e4m3fn:
      return (*p & 0x7f) == 0x7f;
    case ScalarType::kFloat8_e5m2:
      return (*p & 0x7f) > 0x7c;
    case ScalarType::kFloat8_e4m3fnuz:
    case ScalarType::kFloat8_e5m2fnuz:
      return *p == 0x80;
    case ScalarType::kFloat8_e8m0fnu:
      return *p == 0xff;
    default:
      return false;
  }
}

// Equal bits, or NaN in the same components (NaN payloads may differ).
bool same_value(ScalarType t, const unsigned char* a, const unsigned char* b) {
  const int64_t n = itemsize(t);
  if (std::memcmp(a, b, n) == 0) return true;
  if (!is_float_type(t)) return false;
  const int parts = swap_parts(t);
  const int64_t part = n / parts;
  for (int q = 0; q < parts; ++q) {
    const unsigned char* pa = a + q * part;
    const unsigned char* pb = b + q * part;
    if (std::memcmp(pa, pb, part) == 0) continue;
    if (!(part_is_nan(t, pa) && part_is_nan(t, pb))) return false;
  }
  return true;
}

void swap_elements(ScalarType t, unsigned char* p, int64_t n) {
  const int64_t es = itemsize(t);
  const int parts = swap_parts(t);
  const int64_t part = es / parts;
  if (part == 1) return;
  for (int64_t k = 0; k < n * parts; ++k) std::reverse(p + k * part, p + (k + 1) * part);
}

std::string hex(const unsigned char* p, int64_t n) {
  std::string s;
  char buf[4];
  for (int64_t i = n - 1; i >= 0; --i) {
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    s += buf;
  }
  return s;
}

ParallelFor threaded_for(int nthreads) {
  return [nthreads](int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
    if (n <= grain || nthreads <= 1) {
      body(0, n);
      return;
    }
    std::vector<std::thread> ts;
    const int64_t per = (n + nthreads - 1) / nthreads;
    for (int t = 0; t < nthreads; ++t) {
      const int64_t b = t * per, e = std::min(n, b + per);
      if (b < e) ts.emplace_back([&body, b, e] { body(b, e); });
    }
    for (auto& th : ts) th.join();
  };
}

// Runs every unit on its own, in reverse order: catches chunking bugs that a 0..n loop hides.
ParallelFor shredding_for() {
  return [](int64_t n, int64_t, const std::function<void(int64_t, int64_t)>& body) {
    for (int64_t k = n - 1; k >= 0; --k) body(k, k + 1);
  };
}

// ---- 1. oracle -------------------------------------------------------------------------------

struct Record {
  int s, d;
  int64_t n;
  std::vector<unsigned char> in, out, mask;
};

void copy_1d(ScalarType st, bool sswap, const unsigned char* src, int64_t sstride, ScalarType dt,
             bool dswap, unsigned char* dst, int64_t dstride, int64_t n, const ParallelFor& pf) {
  Operand so, dop;
  so.data = const_cast<char*>(reinterpret_cast<const char*>(src));
  so.dtype = st;
  so.byteswapped = sswap;
  so.strides = {sstride};
  dop.data = reinterpret_cast<char*>(dst);
  dop.dtype = dt;
  dop.byteswapped = dswap;
  dop.strides = {dstride};
  const int64_t shape[1] = {n};
  execute(plan_copy(shape, dop, so), pf);
}

void check_oracle(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::printf("cannot open oracle %s\n", path.c_str());
    ++g_failures;
    return;
  }
  int64_t checked = 0, skipped_masked = 0;
  std::vector<int> bad_pairs(kNumTypes * kNumTypes, 0);
  const auto variants = usable_cpu_variants();
  while (true) {
    unsigned char hdr[10];
    if (!f.read(reinterpret_cast<char*>(hdr), 10)) break;
    Record r;
    r.s = hdr[0];
    r.d = hdr[1];
    std::memcpy(&r.n, hdr + 2, 8);
    if (r.n == 0) continue;
    const int64_t es = itemsize(T(r.s)), ed = itemsize(T(r.d));
    r.in.resize(r.n * es);
    r.out.resize(r.n * ed);
    r.mask.resize(r.n);
    f.read(reinterpret_cast<char*>(r.in.data()), r.n * es);
    f.read(reinterpret_cast<char*>(r.out.data()), r.n * ed);
    f.read(reinterpret_cast<char*>(r.mask.data()), r.n);
    for (const auto& v : variants) {
      set_cpu_variant(v);  // usable_cpu_variants() only
      for (int mode = 0; mode < 4; ++mode) {
        // mode 0: contiguous; 1: reversed source (negative stride); 2: both byte-swapped;
        // 3: reversed + strided destination.
        std::vector<unsigned char> src(r.in), got(r.n * ed * 2, 0xcd);
        const bool swapped = mode == 2;
        if (swapped) swap_elements(T(r.s), src.data(), r.n);
        if (mode == 0 || mode == 2) {
          copy_1d(T(r.s), swapped, src.data(), es, T(r.d), swapped, got.data(), ed, r.n,
                  threaded_for(2));
        } else {
          copy_1d(T(r.s), false, src.data() + (r.n - 1) * es, -es, T(r.d), false,
                  got.data() + (mode == 3 ? (r.n - 1) * ed * 2 : 0), mode == 3 ? -2 * ed : ed, r.n,
                  serial_for());
        }
        for (int64_t j = 0; j < r.n; ++j) {  // j = input index
          const int64_t pos = mode == 3 ? 2 * j : mode == 1 ? r.n - 1 - j : j;
          unsigned char* g = got.data() + pos * ed;
          if (swapped) swap_elements(T(r.d), g, 1);
          if (!r.mask[j]) {
            ++skipped_masked;
            continue;
          }
          const unsigned char* w = r.out.data() + j * ed;
          ++checked;
          if (!same_value(T(r.d), w, g)) {
            if (bad_pairs[r.s * kNumTypes + r.d]++ < 3) {
              std::printf("oracle mismatch %s -> %s [%s mode %d]: in %s want %s got %s\n",
                          scalar_type_name(T(r.s)), scalar_type_name(T(r.d)), v.c_str(), mode,
                          hex(r.in.data() + j * es, es).c_str(), hex(w, ed).c_str(),
                          hex(g, ed).c_str());
            }
            ++g_failures;
          }
        }
      }
    }
  }
  set_cpu_variant("");
  int npairs = 0;
  for (int i = 0; i < kNumTypes * kNumTypes; ++i) {
    if (bad_pairs[i]) {
      ++npairs;
      std::printf("  pair %s -> %s: %d mismatches\n", scalar_type_name(T(i / kNumTypes)),
                  scalar_type_name(T(i % kNumTypes)), bad_pairs[i]);
    }
  }
  std::printf("oracle: %lld element checks, %lld masked (documented), %d bad pairs\n",
              static_cast<long long>(checked), static_cast<long long>(skipped_masked), npairs);
}

// ---- 2. exhaustive 16-bit round trips ---------------------------------------------------------

void check_roundtrips() {
  for (const auto& v : usable_cpu_variants()) {
    set_cpu_variant(v);
    for (ScalarType t : {ScalarType::kFloat16, ScalarType::kBFloat16}) {
      std::vector<uint16_t> in(65536), back(65536);
      std::vector<float> mid(65536);
      for (int i = 0; i < 65536; ++i) in[i] = static_cast<uint16_t>(i);
      copy_1d(t, false, reinterpret_cast<unsigned char*>(in.data()), 2, ScalarType::kFloat32, false,
              reinterpret_cast<unsigned char*>(mid.data()), 4, 65536, serial_for());
      copy_1d(ScalarType::kFloat32, false, reinterpret_cast<unsigned char*>(mid.data()), 4, t,
              false, reinterpret_cast<unsigned char*>(back.data()), 2, 65536, serial_for());
      int bad = 0;
      for (int i = 0; i < 65536; ++i) {
        const bool nan = part_is_nan(t, reinterpret_cast<unsigned char*>(&in[i]));
        if (nan) {
          bad += !std::isnan(mid[i]) || !part_is_nan(t, reinterpret_cast<unsigned char*>(&back[i]));
        } else {
          bad += back[i] != in[i];
        }
      }
      CHECK(bad == 0, "%s round trip via f32 [%s]: %d bad", scalar_type_name(t), v.c_str(), bad);
    }
  }
  set_cpu_variant("");
}

// ---- 3. random layouts against the element-wise reference --------------------------------------

struct Layout {
  std::vector<int64_t> shape, sstr, dstr;
  int64_t soff = 0, doff = 0;  // byte offset of element 0 inside the buffers
  int64_t sbytes = 0, dbytes = 0;
};

// Random layout: a random permutation of C-contiguous dims (with gaps) for each operand,
// random negative dims, zero source strides, unaligned bases.
Layout random_layout(std::mt19937_64& rng, int64_t es, int64_t ed, int max_nd, int max_size,
                     bool allow_zero_src) {
  Layout L;
  const int nd = static_cast<int>(rng() % (max_nd + 1));
  for (int i = 0; i < nd; ++i) L.shape.push_back(static_cast<int64_t>(rng() % (max_size + 1)));
  if (rng() % 8 != 0) {
    for (auto& s : L.shape) s = std::max<int64_t>(s, 1);  // mostly non-empty
  }
  auto make = [&](int64_t e, bool is_src, std::vector<int64_t>& str, int64_t& off, int64_t& bytes) {
    std::vector<int> perm(nd);
    for (int i = 0; i < nd; ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    str.assign(nd, 0);
    int64_t step = e * (1 + (rng() % 4 == 0 ? static_cast<int64_t>(rng() % 3) : 0));
    for (int k = nd - 1; k >= 0; --k) {
      const int i = perm[k];
      str[i] = step;
      step *= std::max<int64_t>(L.shape[i], 1) + (rng() % 5 == 0 ? 1 : 0);
    }
    int64_t lo = 0, hi = 0;
    for (int i = 0; i < nd; ++i) {
      if (is_src && allow_zero_src && rng() % 6 == 0) str[i] = 0;
      if (rng() % 3 == 0) str[i] = -str[i];
      const int64_t span = (std::max<int64_t>(L.shape[i], 1) - 1) * str[i];
      (span < 0 ? lo : hi) += span;
    }
    off = -lo + static_cast<int64_t>(rng() % 3);  // unaligned on purpose
    bytes = off + hi + e + 8;
  };
  make(es, true, L.sstr, L.soff, L.sbytes);
  make(ed, false, L.dstr, L.doff, L.dbytes);
  return L;
}

void run_reference(const Layout& L, ScalarType st, bool ss, const unsigned char* src, ScalarType dt,
                   bool ds, unsigned char* dst) {
  const int nd = static_cast<int>(L.shape.size());
  int64_t numel = 1;
  for (auto s : L.shape) numel *= s;
  std::vector<int64_t> idx(nd, 0);
  for (int64_t e = 0; e < numel; ++e) {
    int64_t so = L.soff, dof = L.doff;
    for (int i = 0; i < nd; ++i) {
      so += idx[i] * L.sstr[i];
      dof += idx[i] * L.dstr[i];
    }
    reference_cast(st, ss, reinterpret_cast<const char*>(src + so), dt, ds,
                   reinterpret_cast<char*>(dst + dof));
    for (int i = nd - 1; i >= 0; --i) {
      if (++idx[i] < L.shape[i]) break;
      idx[i] = 0;
    }
  }
}

void check_layout(const Layout& L, ScalarType st, bool ss, ScalarType dt, bool ds,
                  std::mt19937_64& rng, const ParallelFor& pf, const char* what) {
  std::vector<unsigned char> src(L.sbytes);
  for (auto& b : src) b = static_cast<unsigned char>(rng());
  std::vector<unsigned char> want(L.dbytes, 0x5a), got(L.dbytes, 0x5a);
  run_reference(L, st, ss, src.data(), dt, ds, want.data());
  Operand so, dop;
  so.data = reinterpret_cast<char*>(src.data() + L.soff);
  so.dtype = st;
  so.byteswapped = ss;
  so.strides = L.sstr;
  dop.data = reinterpret_cast<char*>(got.data() + L.doff);
  dop.dtype = dt;
  dop.byteswapped = ds;
  dop.strides = L.dstr;
  const CopyPlan plan = plan_copy(L.shape, dop, so);
  execute(plan, pf);
  // Compare element-wise where NaNs may differ in payload, bytewise elsewhere (untouched).
  bool ok = true;
  const int64_t ed = itemsize(dt);
  for (int64_t b = 0; b < L.dbytes && ok; ++b) {
    if (want[b] == got[b]) continue;
    // find the element containing b: compare as values
    std::vector<unsigned char> w(ed), g(ed);
    const int64_t start = b - ((b - L.doff) % ed + ed) % ed;
    std::memcpy(w.data(), want.data() + start, ed);
    std::memcpy(g.data(), got.data() + start, ed);
    if (ds) {
      swap_elements(dt, w.data(), 1);
      swap_elements(dt, g.data(), 1);
    }
    if (!same_value(dt, w.data(), g.data())) ok = false;
    b = start + ed - 1;
  }
  if (!ok) {
    std::string sh;
    for (size_t i = 0; i < L.shape.size(); ++i) {
      sh += std::to_string(L.shape[i]) + ":" + std::to_string(L.sstr[i]) + "/" +
            std::to_string(L.dstr[i]) + " ";
    }
    CHECK(ok, "%s %s%s -> %s%s kernel %s [%s] shape:src/dst strides %s", what, ss ? ">" : "",
          scalar_type_name(st), ds ? ">" : "", scalar_type_name(dt), plan.kernel.c_str(),
          active_cpu_variant().c_str(), sh.c_str());
  }
}

void check_random_layouts() {
  std::mt19937_64 rng(42);
  for (const auto& v : usable_cpu_variants()) {
    set_cpu_variant(v);
    for (int s = 0; s < kNumTypes; ++s) {
      for (int d = 0; d < kNumTypes; ++d) {
        for (int rep = 0; rep < 6; ++rep) {
          const bool ss = rng() % 4 == 0, ds = rng() % 4 == 0;
          Layout L = random_layout(rng, itemsize(T(s)), itemsize(T(d)), 5, 6, true);
          check_layout(L, T(s), ss, T(d), ds, rng, rep % 2 ? shredding_for() : serial_for(),
                       "random");
        }
      }
    }
    // Larger layouts through the threaded path, hot pairs.
    const int hot[][2] = {{11, 11}, {12, 11}, {11, 12}, {10, 11}, {11, 10}, {9, 11}, {11, 9},
                          {11, 5},  {5, 11},  {12, 9},  {3, 3},   {14, 15}, {1, 1},  {13, 14}};
    for (auto& pr : hot) {
      for (int rep = 0; rep < 8; ++rep) {
        const bool ss = rng() % 4 == 0, ds = rng() % 4 == 0;
        Layout L = random_layout(rng, itemsize(T(pr[0])), itemsize(T(pr[1])), 4, 70, false);
        check_layout(L, T(pr[0]), ss, T(pr[1]), ds, rng,
                     rep % 2 ? threaded_for(2) : shredding_for(), "large");
      }
    }
    // Transposes and NCHW -> NHWC, with casts, odd sizes and unaligned bases.
    for (int s : {11, 12, 3, 5, 1, 9, 10, 14}) {
      for (int d : {11, 12, 5, 9, 10, 3, 1, 14}) {
        for (auto [a, b] : {std::pair<int64_t, int64_t>{67, 45},
                            {8, 8},
                            {300, 3},
                            {3, 517},
                            {1031, 257},
                            {16, 1},
                            {9, 33}}) {
          const int64_t es = itemsize(T(s)), ed = itemsize(T(d));
          Layout L;
          L.shape = {a, b};
          L.sstr = {es, a * es};  // source column-major
          L.dstr = {b * ed, ed};  // destination row-major
          L.soff = static_cast<int64_t>(rng() % 3);
          L.doff = static_cast<int64_t>(rng() % 3);
          L.sbytes = L.soff + a * b * es + 8;
          L.dbytes = L.doff + a * b * ed + 8;
          check_layout(L, T(s), false, T(d), false, rng, threaded_for(2), "transpose");
          // NCHW -> NHWC: (N, C, H, W) read in (N, H, W, C) order.
          const int64_t n = 2, c = b, hw = a;
          Layout M;
          M.shape = {n, hw, c};
          M.sstr = {c * hw * es, es, hw * es};
          M.dstr = {hw * c * ed, c * ed, ed};
          M.sbytes = n * c * hw * es + 8;
          M.dbytes = n * c * hw * ed + 8;
          check_layout(M, T(s), false, T(d), false, rng, shredding_for(), "nchw->nhwc");
        }
      }
    }
  }
  set_cpu_variant("");
}

// A transpose with a destination over the streaming threshold (64 MiB), a row length that is
// a whole number of cache lines and a base that is not: exercises the column-tile alignment.
void check_streaming_transpose() {
  const int64_t ni = 4099, nj = 4112;
  std::mt19937_64 rng(7);
  for (const auto& v : usable_cpu_variants()) {
    set_cpu_variant(v);
    for (int64_t doff : {4, 0}) {
      Layout L;
      L.shape = {ni, nj};
      L.sstr = {4, ni * 4};
      L.dstr = {nj * 4, 4};
      L.soff = 0;
      L.doff = doff;
      L.sbytes = ni * nj * 4 + 8;
      L.dbytes = doff + ni * nj * 4 + 8;
      check_layout(L, ScalarType::kFloat32, false, ScalarType::kFloat32, false, rng,
                   threaded_for(2), "streaming transpose");
    }
    // Every other streaming 8x8 kernel (pairs of micro tiles storing whole lines), with the
    // conversion on load: f64, f16, bf16 -> f32, and a 4-byte integer copied as bits.
    for (auto [st, dt] : {std::pair{ScalarType::kFloat64, ScalarType::kFloat32},
                          std::pair{ScalarType::kFloat16, ScalarType::kFloat32},
                          std::pair{ScalarType::kBFloat16, ScalarType::kFloat32},
                          std::pair{ScalarType::kInt32, ScalarType::kInt32}}) {
      const int64_t es = itemsize(st);
      Layout L;
      L.shape = {ni, nj};
      L.sstr = {es, ni * es};
      L.dstr = {nj * 4, 4};
      L.soff = 0;
      L.doff = 4;
      L.sbytes = ni * nj * es + 8;
      L.dbytes = 4 + ni * nj * 4 + 8;
      check_layout(L, st, false, dt, false, rng, threaded_for(2), "streaming transpose (cast)");
    }
  }
  // Unit-stride casts and byte swaps over the same threshold (streaming stores), with a
  // destination base that is not 32-byte aligned.
  const int pairs[][2] = {{9, 11}, {11, 9}, {10, 11}, {11, 10}, {12, 11}, {11, 12},
                          {11, 5}, {11, 1}, {5, 11},  {1, 11},  {11, 11}, {14, 14}};
  for (const auto& v : usable_cpu_variants()) {
    set_cpu_variant(v);
    for (auto& pr : pairs) {
      const ScalarType st = T(pr[0]), dt = T(pr[1]);
      const int64_t es = itemsize(st), ed = itemsize(dt);
      const int64_t n = (int64_t{64} << 20) / ed + 999;
      Layout L;
      L.shape = {n};
      L.sstr = {es};
      L.dstr = {ed};
      L.soff = 3;
      L.doff = ed * 3;
      L.sbytes = L.soff + n * es + 8;
      L.dbytes = L.doff + n * ed + 8;
      const bool swap = st == dt;
      check_layout(L, st, swap, dt, false, rng, threaded_for(2), "streaming contig");
    }
  }
  set_cpu_variant("");
}

// Every variant gives the same bytes as the baseline, NaN payloads included: random bit
// patterns through every pair, contiguous (the vectorised loops) and transposed.
void check_variants_bitwise() {
  const auto variants = usable_cpu_variants();
  if (variants.size() < 2) return;
  std::mt19937_64 rng(99);
  const int64_t n = 4099, rows = 67, cols = 61;
  for (int s = 0; s < kNumTypes; ++s) {
    for (int d = 0; d < kNumTypes; ++d) {
      const int64_t es = itemsize(T(s)), ed = itemsize(T(d));
      std::vector<unsigned char> src(n * es + 1);
      for (auto& b : src) b = static_cast<unsigned char>(rng());
      std::vector<std::vector<unsigned char>> outs;
      for (const auto& v : variants) {
        set_cpu_variant(v);
        std::vector<unsigned char> out(n * ed + rows * cols * ed, 0);
        copy_1d(T(s), false, src.data() + 1, es, T(d), false, out.data(), ed, n, serial_for());
        Operand so, dop;
        so.data = reinterpret_cast<char*>(src.data() + 1);
        so.dtype = T(s);
        so.strides = {es, rows * es};
        dop.data = reinterpret_cast<char*>(out.data() + n * ed);
        dop.dtype = T(d);
        dop.strides = {cols * ed, ed};
        const int64_t shape[2] = {rows, cols};
        execute(plan_copy(shape, dop, so), serial_for());
        outs.push_back(std::move(out));
      }
      for (size_t k = 1; k < outs.size(); ++k) {
        int64_t bad = 0, first = -1;
        for (size_t b = 0; b < outs[0].size(); ++b) {
          if (outs[0][b] != outs[k][b]) {
            if (first < 0) first = static_cast<int64_t>(b);
            ++bad;
          }
        }
        CHECK(bad == 0, "%s -> %s: %s differs from %s in %lld bytes (first at %lld)",
              scalar_type_name(T(s)), scalar_type_name(T(d)), variants[k].c_str(),
              variants[0].c_str(), static_cast<long long>(bad), static_cast<long long>(first));
      }
    }
  }
  set_cpu_variant("");
}

// ---- 4. plans and errors -----------------------------------------------------------------------

void check_plans() {
  float a[64] = {}, b[64] = {};
  Operand s, d;
  s.data = reinterpret_cast<char*>(a);
  d.data = reinterpret_cast<char*>(b);
  s.strides = {4 * 8, 4};
  d.strides = {4 * 8, 4};
  int64_t shape[2] = {8, 8};
  CopyPlan p = plan_copy(shape, d, s);
  CHECK(p.shape.size() == 1 && p.shape[0] == 64 && p.kernel == "memcpy", "%s", p.kernel.c_str());
  s.strides = {4, 4 * 8};
  p = plan_copy(shape, d, s);
  CHECK(p.kernel.rfind("transpose_tile_f32_to_f32", 0) == 0, "%s", p.kernel.c_str());
  // negative strides on both sides flip into a memcpy
  s.data = reinterpret_cast<char*>(a + 63);
  d.data = reinterpret_cast<char*>(b + 63);
  s.strides = {-32, -4};
  d.strides = {-32, -4};
  p = plan_copy(shape, d, s);
  CHECK(p.kernel == "memcpy" && p.src_base == reinterpret_cast<char*>(a), "%s", p.kernel.c_str());
  // size-1 dims and 0-d
  int64_t one[3] = {1, 1, 1};
  s.strides = {7, 9, 11};
  d.strides = {3, 5, 13};
  p = plan_copy(one, d, s);
  CHECK(p.numel == 1 && p.kernel == "memcpy", "%s", p.kernel.c_str());
  p = plan_copy(std::span<const int64_t>(), Operand{d.data, d.dtype, false, {}},
                Operand{s.data, s.dtype, false, {}});
  CHECK(p.numel == 1, "0-d");
  int64_t empty[2] = {0, 5};
  s.strides = {4, 4};
  d.strides = {4, 4};
  p = plan_copy(empty, d, s);
  CHECK(p.numel == 0 && p.kernel == "empty", "%s", p.kernel.c_str());
  execute(p, serial_for());
  bool threw = false;
  try {
    int64_t bad[2] = {-1, 2};
    plan_copy(bad, d, s);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw, "negative size accepted");
  threw = false;
  try {
    d.strides = {4};
    plan_copy(shape, d, s);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw, "stride count mismatch accepted");
  threw = false;
  try {
    Operand x = s;
    x.dtype = static_cast<ScalarType>(99);
    plan_copy(shape, x, s);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw, "bad dtype accepted");
  threw = false;
  try {
    set_cpu_variant("sse9");
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw, "unknown variant accepted");
  CHECK(itemsize(ScalarType::kComplex128) == 16, "itemsize");
  CHECK(std::string(scalar_type_name(ScalarType::kBFloat16)) == "bfloat16", "name");
  // 40 dims of size 2 (canonicalised to one dim) and 40 dims that cannot merge.
  std::vector<int64_t> sh(40, 2), st1(40), st2(40);
  for (int i = 0; i < 40; ++i) {
    st1[i] = int64_t{1} << (39 - i);
    st2[i] = int64_t{1} << i;
  }
  Operand bs, bd;
  std::vector<unsigned char> big(1, 7);
  bs.data = reinterpret_cast<char*>(big.data());
  bs.dtype = bd.dtype = ScalarType::kUInt8;
  bs.strides.assign(40, 0);
  bd.data = nullptr;
  bd.strides = st1;
  p = plan_copy(sh, bd, bs);
  CHECK(p.shape.size() == 1 && p.numel == (int64_t{1} << 40), "40 dims: %zu", p.shape.size());
}

// numel > 2^31 with a broadcast source (2 GiB + a bit of destination).
void check_big() {
  const int64_t n = (int64_t{1} << 31) + 4099;
  std::vector<unsigned char> dst(n, 0);
  int16_t v = 300;
  Operand s, d;
  s.data = reinterpret_cast<char*>(&v);
  s.dtype = ScalarType::kInt16;
  s.strides = {0};
  d.data = reinterpret_cast<char*>(dst.data());
  d.dtype = ScalarType::kUInt8;
  d.strides = {1};
  const int64_t shape[1] = {n};
  CopyPlan p = plan_copy(shape, d, s);
  execute(p, threaded_for(2));
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += dst[i] != 44;
  CHECK(bad == 0, "big strided: %lld bad", static_cast<long long>(bad));
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("variants: ");
  for (auto& v : compiled_cpu_variants()) std::printf("%s ", v.c_str());
  std::printf("(active %s)\n", active_cpu_variant().c_str());
  check_plans();
  check_roundtrips();
  check_random_layouts();
  check_streaming_transpose();
  check_variants_bitwise();
  std::printf("layout checks done (%d failures so far)\n", g_failures);
  if (argc > 1) check_oracle(argv[1]);
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--big") check_big();
  }
  std::printf(g_failures ? "FAILED: %d\n" : "ALL OK\n", g_failures);
  return g_failures ? 1 : 0;
}
