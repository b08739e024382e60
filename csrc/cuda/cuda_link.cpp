// torchnp_link over the CUDA runtime (see cuda_link.h and core/link.h).
//
// The runtime here is linked statically (see cmake/TorchnpCuda.cmake), so it is a second CUDA
// runtime beside torch's libcudart in the same process. That is sound because both drive the
// same per-device primary context of the driver (the runtime API's "device" is that context),
// and stream, event and device-pointer handles are driver handles (cudaStream_t is CUstream):
// the integers torch hands over (tensor.data_ptr(), stream.cuda_stream) mean the same thing
// here. What is not shared is each runtime's per-thread "last error", so nothing here can
// disturb torch's error checks, and every failure is reported through this link's own `error`.
#include "cuda/cuda_link.h"

#include <cudaTypedefs.h>  // PFN_ typedefs only: the driver is reached through the runtime
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/gather.h"

namespace torchnp::cuda {
namespace {

// One per thread, shared by every device's link: core/link.h promises the cause of the calling
// thread's last failure, whichever link it came from.
thread_local std::string t_error;

int fail(const char* function, cudaError_t error) {
  t_error = function;
  t_error += ": ";
  t_error += cudaGetErrorString(error);
  return static_cast<int>(error);
}

int fail_argument(const char* why) {
  t_error = why;
  return static_cast<int>(cudaErrorInvalidValue);
}

// Whether `device`'s primary context exists. Restoring a caller's device with cudaSetDevice
// creates that device's primary context when it has none (hundreds of MB on the GPU), e.g. on
// a pipeline thread where nothing was current and the runtime reports device 0. torch's own
// device guard skips such a restore for the same reason (c10::cuda::MaybeSetDevice). The driver
// function is reached through the runtime, so the module links no libcuda and imports without
// one; if it cannot be found, the restore happens as asked.
bool primary_context_active(int device) {
  static const auto get_state = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
    if (cudaGetDriverEntryPointByVersion("cuDevicePrimaryCtxGetState", &fn, 7000, cudaEnableDefault,
                                         &found) != cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      fn = nullptr;
    }
    return reinterpret_cast<PFN_cuDevicePrimaryCtxGetState_v7000>(fn);
  }();
  if (get_state == nullptr) return true;
  unsigned flags = 0;
  int active = 0;
  if (get_state(device, &flags, &active) != CUDA_SUCCESS) return true;
  return active != 0;
}

// Makes the link's device current for one entry point and gives the caller its own back on
// return: the pipeline calls links of several devices from the user's thread, whose current
// device torch reads.
class DeviceScope {
 public:
  DeviceScope() = default;
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  ~DeviceScope() {
    if (switched_ && primary_context_active(previous_)) cudaSetDevice(previous_);
  }

  int enter(int device) {
    if (cudaError_t e = cudaGetDevice(&previous_); e != cudaSuccess) {
      return fail("cudaGetDevice", e);
    }
    if (previous_ == device) return 0;
    if (cudaError_t e = cudaSetDevice(device); e != cudaSuccess) return fail("cudaSetDevice", e);
    switched_ = true;
    return 0;
  }

 private:
  int previous_ = 0;
  bool switched_ = false;
};

struct CudaLink {
  torchnp_link abi{};
  int device = 0;
  std::string name;
  std::mutex stream_mutex;
  std::atomic<cudaStream_t> stream{nullptr};
};

CudaLink& link_of(void* self) { return *static_cast<CudaLink*>(self); }

cudaStream_t as_stream(uint64_t handle) {
  return reinterpret_cast<cudaStream_t>(static_cast<uintptr_t>(handle));
}
cudaEvent_t as_event(uint64_t handle) {
  return reinterpret_cast<cudaEvent_t>(static_cast<uintptr_t>(handle));
}

// The copy stream, created on first use (with the link's device current). Non-blocking: the
// legacy default stream would otherwise serialise every copy against all of torch's work on
// stream 0; ordering with the user's stream is explicit (after_stream / join_stream).
int copy_stream(CudaLink& link, cudaStream_t* out) {
  cudaStream_t s = link.stream.load(std::memory_order_acquire);
  if (s == nullptr) {
    std::lock_guard lock(link.stream_mutex);
    s = link.stream.load(std::memory_order_relaxed);
    if (s == nullptr) {
      if (cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking); e != cudaSuccess) {
        return fail("cudaStreamCreateWithFlags", e);
      }
      link.stream.store(s, std::memory_order_release);
    }
  }
  *out = s;
  return 0;
}

// The start of every entry point: the device made current (until `scope` ends) and, when
// `stream` is given, the copy stream.
int enter(CudaLink& link, DeviceScope& scope, cudaStream_t* stream = nullptr) {
  if (int rc = scope.enter(link.device)) return rc;
  return stream == nullptr ? 0 : copy_stream(link, stream);
}

int link_alloc_host(void* self, size_t bytes, void** out) {
  DeviceScope scope;
  if (int rc = enter(link_of(self), scope)) return rc;
  // Portable: pinned for every context, so one staging buffer may serve any device's link.
  // Page-aligned, which covers the 256 bytes link.h promises.
  if (cudaError_t e = cudaHostAlloc(out, bytes == 0 ? 1 : bytes, cudaHostAllocPortable);
      e != cudaSuccess) {
    *out = nullptr;
    return fail("cudaHostAlloc", e);
  }
  return 0;
}

int link_free_host(void* self, void* p) {
  if (p == nullptr) return 0;
  DeviceScope scope;
  if (int rc = enter(link_of(self), scope)) return rc;
  if (cudaError_t e = cudaFreeHost(p); e != cudaSuccess) return fail("cudaFreeHost", e);
  return 0;
}

int link_copy(void* self, torchnp_copy_kind kind, void* host, uint64_t device, size_t bytes) {
  cudaMemcpyKind direction;
  switch (kind) {
    case TORCHNP_DEVICE_TO_HOST:
      direction = cudaMemcpyDeviceToHost;
      break;
    case TORCHNP_HOST_TO_DEVICE:
      direction = cudaMemcpyHostToDevice;
      break;
    default:
      return fail_argument("copy: unknown torchnp_copy_kind");
  }
  if (bytes == 0) return 0;
  DeviceScope scope;
  cudaStream_t stream;
  if (int rc = enter(link_of(self), scope, &stream)) return rc;
  void* dev = reinterpret_cast<void*>(static_cast<uintptr_t>(device));
  void* dst = direction == cudaMemcpyDeviceToHost ? host : dev;
  const void* src = direction == cudaMemcpyDeviceToHost ? dev : host;
  if (cudaError_t e = cudaMemcpyAsync(dst, src, bytes, direction, stream); e != cudaSuccess) {
    return fail("cudaMemcpyAsync", e);
  }
  return 0;
}

int link_record(void* self, uint64_t* event) {
  DeviceScope scope;
  cudaStream_t stream;
  if (int rc = enter(link_of(self), scope, &stream)) return rc;
  cudaEvent_t ev;
  if (cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming); e != cudaSuccess) {
    return fail("cudaEventCreateWithFlags", e);
  }
  if (cudaError_t e = cudaEventRecord(ev, stream); e != cudaSuccess) {
    cudaEventDestroy(ev);
    return fail("cudaEventRecord", e);
  }
  *event = reinterpret_cast<uintptr_t>(ev);
  return 0;
}

// A copy that failed while running leaves a sticky error in the context, so every later
// synchronize reports it: link.h's promise about later waits holds without bookkeeping here.
// A copy refused when enqueued is reported by `copy` itself.
int link_wait(void* self, uint64_t event) {
  DeviceScope scope;
  if (int rc = enter(link_of(self), scope)) return rc;
  if (cudaError_t e = cudaEventSynchronize(as_event(event)); e != cudaSuccess) {
    return fail("cudaEventSynchronize", e);
  }
  return 0;
}

int link_query(void* self, uint64_t event, int* done) {
  DeviceScope scope;
  if (int rc = enter(link_of(self), scope)) return rc;
  const cudaError_t e = cudaEventQuery(as_event(event));
  if (e == cudaErrorNotReady) {
    *done = 0;
    return 0;
  }
  if (e != cudaSuccess) return fail("cudaEventQuery", e);
  *done = 1;
  return 0;
}

int link_release_event(void* self, uint64_t event) {
  DeviceScope scope;
  if (int rc = enter(link_of(self), scope)) return rc;
  // An event still pending is fine to destroy: the driver frees it once it completes.
  if (cudaError_t e = cudaEventDestroy(as_event(event)); e != cudaSuccess) {
    return fail("cudaEventDestroy", e);
  }
  return 0;
}

int link_gather(void* self, uint64_t dst, uint64_t src, size_t itemsize, int ndim,
                const int64_t* shape, const int64_t* strides, int64_t begin, int64_t end) {
  if (itemsize != 1 && itemsize != 2 && itemsize != 4 && itemsize != 8 && itemsize != 16) {
    return fail_argument("gather: itemsize must be 1, 2, 4, 8 or 16");
  }
  if (ndim < 0 || ndim > kGatherMaxDims || (ndim > 0 && (shape == nullptr || strides == nullptr))) {
    return fail_argument("gather: ndim must be 0..8, with shape and strides given");
  }
  GatherArgs args;
  args.dst = dst;
  args.src = src;
  args.itemsize = static_cast<int64_t>(itemsize);
  args.ndim = ndim;
  args.begin = begin;
  args.end = end;
  int64_t numel = 1;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] < 0) return fail_argument("gather: negative extent");
    if (__builtin_mul_overflow(numel, shape[d], &numel)) {
      return fail_argument("gather: element count overflows int64");
    }
    args.shape[d] = shape[d];
    args.strides[d] = strides[d];
  }
  if (begin < 0 || begin > end || end > numel) {
    return fail_argument("gather: [begin, end) is not a range of the source's elements");
  }
  if (begin == end) return 0;
  if (dst == 0 || src == 0) return fail_argument("gather: null device address");
  DeviceScope scope;
  cudaStream_t stream;
  if (int rc = enter(link_of(self), scope, &stream)) return rc;
  if (cudaError_t e = launch_gather(args, stream); e != cudaSuccess) return fail("gather", e);
  return 0;
}

int link_after_stream(void* self, uint64_t user_stream) {
  DeviceScope scope;
  cudaStream_t stream;
  if (int rc = enter(link_of(self), scope, &stream)) return rc;
  cudaEvent_t ev;
  if (cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming); e != cudaSuccess) {
    return fail("cudaEventCreateWithFlags", e);
  }
  int rc = 0;
  if (cudaError_t e = cudaEventRecord(ev, as_stream(user_stream)); e != cudaSuccess) {
    rc = fail("cudaEventRecord", e);
  } else if (cudaError_t e2 = cudaStreamWaitEvent(stream, ev, 0); e2 != cudaSuccess) {
    rc = fail("cudaStreamWaitEvent", e2);
  }
  // The wait holds what it needs: destroying the event right away is allowed.
  cudaEventDestroy(ev);
  return rc;
}

int link_join_stream(void* self, uint64_t user_stream, uint64_t event) {
  DeviceScope scope;
  if (int rc = enter(link_of(self), scope)) return rc;
  if (cudaError_t e = cudaStreamWaitEvent(as_stream(user_stream), as_event(event), 0);
      e != cudaSuccess) {
    return fail("cudaStreamWaitEvent", e);
  }
  return 0;
}

const char* link_error(void*) { return t_error.c_str(); }

std::mutex& links_mutex() {
  static std::mutex m;
  return m;
}

// Intentionally leaked (see link_for).
std::vector<CudaLink*>& links() {
  static auto* all = new std::vector<CudaLink*>();
  return *all;
}

}  // namespace

int device_count(std::string* cause) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (cause != nullptr) *cause = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
    return 0;
  }
  if (n <= 0) {
    if (cause != nullptr) *cause = "cudaGetDeviceCount: no device visible";
    return 0;
  }
  if (cause != nullptr) cause->clear();
  return n;
}

const torchnp_link* link_for(int device) {
  std::lock_guard lock(links_mutex());
  auto& all = links();
  if (static_cast<size_t>(device) >= all.size()) all.resize(static_cast<size_t>(device) + 1);
  CudaLink*& link = all[static_cast<size_t>(device)];
  if (link == nullptr) {
    link = new CudaLink();
    link->device = device;
    link->name = "cuda:" + std::to_string(device);
    torchnp_link& abi = link->abi;
    abi.self = link;
    abi.name = link->name.c_str();
    abi.alloc_host = link_alloc_host;
    abi.free_host = link_free_host;
    abi.copy = link_copy;
    abi.record = link_record;
    abi.wait = link_wait;
    abi.query = link_query;
    abi.release_event = link_release_event;
    abi.gather = link_gather;
    abi.after_stream = link_after_stream;
    abi.join_stream = link_join_stream;
    abi.error = link_error;
  }
  return &link->abi;
}

}  // namespace torchnp::cuda
