// plan_copy: reduce a strided copy to canonical form (NumPy's dimension coalescing), then decide
// everything that will run (HPTT-style "plan once, execute many"): the method, the kernels as
// function pointers from the active kernel set, streaming stores, the tiling and the thread
// split. execute.cpp follows these decisions and makes none of its own.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "core/kernels/kernel_set.h"
#include "core/torchnp_core.h"

namespace torchnp::core {
namespace {

// Copies under this much traffic run on the calling thread: a hand-off costs more (a helper
// wake-up is ~5-50 us on the 2-core development VM; 64 KiB copies in ~3 us).
constexpr int64_t kInlineBytes = 64 * 1024;
// Transposes break even later: measured on the 2-core dev VM (f32, warm, back to back), 1 vs 2
// threads: 512 KiB 21.5 vs 26.2 us, 1 MiB 61 vs 57 us, 2 MiB 86 vs 65 us. Flat copies, casts
// and strided copies win on 2 threads from their first multi-chunk size (256-512 KiB).
constexpr int64_t kInlineTransposeBytes = 2 * 1024 * 1024;
// The smallest piece of work worth handing to another thread, in elements.
constexpr int64_t kMinChunkElems = 32 * 1024;
// Flat copies are cut into blocks of this many elements: a multiple of 64, so that blocks
// after the first end on destination cache lines and no two threads write the same line.
constexpr int64_t kFlatBlock = 8192;
// Destinations of at least this many bytes get non-temporal stores where a kernel has them:
// the output cannot stay cached anyway, and a normal store first reads the line it overwrites.
// 32 MiB = the L3 of one EPYC CCD. Measured on the 2-core dev VM, 32 MiB copy: 27 GB/s
// streaming vs 16.5 GB/s with normal stores (glibc memcpy: 15 GB/s; it switches to
// streaming only higher up).
// Except flat copies into memory not faulted in yet (a fresh output, Plan::dst_cold): the kernel
// zeroes each new page through the cache on first touch, and normal stores then overwrite lines
// already there, where non-temporal ones write them again past the cache. Measured on the 2-vCPU
// Intel VM, 64 MiB flat copy into a fresh 4 KiB-page mapping, fresh processes: 2 threads 28.6 ms
// streaming, 24.8 ms normal stores (torch's clone 21 ms); 1 thread 57.6 against 50.3 ms.
constexpr int64_t kStreamingBytes = int64_t{32} << 20;
constexpr int64_t kCacheLine = 64;
// Flat destinations of kPageChunkMinBytes or more are cut at huge-page (2 MiB) boundaries, one
// page per unit. Such outputs can be huge-page mappings (NumPy's; the output pool's if asked),
// and a fresh one is faulted in by the copy: when two threads write into the same unfaulted 2 MiB
// page, both take the fault, both allocate and zero a huge page and one of them throws its
// page away. Measured on the 2-core dev VM, fresh 64 MiB copy on 2 threads: 2 MiB units ran
// steadily at 4.4 ms, halves at 4.2-65 ms (median 10.7), 128 KiB units no faster than one
// thread. From 32 MiB (16 units and more) warm copies lose nothing; below, too few units cannot
// balance a helper that joins late (4 MiB warm copy: 2 units 123 us, 128 KiB chunks 65 us).
constexpr int64_t kPageChunkBytes = int64_t{2} << 20;
constexpr int64_t kPageChunkMinBytes = int64_t{32} << 20;

struct Dim {
  int64_t size, src, dst;
};

// Whether the page holding `p` is not in memory (an anonymous page never touched): mincore,
// ~0.3 us. Where that cannot be told, the page counts as resident.
bool page_missing(const char* p) {
#if defined(__linux__)
  static const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  auto* base = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~(page - 1));
  unsigned char v = 1;
  return mincore(base, page, &v) == 0 && (v & 1) == 0;
#else
  (void)p;
  return false;
#endif
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A byte swap of one-byte components (bool, int8, uint8, float8) changes nothing.
bool effective_swap(ScalarType t, bool swapped) {
  return swapped && itemsize(t) / components(t) > 1;
}

// Real types have one component, the real part: negating the imaginary part (a conjugate) does
// nothing to them, anything that negates the real part negates the value.
Negate effective_negate(ScalarType t, Negate n) {
  if (components(t) == 2) return n;
  return (n == Negate::kReal || n == Negate::kBoth) ? Negate::kReal : Negate::kNone;
}

int swap_index(ScalarType t) { return log2_part(itemsize(t) / components(t)) - 1; }

// The 1-D operation of a flat or strided plan: one kernel where one does the whole job,
// otherwise the chain of stages (kernel_set.h: byte swaps and sign flips are loops of their
// own, chained with the cast through L1 buffers).
InnerOp make_inner(const Plan& p, const KernelSet& ks) {
  const int s = static_cast<int>(p.src_dtype), d = static_cast<int>(p.dst_dtype);
  const int neg = static_cast<int>(p.negate) - 1;
  const bool same_type = s == d;
  InnerOp op;
  if (same_type && p.negate == Negate::kNone) {
    if (p.src_swapped == p.dst_swapped) {  // identical bytes (plan_copy cleared equal swaps)
      op.convert = ks.strided[s][s];
      op.convert_unit = ks.contig[s][s];
      op.memcpy = true;
    } else {  // opposite byte orders: one swap-copy
      const int lg = swap_index(p.src_dtype), parts = components(p.src_dtype) - 1;
      op.convert = ks.swap_strided[lg][parts];
      op.convert_unit = ks.swap_contig[lg][parts];
    }
    return op;
  }
  if (same_type && !p.src_swapped && !p.dst_swapped) {  // sign flips only: one kernel
    op.convert = ks.negate_strided[s][neg];
    op.convert_unit = ks.negate_contig[s][neg];
    return op;
  }
  if (p.src_swapped) {
    const int lg = swap_index(p.src_dtype), parts = components(p.src_dtype) - 1;
    op.swap_src = ks.swap_strided[lg][parts];
    op.swap_src_unit = ks.swap_contig[lg][parts];
  }
  if (p.negate != Negate::kNone) {
    op.negate = ks.negate_strided[s][neg];
    op.negate_unit = ks.negate_contig[s][neg];
  }
  if (!same_type) {
    op.convert = ks.strided[s][d];
    op.convert_unit = ks.contig[s][d];
  }
  if (p.dst_swapped) {
    const int lg = swap_index(p.dst_dtype), parts = components(p.dst_dtype) - 1;
    op.swap_dst = ks.swap_strided[lg][parts];
    op.swap_dst_unit = ks.swap_contig[lg][parts];
  }
  return op;
}

bool single_stage(const InnerOp& op) {
  return op.swap_src == nullptr && op.negate == nullptr && op.swap_dst == nullptr;
}

// The non-temporal version of a flat plan's single kernel, or nullptr where there is none.
StridedLoop streaming_version(const Plan& p, const KernelSet& ks) {
  const int s = static_cast<int>(p.src_dtype), d = static_cast<int>(p.dst_dtype);
  if (p.inner.memcpy) return ks.copy_streaming;
  if (s != d) return ks.contig_streaming[s][d];
  if (p.negate != Negate::kNone) {
    return ks.negate_contig_streaming[s][static_cast<int>(p.negate) - 1];
  }
  return ks.swap_contig_streaming[swap_index(p.src_dtype)][components(p.src_dtype) - 1];
}

// A transposing cast without a fused kernel runs as a fast bit-copy transpose into a buffer
// followed by a contiguous cast: two cheap passes instead of one slow scalar one.
bool transpose_via_buffer(const KernelSet& ks, ScalarType src, ScalarType dst) {
  const int s = static_cast<int>(src), d = static_cast<int>(dst);
  const int b = bits_type(itemsize(src));
  return s != d && !ks.transpose_vectorised[s][d] && b >= 0 && ks.transpose_vectorised[b][b];
}

}  // namespace

bool flat_destination_cold(const Plan& p, const char* first) {
  const int64_t bytes = p.numel * itemsize(p.dst_dtype);
  if (first == nullptr || std::max(bytes, p.job_bytes) < kStreamingBytes) return false;
  return page_missing(first) || page_missing(first + bytes - 1);
}

namespace {

void choose_flat(Plan& p, const KernelSet& ks) {
  p.method = Method::kFlat;
  p.inner = make_inner(p, ks);
  const int64_t ed = itemsize(p.dst_dtype);
  if (single_stage(p.inner) && std::max(p.numel * ed, p.job_bytes) >= kStreamingBytes &&
      p.dst_align % ed == 0 && !p.dst_cold) {
    if (StridedLoop nt = streaming_version(p, ks); nt != nullptr) {
      p.streaming = true;
      if (p.inner.memcpy) {
        p.inner.copy_bytes_nt = nt;
      } else {
        p.inner.convert_unit = nt;
      }
    }
  }
  if (p.numel * ed >= kPageChunkMinBytes) {
    p.chunk_align = kPageChunkBytes;
    p.block = kPageChunkBytes / ed;  // every item size divides 2 MiB
    p.grain = 1;
  } else {
    p.block = kFlatBlock;
    p.grain = kMinChunkElems / kFlatBlock;
  }
}

void choose_strided(Plan& p, const KernelSet& ks) {
  p.method = Method::kStrided;
  p.inner = make_inner(p, ks);
  const int64_t n_in = p.shape[p.ndim - 1];
  // Rows are cut into segments only when long: a segment is the unit of work.
  p.block = n_in <= 2 * kMinChunkElems ? n_in : kMinChunkElems;
  p.grain = std::max<int64_t>(1, kMinChunkElems / p.block);
}

void choose_transpose(Plan& p, const KernelSet& ks) {
  const int s = static_cast<int>(p.src_dtype), d = static_cast<int>(p.dst_dtype);
  const int nd = p.ndim;
  const int64_t ni = p.shape[nd - 2], nj = p.shape[nd - 1];
  const int64_t ed = itemsize(p.dst_dtype);
  if (transpose_via_buffer(ks, p.src_dtype, p.dst_dtype)) {
    const int b = bits_type(itemsize(p.src_dtype));
    p.method = Method::kTransposeBuffered;
    p.tile = ks.transpose[b][b];
    p.inner.convert_unit = ks.contig[s][d];
  } else {
    p.method = Method::kTranspose;
    p.tile = ks.transpose[s][d];
    TransposeLoop nt = ks.transpose_streaming[s][d];
    if (nt != nullptr && std::max(p.numel * ed, p.job_bytes) >= kStreamingBytes && p.dst_strides[nd - 2] % kCacheLine == 0 &&
        p.dst_align % ed == 0) {
      p.streaming = true;
      p.tile = nt;
    }
  }
  // Macro tiles of ~64K elements: 256 x 256 when both dims are long, tall or wide and thin for
  // small channel counts (NCHW -> NHWC has nj = 3, NHWC -> NCHW ni = 3). With streaming stores,
  // strips of 32 destination columns: each thread then writes whole destination lines, and the
  // source is read as 32 long sequential streams (measured best on 8192^2 f32).
  p.tile_j = std::min<int64_t>(
      nj, p.streaming ? 32 : std::max<int64_t>(256, (64 * 1024) / std::min<int64_t>(ni, 256)));
  p.tile_i =
      std::min<int64_t>(ni, std::max<int64_t>(p.streaming ? 4096 : 256, (64 * 1024) / p.tile_j));
  p.grain = std::max<int64_t>(1, kMinChunkElems / (p.tile_i * p.tile_j));
}

// Work units of the whole copy, as execute() cuts them.
int64_t work_units(const Plan& p) {
  switch (p.method) {
    case Method::kFlat:
      return ceil_div(p.numel, p.block);
    case Method::kStrided:
      return p.numel / p.shape[p.ndim - 1] * ceil_div(p.shape[p.ndim - 1], p.block);
    case Method::kTranspose:
    case Method::kTransposeBuffered: {
      const int64_t ni = p.shape[p.ndim - 2], nj = p.shape[p.ndim - 1];
      return p.numel / (ni * nj) * ceil_div(ni, p.tile_i) * ceil_div(nj, p.tile_j);
    }
    case Method::kEmpty:
      break;
  }
  return 0;
}

const char* negate_suffix(const Plan& p) {
  switch (p.negate) {
    case Negate::kNone:
      return "";
    case Negate::kReal:
      return components(p.src_dtype) == 2 ? ".negreal" : ".neg";
    case Negate::kImag:
      return ".conj";
    case Negate::kBoth:
      return ".neg";
  }
  return "";
}

}  // namespace

Plan plan_copy(std::span<const int64_t> shape, const Operand& dst, const Operand& src,
               Negate negate, int threads, int64_t job_bytes) {
  if (!is_valid(dst.dtype) || !is_valid(src.dtype)) {
    throw std::invalid_argument("torchnp: unknown dtype code");
  }
  if (dst.strides.size() != shape.size() || src.strides.size() != shape.size()) {
    throw std::invalid_argument("torchnp: strides and shape have different lengths");
  }
  if (static_cast<int>(negate) > 3) throw std::invalid_argument("torchnp: unknown sign flip");
  if (negate != Negate::kNone && src.dtype == ScalarType::kBool) {
    throw std::invalid_argument("torchnp: a bool has no negation");
  }
  Plan p;
  p.job_bytes = std::max<int64_t>(job_bytes, 0);
  p.src_dtype = src.dtype;
  p.dst_dtype = dst.dtype;
  p.negate = effective_negate(src.dtype, negate);
  p.src_swapped = effective_swap(src.dtype, src.byteswapped);
  p.dst_swapped = effective_swap(dst.dtype, dst.byteswapped);
  if (p.src_dtype == p.dst_dtype && p.src_swapped == p.dst_swapped && p.negate == Negate::kNone) {
    p.src_swapped = p.dst_swapped = false;  // same bytes on both sides: a plain copy
  }
  p.src_align = static_cast<uint8_t>(reinterpret_cast<uintptr_t>(src.data) % kCacheLine);
  p.dst_align = static_cast<uint8_t>(reinterpret_cast<uintptr_t>(dst.data) % kCacheLine);
  const int64_t es = itemsize(src.dtype), ed = itemsize(dst.dtype);
  const KernelSet& ks = active_kernels();
  p.cpu_variant = ks.name;

  bool empty = false;
  for (int64_t s : shape) {
    if (s < 0) throw std::invalid_argument("torchnp: negative dimension size");
    if (s == 0) empty = true;
  }
  std::array<Dim, kMaxDims> dims;
  size_t nd = 0;
  int64_t numel = 1;
  if (!empty) {
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == 1) continue;  // a size-1 dim's stride is meaningless
      if (__builtin_mul_overflow(numel, shape[i], &numel)) {
        throw std::invalid_argument("torchnp: number of elements overflows int64");
      }
      Dim d{shape[i], src.strides[i], dst.strides[i]};
      if (d.dst < 0) {
        // Walk this dim backwards on both sides: the same pairs of elements, ascending dst.
        p.dst_offset += (d.size - 1) * d.dst;
        p.src_offset += (d.size - 1) * d.src;
        d.dst = -d.dst;
        d.src = -d.src;
      }
      dims[nd++] = d;  // at most 63 dims of size >= 2 fit in numel, so nd < kMaxDims
    }
  }
  if (empty) {
    p.method = Method::kEmpty;
    p.ndim = 1;
    p.shape[0] = 0;
    p.src_strides[0] = es;
    p.dst_strides[0] = ed;
    return p;
  }
  p.numel = numel;

  // Loop order: outermost = largest dst stride; ties broken by the source's stride, so that the
  // inner loops walk both operands as contiguously as possible. (Insertion sort: stable,
  // allocation-free, and the dim count is small.)
  auto outer_first = [](const Dim& a, const Dim& b) {
    if (a.dst != b.dst) return a.dst > b.dst;
    return std::llabs(a.src) > std::llabs(b.src);
  };
  for (size_t i = 1; i < nd; ++i) {
    const Dim d = dims[i];
    size_t k = i;
    for (; k > 0 && outer_first(d, dims[k - 1]); --k) dims[k] = dims[k - 1];
    dims[k] = d;
  }

  // Merge an outer dim into the next inner one when both operands step through it as one run.
  std::array<Dim, kMaxDims> out;
  size_t m = 0;
  for (size_t i = 0; i < nd; ++i) {
    Dim d = dims[i];
    while (i + 1 < nd) {
      const Dim& inner = dims[i + 1];
      if (d.dst == inner.dst * inner.size && d.src == inner.src * inner.size) {
        d = Dim{d.size * inner.size, inner.src, inner.dst};
        ++i;
      } else {
        break;
      }
    }
    out[m++] = d;
  }
  if (m == 0) out[m++] = Dim{1, es, ed};  // 0-d or all size-1: one element

  // A transpose: the destination is unit-stride innermost, the source along another dim, and
  // only bits move (no byte swap, no sign flip). Bring the source's unit-stride dim right
  // before the innermost one (the order of the outer loops is free).
  const bool bits_only = !p.src_swapped && !p.dst_swapped && p.negate == Negate::kNone;
  if (bits_only && m >= 2 && out[m - 1].dst == ed && out[m - 1].src != es) {
    for (size_t k = m - 1; k-- > 0;) {
      if (out[k].src == es) {
        const Dim t = out[k];
        for (size_t q = k; q + 2 < m; ++q) out[q] = out[q + 1];
        out[m - 2] = t;
        break;
      }
    }
  }
  p.ndim = static_cast<int>(m);
  for (size_t k = 0; k < m; ++k) {
    p.shape[k] = out[k].size;
    p.src_strides[k] = out[k].src;
    p.dst_strides[k] = out[k].dst;
  }

  if (m == 1 && p.src_strides[0] == es && p.dst_strides[0] == ed) {
    p.dst_cold = flat_destination_cold(p, dst.data + p.dst_offset);
    choose_flat(p, ks);
  } else if (bits_only && m >= 2 && p.dst_strides[m - 1] == ed && p.src_strides[m - 1] != es &&
             p.src_strides[m - 2] == es) {
    choose_transpose(p, ks);
  } else {
    choose_strided(p, ks);
  }
  const int64_t traffic = p.numel * (es + ed);
  const int64_t chunks = ceil_div(work_units(p), p.grain);
  const int64_t inline_bytes = p.method == Method::kTranspose ? kInlineTransposeBytes : kInlineBytes;
  p.threads =
      traffic < inline_bytes ? 1 : static_cast<int>(std::clamp<int64_t>(threads, 1, chunks));
  // A destination dim with stride 0 writes one element several times (a writable broadcast
  // out=): one thread in canonical order, so that the last write wins as in NumPy, instead of a
  // race between threads.
  for (int k = 0; k < p.ndim; ++k) {
    if (p.dst_strides[k] == 0) p.threads = 1;
  }
  return p;
}

const Plan& PlanMemo::plan(std::span<const int64_t> shape, const Operand& dst, const Operand& src,
                           Negate negate, int threads, int64_t job_bytes) {
  const size_t nd = shape.size();
  const auto src_align = static_cast<uint8_t>(reinterpret_cast<uintptr_t>(src.data) % kCacheLine);
  const auto dst_align = static_cast<uint8_t>(reinterpret_cast<uintptr_t>(dst.data) % kCacheLine);
  const void* kernels = &active_kernels();
  const bool fits = nd <= static_cast<size_t>(kMaxDims) && dst.strides.size() == nd &&
                    src.strides.size() == nd;
  if (valid_ && fits && static_cast<size_t>(ndim_) == nd && src_dtype_ == src.dtype &&
      dst_dtype_ == dst.dtype && src_swapped_ == src.byteswapped &&
      dst_swapped_ == dst.byteswapped && negate_ == negate && src_align_ == src_align &&
      dst_align_ == dst_align && threads_ == threads && job_bytes_ == job_bytes &&
      kernels_ == kernels && std::equal(shape.begin(), shape.end(), dims_.begin()) &&
      std::equal(dst.strides.begin(), dst.strides.end(), dims_.begin() + nd) &&
      std::equal(src.strides.begin(), src.strides.end(), dims_.begin() + 2 * nd) &&
      (plan_.method != Method::kFlat ||
       flat_destination_cold(plan_, dst.data + plan_.dst_offset) == plan_.dst_cold)) {
    ++hits_;
    return plan_;
  }
  ++misses_;
  valid_ = false;
  plan_ = plan_copy(shape, dst, src, negate, threads, job_bytes);  // (throws: stays invalid)
  if (!fits) return plan_;  // (more dims than the key holds, all but 63 of size 1): not kept
  ndim_ = static_cast<int>(nd);
  std::copy(shape.begin(), shape.end(), dims_.begin());
  std::copy(dst.strides.begin(), dst.strides.end(), dims_.begin() + nd);
  std::copy(src.strides.begin(), src.strides.end(), dims_.begin() + 2 * nd);
  src_dtype_ = src.dtype;
  dst_dtype_ = dst.dtype;
  src_swapped_ = src.byteswapped;
  dst_swapped_ = dst.byteswapped;
  negate_ = negate;
  src_align_ = src_align;
  dst_align_ = dst_align;
  threads_ = threads;
  job_bytes_ = job_bytes;
  kernels_ = kernels;
  valid_ = true;
  return plan_;
}

std::string plan_name(const Plan& p) {
  std::string k;
  k.reserve(64);
  const char* nt = p.streaming ? "_nt" : "";
  switch (p.method) {
    case Method::kEmpty:
      return "empty";
    case Method::kFlat:
      if (p.inner.memcpy) return p.streaming ? std::string("copy_nt/") + p.cpu_variant : "memcpy";
      k = std::string("contig") + nt + "_";
      break;
    case Method::kStrided:
      k = "strided_" + (p.ndim <= 8 ? std::to_string(p.ndim) : std::string("n")) + "d_";
      break;
    case Method::kTranspose:
      k = std::string("transpose_tile") + nt + "_";
      break;
    case Method::kTransposeBuffered:
      k = "transpose_buffered_";
      break;
  }
  if (p.src_swapped) k += '>';
  k += scalar_type_short(p.src_dtype);
  k += negate_suffix(p);
  k += "_to_";
  if (p.dst_swapped) k += '>';
  k += scalar_type_short(p.dst_dtype);
  k += '/';
  k += p.cpu_variant;
  return k;
}

}  // namespace torchnp::core
