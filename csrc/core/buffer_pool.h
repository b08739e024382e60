// Recycled memory for large fresh outputs: the native engine's half of python/torchnp/_pool.py
// (same rules, same numbers; the Python engine keeps the Python pool).
//
// A fresh result of MIN_BYTES or more would be a new mmap whose every page the kernel zeroes on
// first touch, which costs more than the copy that fills it (64 MiB: ~8 ms of faults against
// ~3 ms of copy on the 2-vCPU dev VM). So such results are carved from private anonymous
// mappings, 2 MiB aligned (from kFreshHugepageMin faulted in as huge pages while those come
// warm: see _pool.py for why), handed back when the last array using one is gone and handed
// out again for the next result of a similar size (up to kSlack times larger). At most `limit`
// bytes are kept idle; an idle buffer older than idle_seconds is unmapped by the next pool
// operation.
//
// Thread-safe: one mutex, held only for list surgery and munmap, never while calling out (the
// Python side creates its objects after acquire() returns, so a lease freed by a garbage
// collection that those objects trigger can release() without deadlock). fork() is safe: the
// mutex is taken around it (pthread_atfork), so the child's is never held by a thread that
// does not exist there; the child keeps the idle buffers (copy-on-write, like any memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace torchnp::core {

class BufferPool {
 public:
  static constexpr int64_t kMinBytes = int64_t{4} << 20;  // below: the allocator recycles itself
  static constexpr int64_t kAlign = int64_t{2} << 20;     // one huge page
  static constexpr double kSlack = 1.25;                  // reuse a buffer up to this much larger
  // Fresh mappings from kFreshHugepageMin up to fresh_hugepage_max are faulted in as huge
  // pages, block by block, until a block takes longer than kColdBlockSeconds; the rest of that
  // mapping, and every fresh mapping for kColdBackoffSeconds after, take regular pages (see
  // _pool.py for the measurements).
  static constexpr int64_t kFreshHugepageMin = int64_t{32} << 20;
  static constexpr int64_t kFreshHugepageMax = int64_t{1} << 62;
  static constexpr double kColdBlockSeconds = 1e-3;
  static constexpr double kColdBackoffSeconds = 10.0;
  static constexpr double kIdleSeconds = 2.0;

  // A buffer: `size` bytes (a multiple of kAlign) at `data`, 2 MiB aligned.
  struct Buffer {
    char* data = nullptr;
    int64_t size = 0;
    explicit operator bool() const { return data != nullptr; }
  };

  explicit BufferPool(int64_t limit);
  ~BufferPool();  // unmaps the idle buffers; buffers out on lease must be released first
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of at least `nbytes`, or an empty Buffer when the pool does not serve this size
  // (under kMinBytes, over the limit, the pool off, or no mapping could be made).
  Buffer acquire(int64_t nbytes);
  // Hands a buffer from acquire() back (it is unmapped if it no longer fits the limit).
  void release(Buffer buffer);
  // Unmaps every idle buffer; the bytes released.
  int64_t clear();
  // Bytes in idle buffers (after expiring the old ones).
  int64_t cached_bytes();

  int64_t limit() const;
  void set_limit(int64_t limit);
  // Tunables and counters (the Python pool has the same ones).
  double idle_seconds() const;
  void set_idle_seconds(double seconds);
  int64_t fresh_hugepage_max() const;
  void set_fresh_hugepage_max(int64_t bytes);
  double cold_block_seconds() const;  // (tests: 0, every block is cold)
  void set_cold_block_seconds(double seconds);
  int64_t hits() const;
  int64_t misses() const;
  int64_t cold_blocks() const;  // fresh huge-page blocks found cold (each starts a back-off)
  // Test hook: the next `n` mappings fail as if mmap had (ENOMEM).
  void fail_maps(int n);

 private:
  struct Idle {
    Buffer buffer;
    double since;  // monotonic seconds
  };
  void settle(double now);  // mu_ held: expire old idle buffers, then whatever exceeds the limit
  Buffer map(int64_t size);  // mu_ not held
  void fault_in_huge(char* data, int64_t size);  // mu_ not held
  static void unmap(Buffer b);
  static void lock_all();  // pthread_atfork
  static void unlock_all();

  mutable std::mutex mu_;
  std::vector<Idle> idle_;  // oldest first
  int64_t cached_ = 0;
  int64_t limit_;
  double idle_seconds_ = kIdleSeconds;
  int64_t fresh_hugepage_max_ = kFreshHugepageMax;
  int64_t hits_ = 0, misses_ = 0, cold_blocks_ = 0;
  double cold_block_seconds_ = kColdBlockSeconds;
  double cold_until_ = 0;  // monotonic seconds
  int fail_maps_ = 0;
};

}  // namespace torchnp::core
