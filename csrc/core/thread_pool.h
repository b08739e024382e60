// The core's own worker pool: sized per call, chunks taken dynamically, the calling thread
// working too, helpers asleep between calls, fork-safe.
//
// Why not torch's intra-op pool (OpenMP in the pip wheels): its static split and end barrier
// make every call wait for its slowest thread, and a thread descheduled by another process
// costs a whole scheduler slice (~7 ms measured on a 512 KiB copy that np.copyto does in
// 0.012 ms); its spinning workers take the core such a process needs; and a forked child
// hangs in its next parallel region. Here a call
//  * hands out chunks one at a time from an atomic counter, so whoever is running takes the
//    next one and a helper that has not woken up yet holds nothing;
//  * runs chunks on the calling thread too, and waits at the end only for chunks that another
//    thread has actually started;
//  * lets helpers sleep on a condition variable between calls (after a few microseconds of
//    polling, which keeps back-to-back calls from paying a wake-up each);
//  * starts from a fresh, empty pool in a forked child (pthread_atfork), whatever state the
//    parent's pool was in;
//  * runs alone on its thread when another call (another thread's, or a nested one) holds the
//    pool, instead of queueing behind it.
#pragma once

#include <cstdint>

namespace torchnp::core {

// A non-owning reference to a callable body(begin, end): no allocation per call.
class RangeFn {
 public:
  template <class F>
  RangeFn(const F& f)  // NOLINT(google-explicit-constructor): passed as a temporary
      : ctx_(&f), call_([](const void* c, int64_t b, int64_t e) {
          (*static_cast<const F*>(c))(b, e);
        }) {}
  void operator()(int64_t begin, int64_t end) const { call_(ctx_, begin, end); }

 private:
  const void* ctx_;
  void (*call_)(const void*, int64_t, int64_t);
};

// Runs body(b, e) over [0, n) in chunks of `grain` (the last one shorter) on at most `threads`
// threads, the calling thread included, and returns when every chunk is done. Returns the
// number of threads that ran at least one chunk. `threads` <= 1, a single chunk, or a pool busy
// with another call: the body runs on the calling thread alone.
int parallel_for(int64_t n, int64_t grain, int threads, RangeFn body);

}  // namespace torchnp::core
