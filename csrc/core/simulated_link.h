// A host-simulated torchnp_link: "device" memory is host memory, and one worker thread plays the
// copy engine, running the enqueued copies and gathers in order with std::memcpy, after an
// optional delay each, so that the transfer pipeline (core/transfer.h) runs end to end on a
// machine without a GPU: chunks really are in flight while the host drains earlier ones.
//
// Fault injection: fail_copy(n, cause) makes the n-th copy or gather from now fail (it moves no
// byte); like a CUDA stream error, every event recorded after it then fails with that cause
// until reset(); fail_alloc(n) refuses the next n page-locked allocations. Streams are recorded, not modelled: after_stream / join_stream calls are
// counted per stream value for the tests.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/link.h"

namespace torchnp::core {

class SimulatedLink {
 public:
  struct Options {
    int64_t delay_us = 0;  // before each copy and gather
    bool gather = true;    // offer link->gather
  };
  struct Stats {
    int64_t copies = 0, gathers = 0, bytes_d2h = 0, bytes_h2d = 0, events = 0;
    int64_t live_events = 0, host_buffers = 0, host_bytes = 0, max_queued = 0;
    std::map<uint64_t, int64_t> after_stream, join_stream;
  };

  explicit SimulatedLink(Options options);
  ~SimulatedLink();  // finishes the queue first
  SimulatedLink(const SimulatedLink&) = delete;
  SimulatedLink& operator=(const SimulatedLink&) = delete;

  const torchnp_link* link() const { return &link_; }
  void fail_copy(int64_t nth, std::string cause);
  // The next `count` alloc_host calls fail (out of memory), each after `delay_us`.
  void fail_alloc(int64_t count, int64_t delay_us = 0);
  void reset();  // forgets a fault and its sticky error
  void set_delay_us(int64_t us);
  Stats stats() const;

 private:
  struct Op {
    enum Kind { kCopy, kGather, kEvent } kind;
    torchnp_copy_kind direction = TORCHNP_DEVICE_TO_HOST;
    char* to = nullptr;
    const char* from = nullptr;
    size_t bytes = 0;
    // gather
    int ndim = 0;
    int64_t shape[8] = {}, strides[8] = {};
    int64_t begin = 0, end = 0;
    uint64_t event = 0;
  };
  struct Event {
    bool done = false;
    std::string error;  // set when done and failed
  };

  void enqueue(Op op);
  void work();
  void run(const Op& op);

  static int c_alloc_host(void* self, size_t bytes, void** out);
  static int c_free_host(void* self, void* p);
  static int c_copy(void* self, torchnp_copy_kind kind, void* host, uint64_t device, size_t bytes);
  static int c_record(void* self, uint64_t* event);
  static int c_wait(void* self, uint64_t event);
  static int c_query(void* self, uint64_t event, int* done);
  static int c_release_event(void* self, uint64_t event);
  static int c_gather(void* self, uint64_t dst, uint64_t src, size_t itemsize, int ndim,
                      const int64_t* shape, const int64_t* strides, int64_t begin, int64_t end);
  static int c_after_stream(void* self, uint64_t stream);
  static int c_join_stream(void* self, uint64_t stream, uint64_t event);
  static const char* c_error(void* self);
  int failed(std::string message);

  torchnp_link link_{};
  Options options_;
  mutable std::mutex mu_;
  std::condition_variable queued_, finished_;
  std::deque<Op> queue_;
  bool stop_ = false;
  uint64_t next_event_ = 1;
  std::map<uint64_t, Event> events_;
  int64_t fail_at_ = -1;  // copies and gathers left before the failing one; -1: none
  int64_t fail_allocs_ = 0, fail_alloc_delay_us_ = 0;
  std::string fail_cause_, sticky_;
  std::map<void*, size_t> host_;
  Stats stats_;
  std::thread worker_;
};

}  // namespace torchnp::core
