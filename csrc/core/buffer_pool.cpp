// The recycling output pool (see buffer_pool.h).
#include "core/buffer_pool.h"

#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>

namespace torchnp::core {
namespace {

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Every live pool, for the fork handlers. The registry's mutex is taken first, then each pool's.
std::mutex& registry_mu() {
  static auto* mu = new std::mutex;  // never destroyed: pools may outlive static destruction
  return *mu;
}
std::set<BufferPool*>& registry() {
  static auto* pools = new std::set<BufferPool*>;
  return *pools;
}

}  // namespace

BufferPool::BufferPool(int64_t limit) : limit_(std::max<int64_t>(limit, 0)) {
  static const bool handlers = [] {
    pthread_atfork(&BufferPool::lock_all, &BufferPool::unlock_all, &BufferPool::unlock_all);
    return true;
  }();
  (void)handlers;
  const std::lock_guard<std::mutex> lock(registry_mu());
  registry().insert(this);
}

BufferPool::~BufferPool() {
  {
    const std::lock_guard<std::mutex> lock(registry_mu());
    registry().erase(this);
  }
  clear();
}

void BufferPool::lock_all() {
  registry_mu().lock();
  for (BufferPool* p : registry()) p->mu_.lock();
}

void BufferPool::unlock_all() {
  for (BufferPool* p : registry()) p->mu_.unlock();
  registry_mu().unlock();
}

BufferPool::Buffer BufferPool::acquire(int64_t nbytes) {
  if (nbytes < kMinBytes) return {};
  const int64_t size = (nbytes + kAlign - 1) / kAlign * kAlign;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    if (nbytes > limit_) return {};
    settle(monotonic_seconds());
    // The smallest idle buffer that fits within the slack.
    auto best = idle_.end();
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      const int64_t s = it->buffer.size;
      if (s >= size && static_cast<double>(s) <= static_cast<double>(size) * kSlack &&
          (best == idle_.end() || s < best->buffer.size)) {
        best = it;
      }
    }
    if (best != idle_.end()) {
      const Buffer b = best->buffer;
      idle_.erase(best);
      cached_ -= b.size;
      ++hits_;
      return b;
    }
    ++misses_;
  }
  return map(size);
}

void BufferPool::release(Buffer buffer) {
  if (!buffer) return;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    if (buffer.size <= limit_) {
      const double now = monotonic_seconds();
      idle_.push_back({buffer, now});
      cached_ += buffer.size;
      settle(now);
      return;
    }
  }
  unmap(buffer);  // larger than the limit (lowered since it was handed out)
}

int64_t BufferPool::clear() {
  std::vector<Idle> idle;
  int64_t released;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    idle.swap(idle_);
    released = cached_;
    cached_ = 0;
  }
  for (const Idle& i : idle) unmap(i.buffer);
  return released;
}

int64_t BufferPool::cached_bytes() {
  const std::lock_guard<std::mutex> lock(mu_);
  settle(monotonic_seconds());
  return cached_;
}

void BufferPool::settle(double now) {
  // Oldest first: expired ones, then whatever exceeds the limit.
  size_t drop = 0;
  while (drop < idle_.size() &&
         (now - idle_[drop].since > idle_seconds_ || cached_ > limit_)) {
    cached_ -= idle_[drop].buffer.size;
    unmap(idle_[drop].buffer);
    ++drop;
  }
  if (drop > 0) idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(drop));
}

BufferPool::Buffer BufferPool::map(int64_t size) {
  int64_t hugepage_max;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    if (fail_maps_ > 0) {
      --fail_maps_;
      return {};
    }
    hugepage_max = fresh_hugepage_max_;
  }
  // Private (shared anonymous memory is shmem: no anonymous huge pages), one huge page of
  // slack to start on a 2 MiB boundary; the slack is unmapped again at once.
  const auto total = static_cast<size_t>(size + kAlign);
  void* raw = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return {};
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + static_cast<uintptr_t>(kAlign) - 1) & ~(static_cast<uintptr_t>(kAlign) - 1);
  const size_t head = aligned - start;
  const size_t tail = total - head - static_cast<size_t>(size);
  if (head > 0) munmap(raw, head);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + static_cast<uintptr_t>(size)), tail);
  char* data = reinterpret_cast<char*>(aligned);
  if (size >= kFreshHugepageMin && size <= hugepage_max) fault_in_huge(data, size);
  return {data, size};
}

void BufferPool::fault_in_huge(char* data, int64_t size) {
#ifdef MADV_HUGEPAGE
  const double start = monotonic_seconds();
  double cold_block;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    if (start < cold_until_) return;  // a cold block lately: regular pages
    cold_block = cold_block_seconds_;
  }
  if (madvise(data, static_cast<size_t>(size), MADV_HUGEPAGE) != 0) return;  // no THP
  // One write per block faults it in as a huge page (the kernel zeroes 2 MiB), or as one
  // regular page where none is to be had (then the copy faults the rest, as without advice).
  double before = start;
  for (int64_t offset = 0; offset < size; offset += kAlign) {
    *reinterpret_cast<volatile char*>(data + offset) = 0;
    const double after = monotonic_seconds();
    if (after - before > cold_block) {
      // A cold block: the rest take regular pages, as do the next mappings for a while.
      const int64_t rest = offset + kAlign;
      if (rest < size) madvise(data + rest, static_cast<size_t>(size - rest), MADV_NOHUGEPAGE);
      const std::lock_guard<std::mutex> lock(mu_);
      cold_until_ = after + kColdBackoffSeconds;
      ++cold_blocks_;
      return;
    }
    before = after;
  }
#else
  (void)data;
  (void)size;
#endif
}

void BufferPool::unmap(Buffer b) {
  if (b) munmap(b.data, static_cast<size_t>(b.size));
}

int64_t BufferPool::limit() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return limit_;
}

void BufferPool::set_limit(int64_t limit) {
  const std::lock_guard<std::mutex> lock(mu_);
  limit_ = std::max<int64_t>(limit, 0);
  settle(monotonic_seconds());
}

double BufferPool::idle_seconds() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return idle_seconds_;
}

void BufferPool::set_idle_seconds(double seconds) {
  const std::lock_guard<std::mutex> lock(mu_);
  idle_seconds_ = seconds;
}

int64_t BufferPool::fresh_hugepage_max() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return fresh_hugepage_max_;
}

void BufferPool::set_fresh_hugepage_max(int64_t bytes) {
  const std::lock_guard<std::mutex> lock(mu_);
  fresh_hugepage_max_ = bytes;
}

double BufferPool::cold_block_seconds() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return cold_block_seconds_;
}

void BufferPool::set_cold_block_seconds(double seconds) {
  const std::lock_guard<std::mutex> lock(mu_);
  cold_block_seconds_ = seconds;
}

int64_t BufferPool::cold_blocks() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return cold_blocks_;
}

int64_t BufferPool::hits() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

int64_t BufferPool::misses() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}

void BufferPool::fail_maps(int n) {
  const std::lock_guard<std::mutex> lock(mu_);
  fail_maps_ = std::max(n, 0);
}

}  // namespace torchnp::core
