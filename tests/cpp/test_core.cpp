// C++ tests of csrc/core that need no Python:
//  1. NumPy / ml_dtypes oracle (gen_oracle.py): every dtype pair, contiguous, reversed-strided
//     and byte-swapped, and the sign flips of every type, on every compiled CPU variant;
//  2. exhaustive float16 / bfloat16 round trips through float32;
//  3. random shapes / strides (negative, zero, unaligned bases, byte-swapped operands, sign
//     flips) against the element-wise reference, on every variant, on one thread and on the pool;
//  4. plans: canonicalisation, argument errors, the plan is what runs (kernels swapped for
//     counting ones), reuse on other memory, slices in both orders reproduce the whole;
//  5. the thread pool: a caller finishes alone while helpers are held at the gate, a forked
//     child runs threaded copies, the probe reaches the requested thread count.
// Usage: test_core ORACLE_FILE [--big] | test_core --pool-only (what the TSan build runs)
#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buffer_pool.h"
#include "core/kernels/kernel_set.h"
#include "core/thread_pool.h"
#include "core/torchnp_core.h"
#include "check.h"

using namespace torchnp::core;

namespace {

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
  switch (t) {
    case ScalarType::kFloat16:
    case ScalarType::kBFloat16:
    case ScalarType::kFloat32:
    case ScalarType::kFloat64:
    case ScalarType::kComplex32:
    case ScalarType::kComplex64:
    case ScalarType::kComplex128:
    case ScalarType::kFloat8_e4m3fn:
    case ScalarType::kFloat8_e5m2:
    case ScalarType::kFloat8_e4m3fnuz:
    case ScalarType::kFloat8_e5m2fnuz:
    case ScalarType::kFloat8_e8m0fnu:
      return true;
    default:
      return false;
  }
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
  const int parts = components(t);
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
  const int parts = components(t);
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

// Equal bits, or NaN in the same components with the same sign bits (sign flips must flip the
// signs of NaNs too; only their payloads may differ).
bool same_signed_value(ScalarType t, const unsigned char* a, const unsigned char* b) {
  if (!same_value(t, a, b)) return false;
  const int64_t n = itemsize(t), part = n / components(t);
  for (int64_t q = part - 1; q < n; q += part) {
    if ((a[q] & 0x80) != (b[q] & 0x80) && t != ScalarType::kFloat8_e8m0fnu &&
        t != ScalarType::kFloat8_e4m3fnuz && t != ScalarType::kFloat8_e5m2fnuz) {
      return false;
    }
  }
  return true;
}

// ---- running copies ------------------------------------------------------------------------

// One operand's description, owning its strides (Operand only views them).
struct Side {
  char* data = nullptr;
  ScalarType dtype = ScalarType::kFloat32;
  bool swapped = false;
  std::vector<int64_t> strides;
  Operand op() const { return Operand{data, dtype, swapped, strides}; }
};

// How a test runs a copy: on the calling thread, on the pool (2 threads), or as random slices
// (in random order) in the destination's or the source's memory order.
enum class Mode { kSerial, kPool, kSlicesDst, kSlicesSrc };
const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kSerial:
      return "serial";
    case Mode::kPool:
      return "pool";
    case Mode::kSlicesDst:
      return "slices(dst)";
    case Mode::kSlicesSrc:
      return "slices(src)";
  }
  return "?";
}

std::mt19937_64 g_slice_rng(2024);

// Cuts [0, n) at up to `pieces - 1` random points; the pieces come back in random order.
std::vector<Slice> random_slices(int64_t n, Order order, int pieces) {
  std::vector<int64_t> cuts{0, n};
  for (int k = 1; k < pieces && n > 1; ++k) {
    cuts.push_back(static_cast<int64_t>(g_slice_rng() % static_cast<uint64_t>(n)));
  }
  std::sort(cuts.begin(), cuts.end());
  std::vector<Slice> out;
  for (size_t k = 0; k + 1 < cuts.size(); ++k) out.push_back(Slice{order, cuts[k], cuts[k + 1]});
  std::shuffle(out.begin(), out.end(), g_slice_rng);
  return out;
}

Plan run_copy(std::span<const int64_t> shape, const Side& dst, const Side& src, Negate negate,
              Mode mode) {
  const Plan plan = plan_copy(shape, dst.op(), src.op(), negate, mode == Mode::kPool ? 2 : 1);
  if (mode == Mode::kSerial || mode == Mode::kPool) {
    execute(plan, src.data, dst.data);
  } else {
    const Order order = mode == Mode::kSlicesDst ? Order::kDestination : Order::kSource;
    for (const Slice& s : random_slices(plan.numel, order, 1 + static_cast<int>(g_slice_rng() % 7))) {
      execute(plan, src.data, dst.data, s);
    }
  }
  return plan;
}

// ---- 1. oracle -------------------------------------------------------------------------------

// Records (gen_oracle.py): u8 src code, u8 dst code, u64 n, inputs, outputs, mask. A dst code of
// 128 + m is a sign-flip record: the source type negated with Negate mode m.
struct Record {
  int s, d;
  int64_t n;
  Negate negate = Negate::kNone;
  std::vector<unsigned char> in, out, mask;
};

void copy_1d(ScalarType st, bool sswap, const unsigned char* src, int64_t sstride, ScalarType dt,
             bool dswap, unsigned char* dst, int64_t dstride, int64_t n, Mode mode,
             Negate negate = Negate::kNone) {
  const Side s{const_cast<char*>(reinterpret_cast<const char*>(src)), st, sswap, {sstride}};
  const Side d{reinterpret_cast<char*>(dst), dt, dswap, {dstride}};
  const int64_t shape[1] = {n};
  run_copy(shape, d, s, negate, mode);
}

void check_oracle(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::printf("cannot open oracle %s\n", path.c_str());
    ++g_failures;
    return;
  }
  int64_t checked = 0, skipped_masked = 0, flips = 0;
  std::vector<int> bad_pairs(kNumTypes * (kNumTypes + 4), 0);
  const auto variants = usable_cpu_variants();
  while (true) {
    unsigned char hdr[10];
    if (!f.read(reinterpret_cast<char*>(hdr), 10)) break;
    Record r;
    r.s = hdr[0];
    r.d = hdr[1];
    if (r.d >= 128) {
      r.negate = static_cast<Negate>(r.d - 128);
      r.d = r.s;
    }
    std::memcpy(&r.n, hdr + 2, 8);
    if (r.n == 0) continue;
    const int64_t es = itemsize(T(r.s)), ed = itemsize(T(r.d));
    r.in.resize(r.n * es);
    r.out.resize(r.n * ed);
    r.mask.resize(r.n);
    f.read(reinterpret_cast<char*>(r.in.data()), r.n * es);
    f.read(reinterpret_cast<char*>(r.out.data()), r.n * ed);
    f.read(reinterpret_cast<char*>(r.mask.data()), r.n);
    const int pair = r.negate == Negate::kNone ? r.s * kNumTypes + r.d
                                               : kNumTypes * kNumTypes + static_cast<int>(r.negate);
    for (const auto& v : variants) {
      set_cpu_variant(v);  // usable_cpu_variants() only
      for (int layout = 0; layout < 4; ++layout) {
        // 0: contiguous (pool); 1: reversed source (negative stride); 2: both byte-swapped;
        // 3: reversed + strided destination, as slices.
        std::vector<unsigned char> src(r.in), got(r.n * ed * 2, 0xcd);
        const bool swapped = layout == 2;
        if (swapped) swap_elements(T(r.s), src.data(), r.n);
        if (layout == 0 || layout == 2) {
          copy_1d(T(r.s), swapped, src.data(), es, T(r.d), swapped, got.data(), ed, r.n,
                  layout == 0 ? Mode::kPool : Mode::kSerial, r.negate);
        } else {
          copy_1d(T(r.s), false, src.data() + (r.n - 1) * es, -es, T(r.d), false,
                  got.data() + (layout == 3 ? (r.n - 1) * ed * 2 : 0), layout == 3 ? -2 * ed : ed,
                  r.n, layout == 3 ? Mode::kSlicesSrc : Mode::kSerial, r.negate);
        }
        for (int64_t j = 0; j < r.n; ++j) {  // j = input index
          const int64_t pos = layout == 3 ? 2 * j : layout == 1 ? r.n - 1 - j : j;
          unsigned char* g = got.data() + pos * ed;
          if (swapped) swap_elements(T(r.d), g, 1);
          if (!r.mask[j]) {
            ++skipped_masked;
            continue;
          }
          const unsigned char* w = r.out.data() + j * ed;
          ++checked;
          flips += r.negate != Negate::kNone;
          const bool ok = r.negate == Negate::kNone ? same_value(T(r.d), w, g)
                                                    : same_signed_value(T(r.d), w, g);
          if (!ok) {
            if (bad_pairs[pair]++ < 3) {
              std::printf("oracle mismatch %s -> %s negate %d [%s layout %d]: in %s want %s got %s\n",
                          scalar_type_name(T(r.s)), scalar_type_name(T(r.d)),
                          static_cast<int>(r.negate), v.c_str(), layout,
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
  for (int v : bad_pairs) npairs += v != 0;
  std::printf("oracle: %lld element checks (%lld sign flips), %lld masked (documented), %d bad\n",
              static_cast<long long>(checked), static_cast<long long>(flips),
              static_cast<long long>(skipped_masked), npairs);
  CHECK(flips > 0, "the oracle has no sign-flip records: regenerate it");
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
              reinterpret_cast<unsigned char*>(mid.data()), 4, 65536, Mode::kSerial);
      copy_1d(ScalarType::kFloat32, false, reinterpret_cast<unsigned char*>(mid.data()), 4, t,
              false, reinterpret_cast<unsigned char*>(back.data()), 2, 65536, Mode::kPool);
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
                   bool ds, unsigned char* dst, Negate negate) {
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
                   reinterpret_cast<char*>(dst + dof), negate);
    for (int i = nd - 1; i >= 0; --i) {
      if (++idx[i] < L.shape[i]) break;
      idx[i] = 0;
    }
  }
}

void check_layout(const Layout& L, ScalarType st, bool ss, ScalarType dt, bool ds, Negate negate,
                  std::mt19937_64& rng, Mode mode, const char* what) {
  std::vector<unsigned char> src(L.sbytes);
  for (auto& b : src) b = static_cast<unsigned char>(rng());
  std::vector<unsigned char> want(L.dbytes, 0x5a), got(L.dbytes, 0x5a);
  run_reference(L, st, ss, src.data(), dt, ds, want.data(), negate);
  const Side s{reinterpret_cast<char*>(src.data() + L.soff), st, ss, L.sstr};
  const Side d{reinterpret_cast<char*>(got.data() + L.doff), dt, ds, L.dstr};
  const Plan plan = run_copy(L.shape, d, s, negate, mode);
  // Compare element-wise where NaNs may differ in payload, bytewise elsewhere (untouched).
  bool ok = true;
  const int64_t ed = itemsize(dt);
  for (int64_t b = 0; b < L.dbytes && ok; ++b) {
    if (want[b] == got[b]) continue;
    std::vector<unsigned char> w(ed), g(ed);
    const int64_t start = b - ((b - L.doff) % ed + ed) % ed;
    std::memcpy(w.data(), want.data() + start, ed);
    std::memcpy(g.data(), got.data() + start, ed);
    if (ds) {
      swap_elements(dt, w.data(), 1);
      swap_elements(dt, g.data(), 1);
    }
    if (!same_signed_value(dt, w.data(), g.data())) ok = false;
    b = start + ed - 1;
  }
  if (!ok) {
    std::string sh;
    for (size_t i = 0; i < L.shape.size(); ++i) {
      sh += std::to_string(L.shape[i]) + ":" + std::to_string(L.sstr[i]) + "/" +
            std::to_string(L.dstr[i]) + " ";
    }
    CHECK(ok, "%s [%s] %s%s -> %s%s negate %d kernel %s shape:src/dst strides %s", what,
          mode_name(mode), ss ? ">" : "", scalar_type_name(st), ds ? ">" : "",
          scalar_type_name(dt), static_cast<int>(negate), plan_name(plan).c_str(), sh.c_str());
  }
}

Negate random_negate(std::mt19937_64& rng, ScalarType st) {
  if (st == ScalarType::kBool || rng() % 3 != 0) return Negate::kNone;
  return static_cast<Negate>(1 + rng() % 3);
}

void check_random_layouts() {
  std::mt19937_64 rng(42);
  const Mode modes[] = {Mode::kSerial, Mode::kPool, Mode::kSlicesDst, Mode::kSlicesSrc};
  for (const auto& v : usable_cpu_variants()) {
    set_cpu_variant(v);
    for (int s = 0; s < kNumTypes; ++s) {
      for (int d = 0; d < kNumTypes; ++d) {
        for (int rep = 0; rep < 8; ++rep) {
          const bool ss = rng() % 4 == 0, ds = rng() % 4 == 0;
          Layout L = random_layout(rng, itemsize(T(s)), itemsize(T(d)), 5, 6, true);
          check_layout(L, T(s), ss, T(d), ds, random_negate(rng, T(s)), rng, modes[rep % 4],
                       "random");
        }
      }
    }
    // Larger layouts through the threaded path, hot pairs.
    const int hot[][2] = {{11, 11}, {12, 11}, {11, 12}, {10, 11}, {11, 10}, {9, 11}, {11, 9},
                          {11, 5},  {5, 11},  {12, 9},  {3, 3},   {14, 15}, {1, 1},  {13, 14},
                          {14, 14}, {15, 15}};
    for (auto& pr : hot) {
      for (int rep = 0; rep < 8; ++rep) {
        const bool ss = rng() % 4 == 0, ds = rng() % 4 == 0;
        Layout L = random_layout(rng, itemsize(T(pr[0])), itemsize(T(pr[1])), 4, 70, false);
        check_layout(L, T(pr[0]), ss, T(pr[1]), ds, random_negate(rng, T(pr[0])), rng,
                     modes[rep % 4], "large");
      }
    }
    // Transposes and NCHW -> NHWC, with casts, odd sizes and unaligned bases.
    for (int s : {11, 12, 3, 5, 1, 9, 10, 14}) {
      for (int d : {11, 12, 5, 9, 10, 3, 1, 14}) {
        int rep = 0;
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
          check_layout(L, T(s), false, T(d), false, Negate::kNone, rng, modes[rep++ % 4],
                       "transpose");
          // NCHW -> NHWC: (N, C, H, W) read in (N, H, W, C) order.
          const int64_t n = 2, c = b, hw = a;
          Layout M;
          M.shape = {n, hw, c};
          M.sstr = {c * hw * es, es, hw * es};
          M.dstr = {hw * c * ed, c * ed, ed};
          M.sbytes = n * c * hw * es + 8;
          M.dbytes = n * c * hw * ed + 8;
          check_layout(M, T(s), false, T(d), false, Negate::kNone, rng, modes[rep++ % 4],
                       "nchw->nhwc");
        }
      }
    }
  }
  set_cpu_variant("");
}

// Destinations over the streaming threshold (32 MiB): transposes with a row length that is a
// whole number of cache lines and a base that is not (the column-tile alignment), and flat
// casts, byte swaps and sign flips with a destination base that is not 32-byte aligned.
void check_streaming() {
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
      check_layout(L, ScalarType::kFloat32, false, ScalarType::kFloat32, false, Negate::kNone, rng,
                   doff ? Mode::kPool : Mode::kSlicesDst, "streaming transpose");
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
      check_layout(L, st, false, dt, false, Negate::kNone, rng, Mode::kPool,
                   "streaming transpose (cast)");
    }
  }
  struct Flat {
    int s, d;
    bool swap;
    Negate negate;
  };
  const Flat flats[] = {{9, 11, false, Negate::kNone},  {11, 9, false, Negate::kNone},
                        {10, 11, false, Negate::kNone}, {11, 10, false, Negate::kNone},
                        {12, 11, false, Negate::kNone}, {11, 12, false, Negate::kNone},
                        {11, 5, false, Negate::kNone},  {11, 1, false, Negate::kNone},
                        {5, 11, false, Negate::kNone},  {1, 11, false, Negate::kNone},
                        {11, 11, true, Negate::kNone},  {14, 14, true, Negate::kNone},
                        {11, 11, false, Negate::kNone}, {14, 14, false, Negate::kImag},
                        {11, 11, false, Negate::kBoth}, {15, 15, false, Negate::kReal}};
  for (const auto& v : usable_cpu_variants()) {
    set_cpu_variant(v);
    int rep = 0;
    for (const auto& fl : flats) {
      const ScalarType st = T(fl.s), dt = T(fl.d);
      const int64_t es = itemsize(st), ed = itemsize(dt);
      const int64_t n = (int64_t{40} << 20) / ed + 999;
      Layout L;
      L.shape = {n};
      L.sstr = {es};
      L.dstr = {ed};
      L.soff = 3;
      L.doff = ed * 3;
      L.sbytes = L.soff + n * es + 8;
      L.dbytes = L.doff + n * ed + 8;
      check_layout(L, st, fl.swap, dt, false, fl.negate, rng,
                   rep++ % 2 ? Mode::kSlicesDst : Mode::kPool, "streaming flat");
    }
  }
  set_cpu_variant("");
}

// Every variant gives the same bytes as the baseline, NaN payloads included: random bit
// patterns through every pair, contiguous (the vectorised loops) and transposed, and every
// sign flip.
void check_variants_bitwise() {
  const auto variants = usable_cpu_variants();
  if (variants.size() < 2) return;
  std::mt19937_64 rng(99);
  const int64_t n = 4099, rows = 67, cols = 61;
  for (int s = 0; s < kNumTypes; ++s) {
    for (int d = 0; d <= kNumTypes; ++d) {
      const bool flips = d == kNumTypes;  // the last round: s -> s with each sign flip
      if (flips && s == 0) continue;      // bool has none
      const ScalarType dt = flips ? T(s) : T(d);
      const int64_t es = itemsize(T(s)), ed = itemsize(dt);
      std::vector<unsigned char> src(n * es + 1);
      for (auto& b : src) b = static_cast<unsigned char>(rng());
      std::vector<std::vector<unsigned char>> outs;
      for (const auto& v : variants) {
        set_cpu_variant(v);
        std::vector<unsigned char> out(4 * n * ed + rows * cols * ed, 0);
        copy_1d(T(s), false, src.data() + 1, es, dt, false, out.data(), ed, n, Mode::kSerial);
        if (flips) {
          for (int m = 1; m <= 3; ++m) {
            copy_1d(T(s), false, src.data() + 1, es, dt, false, out.data() + m * n * ed, ed, n,
                    Mode::kSerial, static_cast<Negate>(m));
          }
        }
        const Side so{reinterpret_cast<char*>(src.data() + 1), T(s), false, {es, rows * es}};
        const Side dop{reinterpret_cast<char*>(out.data() + 4 * n * ed), dt, false,
                       {cols * ed, ed}};
        const int64_t shape[2] = {rows, cols};
        run_copy(shape, dop, so, Negate::kNone, Mode::kSerial);
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
        CHECK(bad == 0, "%s -> %s%s: %s differs from %s in %lld bytes (first at %lld)",
              scalar_type_name(T(s)), scalar_type_name(dt), flips ? " (sign flips)" : "",
              variants[k].c_str(), variants[0].c_str(), static_cast<long long>(bad),
              static_cast<long long>(first));
      }
    }
  }
  set_cpu_variant("");
}

// ---- 4. plans --------------------------------------------------------------------------------

template <class F>
bool throws(const F& f) {
  try {
    f();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

void check_plans() {
  alignas(64) float a[64] = {}, b[64] = {};
  Side s{reinterpret_cast<char*>(a), ScalarType::kFloat32, false, {4 * 8, 4}};
  Side d{reinterpret_cast<char*>(b), ScalarType::kFloat32, false, {4 * 8, 4}};
  int64_t shape[2] = {8, 8};
  Plan p = plan_copy(shape, d.op(), s.op());
  CHECK(p.ndim == 1 && p.shape[0] == 64 && plan_name(p) == "memcpy" && p.threads == 1, "%s",
        plan_name(p).c_str());
  s.strides = {4, 4 * 8};
  p = plan_copy(shape, d.op(), s.op());
  CHECK(plan_name(p).rfind("transpose_tile_f32_to_f32", 0) == 0, "%s", plan_name(p).c_str());
  // negative strides on both sides flip into a memcpy starting at the lowest address
  s.data = reinterpret_cast<char*>(a + 63);
  d.data = reinterpret_cast<char*>(b + 63);
  s.strides = {-32, -4};
  d.strides = {-32, -4};
  p = plan_copy(shape, d.op(), s.op());
  CHECK(plan_name(p) == "memcpy" && p.src_offset == -63 * 4 && p.dst_offset == -63 * 4, "%s",
        plan_name(p).c_str());
  // size-1 dims and 0-d
  int64_t one[3] = {1, 1, 1};
  s.strides = {7, 9, 11};
  d.strides = {3, 5, 13};
  p = plan_copy(one, d.op(), s.op());
  CHECK(p.numel == 1 && plan_name(p) == "memcpy", "%s", plan_name(p).c_str());
  p = plan_copy(std::span<const int64_t>(), Operand{d.data, d.dtype, false, {}},
                Operand{s.data, s.dtype, false, {}});
  CHECK(p.numel == 1, "0-d");
  int64_t empty[2] = {0, 5};
  s.strides = {4, 4};
  d.strides = {4, 4};
  p = plan_copy(empty, d.op(), s.op());
  CHECK(p.numel == 0 && plan_name(p) == "empty", "%s", plan_name(p).c_str());
  CHECK(execute(p, s.data, d.data) == 0, "empty execute");
  // names carry what runs: byte swaps, sign flips, the method
  s.strides = {32, 4};
  d.strides = {32, 4};
  s.swapped = true;
  p = plan_copy(shape, d.op(), s.op(), Negate::kNone);
  CHECK(plan_name(p).rfind("contig_>f32_to_f32/", 0) == 0, "%s", plan_name(p).c_str());
  s.swapped = false;
  p = plan_copy(shape, d.op(), s.op(), Negate::kBoth);
  CHECK(plan_name(p).rfind("contig_f32.neg_to_f32/", 0) == 0, "%s", plan_name(p).c_str());
  p = plan_copy(shape, d.op(), s.op(), Negate::kImag);  // the conjugate of a real number: itself
  CHECK(plan_name(p) == "memcpy" && p.negate == Negate::kNone, "%s", plan_name(p).c_str());
  CHECK(throws([&] {
          int64_t bad[2] = {-1, 2};
          plan_copy(bad, d.op(), s.op());
        }),
        "negative size accepted");
  CHECK(throws([&] {
          Side x = d;
          x.strides = {4};
          plan_copy(shape, x.op(), s.op());
        }),
        "stride count mismatch accepted");
  CHECK(throws([&] {
          Side x = s;
          x.dtype = static_cast<ScalarType>(99);
          plan_copy(shape, d.op(), x.op());
        }),
        "bad dtype accepted");
  CHECK(throws([&] {
          Side x = s;
          x.dtype = ScalarType::kBool;
          plan_copy(shape, d.op(), x.op(), Negate::kBoth);
        }),
        "negated bool accepted");
  CHECK(throws([] { set_cpu_variant("sse9"); }), "unknown variant accepted");
  CHECK(itemsize(ScalarType::kComplex128) == 16 && components(ScalarType::kComplex64) == 2,
        "itemsize");
  CHECK(std::string(scalar_type_name(ScalarType::kBFloat16)) == "bfloat16", "name");
  CHECK(std::string(scalar_type_short(ScalarType::kFloat8_e4m3fn)) == "e4m3fn", "short name");
  // 40 dims of size 2 (canonicalised to one dim) and 40 dims that cannot merge.
  std::vector<int64_t> sh(40, 2), st1(40);
  for (int i = 0; i < 40; ++i) st1[i] = int64_t{1} << (39 - i);
  std::vector<unsigned char> big(1, 7);
  const Side bs{reinterpret_cast<char*>(big.data()), ScalarType::kUInt8, false,
                std::vector<int64_t>(40, 0)};
  const Side bd{nullptr, ScalarType::kUInt8, false, st1};
  p = plan_copy(sh, bd.op(), bs.op());
  CHECK(p.ndim == 1 && p.numel == (int64_t{1} << 40), "40 dims: %d", p.ndim);
}

// ---- the plan is what runs: its kernels swapped for counting wrappers --------------------------

StridedLoop g_real_loop = nullptr;
TransposeLoop g_real_tile = nullptr;
std::atomic<int64_t> g_loop_calls{0}, g_tile_calls{0};
// Destinations of the counted loop calls that do not start at a multiple of 2 MiB.
std::atomic<int64_t> g_loop_off_page{0};

void counting_loop(const char* s, int64_t ss, char* d, int64_t ds, int64_t n) {
  ++g_loop_calls;
  if (reinterpret_cast<uintptr_t>(d) % (uintptr_t{2} << 20) != 0) ++g_loop_off_page;
  g_real_loop(s, ss, d, ds, n);
}
void counting_tile(const char* s, int64_t ss, char* d, int64_t ds, int64_t ni, int64_t nj) {
  ++g_tile_calls;
  g_real_tile(s, ss, d, ds, ni, nj);
}

void check_plan_is_what_runs() {
  // 64 MiB flat f32 copy: plans streaming stores where the kernel set has them.
  const int64_t n = int64_t{16} << 20;
  std::vector<float> src(n + 16), dst(n + 16, 0.0f);
  for (int64_t i = 0; i < n; ++i) src[i] = static_cast<float>(i % 1000);
  auto aligned = [](std::vector<float>& v) {
    auto* p = reinterpret_cast<char*>(v.data());
    return p + (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;
  };
  Side s{aligned(src), ScalarType::kFloat32, false, {4}};
  Side d{aligned(dst), ScalarType::kFloat32, false, {4}};
  const int64_t shape[1] = {n};
  for (const auto& v : usable_cpu_variants()) {
    set_cpu_variant(v);
    Plan p = plan_copy(shape, d.op(), s.op(), Negate::kNone, 2);
    const bool has_nt = active_kernels().copy_streaming != nullptr;
    CHECK(p.streaming == has_nt && p.threads == 2, "[%s] %s", v.c_str(), plan_name(p).c_str());
    CHECK(plan_name(p) == (has_nt ? "copy_nt/" + v : std::string("memcpy")), "[%s] %s", v.c_str(),
          plan_name(p).c_str());
    // Cut at huge-page boundaries: every unit after the head starts on a 2 MiB multiple, so
    // no two threads fault in the same fresh huge page.
    CHECK(p.chunk_align == (int64_t{2} << 20) && p.block * 4 == p.chunk_align,
          "[%s] 64 MiB flat plan: chunk_align %lld block %lld", v.c_str(),
          static_cast<long long>(p.chunk_align), static_cast<long long>(p.block));
    if (has_nt) {
      g_real_loop = p.inner.copy_bytes_nt;
      p.inner.copy_bytes_nt = &counting_loop;
      g_loop_calls = 0;
      g_loop_off_page = 0;
      execute(p, s.data, d.data);
      CHECK(g_loop_calls > 0, "[%s] the planned streaming copy did not run", v.c_str());
      const bool head_off = reinterpret_cast<uintptr_t>(d.data) % (uintptr_t{2} << 20) != 0;
      CHECK(g_loop_off_page <= (head_off ? 1 : 0), "[%s] %lld units off a 2 MiB boundary",
            v.c_str(), static_cast<long long>(g_loop_off_page.load()));
      CHECK(std::memcmp(s.data, d.data, n * 4) == 0, "[%s] chunked copy differs", v.c_str());
    }
    {  // Below 32 MiB: cache-line units (too few pages to balance two threads).
      const int64_t small[1] = {int64_t{1} << 22};
      const Plan q = plan_copy(small, d.op(), s.op(), Negate::kNone, 2);
      CHECK(q.chunk_align == 64, "[%s] 16 MiB flat plan: chunk_align %lld", v.c_str(),
            static_cast<long long>(q.chunk_align));
    }
    // A cast: the plan's unit-stride kernel is the one called.
    std::vector<double> src64(4096, 1.5);
    const Side s64{reinterpret_cast<char*>(src64.data()), ScalarType::kFloat64, false, {8}};
    const int64_t n4096[1] = {4096};
    p = plan_copy(n4096, d.op(), s64.op());
    g_real_loop = p.inner.convert_unit;
    p.inner.convert_unit = &counting_loop;
    g_loop_calls = 0;
    execute(p, s64.data, d.data);
    CHECK(g_loop_calls == 1 && reinterpret_cast<float*>(d.data)[4095] == 1.5f,
          "[%s] planned cast ran %lld times", v.c_str(), static_cast<long long>(g_loop_calls));
  }
  // 4096^2 f32 transpose into a line-aligned destination: the streaming tile kernel.
  const int64_t side = 4096;
  std::vector<float> a(side * side + 16), b(side * side + 16, 0.0f);
  for (int64_t i = 0; i < side * side; ++i) a[i] = static_cast<float>(i);
  const Side ts{aligned(a), ScalarType::kFloat32, false, {4, side * 4}};
  const Side td{aligned(b), ScalarType::kFloat32, false, {side * 4, 4}};
  const int64_t sq[2] = {side, side};
  for (const auto& v : usable_cpu_variants()) {
    set_cpu_variant(v);
    Plan p = plan_copy(sq, td.op(), ts.op(), Negate::kNone, 2);
    const bool has_nt = active_kernels().transpose_streaming[11][11] != nullptr;
    CHECK(p.method == Method::kTranspose && p.streaming == has_nt &&
              p.tile == (has_nt ? active_kernels().transpose_streaming[11][11]
                                : active_kernels().transpose[11][11]),
          "[%s] %s", v.c_str(), plan_name(p).c_str());
    g_real_tile = p.tile;
    p.tile = &counting_tile;
    g_tile_calls = 0;
    execute(p, ts.data, td.data);
    const auto* in = reinterpret_cast<const float*>(ts.data);
    const auto* out = reinterpret_cast<const float*>(td.data);
    CHECK(g_tile_calls > 0 && out[side * 5 + 7] == in[7 * side + 5],
          "[%s] planned tile kernel ran %lld times", v.c_str(),
          static_cast<long long>(g_tile_calls));
  }
  set_cpu_variant("");
}

// A plan runs on other memory of the same layout and alignment, and refuses other alignments.
void check_plan_reuse() {
  std::mt19937_64 rng(5);
  const int64_t rows = 37, cols = 129;
  std::vector<uint16_t> a1(rows * cols + 64), a2(rows * cols + 64);
  std::vector<float> o1(rows * cols + 64), o2(rows * cols + 64), want(rows * cols);
  for (auto& x : a1) x = static_cast<uint16_t>(rng());
  for (auto& x : a2) x = static_cast<uint16_t>(rng());
  auto at64 = [](auto& v, int extra) {
    auto* p = reinterpret_cast<char*>(v.data());
    return p + (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64 + extra;
  };
  const Side s1{at64(a1, 2), ScalarType::kBFloat16, false, {2, rows * 2}};
  const Side d1{at64(o1, 4), ScalarType::kFloat32, false, {cols * 4, 4}};
  const int64_t shape[2] = {rows, cols};
  const Plan p = plan_copy(shape, d1.op(), s1.op());
  char* s2 = at64(a2, 2);
  char* d2 = at64(o2, 4);
  execute(p, s2, d2);
  Layout L{{rows, cols}, {2, rows * 2}, {cols * 4, 4}, 0, 0, 0, 0};
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      reference_cast(ScalarType::kBFloat16, false, s2 + i * 2 + j * rows * 2, ScalarType::kFloat32,
                     false, reinterpret_cast<char*>(&want[i * cols + j]));
    }
  }
  CHECK(std::memcmp(d2, want.data(), want.size() * 4) == 0, "reused plan: wrong result");
  CHECK(throws([&] { execute(p, s2 + 2, d2); }), "misaligned source accepted");
  CHECK(throws([&] { execute(p, s2, d2, Slice{Order::kSource, 0, rows * cols + 1}); }),
        "slice past the end accepted");
}

// PlanMemo: a repeated description is a hit that returns what plan_copy returns; any change
// to what a plan depends on (shape, strides, types, byte orders, sign flip, threads, job bytes,
// either pointer's alignment, the kernel set) plans anew.
// A flat copy large enough to stream takes normal stores into a destination not yet faulted in
// (Plan::dst_cold), non-temporal ones once it is; the memo follows the memory's state.
void check_cold_destination() {
#if defined(__linux__)
  const int64_t n = int64_t{8} << 20;  // floats: 32 MiB, kStreamingBytes
  const auto bytes = static_cast<size_t>(n * 4);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(mem != MAP_FAILED, "cold destination: mmap failed");
  if (mem == MAP_FAILED) return;
  std::vector<float> src(n, 1.5f);
  const int64_t unit[1] = {4}, shape[1] = {n};
  const Operand s{reinterpret_cast<char*>(src.data()), ScalarType::kFloat32, false, unit};
  const Operand d{static_cast<char*>(mem), ScalarType::kFloat32, false, unit};
  const bool can_stream = active_kernels().copy_streaming != nullptr;
  PlanMemo memo;
  const Plan cold = plan_copy(shape, d, s, Negate::kNone, 2);
  CHECK(cold.dst_cold && !cold.streaming, "fresh destination: cold %d, streaming %d",
        cold.dst_cold, cold.streaming);
  CHECK(memo.plan(shape, d, s, Negate::kNone, 2).dst_cold, "memo: fresh destination not cold");
  CHECK(memo.plan(shape, d, s, Negate::kNone, 2).dst_cold && memo.hits() == 1,
        "memo: the same cold destination missed");
  // Below the streaming size nothing is probed (the same cold memory).
  const int64_t small[1] = {n / 2};
  CHECK(!plan_copy(small, d, s, Negate::kNone, 2).dst_cold, "a small copy probed its destination");
  execute(cold, s.data, d.data);  // faults every page in
  const Plan warm = plan_copy(shape, d, s, Negate::kNone, 2);
  CHECK(!warm.dst_cold && warm.streaming == can_stream, "faulted destination: cold %d, streaming %d",
        warm.dst_cold, warm.streaming);
  const Plan& again = memo.plan(shape, d, s, Negate::kNone, 2);
  CHECK(!again.dst_cold && again.streaming == can_stream && memo.misses() == 2,
        "memo: kept the cold plan for a faulted destination");
  float probe = 0;
  std::memcpy(&probe, static_cast<char*>(mem) + bytes - 4, 4);
  CHECK(probe == 1.5f, "cold destination: wrong result");
  munmap(mem, bytes);
#endif
}

void check_plan_memo() {
  alignas(64) static char src[64 * 64 * 8 + 128], dst[64 * 64 * 8 + 128];
  struct Desc {
    std::vector<int64_t> shape, ss, ds;
    ScalarType st = ScalarType::kFloat32, dt = ScalarType::kFloat32;
    bool s_swap = false, d_swap = false;
    Negate negate = Negate::kNone;
    int threads = 1;
    int64_t job = 0;
    int s_off = 0, d_off = 0;
  };
  auto same = [](const Plan& a, const Plan& b) {
    if (plan_name(a) != plan_name(b) || a.ndim != b.ndim || a.numel != b.numel ||
        a.threads != b.threads || a.src_offset != b.src_offset || a.dst_offset != b.dst_offset ||
        a.src_align != b.src_align || a.dst_align != b.dst_align || a.block != b.block ||
        a.grain != b.grain || a.tile_i != b.tile_i || a.tile_j != b.tile_j) {
      return false;
    }
    for (int k = 0; k < a.ndim; ++k) {
      if (a.shape[k] != b.shape[k] || a.src_strides[k] != b.src_strides[k] ||
          a.dst_strides[k] != b.dst_strides[k]) {
        return false;
      }
    }
    return true;
  };
  PlanMemo memo;
  int64_t want_hits = 0, want_misses = 0;
  auto step = [&](const Desc& d, bool hit, const char* what) {
    const Operand s{src + d.s_off, d.st, d.s_swap, d.ss}, o{dst + d.d_off, d.dt, d.d_swap, d.ds};
    const Plan& got = memo.plan(d.shape, o, s, d.negate, d.threads, d.job);
    (hit ? want_hits : want_misses) += 1;
    CHECK(memo.hits() == want_hits && memo.misses() == want_misses,
          "plan memo, %s: %lld hits %lld misses, want %lld %lld", what,
          static_cast<long long>(memo.hits()), static_cast<long long>(memo.misses()),
          static_cast<long long>(want_hits), static_cast<long long>(want_misses));
    CHECK(same(got, plan_copy(d.shape, o, s, d.negate, d.threads, d.job)),
          "plan memo, %s: not plan_copy's plan (%s)", what, plan_name(got).c_str());
  };
  const Desc base{{64, 64}, {4, 256}, {256, 4}};  // a transpose
  step(base, false, "first");
  step(base, true, "again");
  step(base, true, "and again");
  auto changed = [&](auto edit, const char* what) {
    Desc d = base;
    edit(d);
    step(d, false, what);
    step(d, true, what);
    step(base, false, "back");
  };
  changed([](Desc& d) { d.shape = {64, 32}; }, "shape");
  changed([](Desc& d) { d.shape = {64, 64, 1}, d.ss = {4, 256, 4}, d.ds = {256, 4, 4}; }, "ndim");
  changed([](Desc& d) { d.ss = {256, 4}; }, "source strides");
  changed([](Desc& d) { d.ds = {4, 256}; }, "destination strides");
  changed([](Desc& d) { d.st = ScalarType::kInt32; }, "source type");
  changed([](Desc& d) { d.dt = ScalarType::kFloat16; }, "destination type");
  changed([](Desc& d) { d.s_swap = true; }, "source byte order");
  changed([](Desc& d) { d.d_swap = true; }, "destination byte order");
  changed([](Desc& d) { d.negate = Negate::kReal; }, "sign flip");
  changed([](Desc& d) { d.threads = 2; }, "threads");
  changed([](Desc& d) { d.job = int64_t{1} << 30; }, "job bytes");
  changed([](Desc& d) { d.s_off = 4; }, "source alignment");
  changed([](Desc& d) { d.d_off = 8; }, "destination alignment");
  // Another pointer with the same alignment is the same plan (execute() takes any such memory).
  Desc moved = base;
  moved.s_off = moved.d_off = 64;
  step(moved, true, "same alignment elsewhere");
  const auto variants = usable_cpu_variants();
  const std::string active = active_cpu_variant();
  if (variants.size() > 1) {
    set_cpu_variant(variants.front() != active ? variants.front() : variants.back());
    step(base, false, "another kernel set");
    step(base, true, "another kernel set, again");
    set_cpu_variant("");
    step(base, false, "the kernel set back");
  }
  CHECK(throws([&] {
          const std::vector<int64_t> bad{4, 256, 1};
          memo.plan(base.shape, Operand{dst, ScalarType::kFloat32, false, base.ds},
                    Operand{src, ScalarType::kFloat32, false, bad});
        }),
        "plan memo: a mismatched description accepted");
  ++want_misses;  // (the refused description counts as planned)
  step(base, false, "after a refusal");
}

// Slices at random split points, in both orders and any sequence, give the whole copy's bytes,
// for every method (flat, strided, transposes, buffered stages) and source strides of any sign.
// execute_batch: many plans as one job give what each gives alone, on any thread count: flat
// casts of many sizes (one or several chunks each, chunks spanning several copies), a
// transpose, a broadcast destination (run whole: the last write wins) and an empty copy.
void check_batch() {
  std::mt19937_64 rng(7);
  struct Copy {
    std::vector<double> src;
    std::vector<float> dst, want;
    int64_t rows, cols;
    bool transposed;
  };
  std::vector<Copy> copies;
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{4097}, int64_t{70000},
                    int64_t{1} << 20, int64_t{5}, int64_t{300000}}) {
    copies.push_back({std::vector<double>(n), std::vector<float>(n, -1.0f), {}, 1, n, false});
  }
  copies.push_back({std::vector<double>(300 * 500), std::vector<float>(300 * 500, -1.0f), {}, 300,
                    500, true});
  std::vector<Plan> plans;
  plans.reserve(copies.size() + 1);
  std::vector<Task> tasks;
  for (Copy& c : copies) {
    for (double& v : c.src) v = static_cast<double>(rng() % 100000) / 7.0;
    c.want.resize(c.dst.size());
    const int64_t shape[2] = {c.rows, c.cols};
    // The transposed copy reads its source column by column.
    const std::vector<int64_t> src_strides =
        c.transposed ? std::vector<int64_t>{8, 8 * c.rows} : std::vector<int64_t>{8 * c.cols, 8};
    for (int64_t i = 0; i < c.rows; ++i) {
      for (int64_t j = 0; j < c.cols; ++j) {
        const int64_t at = c.transposed ? i + j * c.rows : i * c.cols + j;
        c.want[i * c.cols + j] = static_cast<float>(c.src[at]);
      }
    }
    const Side s{reinterpret_cast<char*>(c.src.data()), ScalarType::kFloat64, false, src_strides};
    const Side d{reinterpret_cast<char*>(c.dst.data()), ScalarType::kFloat32, false,
                 {4 * c.cols, 4}};
    plans.push_back(plan_copy(shape, d.op(), s.op(), Negate::kNone, 1, int64_t{64} << 20));
    tasks.push_back({&plans.back(), s.data, d.data});
  }
  std::vector<float> line(3 * 50000), one(3, 0.0f);
  for (size_t i = 0; i < line.size(); ++i) line[i] = static_cast<float>(i);
  {
    const int64_t shape[2] = {3, 50000};
    const Side s{reinterpret_cast<char*>(line.data()), ScalarType::kFloat32, false, {200000, 4}};
    const Side d{reinterpret_cast<char*>(one.data()), ScalarType::kFloat32, false, {4, 0}};
    plans.push_back(plan_copy(shape, d.op(), s.op(), Negate::kNone, 1));
    tasks.push_back({&plans.back(), s.data, d.data});
  }
  for (int threads : {1, 2, 4}) {
    for (Copy& c : copies) std::fill(c.dst.begin(), c.dst.end(), -1.0f);
    std::fill(one.begin(), one.end(), 0.0f);
    const int ran = execute_batch(tasks, threads);
    bool same = true;
    for (const Copy& c : copies) same = same && c.dst == c.want;
    CHECK(same, "execute_batch on %d threads: a copy differs from its plan's", threads);
    CHECK(one[0] == line[49999] && one[2] == line[3 * 50000 - 1],
          "execute_batch: broadcast destination %g %g", one[0], one[2]);
    CHECK(ran >= 1 && ran <= threads, "execute_batch: %d threads ran for %d", ran, threads);
  }
  CHECK(execute_batch({}, 2) == 0, "an empty batch ran");
}

void check_slices() {
  std::mt19937_64 rng(11);
  int checked = 0;
  for (int rep = 0; rep < 400; ++rep) {
    const int s = static_cast<int>(rng() % kNumTypes), d = static_cast<int>(rng() % kNumTypes);
    const int64_t es = itemsize(T(s)), ed = itemsize(T(d));
    Layout L = random_layout(rng, es, ed, 4, rep % 4 == 0 ? 90 : 12, rep % 3 == 0);
    if (rep % 5 == 0) {  // a transpose (source column-major) of odd size
      const int64_t a = 1 + static_cast<int64_t>(rng() % 150), b = 1 + static_cast<int64_t>(rng() % 150);
      L = Layout{{a, b}, {es, a * es}, {b * ed, ed}, 0, 0, a * b * es + 8, a * b * ed + 8};
    }
    const bool ss = rng() % 4 == 0, ds = rng() % 4 == 0;
    const Negate neg = random_negate(rng, T(s));
    std::vector<unsigned char> src(L.sbytes);
    for (auto& x : src) x = static_cast<unsigned char>(rng());
    std::vector<unsigned char> whole(L.dbytes, 0x33), parts(L.dbytes, 0x33);
    const Side so{reinterpret_cast<char*>(src.data() + L.soff), T(s), ss, L.sstr};
    const Side w{reinterpret_cast<char*>(whole.data() + L.doff), T(d), ds, L.dstr};
    const Side pt{reinterpret_cast<char*>(parts.data() + L.doff), T(d), ds, L.dstr};
    const Plan plan = run_copy(L.shape, w, so, neg, Mode::kSerial);
    run_copy(L.shape, pt, so, neg, rep % 2 ? Mode::kSlicesDst : Mode::kSlicesSrc);
    const bool ok = whole == parts;
    checked += ok;
    CHECK(ok, "slices (%s) of %s differ from the whole copy (rep %d)",
          rep % 2 ? "dst order" : "src order", plan_name(plan).c_str(), rep);
  }
  // A source-order slice of a dense source is exactly its bytes [begin, end) * itemsize: the
  // destination gets those elements and nothing else.
  const int64_t n = 1000;
  std::vector<int32_t> src(n), dst(n, -1);
  for (int64_t i = 0; i < n; ++i) src[i] = static_cast<int32_t>(i);
  const Side rs{reinterpret_cast<char*>(src.data() + n - 1), ScalarType::kInt32, false, {-4}};
  const Side rd{reinterpret_cast<char*>(dst.data()), ScalarType::kInt32, false, {4}};
  const int64_t shape[1] = {n};
  const Plan p = plan_copy(shape, rd.op(), rs.op());
  execute(p, rs.data, rd.data, Slice{Order::kSource, 100, 200});  // source values 100..199
  int wrong = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t want = (src[n - 1 - i] >= 100 && src[n - 1 - i] < 200) ? src[n - 1 - i] : -1;
    wrong += dst[i] != want;
  }
  CHECK(wrong == 0, "source-order slice of a reversed source: %d wrong elements", wrong);
  std::printf("slices: %d layouts reproduce the whole copy\n", checked);
}

// ---- 5. the thread pool ------------------------------------------------------------------------

// 16 Mi floats: the copy every pool test runs, and its check.
struct BigCopy {
  int64_t n;
  std::vector<float> src, dst;
  explicit BigCopy(int64_t elements = int64_t{16} << 20) : n(elements), src(n), dst(n) {
    for (int64_t i = 0; i < n; ++i) src[i] = static_cast<float>(i % 4099);
  }
  int run(int threads, Negate negate = Negate::kBoth) {
    std::fill(dst.begin(), dst.end(), 0.0f);
    const Side s{reinterpret_cast<char*>(src.data()), ScalarType::kFloat32, false, {4}};
    const Side d{reinterpret_cast<char*>(dst.data()), ScalarType::kFloat32, false, {4}};
    const int64_t shape[1] = {n};
    const Plan p = plan_copy(shape, d.op(), s.op(), negate, threads);
    return execute(p, s.data, d.data);
  }
  bool ok() const {
    for (int64_t i = 0; i < n; ++i) {
      if (dst[i] != -src[i]) return false;
    }
    return true;
  }
};

sigset_t blocked_signals() {
  sigset_t now;
  sigemptyset(&now);
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return now;
}

// Run in a forked child (a fresh pool with no helpers): helper starts that fail, as under a pid
// limit, cost the copy its helpers but never its result, the caller's signal mask, or the pool.
int child_spawn_failure() {
  alarm(60);
  BigCopy c(int64_t{1} << 22);
  const sigset_t before = blocked_signals();
  fail_pool_spawns(1);
  const int ran = c.run(2);
  const sigset_t after = blocked_signals();
  if (!c.ok() || ran != 1 || pool_helpers() != 0) return 2;
  for (int sig = 1; sig < 64; ++sig) {
    if (sigismember(&before, sig) != sigismember(&after, sig)) return 3;  // mask left changed
  }
  c.run(2);  // the next call starts its helper
  if (!c.ok() || pool_helpers() != 1 || parallel_probe(4, 2) != 2) return 4;
  return 0;
}

// Run in a forked child (a fresh pool) pinned to one CPU, so that every helper wakes on its
// caller's CPU: the helper leaves each job to the caller and goes back to sleep without polling
// for the next one (a poll there would take the caller's core; before the fix each such wake
// polled for 50 us).
int child_helper_on_caller_cpu() {
  alarm(60);
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) return 0;  // not allowed here: nothing to test
  BigCopy c(int64_t{1} << 20);
  // Until every started helper sleeps and `left` jobs have been left to the caller.
  auto settled = [](int64_t left) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      const PoolHelperStats s = pool_helper_stats();
      if (s.asleep == pool_helpers() && s.left_on_caller_cpu >= left) return s;
      if (std::chrono::steady_clock::now() > until) return PoolHelperStats{-1, -1, -1};
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  c.run(2);  // starts the helper; it may join this first job on the shared CPU or leave it
  if (!c.ok() || pool_helpers() != 1) return 2;
  PoolHelperStats before = settled(0);
  if (before.polls < 0) return 3;
  for (int k = 0; k < 5; ++k) {
    end_pool_solo();  // a loss to the wake-ups must not turn the next call solo
    const int ran = c.run(2);
    const PoolHelperStats after = settled(before.left_on_caller_cpu + 1);
    if (!c.ok() || ran != 1 || after.polls < 0) return 4;
    if (after.polls != before.polls) return 5;  // it polled on the caller's CPU
    before = after;
  }
  return 0;
}

int run_in_child(int (*fn)()) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + status;
}

void check_pool(bool with_fork) {
  BigCopy c;
  // The probe reaches the requested number of threads (helpers run even on one CPU: the
  // probe's units wait for each other).
  CHECK(parallel_probe(8, 2) == 2, "probe: %d threads for 2", parallel_probe(8, 2));
  CHECK(parallel_probe(8, 1) == 1, "probe with one thread");
  CHECK(c.run(1) == 1 && c.ok(), "one thread");
  c.run(2);
  CHECK(c.ok(), "two threads: wrong result");
  // Helpers held at the gate: the calling thread must finish the whole copy alone, correctly,
  // without waiting for them.
  set_pool_gate(true);
  const auto t0 = std::chrono::steady_clock::now();
  const int ran = c.run(2);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  set_pool_gate(false);
  CHECK(ran == 1 && c.ok(), "gated helpers: %d threads ran, result %s", ran, c.ok() ? "ok" : "bad");
  CHECK(seconds < 5.0, "gated helpers: the caller took %.1f s", seconds);
  c.run(2);
  CHECK(c.ok(), "after the gate opened: wrong result");
  // A helper that claims a chunk and then does not run it (descheduled by another process):
  // the call ends later than its caller alone would have, so the pool goes solo — the next
  // calls run on the calling thread without waking anyone — until the back-off ends.
  {
    using std::chrono::steady_clock;
    // One call whose helper holds a chunk for 50 ms; whether it went solo.
    auto lose_one_call = [] {
      const int64_t entries = pool_solo_entries();
      hold_next_pool_claim(true);
      std::atomic<std::thread::id> caller_id{};
      std::atomic<bool> waited{false};
      std::atomic<int> ran_on{0};
      std::thread caller([&] {
        caller_id = std::this_thread::get_id();
        ran_on = parallel_for(8, 1, 2, [&](int64_t, int64_t) {
          // The caller's first chunk waits until the helper holds one, so that one is held
          // whichever chunk it claimed.
          if (std::this_thread::get_id() != caller_id.load() || waited.exchange(true)) return;
          const auto until = steady_clock::now() + std::chrono::seconds(10);
          while (!pool_claim_held() && steady_clock::now() < until) std::this_thread::yield();
        });
      });
      const auto until = steady_clock::now() + std::chrono::seconds(10);
      while (!pool_claim_held() && steady_clock::now() < until) std::this_thread::yield();
      const bool held = pool_claim_held();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the helper stays away
      hold_next_pool_claim(false);
      caller.join();
      CHECK(held && ran_on == 2, "held claim: held %d, %d threads ran", held, ran_on.load());
      return pool_solo_entries() == entries + 1;
    };
    end_pool_solo();
    CHECK(pool_solo_us() == 0 && pool_solo_calls() == 0, "solo mode after end_pool_solo");
    // Went solo (counted: on a slow machine the 10 ms back-off may be over by now), for the
    // first back-off's calls as well as its time: once the time is over, those calls still run
    // alone, each in one piece (while they have not lapsed, 100 ms after the solo began).
    CHECK(lose_one_call(), "a call that lost to one thread did not go solo");
    CHECK(pool_solo_calls() == 4, "solo mode: %lld calls to run alone, not 4",
          static_cast<long long>(pool_solo_calls()));
    const auto over = steady_clock::now() + std::chrono::seconds(10);
    while (pool_solo_us() > 0 && steady_clock::now() < over) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (int k = 0; k < 4; ++k) {
      const int64_t left = pool_solo_calls();
      std::atomic<int> woke{0};
      const int alone = parallel_for(64, 1, 2, [&](int64_t, int64_t) { ++woke; });
      CHECK(left == 0 || (alone == 1 && woke == 1), "solo call %d after its time: %d threads ran",
            k, alone);
    }
    CHECK(pool_solo_calls() == 0 && pool_solo_us() == 0, "solo mode did not end after its calls");
    // A loss within the first judged calls after a back-off: the load is still there, the
    // back-off doubles (8 calls). (One after a long run of gains is a first back-off again;
    // gains take real speed-ups, which a test cannot count on.)
    CHECK(lose_one_call(), "a loss right after the back-off did not go solo");
    CHECK(pool_solo_calls() == 8, "re-entry: %lld calls to run alone, not 8",
          static_cast<long long>(pool_solo_calls()));
    end_pool_solo();
    c.run(2);
    CHECK(c.ok(), "solo mode: wrong result");
    // The calls lapse: a solo whose calls were never used is over 10 back-offs after it began.
    end_pool_solo();
    CHECK(lose_one_call(), "the second losing call did not go solo");
    std::this_thread::sleep_for(std::chrono::milliseconds(120));
    CHECK(pool_solo_us() == 0 && pool_solo_calls() == 0, "solo calls did not lapse: %lld left",
          static_cast<long long>(pool_solo_calls()));
    end_pool_solo();
    CHECK(pool_solo_us() == 0 && parallel_probe(8, 2) == 2, "after solo mode ended");
  }
  // Concurrent callers: one gets the pool, the others run alone; all results are right.
  std::vector<std::thread> callers;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&bad] {
      BigCopy mine(int64_t{1} << 20);
      for (int k = 0; k < 5; ++k) {
        mine.run(2);
        if (!mine.ok()) ++bad;
      }
    });
  }
  for (auto& t : callers) t.join();
  CHECK(bad == 0, "concurrent callers: %d wrong results", bad.load());
  // A call made while the pool is busy (here: nested inside a job's chunk) runs alone.
  std::atomic<int> nested{-1};
  parallel_for(4, 1, 2, [&](int64_t b, int64_t) {
    if (b == 0) nested = parallel_for(1 << 20, 1, 2, [](int64_t, int64_t) {});
  });
  CHECK(nested == 1, "a nested call ran on %d threads", nested.load());
  // A destination that writes one element several times (stride 0): one thread, last write
  // wins (as NumPy's copy), however many threads were asked for.
  {
    const int64_t rows = 2, cols = int64_t{1} << 20;
    std::vector<float> src(rows * cols);
    for (int64_t i = 0; i < rows * cols; ++i) src[i] = static_cast<float>(i);
    std::vector<float> dst(rows, -1.0f);
    const Side s{reinterpret_cast<char*>(src.data()), ScalarType::kFloat32, false, {cols * 4, 4}};
    const Side d{reinterpret_cast<char*>(dst.data()), ScalarType::kFloat32, false, {4, 0}};
    const int64_t shape[2] = {rows, cols};
    const Plan p = plan_copy(shape, d.op(), s.op(), Negate::kNone, 2);
    execute(p, s.data, d.data);
    CHECK(p.threads == 1 && dst[0] == src[cols - 1] && dst[1] == src[2 * cols - 1],
          "broadcast destination: %d threads, %g %g", p.threads, dst[0], dst[1]);
  }
  if (!with_fork) return;
  const int spawn = run_in_child(&child_spawn_failure);
  CHECK(spawn == 0, "failed helper starts: child status %d", spawn);
  const int same_cpu = run_in_child(&child_helper_on_caller_cpu);
  CHECK(same_cpu == 0, "a helper woken on its caller's CPU: child status %d", same_cpu);
  // A forked child starts with a fresh pool: its threaded copies work (they would hang on a
  // pool whose helpers did not survive the fork).
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    alarm(60);  // a hang fails the test instead of blocking it
    const int threads = c.run(2);
    const bool copied = c.ok() && threads >= 1;
    const int probe = parallel_probe(8, 2);
    _exit(!copied ? 3 : probe != 2 ? 10 + probe : 0);  // which check failed, in the status
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "forked child: wait status %d, exit %d (3: wrong copy; 10 + n: the probe saw n threads)",
        status, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  CHECK(pool_helpers() >= 1, "no helpers started");
}

// numel > 2^31 with a broadcast source (2 GiB + a bit of destination).
void check_big() {
  const int64_t n = (int64_t{1} << 31) + 4099;
  std::vector<unsigned char> dst(n, 0);
  int16_t v = 300;
  const Side s{reinterpret_cast<char*>(&v), ScalarType::kInt16, false, {0}};
  const Side d{reinterpret_cast<char*>(dst.data()), ScalarType::kUInt8, false, {1}};
  const int64_t shape[1] = {n};
  run_copy(shape, d, s, Negate::kNone, Mode::kPool);
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += dst[i] != 44;
  CHECK(bad == 0, "big strided: %lld bad", static_cast<long long>(bad));
}

// The output pool (core/buffer_pool.h): sizes it serves, reuse within the slack, the limit,
// idle expiry, clear, failed mappings, and many threads taking and handing back buffers (what
// the TSan build checks); with_fork: a forked child takes and hands back buffers too.
void check_buffer_pool(bool with_fork) {
  using Pool = BufferPool;
  constexpr int64_t MiB = int64_t{1} << 20;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  {
    // Fresh mappings from kFreshHugepageMin are faulted in block by block (resident before
    // they are handed out) until a block is cold; then the rest, and the next fresh mappings
    // within the back-off, are left to the copy's first touch.
    auto resident = [](const char* p) {
      unsigned char v = 0;
      return mincore(const_cast<char*>(p), 1, &v) == 0 && (v & 1) != 0;
    };
    Pool warm(512 * MiB);
    warm.set_cold_block_seconds(1e9);  // no block counts as cold
    Pool::Buffer big = warm.acquire(Pool::kFreshHugepageMin);
    Pool::Buffer below = warm.acquire(Pool::kFreshHugepageMin - Pool::kAlign);
    bool all = true;
    for (int64_t o = 0; o < big.size; o += Pool::kAlign) all = all && resident(big.data + o);
    CHECK(big && all && warm.cold_blocks() == 0, "a large fresh mapping: every block faulted in");
    CHECK(below && !resident(below.data), "under kFreshHugepageMin: left unfaulted");
    warm.release(big);
    warm.release(below);
    Pool cold(512 * MiB);
    cold.set_cold_block_seconds(0);  // every block is cold: the first one ends it
    Pool::Buffer first = cold.acquire(64 * MiB);
    CHECK(first && resident(first.data) && !resident(first.data + Pool::kAlign) &&
              cold.cold_blocks() == 1,
          "a cold first block: the rest left unfaulted");
    Pool::Buffer second = cold.acquire(48 * MiB);
    CHECK(second && !resident(second.data) && cold.cold_blocks() == 1,
          "within the back-off: no huge pages, nothing faulted in");
    cold.release(first);
    cold.release(second);
  }
#endif
  {
    Pool pool(64 * MiB);
    CHECK(!pool.acquire(Pool::kMinBytes - 1), "below the minimum: not served");
    CHECK(!pool.acquire(65 * MiB), "over the limit: not served");
    Pool::Buffer a = pool.acquire(5 * MiB);
    CHECK(a && a.size == 6 * MiB, "5 MiB rounds to 6 MiB (%lld)", static_cast<long long>(a.size));
    CHECK(reinterpret_cast<uintptr_t>(a.data) % Pool::kAlign == 0, "2 MiB aligned");
    std::memset(a.data, 7, static_cast<size_t>(a.size));  // all of it is ours to write
    char* first = a.data;
    pool.release(a);
    CHECK(pool.cached_bytes() == 6 * MiB, "released: idle");
    Pool::Buffer b = pool.acquire(6 * MiB);
    CHECK(b.data == first && pool.hits() == 1 && pool.cached_bytes() == 0, "reused");
    Pool::Buffer small = pool.acquire(4 * MiB);  // b is out: a new one
    pool.release(b);
    Pool::Buffer c = pool.acquire(4 * MiB);  // 6 MiB is past 1.25 x 4 MiB: not reused
    CHECK(c.data != first, "a buffer beyond the slack is not handed out");
    pool.release(c);
    pool.release(small);
    CHECK(pool.cached_bytes() == 14 * MiB, "three idle (%lld)", static_cast<long long>(pool.cached_bytes()));
    pool.set_limit(8 * MiB);  // oldest first until within the limit
    CHECK(pool.cached_bytes() <= 8 * MiB, "the limit bounds what is kept");
    CHECK(pool.clear() > 0 && pool.cached_bytes() == 0, "clear releases everything");
    pool.set_limit(64 * MiB);
    pool.set_idle_seconds(0.0);
    pool.release(pool.acquire(4 * MiB));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK(pool.cached_bytes() == 0, "idle buffers expire");
    pool.fail_maps(1);
    CHECK(!pool.acquire(4 * MiB), "a failed mapping: not served");
    Pool::Buffer d = pool.acquire(4 * MiB);
    CHECK(d, "the next mapping works");
    pool.release(d);
  }
  {
    Pool pool(256 * MiB);
    std::vector<std::thread> threads;
    std::atomic<int> bad{0};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&pool, &bad, t] {
        for (int i = 0; i < 200; ++i) {
          Pool::Buffer b = pool.acquire((4 + (i + t) % 3) * MiB);
          if (!b) {
            ++bad;
            continue;
          }
          b.data[0] = static_cast<char>(t);
          b.data[b.size - 1] = static_cast<char>(t);
          if (b.data[0] != t || b.data[b.size - 1] != t) ++bad;
          pool.release(b);
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(bad == 0, "threads: %d bad hand-outs", bad.load());
    if (with_fork) {
      Pool::Buffer held = pool.acquire(4 * MiB);
      const pid_t child = fork();
      if (child == 0) {
        Pool::Buffer b = pool.acquire(4 * MiB);
        const bool ok = b && b.data != held.data;
        pool.release(b);
        pool.release(held);
        _exit(ok ? 0 : 3);
      }
      int status = 0;
      waitpid(child, &status, 0);
      CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked child: status %d", status);
      pool.release(held);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::printf("variants: ");
  for (auto& v : compiled_cpu_variants()) std::printf("%s ", v.c_str());
  std::printf("(active %s)\n", active_cpu_variant().c_str());
  if (argc > 1 && std::string(argv[1]) == "--pool-only") {  // the ThreadSanitizer build's run
    check_pool(/*with_fork=*/false);
    check_buffer_pool(/*with_fork=*/false);
    check_slices();
    check_batch();
    std::printf(g_failures ? "FAILED: %d\n" : "ALL OK\n", g_failures);
    return g_failures ? 1 : 0;
  }
  check_plans();
  check_plan_is_what_runs();
  check_plan_reuse();
  check_plan_memo();
  check_cold_destination();
  check_slices();
  check_batch();
  // TORCHNP_TEST_NO_FORK=1: under qemu-user (a cross-built aarch64 run), which cannot fork a
  // multi-threaded process.
  check_pool(/*with_fork=*/std::getenv("TORCHNP_TEST_NO_FORK") == nullptr);
  check_buffer_pool(/*with_fork=*/std::getenv("TORCHNP_TEST_NO_FORK") == nullptr);
  check_roundtrips();
  check_random_layouts();
  check_streaming();
  check_variants_bitwise();
  std::printf("layout checks done (%d failures so far)\n", g_failures);
  if (argc > 1) check_oracle(argv[1]);
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--big") check_big();
  }
  std::printf(g_failures ? "FAILED: %d\n" : "ALL OK\n", g_failures);
  return g_failures ? 1 : 0;
}
