// execute: run a CopyPlan with the active kernel set, split across threads.
//
// Work is cut into units of >= 32K elements (fewer are not worth a task); copies under
// 64 KiB of traffic run inline on the calling thread with no ParallelFor call at all.
#include <algorithm>
#include <array>
#include <cstring>

#include "kernels.h"
#include "plan_internal.h"

namespace torchnp::core {
namespace {

constexpr int64_t kInlineBytes = 64 * 1024;
constexpr int64_t kMinTaskElems = 32 * 1024;
constexpr int64_t kCacheLine = 64;
// Destinations of at least this many bytes get non-temporal stores where a kernel has them:
// the output cannot stay cached anyway, and a normal store first reads the line it overwrites.
// 32 MiB = the L3 of one EPYC CCD (sysconf reports the whole host's 256 MiB inside the VM, so
// it is not asked). Measured on the 2-core dev VM, 32 MiB copy: 27 GB/s streaming vs 16.5 GB/s
// with normal stores (glibc memcpy: 15 GB/s; it switches to streaming only higher up).
constexpr int64_t kStreamingBytes = int64_t{32} << 20;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The 1-D inner operation: a cast loop, or a byte swap, or a cast with byte-swapped
// operands run through two small stack buffers (NumPy's buffered casts do the same).
struct InnerOp {
  StridedLoop cast = nullptr;         // any strides
  StridedLoop cast_contig = nullptr;  // unit strides
  StridedLoop swap_src = nullptr;     // strided swap-copy of the source type, if swapped
  StridedLoop swap_dst = nullptr;     // strided swap-copy of the destination type, if swapped
  int64_t es = 0, ed = 0;
  bool same_bytes = false;  // no cast, no swap: unit-stride runs are a memcpy

  void operator()(const char* src, int64_t ss, char* dst, int64_t ds, int64_t n) const {
    if (swap_src == nullptr && swap_dst == nullptr) {
      if (ss == es && ds == ed) {
        if (same_bytes) {
          std::memcpy(dst, src, static_cast<size_t>(n * ed));
        } else {
          cast_contig(src, ss, dst, ds, n);
        }
      } else {
        cast(src, ss, dst, ds, n);
      }
      return;
    }
    constexpr int64_t kChunk = 256;  // elements; 2 x 4 KiB of stack at 16-byte elements
    alignas(64) char bs[kChunk * 16];
    alignas(64) char bd[kChunk * 16];
    for (int64_t k = 0; k < n; k += kChunk) {
      const int64_t m = std::min(kChunk, n - k);
      const char* s = src + k * ss;
      int64_t s_stride = ss;
      if (swap_src != nullptr) {
        swap_src(s, ss, bs, es, m);
        s = bs;
        s_stride = es;
      }
      if (swap_dst != nullptr) {
        cast_contig_or(s, s_stride, bd, ed, m);
        swap_dst(bd, ed, dst + k * ds, ds, m);
      } else {
        cast_contig_or(s, s_stride, dst + k * ds, ds, m);
      }
    }
  }

 private:
  void cast_contig_or(const char* s, int64_t ss, char* d, int64_t ds, int64_t m) const {
    (ss == es && ds == ed ? cast_contig : cast)(s, ss, d, ds, m);
  }
};

int log2_of(int64_t v) { return v == 2 ? 1 : v == 4 ? 2 : 3; }

// `streaming`: the caller runs a unit-stride copy whose destination is far larger than the
// last-level cache; use non-temporal stores where the kernel set has them.
InnerOp make_inner(const CopyPlan& p, const KernelSet& ks, bool streaming = false) {
  InnerOp op;
  const int s = static_cast<int>(p.src_dtype), d = static_cast<int>(p.dst_dtype);
  op.es = itemsize(p.src_dtype);
  op.ed = itemsize(p.dst_dtype);
  if (p.src_dtype == p.dst_dtype && p.src_swapped != p.dst_swapped) {
    // Same type, opposite byte orders: one swap-copy pass, no cast.
    const int parts = swap_parts(p.src_dtype);
    const int lg = log2_of(op.es / parts);
    op.cast = ks.swap_strided[lg - 1][parts - 1];
    op.cast_contig = ks.swap_contig[lg - 1][parts - 1];
    if (streaming && ks.swap_contig_streaming[lg - 1][parts - 1] != nullptr) {
      op.cast_contig = ks.swap_contig_streaming[lg - 1][parts - 1];
    }
    return op;
  }
  op.cast = ks.strided[s][d];
  op.cast_contig = ks.contig[s][d];
  op.same_bytes = s == d && !p.src_swapped && !p.dst_swapped;
  if (streaming && !p.src_swapped && !p.dst_swapped && ks.contig_streaming[s][d] != nullptr) {
    op.cast_contig = ks.contig_streaming[s][d];
  }
  if (p.src_swapped) {
    const int parts = swap_parts(p.src_dtype);
    op.swap_src = ks.swap_strided[log2_of(op.es / parts) - 1][parts - 1];
  }
  if (p.dst_swapped) {
    const int parts = swap_parts(p.dst_dtype);
    op.swap_dst = ks.swap_strided[log2_of(op.ed / parts) - 1][parts - 1];
  }
  return op;
}

// Byte offsets of one position of an odometer over the outer dims of a plan.
class Odometer {
 public:
  Odometer(const CopyPlan& p, int ndims) : p_(p), nd_(ndims) {}

  void seek(int64_t linear) {
    src_ = 0;
    dst_ = 0;
    for (int k = nd_ - 1; k >= 0; --k) {
      const int64_t n = p_.shape[k];
      idx_[k] = linear % n;
      linear /= n;
      src_ += idx_[k] * p_.src_strides[k];
      dst_ += idx_[k] * p_.dst_strides[k];
    }
  }

  void next() {
    for (int k = nd_ - 1; k >= 0; --k) {
      src_ += p_.src_strides[k];
      dst_ += p_.dst_strides[k];
      if (++idx_[k] < p_.shape[k]) return;
      src_ -= p_.shape[k] * p_.src_strides[k];
      dst_ -= p_.shape[k] * p_.dst_strides[k];
      idx_[k] = 0;
    }
  }

  int64_t src() const { return src_; }
  int64_t dst() const { return dst_; }

 private:
  const CopyPlan& p_;
  int nd_;
  std::array<int64_t, kMaxCanonicalDims> idx_{};
  int64_t src_ = 0, dst_ = 0;
};

int64_t outer_count(const CopyPlan& p, int ndims) {
  int64_t n = 1;
  for (int k = 0; k < ndims; ++k) n *= p.shape[k];
  return n;
}

// Small copies call the body directly: no std::function, no ParallelFor round trip.
template <class Body>
void run_units(int64_t units, int64_t grain, bool inline_run, const ParallelFor& pf,
               const Body& body) {
  if (inline_run || units <= 1) {
    body(0, units);
  } else {
    pf(units, std::max<int64_t>(1, grain), std::function<void(int64_t, int64_t)>(body));
  }
}

// Flat unit-stride copy: chunk boundaries are put on destination cache-line boundaries
// (when the element size allows it) so two threads never write the same line.
void run_flat(const CopyPlan& p, const InnerOp& loop, bool is_memcpy, StridedLoop copy_bytes,
              bool inline_run, const ParallelFor& pf) {
  const int64_t es = itemsize(p.src_dtype), ed = itemsize(p.dst_dtype);
  const int64_t n = p.numel;
  const char* src = p.src_base;
  char* dst = p.dst_base;
  auto copy = [&](int64_t b, int64_t e) {
    if (e <= b) return;
    if (is_memcpy && copy_bytes != nullptr) {
      copy_bytes(src + b * es, 1, dst + b * ed, 1, (e - b) * ed);
    } else if (is_memcpy) {
      std::memcpy(dst + b * ed, src + b * es, static_cast<size_t>((e - b) * ed));
    } else {
      loop(src + b * es, es, dst + b * ed, ed, e - b);
    }
  };
  if (inline_run || n <= kMinTaskElems) {
    copy(0, n);
    return;
  }
  constexpr int64_t kBlock = 8192;  // elements; a multiple of 64 so blocks are whole lines
  const auto addr = reinterpret_cast<uintptr_t>(dst);
  int64_t head = static_cast<int64_t>((kCacheLine - addr % kCacheLine) % kCacheLine);
  head = head % ed == 0 ? head / ed : 0;
  if (head >= n) head = 0;
  const int64_t blocks = std::max<int64_t>(1, ceil_div(n - head, kBlock));
  auto bound = [&](int64_t k) { return k == 0 ? 0 : std::min(n, head + k * kBlock); };
  pf(blocks, kMinTaskElems / kBlock, [&](int64_t b, int64_t e) { copy(bound(b), bound(e)); });
}

void run_strided(const CopyPlan& p, const InnerOp& loop, bool inline_run, const ParallelFor& pf) {
  const int nd = static_cast<int>(p.shape.size());
  const int64_t n_in = p.shape[nd - 1];
  const int64_t ss = p.src_strides[nd - 1], ds = p.dst_strides[nd - 1];
  const int64_t rows = outer_count(p, nd - 1);
  const int64_t seg = n_in <= 2 * kMinTaskElems ? n_in : kMinTaskElems;
  const int64_t nseg = ceil_div(n_in, seg);
  const int64_t units = rows * nseg;
  const int64_t grain = std::max<int64_t>(1, kMinTaskElems / seg);
  auto body = [&](int64_t b, int64_t e) {
    if (e <= b) return;
    Odometer od(p, nd - 1);
    int64_t row = b / nseg;
    od.seek(row);
    for (int64_t u = b; u < e;) {
      const int64_t sg = u % nseg;
      const int64_t last = std::min(e, (row + 1) * nseg);  // units of this row in [u, last)
      const int64_t k0 = sg * seg;
      const int64_t k1 = std::min(n_in, (last - row * nseg) * seg);
      loop(p.src_base + od.src() + k0 * ss, ss, p.dst_base + od.dst() + k0 * ds, ds, k1 - k0);
      u = last;
      ++row;
      if (u < e) od.next();
    }
  };
  run_units(units, grain, inline_run, pf, body);
}

// Calls tile(src, dst, ci, cj) on macro tiles of the last two dims, for every outer index.
template <class TileFn>
void run_transpose_tiles(const CopyPlan& p, bool streaming, bool inline_run, const ParallelFor& pf,
                         const TileFn& tile) {
  const int nd = static_cast<int>(p.shape.size());
  const int64_t ni = p.shape[nd - 2], nj = p.shape[nd - 1];
  const int64_t ss_j = p.src_strides[nd - 1], ds_i = p.dst_strides[nd - 2];
  const int64_t es = p.src_strides[nd - 2], ed = p.dst_strides[nd - 1];
  const int64_t rows = outer_count(p, nd - 2);
  // Macro tiles of ~64K elements: 256 x 256 when both dims are long, tall or wide and thin
  // for small channel counts (NCHW -> NHWC has nj = 3, NHWC -> NCHW ni = 3). With streaming stores,
  // strips of 32 destination columns: each thread then writes whole destination lines, and the
  // source is read as 32 long sequential streams (measured best on 8192^2 f32).
  const int64_t tj = std::min<int64_t>(
      nj, streaming ? 32 : std::max<int64_t>(256, (64 * 1024) / std::min<int64_t>(ni, 256)));
  const int64_t ti =
      std::min<int64_t>(ni, std::max<int64_t>(streaming ? 4096 : 256, (64 * 1024) / tj));
  // Column tiles start where destination rows reach a cache line boundary (all rows share
  // the offset: ds_i is a multiple of the line when streaming), so no line is split.
  int64_t head = 0;
  if (streaming) {
    const auto addr = reinterpret_cast<uintptr_t>(p.dst_base);
    head = static_cast<int64_t>((kCacheLine - addr % kCacheLine) % kCacheLine);
    head = head % ed == 0 ? std::min(head / ed, nj) : 0;
  }
  const int64_t ntj = (head > 0 ? 1 : 0) + ceil_div(nj - head, tj);
  auto jbound = [&](int64_t k) {
    if (k == 0) return int64_t{0};
    if (head > 0) return std::min(nj, head + (k - 1) * tj);
    return std::min(nj, k * tj);
  };
  const int64_t nti = ceil_div(ni, ti);
  const int64_t per_row = nti * ntj;
  const int64_t units = rows * per_row;
  const int64_t grain = std::max<int64_t>(1, kMinTaskElems / (ti * tj));
  auto body = [&](int64_t b, int64_t e) {
    if (e <= b) return;
    Odometer od(p, nd - 2);
    int64_t row = b / per_row;
    od.seek(row);
    for (int64_t u = b; u < e; ++u) {
      if (u / per_row != row) {
        ++row;
        od.next();
      }
      const int64_t t = u % per_row;
      const int64_t i0 = (t / ntj) * ti, ci = std::min(ti, ni - i0);
      const int64_t j0 = jbound(t % ntj), cj = jbound(t % ntj + 1) - j0;
      tile(p.src_base + od.src() + i0 * es + j0 * ss_j, p.dst_base + od.dst() + i0 * ds_i + j0 * ed,
           ci, cj);
    }
  };
  run_units(units, grain, inline_run, pf, body);
}

void run_transpose(const CopyPlan& p, TransposeLoop loop, bool streaming, bool inline_run,
                   const ParallelFor& pf) {
  const int nd = static_cast<int>(p.shape.size());
  const int64_t ss_j = p.src_strides[nd - 1], ds_i = p.dst_strides[nd - 2];
  run_transpose_tiles(
      p, streaming, inline_run, pf,
      [&](const char* s, char* d, int64_t ci, int64_t cj) { loop(s, ss_j, d, ds_i, ci, cj); });
}

// A transpose with a cast that has no fused kernel: transpose sub-tiles with the fast
// same-size bit-copy kernel into an L1 buffer, then cast buffer rows with the vectorised
// contiguous loop. Two cheap passes instead of one slow scalar one.
void run_transpose_buffered(const CopyPlan& p, TransposeLoop bits, StridedLoop cast_rows,
                            bool inline_run, const ParallelFor& pf) {
  const int nd = static_cast<int>(p.shape.size());
  const int64_t ss_j = p.src_strides[nd - 1], ds_i = p.dst_strides[nd - 2];
  const int64_t es = itemsize(p.src_dtype), ed = itemsize(p.dst_dtype);
  constexpr int64_t kSub = 64;  // 64 x 64 x 8 bytes = 32 KiB of buffer at most
  run_transpose_tiles(
      p, false, inline_run, pf, [&](const char* s, char* d, int64_t ci, int64_t cj) {
        alignas(64) char buf[kSub * kSub * 8];
        for (int64_t i0 = 0; i0 < ci; i0 += kSub) {
          const int64_t bi = std::min(kSub, ci - i0);
          for (int64_t j0 = 0; j0 < cj; j0 += kSub) {
            const int64_t bj = std::min(kSub, cj - j0);
            bits(s + i0 * es + j0 * ss_j, ss_j, buf, bj * es, bi, bj);
            for (int64_t i = 0; i < bi; ++i) {
              cast_rows(buf + i * bj * es, es, d + (i0 + i) * ds_i + j0 * ed, ed, bj);
            }
          }
        }
      });
}

}  // namespace

ParallelFor serial_for() {
  return [](int64_t n, int64_t, const std::function<void(int64_t, int64_t)>& body) {
    if (n > 0) body(0, n);
  };
}

void execute(const CopyPlan& p, const ParallelFor& pf) {
  const CopyClass cls = classify(p);
  if (cls == CopyClass::kEmpty) return;
  const KernelSet& ks = active_kernels();
  const int s = static_cast<int>(p.src_dtype), d = static_cast<int>(p.dst_dtype);
  const bool inline_run = p.numel * (itemsize(p.src_dtype) + itemsize(p.dst_dtype)) < kInlineBytes;
  switch (cls) {
    case CopyClass::kMemcpy: {
      const bool streaming = p.numel * itemsize(p.dst_dtype) >= kStreamingBytes;
      run_flat(p, InnerOp{}, true, streaming ? ks.copy_streaming : nullptr, inline_run, pf);
      break;
    }
    case CopyClass::kContig: {
      InnerOp op = make_inner(p, ks, p.numel * itemsize(p.dst_dtype) >= kStreamingBytes);
      run_flat(p, op, false, nullptr, inline_run, pf);
      break;
    }
    case CopyClass::kTranspose: {
      const int nd = static_cast<int>(p.shape.size());
      TransposeLoop nt = ks.transpose_streaming[s][d];
      const bool streaming = nt != nullptr && p.numel * itemsize(p.dst_dtype) >= kStreamingBytes &&
                             p.dst_strides[nd - 2] % kCacheLine == 0;
      if (transpose_via_buffer(ks, p.src_dtype, p.dst_dtype)) {
        const int b = bits_type(itemsize(p.src_dtype));
        run_transpose_buffered(p, ks.transpose[b][b], ks.contig[s][d], inline_run, pf);
      } else {
        run_transpose(p, streaming ? nt : ks.transpose[s][d], streaming, inline_run, pf);
      }
      break;
    }
    default:
      run_strided(p, make_inner(p, ks), inline_run, pf);
      break;
  }
}

}  // namespace torchnp::core
