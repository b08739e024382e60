// torchnp core: plan and run a strided copy with a fused dtype cast and byte swap.
//
// Torch-free and Python-free. The binding layer (csrc/bindings) hands in raw pointers,
// byte strides and dtype codes, and a ParallelFor that runs work on torch's intra-op pool.
//
// Semantics: for every index, dst[idx] = cast<dst.dtype>(src[idx]) where `cast` is NumPy's
// unsafe cast (`src.astype(dst_dtype)`, ml_dtypes for bfloat16/float8), reading a byte-swapped
// operand as if it were native and writing a byte-swapped operand in its swapped form.
// Source and destination must not overlap (the Python policy stages overlapping sources).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace torchnp::core {

// Element types the core can read and write. The numeric values are part of the binding ABI
// (python/torchnp/_dtypes.py mirrors them); append only.
enum class ScalarType : uint8_t {
  kBool = 0,
  kInt8 = 1,
  kInt16 = 2,
  kInt32 = 3,
  kInt64 = 4,
  kUInt8 = 5,
  kUInt16 = 6,
  kUInt32 = 7,
  kUInt64 = 8,
  kFloat16 = 9,
  kBFloat16 = 10,
  kFloat32 = 11,
  kFloat64 = 12,
  kComplex32 = 13,  // two float16 (torch.complex32 / ml_dtypes.complex32)
  kComplex64 = 14,
  kComplex128 = 15,
  kFloat8_e4m3fn = 16,
  kFloat8_e5m2 = 17,
  kFloat8_e4m3fnuz = 18,
  kFloat8_e5m2fnuz = 19,
  kFloat8_e8m0fnu = 20,
  kNumScalarTypes = 21,
};

int64_t itemsize(ScalarType t);
const char* scalar_type_name(ScalarType t);  // NumPy / ml_dtypes name, e.g. "float32", "bfloat16"

// One side of a copy: where it starts, its element type and byte order, and its byte strides
// (one per dimension of the shared shape; any sign, zero allowed, need not be aligned).
struct Operand {
  char* data = nullptr;
  ScalarType dtype = ScalarType::kFloat32;
  bool byteswapped = false;
  std::vector<int64_t> strides;
};

// Runs body(begin, end) over disjoint chunks covering [0, n), in parallel where worthwhile.
// `grain` is the smallest chunk worth a task. The bindings implement it with at::parallel_for
// so that torch.set_num_threads is respected; tests may pass a serial one.
using ParallelFor = std::function<void(int64_t n, int64_t grain,
                                       const std::function<void(int64_t, int64_t)>& body)>;

ParallelFor serial_for();  // runs body(0, n) on the calling thread

// A copy reduced to its essentials: size-1 dims dropped, dims contiguous in both operands
// merged, loops ordered by both operands' strides (innermost last), negative strides flipped
// where both operands allow it, and the kernel that will run it.
struct CopyPlan {
  std::vector<int64_t> shape;        // canonical shape, outermost first
  std::vector<int64_t> src_strides;  // bytes
  std::vector<int64_t> dst_strides;  // bytes
  const char* src_base = nullptr;
  char* dst_base = nullptr;
  ScalarType src_dtype = ScalarType::kFloat32;
  ScalarType dst_dtype = ScalarType::kFloat32;
  bool src_swapped = false;
  bool dst_swapped = false;
  int64_t numel = 0;
  std::string kernel;  // name of the kernel chosen, e.g. "contig_cast_f64_to_f32/avx2"
};

// Throws std::invalid_argument for a bad description (dimension count mismatch, negative size,
// unknown dtype). Does not touch the data.
CopyPlan plan_copy(std::span<const int64_t> shape, const Operand& dst, const Operand& src);

// Runs the plan. Never throws once the plan is built.
void execute(const CopyPlan& plan, const ParallelFor& parallel_for);

// CPU-feature dispatch: which kernel sets were compiled in, which one runs.
// TORCHNP_CPU=baseline|avx2 (read once, or via set_cpu_variant) forces one; unknown/unsupported
// values raise std::invalid_argument from set_cpu_variant.
std::vector<std::string> compiled_cpu_variants();
std::string active_cpu_variant();
void set_cpu_variant(const std::string& name);  // "" = best supported by this CPU

}  // namespace torchnp::core
