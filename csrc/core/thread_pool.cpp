// The worker pool behind parallel_for (see thread_pool.h for what it promises and why).
//
// One job slot. The calling thread publishes a job under the mutex: its body, size and a new
// generation number, plus the claim word `(generation << 32) | next chunk`. Every participant
// (the caller and the helpers that join) claims chunks by compare-and-swap on that word, so a
// claim succeeds only for the generation it was made for: a helper that wakes up late, or is
// descheduled between joining and claiming, finds the word moved on and leaves without ever
// touching the job. A job is done when `remaining` reaches zero; only chunks that were claimed
// can hold it up.
#include "core/thread_pool.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#include "core/torchnp_core.h"

namespace torchnp::core {
namespace {

using Clock = std::chrono::steady_clock;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

constexpr int kMaxThreads = 256;
constexpr int64_t kMaxChunks = int64_t{1} << 31;  // chunk indices live in 32 bits
// How long a helper polls for the next job before it sleeps, and how long the caller polls for
// the last chunks before it sleeps: long enough to bridge back-to-back calls, short enough that
// an idle pool takes no measurable CPU.
constexpr auto kHelperPoll = std::chrono::microseconds(50);
constexpr auto kCallerPoll = std::chrono::microseconds(20);

// Polls `ready` until it returns true or `budget` has passed; true if it became ready.
template <class Ready>
bool poll_for(std::chrono::microseconds budget, const Ready& ready) {
  const auto deadline = Clock::now() + budget;
  for (int i = 0;; ++i) {
    if (ready()) return true;
    if ((i & 15) == 15 && Clock::now() >= deadline) return false;
    cpu_relax();
  }
}

struct Job {
  const RangeFn* body = nullptr;
  int64_t n = 0, grain = 1, chunks = 0;
  uint32_t generation = 0;
};

class Pool {
 public:
  int run(int64_t n, int64_t grain, int threads, RangeFn body);
  int helpers();
  void set_gate(bool closed);
  void fail_spawns(int n) {
    const std::lock_guard<std::mutex> lock(mu_);
    fail_spawns_ = n;
  }

 private:
  int ensure_helpers(int count);  // mu_ held; returns the helpers there are (<= count if short)
  void helper_main(uint64_t seen);
  int64_t work(const Job& job);
  bool claim(uint32_t generation, int64_t chunks, int64_t* chunk);
  void wait_at_gate();

  std::mutex mu_;
  std::condition_variable wake_;  // helpers: a new job was published
  std::condition_variable done_;  // the caller: the last chunk finished
  int started_ = 0;               // helper threads (detached; they live as long as the process)
  Job job_;                       // the current job (guarded by mu_)
  uint64_t generation_ = 0;       // guarded by mu_
  int wanted_ = 0;                // helpers still wanted for the current job (guarded by mu_)
  int fail_spawns_ = 0;           // test hook: helper starts to fail (guarded by mu_)
  std::atomic<uint64_t> published_{0};  // generation_, for helpers polling without the lock
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> remaining_{0};
  std::atomic<int> participants_{0};
  std::atomic<bool> busy_{false};

  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool gate_closed_ = false;  // guarded by gate_mu_
  std::atomic<bool> gate_flag_{false};
};

int Pool::run(int64_t n, int64_t grain, int threads, RangeFn body) {
  if (n <= 0) return 0;
  grain = std::max<int64_t>(grain, 1);
  grain = std::max(grain, (n + kMaxChunks - 1) / kMaxChunks);
  const int64_t chunks = (n + grain - 1) / grain;
  threads = static_cast<int>(std::min<int64_t>({threads, kMaxThreads, chunks}));
  if (threads <= 1 || busy_.exchange(true, std::memory_order_acquire)) {
    body(0, n);  // alone: small work, one thread asked for, or the pool is taken
    return 1;
  }
  struct Release {  // the pool is free again however this call ends
    std::atomic<bool>& busy;
    ~Release() { busy.store(false, std::memory_order_release); }
  } release{busy_};
  Job job;
  int helpers = 0;
  {
    const std::lock_guard<std::mutex> lock(mu_);
    helpers = std::min(threads - 1, ensure_helpers(threads - 1));
    ++generation_;
    job = Job{&body, n, grain, chunks, static_cast<uint32_t>(generation_)};
    job_ = job;
    wanted_ = helpers;
    remaining_.store(chunks, std::memory_order_relaxed);
    participants_.store(0, std::memory_order_relaxed);
    claim_.store(uint64_t{job.generation} << 32, std::memory_order_release);
    published_.store(generation_, std::memory_order_release);
  }
  if (helpers == 1) {
    wake_.notify_one();
  } else if (helpers > 1) {
    wake_.notify_all();
  }
  work(job);
  // Whatever is left are chunks other threads have claimed and are running.
  auto finished = [&] { return remaining_.load(std::memory_order_acquire) == 0; };
  if (!poll_for(kCallerPoll, finished)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, finished);
  }
  return participants_.load(std::memory_order_acquire);
}

bool Pool::claim(uint32_t generation, int64_t chunks, int64_t* chunk) {
  uint64_t word = claim_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(word >> 32) != generation) return false;  // that job is over
    const auto next = static_cast<int64_t>(word & 0xffffffffu);
    if (next >= chunks) return false;
    if (claim_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      *chunk = next;
      return true;
    }
  }
}

int64_t Pool::work(const Job& job) {
  int64_t ran = 0, chunk = 0;
  // A successful claim keeps the job (and the caller's body) alive until this chunk is
  // counted down below.
  while (claim(job.generation, job.chunks, &chunk)) {
    if (ran++ == 0) participants_.fetch_add(1, std::memory_order_relaxed);
    const int64_t begin = chunk * job.grain;
    (*job.body)(begin, std::min(job.n, begin + job.grain));
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      const std::lock_guard<std::mutex> lock(mu_);
      done_.notify_all();
    }
  }
  return ran;
}

void Pool::helper_main(uint64_t seen) {
  for (;;) {
    poll_for(kHelperPoll, [&] { return published_.load(std::memory_order_acquire) != seen; });
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait(lock, [&] { return generation_ != seen; });
    seen = generation_;
    if (wanted_ == 0) continue;  // enough helpers joined this one
    --wanted_;
    const Job job = job_;
    lock.unlock();
    if (gate_flag_.load(std::memory_order_acquire)) wait_at_gate();
    work(job);
  }
}

int Pool::ensure_helpers(int count) {
  if (started_ >= count) return started_;
  // Helpers take no signals: a process-directed signal (Ctrl-C) goes to a thread that runs
  // Python, and no helper is ever interrupted in the middle of a chunk. The caller's own mask
  // comes back however the spawning ends.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  struct Restore {
    sigset_t mask;
    ~Restore() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
  } restore{previous};
  for (; started_ < count; ++started_) {
    try {
      if (fail_spawns_ > 0) {
        --fail_spawns_;
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
      }
      std::thread([this, seen = generation_] {
#if defined(__linux__)
        pthread_setname_np(pthread_self(), "torchnp-pool");
#endif
        helper_main(seen);
      }).detach();
    } catch (const std::system_error&) {
      break;  // no thread to be had (a pid limit): the copy runs on the threads there are
    }
  }
  return started_;
}

int Pool::helpers() {
  const std::lock_guard<std::mutex> lock(mu_);
  return started_;
}

void Pool::set_gate(bool closed) {
  {
    const std::lock_guard<std::mutex> lock(gate_mu_);
    gate_closed_ = closed;
    gate_flag_.store(closed, std::memory_order_release);
  }
  gate_cv_.notify_all();
}

void Pool::wait_at_gate() {
  std::unique_lock<std::mutex> lock(gate_mu_);
  gate_cv_.wait(lock, [&] { return !gate_closed_; });
}

// The process's pool, made on first use. A forked child starts with none: the parent's pool
// object (whose helper threads do not exist in the child, and whose mutexes another thread may
// have held at fork()) is abandoned, never used or freed again. Pools are never destroyed, so
// helpers blocked at process exit touch no freed memory.
std::atomic<Pool*> g_pool{nullptr};

Pool& pool() {
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p != nullptr) return *p;
  auto* fresh = new Pool();  // lock-free install: no mutex a fork could leave locked
  if (g_pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;
  return *p;
}

struct ForkHandler {
  ForkHandler() {
    pthread_atfork(nullptr, nullptr, [] { g_pool.store(nullptr, std::memory_order_release); });
  }
};
const ForkHandler g_fork_handler;

}  // namespace

int parallel_for(int64_t n, int64_t grain, int threads, RangeFn body) {
  if (threads <= 1 || n <= grain) {
    if (n > 0) body(0, n);
    return n > 0 ? 1 : 0;
  }
  return pool().run(n, grain, threads, body);
}

int pool_helpers() { return pool().helpers(); }

void set_pool_gate(bool closed) { pool().set_gate(closed); }

void fail_pool_spawns(int n) { pool().fail_spawns(n); }

int parallel_probe(int64_t units, int threads) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  const auto wanted = static_cast<size_t>(std::clamp<int64_t>(std::min<int64_t>(units, threads), 1, kMaxThreads));
  // Every unit waits until every thread that can come has come (or a second has passed), so
  // that one fast thread cannot take all the units.
  const auto deadline = Clock::now() + std::chrono::seconds(1);
  parallel_for(units, 1, threads, [&](int64_t, int64_t) {
    {
      const std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    }
    while (Clock::now() < deadline) {
      {
        const std::lock_guard<std::mutex> lock(mu);
        if (ids.size() >= wanted) return;
      }
      std::this_thread::yield();
    }
  });
  return static_cast<int>(ids.size());
}

}  // namespace torchnp::core
