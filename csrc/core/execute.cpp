// execute: run a Plan, whole or a slice, exactly as planned.
//
// Everything here is geometry: where each work unit starts, and which of the plan's kernels it
// calls. A slice is cut into at most 2 * ndim boxes (sub-ranges of the canonical dims) and each
// box runs through the same code as a whole copy, so slices and whole copies share every kernel
// call.
#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "core/thread_pool.h"
#include "core/torchnp_core.h"

namespace torchnp::core {
namespace {

constexpr int64_t kCacheLine = 64;
using Extents = std::array<int64_t, kMaxDims>;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Address arithmetic on integers: a canonical base may lie outside the operand's memory (a
// reversed dim, a slice of a staging window); only the addresses of elements are ever used.
inline const char* at(const char* base, int64_t offset) {
  return reinterpret_cast<const char*>(reinterpret_cast<intptr_t>(base) + offset);
}
inline char* at(char* base, int64_t offset) {
  return reinterpret_cast<char*>(reinterpret_cast<intptr_t>(base) + offset);
}

// The plan's 1-D operation over n elements (InnerOp: one kernel, or stages through buffers).
void run_inner(const Plan& p, const char* src, int64_t ss, char* dst, int64_t ds, int64_t n) {
  const InnerOp& op = p.inner;
  const int64_t es = itemsize(p.src_dtype), ed = itemsize(p.dst_dtype);
  if (op.swap_src == nullptr && op.negate == nullptr && op.swap_dst == nullptr) {
    if (ss == es && ds == ed) {
      if (op.memcpy) {
        std::memcpy(dst, src, static_cast<size_t>(n * ed));
      } else {
        op.convert_unit(src, ss, dst, ds, n);
      }
    } else {
      op.convert(src, ss, dst, ds, n);
    }
    return;
  }
  // Each stage reads where the previous one wrote; the last writes the destination. Stages in
  // the source type share one buffer (in place), the cast writes the other.
  const bool convert_last = op.swap_dst == nullptr;
  const bool negate_last = convert_last && op.convert == nullptr;
  const bool swap_last = negate_last && op.negate == nullptr;
  constexpr int64_t kChunk = 256;  // elements; 2 x 4 KiB of stack at 16-byte elements
  alignas(64) char bs[kChunk * 16];
  alignas(64) char bd[kChunk * 16];
  // Runs a stage with its unit-stride version where both sides are dense (always between
  // buffers, often at the ends).
  auto stage = [&](StridedLoop any, StridedLoop unit, const char* s, int64_t s_stride, int64_t s_size,
                   char* d, int64_t d_stride, int64_t d_size, int64_t m) {
    (s_stride == s_size && d_stride == d_size ? unit : any)(s, s_stride, d, d_stride, m);
  };
  for (int64_t k = 0; k < n; k += kChunk) {
    const int64_t m = std::min(kChunk, n - k);
    const char* s = src + k * ss;
    int64_t s_stride = ss;
    char* d = dst + k * ds;
    if (op.swap_src != nullptr) {
      stage(op.swap_src, op.swap_src_unit, s, s_stride, es, swap_last ? d : bs,
            swap_last ? ds : es, es, m);
      s = bs;
      s_stride = es;
    }
    if (op.negate != nullptr) {
      stage(op.negate, op.negate_unit, s, s_stride, es, negate_last ? d : bs,
            negate_last ? ds : es, es, m);  // in place when s is already the buffer
      s = bs;
      s_stride = es;
    }
    if (op.convert != nullptr) {
      stage(op.convert, op.convert_unit, s, s_stride, es, convert_last ? d : bd,
            convert_last ? ds : ed, ed, m);
      s = bd;
      s_stride = ed;
    }
    if (op.swap_dst != nullptr) stage(op.swap_dst, op.swap_dst_unit, s, s_stride, ed, d, ds, ed, m);
  }
}

// Byte offsets of one position of an odometer over the outer dims of a box.
class Odometer {
 public:
  Odometer(const Plan& p, const int64_t* ext, int ndims) : p_(p), ext_(ext), nd_(ndims) {}

  void seek(int64_t linear) {
    src_ = 0;
    dst_ = 0;
    for (int k = nd_ - 1; k >= 0; --k) {
      const int64_t n = ext_[k];
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
      if (++idx_[k] < ext_[k]) return;
      src_ -= ext_[k] * p_.src_strides[k];
      dst_ -= ext_[k] * p_.dst_strides[k];
      idx_[k] = 0;
    }
  }

  int64_t src() const { return src_; }
  int64_t dst() const { return dst_; }

 private:
  const Plan& p_;
  const int64_t* ext_;
  int nd_;
  std::array<int64_t, kMaxDims> idx_{};
  int64_t src_ = 0, dst_ = 0;
};

int64_t outer_count(const int64_t* ext, int ndims) {
  int64_t n = 1;
  for (int k = 0; k < ndims; ++k) n *= ext[k];
  return n;
}

// Flat: blocks of plan.block elements; the first block ends where the destination reaches a
// multiple of plan.chunk_align (a cache line, so that no two threads write the same line; a
// huge page, so that no two threads fault in the same one).
int run_flat(const Plan& p, int64_t n, const char* src, char* dst) {
  const int64_t es = itemsize(p.src_dtype), ed = itemsize(p.dst_dtype);
  auto copy = [&](int64_t b, int64_t e) {
    if (e <= b) return;
    if (p.inner.copy_bytes_nt != nullptr) {
      p.inner.copy_bytes_nt(src + b * es, 1, dst + b * ed, 1, (e - b) * ed);
    } else {
      run_inner(p, src + b * es, es, dst + b * ed, ed, e - b);
    }
  };
  const auto addr = reinterpret_cast<uintptr_t>(dst);
  const auto align = static_cast<uintptr_t>(p.chunk_align);
  int64_t head = static_cast<int64_t>((align - addr % align) % align);
  head = head % ed == 0 ? head / ed : 0;
  if (head >= n) head = 0;
  const int64_t blocks = (head > 0 ? 1 : 0) + ceil_div(n - head, p.block);
  auto bound = [&](int64_t k) {
    if (k == 0) return int64_t{0};
    return std::min(n, head > 0 ? head + (k - 1) * p.block : k * p.block);
  };
  return parallel_for(blocks, p.grain, p.threads,
                      [&](int64_t b, int64_t e) { copy(bound(b), bound(e)); });
}

// Strided: rows of the innermost dim, long rows cut into segments of plan.block elements.
int run_strided(const Plan& p, const int64_t* ext, const char* src, char* dst) {
  const int nd = p.ndim;
  const int64_t n_in = ext[nd - 1];
  const int64_t ss = p.src_strides[nd - 1], ds = p.dst_strides[nd - 1];
  const int64_t rows = outer_count(ext, nd - 1);
  const int64_t seg = std::min(p.block, n_in);
  const int64_t nseg = ceil_div(n_in, seg);
  const InnerOp& op = p.inner;
  const bool one_kernel = op.swap_src == nullptr && op.negate == nullptr && op.swap_dst == nullptr;
  if (nd == 2 && nseg == 1 && one_kernel) {
    // Rows of one dim with a single kernel (a[::-1], a row-strided view...): a plain loop of
    // row copies, no odometer (per-row overhead is most of a small copy's time).
    const int64_t es = itemsize(p.src_dtype), ed = itemsize(p.dst_dtype);
    const int64_t s0 = p.src_strides[0], d0 = p.dst_strides[0];
    const bool unit = ss == es && ds == ed;
    const StridedLoop loop = unit ? op.convert_unit : op.convert;
    const bool bytes = unit && op.memcpy;
    return parallel_for(rows, p.grain, p.threads, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const char* sr = at(src, r * s0);
        char* dr = at(dst, r * d0);
        if (bytes) {
          std::memcpy(dr, sr, static_cast<size_t>(n_in * ed));
        } else {
          loop(sr, ss, dr, ds, n_in);
        }
      }
    });
  }
  auto body = [&](int64_t b, int64_t e) {
    Odometer od(p, ext, nd - 1);
    int64_t row = b / nseg;
    od.seek(row);
    for (int64_t u = b; u < e;) {
      const int64_t last = std::min(e, (row + 1) * nseg);  // units of this row in [u, last)
      const int64_t k0 = (u % nseg) * seg;
      const int64_t k1 = std::min(n_in, (last - row * nseg) * seg);
      run_inner(p, at(src, od.src() + k0 * ss), ss, at(dst, od.dst() + k0 * ds), ds, k1 - k0);
      u = last;
      ++row;
      if (u < e) od.next();
    }
  };
  return parallel_for(rows * nseg, p.grain, p.threads, body);
}

// Transposes: macro tiles of the last two dims, for every outer index; tile(s, d, ci, cj).
template <class TileFn>
int run_transpose_tiles(const Plan& p, const int64_t* ext, const char* src, char* dst,
                        const TileFn& tile) {
  const int nd = p.ndim;
  const int64_t ni = ext[nd - 2], nj = ext[nd - 1];
  const int64_t ss_j = p.src_strides[nd - 1], ds_i = p.dst_strides[nd - 2];
  const int64_t es = p.src_strides[nd - 2], ed = p.dst_strides[nd - 1];
  const int64_t rows = outer_count(ext, nd - 2);
  const int64_t ti = std::min(p.tile_i, ni), tj = std::min(p.tile_j, nj);
  // Streaming: column tiles start where destination rows reach a cache line (all rows share
  // the offset: the row stride is a multiple of the line), so no line is split.
  int64_t head = 0;
  if (p.streaming) {
    const auto addr = reinterpret_cast<uintptr_t>(dst);
    head = static_cast<int64_t>((kCacheLine - addr % kCacheLine) % kCacheLine);
    head = head % ed == 0 ? std::min(head / ed, nj) : 0;
  }
  const int64_t ntj = (head > 0 ? 1 : 0) + ceil_div(nj - head, tj);
  auto jbound = [&](int64_t k) {
    if (k == 0) return int64_t{0};
    return std::min(nj, head > 0 ? head + (k - 1) * tj : k * tj);
  };
  const int64_t per_row = ceil_div(ni, ti) * ntj;
  auto body = [&](int64_t b, int64_t e) {
    Odometer od(p, ext, nd - 2);
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
      tile(at(src, od.src() + i0 * es + j0 * ss_j), at(dst, od.dst() + i0 * ds_i + j0 * ed), ci,
           cj);
    }
  };
  return parallel_for(rows * per_row, p.grain, p.threads, body);
}

int run_transpose(const Plan& p, const int64_t* ext, const char* src, char* dst) {
  const int64_t ss_j = p.src_strides[p.ndim - 1], ds_i = p.dst_strides[p.ndim - 2];
  return run_transpose_tiles(p, ext, src, dst, [&](const char* s, char* d, int64_t ci, int64_t cj) {
    p.tile(s, ss_j, d, ds_i, ci, cj);
  });
}

// Sub-tiles through an L1 buffer: the bit-copy transpose, then the row cast.
int run_transpose_buffered(const Plan& p, const int64_t* ext, const char* src, char* dst) {
  const int64_t ss_j = p.src_strides[p.ndim - 1], ds_i = p.dst_strides[p.ndim - 2];
  const int64_t es = itemsize(p.src_dtype), ed = itemsize(p.dst_dtype);
  constexpr int64_t kSub = 64;  // 64 x 64 x 8 bytes = 32 KiB of buffer at most
  return run_transpose_tiles(p, ext, src, dst, [&](const char* s, char* d, int64_t ci, int64_t cj) {
    alignas(64) char buf[kSub * kSub * 8];
    for (int64_t i0 = 0; i0 < ci; i0 += kSub) {
      const int64_t bi = std::min(kSub, ci - i0);
      for (int64_t j0 = 0; j0 < cj; j0 += kSub) {
        const int64_t bj = std::min(kSub, cj - j0);
        p.tile(s + i0 * es + j0 * ss_j, ss_j, buf, bj * es, bi, bj);
        for (int64_t i = 0; i < bi; ++i) {
          p.inner.convert_unit(buf + i * bj * es, es, d + (i0 + i) * ds_i + j0 * ed, ed, bj);
        }
      }
    }
  });
}

// One box: the canonical dims restricted to `ext` elements from the given bases.
int run_box(const Plan& p, const int64_t* ext, const char* src, char* dst) {
  switch (p.method) {
    case Method::kEmpty:
      return 0;
    case Method::kFlat:
      return run_flat(p, ext[0], src, dst);
    case Method::kStrided:
      return run_strided(p, ext, src, dst);
    case Method::kTranspose:
      return run_transpose(p, ext, src, dst);
    case Method::kTransposeBuffered:
      return run_transpose_buffered(p, ext, src, dst);
  }
  return 0;
}

void check_alignment(const Plan& p, const char* src, const char* dst) {
  if (reinterpret_cast<uintptr_t>(src) % kCacheLine != p.src_align ||
      reinterpret_cast<uintptr_t>(dst) % kCacheLine != p.dst_align) {
    throw std::invalid_argument(
        "torchnp: execute() on memory aligned differently from the planned operands (modulo 64)");
  }
}

}  // namespace

int execute(const Plan& p, const char* src, char* dst) {
  if (p.method == Method::kEmpty) return 0;
  check_alignment(p, src, dst);
  return run_box(p, p.shape.data(), at(src, p.src_offset), at(dst, p.dst_offset));
}

int execute(const Plan& p, const char* src, char* dst, Slice slice) {
  if (slice.begin < 0 || slice.end < slice.begin || slice.end > p.numel) {
    throw std::invalid_argument("torchnp: slice outside the copy's elements");
  }
  if (slice.begin == slice.end || p.method == Method::kEmpty) return 0;
  check_alignment(p, src, dst);
  const int nd = p.ndim;
  const bool by_src = slice.order == Order::kSource;
  const auto& strides = by_src ? p.src_strides : p.dst_strides;
  // The operand's memory order: dims outermost first by decreasing |stride| (stable), each
  // walked towards higher addresses (a source dim with a negative stride is walked backwards).
  std::array<int, kMaxDims> order;
  for (int k = 0; k < nd; ++k) order[k] = k;
  std::stable_sort(order.begin(), order.begin() + nd, [&](int a, int b) {
    return std::llabs(strides[a]) > std::llabs(strides[b]);
  });
  Extents size{}, inner{};  // per position of the order: extent, elements in one step
  int64_t below = 1;
  for (int q = nd - 1; q >= 0; --q) {
    size[q] = p.shape[order[q]];
    inner[q] = below;
    below *= size[q];
  }
  int threads = 0;
  for (int64_t pos = slice.begin; pos < slice.end;) {
    Extents digit{};
    for (int q = 0; q < nd; ++q) digit[q] = (pos / inner[q]) % size[q];
    // The largest box starting at pos: the outermost position q whose inner digits are all
    // zero (pos is a whole number of its steps) and of which one whole step fits before the end.
    int q = 0;
    while (q < nd - 1 && (pos % inner[q] != 0 || slice.end - pos < inner[q])) ++q;
    const int64_t count = std::min(size[q] - digit[q], (slice.end - pos) / inner[q]);
    Extents ext{};
    int64_t src_off = p.src_offset, dst_off = p.dst_offset;
    for (int r = 0; r < nd; ++r) {
      const int k = order[r];
      int64_t lo, n;
      if (r < q) {
        lo = digit[r];
        n = 1;
      } else if (r == q) {
        lo = digit[r];
        n = count;
      } else {
        lo = 0;
        n = size[r];
      }
      if (by_src && p.src_strides[k] < 0) lo = p.shape[k] - lo - n;  // walked backwards
      ext[k] = n;
      src_off += lo * p.src_strides[k];
      dst_off += lo * p.dst_strides[k];
    }
    threads = std::max(threads, run_box(p, ext.data(), at(src, src_off), at(dst, dst_off)));
    pos += count * inner[q];
  }
  return threads;
}

namespace {

// A batch smaller than this runs on the calling thread (a hand-off costs more than it saves).
constexpr int64_t kBatchInlineBytes = 1024 * 1024;
// Chunks of a batch: enough bytes that the slices' set-up is noise, small enough to balance.
constexpr int64_t kBatchChunkBytes = 512 * 1024;

int64_t traffic_per_element(const Plan& p) {
  return itemsize(p.src_dtype) + itemsize(p.dst_dtype);
}

bool splittable(const Plan& p) {
  for (int k = 0; k < p.ndim; ++k) {
    if (p.dst_strides[k] == 0) return false;  // the last write must win: one thread, in order
  }
  return true;
}

}  // namespace

int execute_batch(std::span<const Task> tasks, int threads) {
  // Whole copies first (checked like execute()); the others are weighed: task i holds the
  // bytes [start[i], start[i + 1]) of the batch, element k of it at start[i] + k * per[i].
  std::vector<const Task*> split;
  std::vector<int64_t> start{0};
  int ran = 0;
  for (const Task& t : tasks) {
    if (t.plan->method == Method::kEmpty) continue;
    check_alignment(*t.plan, t.src, t.dst);
    if (!splittable(*t.plan)) {
      ran = std::max(ran, execute(*t.plan, t.src, t.dst));
      continue;
    }
    split.push_back(&t);
    start.push_back(start.back() + t.plan->numel * traffic_per_element(*t.plan));
  }
  const int64_t total = start.back();
  if (total == 0) return ran;
  // Elements of task i whose weighed position lies before byte `b` of the batch.
  auto elements_before = [&](size_t i, int64_t b) {
    const int64_t per = traffic_per_element(*split[i]->plan);
    const int64_t into = std::clamp<int64_t>(b - start[i], 0, start[i + 1] - start[i]);
    return (into + per - 1) / per;
  };
  auto body = [&](int64_t begin, int64_t end) {
    // The first task that ends after `begin`, then each task that starts before `end`.
    size_t i = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), begin) -
                                   start.begin()) - 1;
    for (; i < split.size() && start[i] < end; ++i) {
      const Slice s{Order::kDestination, elements_before(i, begin), elements_before(i, end)};
      if (s.begin < s.end) execute(*split[i]->plan, split[i]->src, split[i]->dst, s);
    }
  };
  if (threads <= 1 || total < kBatchInlineBytes) {
    body(0, total);
    return std::max(ran, 1);
  }
  return std::max(ran, parallel_for(total, kBatchChunkBytes, threads, body));
}

}  // namespace torchnp::core
