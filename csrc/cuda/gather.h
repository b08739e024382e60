// The device-side pack behind torchnp_link::gather (core/link.h): elements [begin, end) of a
// strided device source, numbered in C order of `shape`, written densely to `dst`.
//
// Plain C++ over the CUDA runtime's C API, so that the host code (cuda_link.cpp, compiled by the
// host compiler) can call it; the kernel itself lives in gather.cu, the module's only device code.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/gather_plan.h"

namespace torchnp::cuda {

// Enqueues the pack on `stream` (the caller has checked the arguments and made the device
// current). Returns the launch's error, cudaSuccess if nothing needed launching.
cudaError_t launch_gather(const GatherArgs& args, cudaStream_t stream);

}  // namespace torchnp::cuda
