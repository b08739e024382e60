// The pack kernel of torchnp_link::gather: the module's only device code.
//
// A pure byte gather: an item of `itemsize` bytes moves as whole units of move_unit() bytes (a
// 16-byte item as one 128-bit load and store when aligned). The index math is in gather_plan.h,
// where a host compiler can test it.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cuda/gather.h"
#include "cuda/gather_plan.h"

namespace torchnp::cuda {
namespace {

struct alignas(16) Bytes16 {
  uint64_t lo, hi;
};

// One thread per item, grid-stride, all index math in 64 bits (a chunk may exceed 2^31 items,
// and byte offsets of large tensors always can).
template <typename Unit>
__global__ void gather_strided_to_contig(GatherArgs a, int units_per_item) {
  const int64_t count = a.end - a.begin;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const char* src = reinterpret_cast<const char*>(a.src);
  Unit* dst = reinterpret_cast<Unit*>(a.dst);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += step) {
    const Unit* from = reinterpret_cast<const Unit*>(src + source_offset(a, a.begin + i));
    Unit* to = dst + i * units_per_item;
    for (int u = 0; u < units_per_item; ++u) to[u] = from[u];
  }
}

template <typename Unit>
cudaError_t launch(const GatherArgs& a, int units_per_item, cudaStream_t stream) {
  constexpr int kThreads = 256;
  // Enough blocks to fill any current GPU several times over (H100/H200: 132 SMs x 8 blocks of
  // 256); the grid-stride loop covers the rest, so the grid never depends on the chunk size.
  constexpr int64_t kMaxBlocks = 8192;
  const int64_t count = a.end - a.begin;
  const auto blocks =
      static_cast<unsigned>(std::min((count + kThreads - 1) / kThreads, kMaxBlocks));
  // This runtime's last error could be a stale one from an earlier failed call on this thread;
  // cleared, what cudaGetLastError reports below is this launch's.
  (void)cudaGetLastError();
  gather_strided_to_contig<Unit><<<blocks, kThreads, 0, stream>>>(a, units_per_item);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_gather(const GatherArgs& args, cudaStream_t stream) {
  const int64_t count = args.end - args.begin;
  if (count <= 0) return cudaSuccess;
  const GatherArgs a = coalesce(args);
  // A contiguous source (after coalescing) is a plain device-to-device copy: the copy engine,
  // not the SMs.
  if (a.ndim == 0 || (a.ndim == 1 && a.strides[0] == a.itemsize)) {
    const int64_t first = a.ndim == 0 ? 0 : a.begin * a.strides[0];
    return cudaMemcpyAsync(reinterpret_cast<void*>(a.dst),
                           reinterpret_cast<const void*>(a.src + static_cast<uint64_t>(first)),
                           static_cast<size_t>(count * a.itemsize), cudaMemcpyDeviceToDevice,
                           stream);
  }
  const int64_t unit = move_unit(a);
  const int units = static_cast<int>(a.itemsize / unit);
  switch (unit) {
    case 16:
      return launch<Bytes16>(a, units, stream);
    case 8:
      return launch<uint64_t>(a, units, stream);
    case 4:
      return launch<uint32_t>(a, units, stream);
    case 2:
      return launch<uint16_t>(a, units, stream);
    default:
      return launch<uint8_t>(a, units, stream);
  }
}

}  // namespace torchnp::cuda
