// torchnp core: plan and run strided copies between two blocks of raw memory, with the element
// cast, byte swaps and sign flips fused into one pass, on the core's own threads.
//
// Torch-free and Python-free; this header is the whole interface. The binding layer
// (csrc/bindings) hands in addresses, byte strides and element types, and the number of
// threads the calling thread may use.
//
// Semantics: for every index, dst[idx] = cast<dst.dtype>(flip(src[idx])) where `cast` is
// NumPy's unsafe cast (`src.astype(dst_dtype)`, ml_dtypes for bfloat16 / float8 / complex32)
// and `flip` negates the chosen components of the source element in its own type (torch's
// conj / neg bits: IEEE sign flips for floats, NaNs included; two's complement for integers;
// ml_dtypes' rule for the fnuz and e8m0 float8 types). A byte-swapped operand is read as if it
// were native and written in its swapped form. Source and destination must not overlap (the
// engines stage an overlapping source first).
//
// Lifecycle: plan_copy() decides everything (canonical loop nest, the kernels as function
// pointers, streaming stores, tiling, the thread split) and execute() runs exactly that plan,
// for the whole copy or for a slice of it, any number of times, on any memory with the same
// layout and alignment.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace torchnp::core {

// ---- element types (generated from element_types.def) --------------------------------------

enum class ScalarType : uint8_t {
#define TORCHNP_ELEMENT_TYPE(code, enumerator, ...) enumerator = code,
#include "core/element_types.def"
#undef TORCHNP_ELEMENT_TYPE
};
inline constexpr int kNumTypes = 0
#define TORCHNP_ELEMENT_TYPE(...) +1
#include "core/element_types.def"
#undef TORCHNP_ELEMENT_TYPE
    ;

bool is_valid(ScalarType t);
int64_t itemsize(ScalarType t);                // bytes of one element
int components(ScalarType t);                  // 2 for complex types, else 1
const char* scalar_type_name(ScalarType t);    // NumPy / ml_dtypes name, e.g. "bfloat16"
const char* scalar_type_short(ScalarType t);   // kernel-name spelling, e.g. "bf16"

// ---- what to copy --------------------------------------------------------------------------

// The components of every source element to negate on the way: torch's conjugate bit negates
// the imaginary part, its negative bit both parts (of a real type: the value), both bits the
// real part only. A real type has only a real part: kReal and kBoth negate it, kImag (the
// conjugate of a real number) leaves it as it is.
enum class Negate : uint8_t { kNone = 0, kReal = 1, kImag = 2, kBoth = 3 };

// One side of a copy: where element (0, ..., 0) is, its element type and byte order, and its
// byte strides (one per dimension of the shared shape; any sign, zero allowed, need not be
// aligned). The strides are read during plan_copy only.
struct Operand {
  char* data = nullptr;
  ScalarType dtype = ScalarType::kFloat32;
  bool byteswapped = false;
  std::span<const int64_t> strides;
};

// ---- kernels a plan can hold ---------------------------------------------------------------

// dst[k * dst_stride] = f(src[k * src_stride]) for k in [0, n). Strides in bytes, any sign.
using StridedLoop = void (*)(const char* src, int64_t src_stride, char* dst, int64_t dst_stride,
                             int64_t n);

// 2-D transpose with the cast fused: for i in [0, ni), j in [0, nj):
//   dst[i * dst_stride_i + j * sizeof(D)] = cast(src[i * sizeof(S) + j * src_stride_j]).
// The source is unit-stride along i, the destination along j.
using TransposeLoop = void (*)(const char* src, int64_t src_stride_j, char* dst,
                               int64_t dst_stride_i, int64_t ni, int64_t nj);

// The 1-D operation of flat and strided plans, as the stages it fuses. Each stage that is set
// runs, in this order, over chunks of 256 elements kept in L1 buffers between stages (NumPy's
// buffered casts); when only one stage is set it runs straight from source to destination.
// Each stage has a version for any strides and one for unit strides on both sides (the one a
// stage runs between L1 buffers, vectorised).
struct InnerOp {
  StridedLoop swap_src = nullptr, swap_src_unit = nullptr;  // source bytes -> native order
  StridedLoop negate = nullptr, negate_unit = nullptr;      // sign flips, in the source type
  StridedLoop convert = nullptr, convert_unit = nullptr;    // the cast (equal types: bit copy)
  StridedLoop swap_dst = nullptr, swap_dst_unit = nullptr;  // native order -> destination bytes
  // Identical bytes on both sides: flat plans run std::memcpy, or this non-temporal byte copy
  // (n counts bytes) when streaming.
  bool memcpy = false;
  StridedLoop copy_bytes_nt = nullptr;
};

// ---- the plan ------------------------------------------------------------------------------

// More non-trivial dimensions than this would overflow the element count.
inline constexpr int kMaxDims = 64;

enum class Method : uint8_t {
  kEmpty,              // nothing to copy
  kFlat,               // one dimension, unit strides on both sides
  kStrided,            // an N-d loop around the 1-d InnerOp along the innermost dimension
  kTranspose,          // tiles of the last two dims through a fused transpose kernel
  kTransposeBuffered,  // a bit-copy transpose into an L1 buffer, then a row cast
};

struct Plan {
  // The copy in canonical form: size-1 dims dropped, dims contiguous in both operands merged,
  // negative destination strides flipped (both operands walk such a dim backwards), loops
  // ordered outermost first by the destination's strides (ties: the source's); for transposes
  // the dim that is unit-stride in the source sits just before the last.
  int ndim = 0;
  std::array<int64_t, kMaxDims> shape{};
  std::array<int64_t, kMaxDims> src_strides{};  // bytes
  // Bytes, all >= 0. A 0 (a destination that writes one element several times, e.g. a
  // writable broadcast) makes the plan run on one thread, in canonical order: the last write
  // wins, as in NumPy.
  std::array<int64_t, kMaxDims> dst_strides{};
  int64_t numel = 0;
  // From each operand's `data` to the element at canonical index (0, ..., 0), in bytes.
  int64_t src_offset = 0, dst_offset = 0;
  // `data` modulo 64 when planned: execute() accepts any memory with the same alignment.
  uint8_t src_align = 0, dst_align = 0;
  ScalarType src_dtype = ScalarType::kFloat32, dst_dtype = ScalarType::kFloat32;
  bool src_swapped = false, dst_swapped = false;  // only where the bytes really differ
  Negate negate = Negate::kNone;                  // components that apply to src_dtype

  // What runs.
  Method method = Method::kEmpty;
  const char* cpu_variant = "";   // the kernel set the pointers below come from
  InnerOp inner;                  // kFlat, kStrided; kTransposeBuffered: convert = the row cast
  TransposeLoop tile = nullptr;   // kTranspose, kTransposeBuffered (the bit-copy transpose)
  bool streaming = false;         // non-temporal stores (the kernels above are those versions)
  // A flat copy large enough to stream whose destination's first or last page was not in
  // memory when planned (a fresh output): it takes normal stores (plan.cpp, kStreamingBytes).
  bool dst_cold = false;

  // How it is split. Work comes in units (a block of elements, a row segment, a macro tile);
  // the pool hands out chunks of `grain` units. At most `threads` threads run it, the calling
  // thread included (1: the caller alone, with no pool hand-off at all).
  int64_t block = 0;            // kFlat: elements per unit; kStrided: row segment length
  // kFlat: units after the first start at destination addresses that are multiples of this
  // (a cache line, so no two threads write one line; a huge page for large copies).
  int64_t chunk_align = 64;
  int64_t tile_i = 0, tile_j = 0;  // transposes: macro tile
  int64_t grain = 1;
  int threads = 1;
  // The destination bytes of the whole job this copy is part of (execute_batch), as planned:
  // streaming stores are chosen by it as well as by the copy's own size.
  int64_t job_bytes = 0;
};

// Throws std::invalid_argument for a description that cannot be planned (dimension count
// mismatch, negative size, unknown element type, a sign flip on bool). Touches no data.
// `threads` is what the caller may use (torch.get_num_threads() of the calling thread).
// `job_bytes`: the destination bytes of the whole job the copy is part of (a batch of copies
// that together leave the cache behind), 0 for a copy on its own.
Plan plan_copy(std::span<const int64_t> shape, const Operand& dst, const Operand& src,
               Negate negate = Negate::kNone, int threads = 1, int64_t job_bytes = 0);

// Whether a flat plan's destination starting at `first` would count as cold (Plan::dst_cold):
// only copies large enough to stream look, at the first and last page (mincore, Linux).
bool flat_destination_cold(const Plan& plan, const char* first);

// The last plan made through it and what it was made from: a loop converting operands of one
// layout plans once (the "reuse plans for repeated layouts"). A hit compares the
// description (shape, strides, types, byte orders, sign flip, threads, job bytes, both data
// pointers modulo 64) and the active kernel set, ~10 ns where plan_copy takes ~50, and for a
// flat copy large enough to stream whether its destination is cold (two mincore calls); anything
// else plans anew. Not thread-safe: one per thread (the binding keeps a thread_local one).
class PlanMemo {
 public:
  const Plan& plan(std::span<const int64_t> shape, const Operand& dst, const Operand& src,
                   Negate negate = Negate::kNone, int threads = 1, int64_t job_bytes = 0);
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  bool valid_ = false;
  int ndim_ = 0;
  std::array<int64_t, 3 * kMaxDims> dims_;  // shape, then dst strides, then src strides
  ScalarType src_dtype_ = ScalarType::kFloat32, dst_dtype_ = ScalarType::kFloat32;
  bool src_swapped_ = false, dst_swapped_ = false;
  Negate negate_ = Negate::kNone;
  uint8_t src_align_ = 0, dst_align_ = 0;
  int threads_ = 0;
  int64_t job_bytes_ = 0;
  const void* kernels_ = nullptr;
  int64_t hits_ = 0, misses_ = 0;
  Plan plan_;
};

// The plan's kernel name, derived from what it holds, NumPy-like:
//   <method>[_nt]_<src>_to_<dst>/<cpu variant>, e.g. "contig_nt_f64_to_f32/avx2";
// '>' marks a byte-swapped operand, ".neg", ".conj", ".negreal" the source's sign flips.
std::string plan_name(const Plan& plan);

// ---- running a plan ------------------------------------------------------------------------

// A slice of a copy: the elements at positions [begin, end) when every element is numbered in
// one operand's memory order (its dims outermost first by decreasing |stride|, each walked
// towards higher addresses). For an operand that is one dense block, that is the bytes
// [begin * itemsize, end * itemsize) from its lowest address: a device pipeline's staging
// chunks are slices in the source's order, an output written in parts in the destination's.
enum class Order : uint8_t { kDestination, kSource };
struct Slice {
  Order order = Order::kDestination;
  int64_t begin = 0, end = 0;
};

// Runs the plan on operands at `src` / `dst` (the `data` of each Operand; same layout as
// planned, same alignment modulo 64). Returns the number of threads that took part. Throws
// std::invalid_argument only for a misaligned operand or a slice outside [0, numel].
int execute(const Plan& plan, const char* src, char* dst);
int execute(const Plan& plan, const char* src, char* dst, Slice slice);

// Several copies as one job (a tree of tensors, a stack of arrays): their elements, numbered copy
// after copy (each in its destination's memory order) and weighed by the bytes they move, are
// cut into chunks that the pool hands to up to `threads` threads, the calling thread included:
// one hand-off for all of them, however many there are. Plan each copy with threads = 1 (its
// own split is not used); a copy whose destination writes an element several times (a 0
// stride) runs whole, on the calling thread, first. Returns the number of threads that took
// part. The same checks as execute().
struct Task {
  const Plan* plan;
  const char* src;
  char* dst;
};
int execute_batch(std::span<const Task> tasks, int threads);

// ---- threads -------------------------------------------------------------------------------

// The core's worker pool (thread_pool.h) as seen from outside: how many helper threads it has
// started, and hooks for deterministic tests: while the gate is closed, a helper that wakes for
// a job waits at the gate instead of joining, so the calling thread must finish the job alone;
// fail_pool_spawns(n) makes the next n helper starts fail as a pid limit would (a copy then runs
// on the threads there are).
int pool_helpers();
void set_pool_gate(bool closed);
void fail_pool_spawns(int n);
// Solo mode: after a threaded call that ended later than its caller alone would have (a helper
// descheduled by another process), calls run on the calling thread for a back-off
// (thread_pool.cpp), counted in time and in calls. pool_solo_us() says how much time is left,
// pool_solo_calls() how many calls must still run alone (both 0: threads are used),
// end_pool_solo() ends it and forgets the back-off. Test hook: after
// hold_next_pool_claim(true) the next helper that claims a chunk waits, holding it (a
// descheduled helper), until hold_next_pool_claim(false); pool_claim_held() says whether one
// waits so. parallel_probe is never judged nor solo.
int64_t pool_solo_us();
int64_t pool_solo_calls();
int64_t pool_solo_entries();  // how many times the pool has gone solo in this process
void end_pool_solo();
void hold_next_pool_claim(bool hold);
bool pool_claim_held();
// What the helpers have done, for tests: how often one polled for a job, how many jobs one left
// to their caller because it was woken onto the caller's CPU, and how many sleep now.
struct PoolHelperStats {
  int64_t polls = 0;
  int64_t left_on_caller_cpu = 0;
  int asleep = 0;
};
PoolHelperStats pool_helper_stats();

// The number of distinct threads that run `units` one-unit tasks of at most `threads` threads,
// each task waiting (up to a second) for the others to arrive: a probe of the pool's reach.
int parallel_probe(int64_t units, int threads);

// ---- CPU kernel sets -----------------------------------------------------------------------

// Which kernel sets were compiled in, which one plans use. TORCHNP_CPU=baseline|avx2 (read
// once) or set_cpu_variant forces one; set_cpu_variant raises std::invalid_argument for an
// unknown or unsupported name.
std::vector<std::string> compiled_cpu_variants();
std::string active_cpu_variant();
void set_cpu_variant(const std::string& name);  // "" = the best this CPU supports

}  // namespace torchnp::core
