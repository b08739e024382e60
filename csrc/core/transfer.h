// The device transfer pipeline: device <-> host conversions through reused page-locked staging
// buffers, chunk by chunk, with the host side of every chunk (the cast, byte swap, sign flips
// and layout change the device did not do) fused into the core's planned copy.
//
// Written once against torchnp_link (core/link.h): the CUDA runtime's link in a CUDA build, the
// host-simulated link (core/simulated_link.h) in the tests, so every line of the pipeline runs
// on machines without a GPU.
//
//   device -> host: [gather on the device into scratch] -> DMA into staging buffer k % R ->
//                   event k -> host threads drain the buffer into the destination (a slice of
//                   the plan in the source's memory order) -> the buffer takes chunk k + R.
//   host -> device: host threads pack a slice of the plan (destination order) into a staging
//                   buffer -> DMA to the device -> event -> the buffer is reused once it fired.
//
// Torch-free; addresses on the device side are integers.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/link.h"
#include "core/torchnp_core.h"

namespace torchnp::core {

// A transfer failed on the link (an allocation, a copy, an event); the message names the
// cause as the link reported it.
class TransferError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The page-locked staging buffers of one link: allocated once at exactly `chunk_bytes` (not
// torch's power-of-two pinned cache), reused by every transfer, never more than `cap_bytes` in
// total except that a transfer always gets at least one buffer. Thread-safe; several
// transfers share one Staging.
class Staging {
 public:
  Staging(const torchnp_link* link, int64_t chunk_bytes, int64_t cap_bytes);
  ~Staging();  // frees every buffer; none may be in use
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  // Between 1 and `want` buffers: idle ones first, then new ones while under the cap; when
  // none is idle and the cap is reached, waits until another transfer releases one. Throws
  // TransferError when no buffer can be had (the link cannot allocate page-locked memory).
  std::vector<char*> acquire(int want);
  void release(const std::vector<char*>& buffers);
  // Frees the idle buffers; returns the bytes freed.
  int64_t trim();
  void set_cap(int64_t cap_bytes);

  struct Stats {
    int64_t chunk_bytes, cap_bytes, held_bytes, idle_bytes, buffers;
  };
  Stats stats() const;
  int64_t chunk_bytes() const { return chunk_; }
  const torchnp_link* link() const { return link_; }

 private:
  const torchnp_link* link_;
  const int64_t chunk_;
  mutable std::mutex mu_;
  std::condition_variable returned_;
  int64_t cap_;
  int64_t held_ = 0;  // buffers allocated, idle or in use
  std::vector<char*> idle_;
};

// The device side of a download: `bytes` bytes that cross the link, densely, in the order the
// plan numbers its source (Order::kSource). Either they lie densely at `data` (the lowest
// byte), or `gather.ndim > 0` and the link packs them piece by piece from a strided source
// (element (0, ..., 0) at `data`) into device scratch first: `scratch_bytes` of it (a multiple
// of the itemsize; a chunk's worth saves gathers), reused by every piece.
struct Gather {
  int ndim = 0;
  std::array<int64_t, 8> shape{}, strides{};  // C order of the packed elements; byte strides
  int64_t itemsize = 0;
  uint64_t scratch = 0;
  int64_t scratch_bytes = 0;
};

struct Download {
  const torchnp_link* link = nullptr;
  Staging* staging = nullptr;
  uint64_t src = 0;
  int64_t bytes = 0;
  Gather gather;
  // The host side: staging -> destination. Planned with its source as one dense block at an
  // address that is 0 modulo 64 (chunks start at multiples of the chunk size, itself a multiple
  // of 64, in 256-aligned buffers).
  const Plan* plan = nullptr;
  char* dst = nullptr;
  uint64_t stream = 0;  // the user's stream: the copies start after its pending work
  int buffers = 3;      // staging ring depth wanted
  // The destination is page-locked and the plan a whole-block memcpy: the DMA goes straight
  // into it (no staging).
  bool direct = false;
};

struct Upload {
  const torchnp_link* link = nullptr;
  Staging* staging = nullptr;
  uint64_t dst = 0;  // the lowest byte of a dense device block of `bytes` bytes
  int64_t bytes = 0;
  // The host side: source -> staging, planned with its destination as one dense block at an
  // address that is 0 modulo 64 (numbered in Order::kDestination).
  const Plan* plan = nullptr;
  const char* src = nullptr;
  uint64_t stream = 0;  // the user's stream: its later work waits for the upload
  int buffers = 3;
  bool direct = false;  // a page-locked source whose plan is a whole-block memcpy
};

// Both run the whole transfer on the calling thread (with the plan's host threads) and return
// once the data is in place: a download's destination is written, an upload's device block is
// written and `stream` ordered after it. On failure they wait for every copy in flight, give
// the staging back and throw TransferError; a download may have written part of its
// destination by then.
void download(const Download& job);
void upload(const Upload& job);

// Several downloads on one link, staging and stream as one pipeline (a tree of device tensors):
// their bytes, job after job, are packed into the staging ring (a small job shares a buffer
// with the following ones), one event per buffer, so all of it is enqueued ahead of the host
// drain instead of one wait per tensor. The same results as download() of each; on failure the
// destinations may be partly written.
void download_batch(std::span<const Download> jobs);
// The same for uploads (a tree of arrays to the device): pieces packed into the ring, one DMA
// per piece, one event per buffer, one join and wait at the end.
void upload_batch(std::span<const Upload> jobs);

}  // namespace torchnp::core
