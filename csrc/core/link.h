// The link between host memory and one device's memory, as the transfer pipeline
// (core/transfer.h) sees it: page-locked host memory, asynchronous copies in issue order on the
// link's own copy stream, events, and the ordering against a user's stream.
//
// A plain C struct of function pointers, so that a separately built module can provide one
// without sharing any C++ type with the core: the CUDA runtime's (csrc/cuda, its own lazily
// imported module, handed over as a PyCapsule named "torchnp.link") and the host-simulated
// link of the tests (core/simulated_link.h). Every function returns 0 on success and otherwise
// a nonzero code, with the cause readable from `error` on the same thread until its next call.
// All functions may be called from any thread, concurrently.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum torchnp_copy_kind { TORCHNP_DEVICE_TO_HOST = 0, TORCHNP_HOST_TO_DEVICE = 1 };

typedef struct torchnp_link {
  void* self;
  const char* name;  // e.g. "cuda:0", "simulated"

  // Page-locked host memory of at least `bytes` bytes (aligned to 256), and its release.
  int (*alloc_host)(void* self, size_t bytes, void** out);
  int (*free_host)(void* self, void* p);

  // Enqueues one asynchronous copy on the copy stream, after every copy enqueued before it.
  // Device addresses are plain integers (a CUDA device pointer, `tensor.data_ptr()`).
  int (*copy)(void* self, enum torchnp_copy_kind kind, void* host, uint64_t device,
              size_t bytes);
  // An event that completes once everything enqueued so far on the copy stream has.
  int (*record)(void* self, uint64_t* event);
  // Blocks the calling host thread until the event completes. A copy that failed makes the
  // wait of every later event fail, naming that copy's cause.
  int (*wait)(void* self, uint64_t event);
  // Sets *done to 1 when the event completed, 0 if not yet, without blocking.
  int (*query)(void* self, uint64_t event, int* done);
  int (*release_event)(void* self, uint64_t event);

  // Optional (NULL when the link has none): enqueues on the copy stream a device-side pack of
  // the elements [begin, end) of a strided device source, numbered in C order of `shape`,
  // densely into device memory at `dst` (bytes (end - begin) * itemsize). `src` is the address
  // of element (0, ..., 0); `strides` are in bytes, any sign; itemsize is 1, 2, 4, 8 or 16;
  // ndim <= 8. A pure byte gather (no cast): a permuted or sliced device tensor then crosses
  // the link chunk by chunk, with device scratch bounded by the chunk size.
  int (*gather)(void* self, uint64_t dst, uint64_t src, size_t itemsize, int ndim,
                const int64_t* shape, const int64_t* strides, int64_t begin, int64_t end);

  // Stream ordering with a user's stream (a cudaStream_t as an integer; 0: the default stream).
  // after_stream: copies enqueued from now on start only after the work already enqueued on
  // `stream` (the source's producers). join_stream: work enqueued on `stream` from now on starts
  // only after `event` (the result is ready for it, without a device-wide synchronize).
  int (*after_stream)(void* self, uint64_t stream);
  int (*join_stream)(void* self, uint64_t stream, uint64_t event);

  // The cause of this thread's last failed call, e.g. "cudaMemcpyAsync: an illegal memory
  // access was encountered".
  const char* (*error)(void* self);
} torchnp_link;

#ifdef __cplusplus
}
#endif
