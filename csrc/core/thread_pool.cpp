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
#include <sched.h>
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
// The caller polls at least this long, and up to two of its own chunk times (capped here), for
// chunks a helper is still running: a caller that sleeps instead gives its core away, and on a
// machine where another process waits for a core it gets it back a scheduler slice later.
constexpr auto kCallerPollMax = std::chrono::microseconds(2000);
// Solo mode. The pool keeps an account of what its threaded calls gained or lost against the
// caller alone (its own time per chunk times all the chunks): a helper descheduled by another
// process while it holds a chunk costs a scheduler slice, a few milliseconds; a healthy call
// gains a few microseconds or more. The balance is capped at kSoloCredit, so old gains cannot
// hide a new load. When it falls below -kSoloDebt (a helper asleep costs a threaded call a
// wake-up, a few microseconds, which must not send an idle pool solo for good), calls run on
// the calling thread alone for a back-off of both time and calls: kSoloFirst and
// kSoloFirstCalls, both doubled (up to kSoloMax and its share of calls) when the pool goes solo
// again soon after the last back-off ended (within kSoloReentryCalls judged calls, or within 4
// back-offs of time while the calls judged since have lost more than they gained). Time alone would not do: a program whose large conversions come every 20 ms
// (3 ms each, 64 MiB) would start every one of them threaded after a 10 ms back-off, and lose
// a scheduler slice on each (measured with a busy-loop process and torch's spinning OpenMP
// workers on the 2-core dev VM: such calls took 4.7-6.7 ms threaded, 3.0-3.2 ms on one thread).
// The calls lapse kSoloCallsSpan back-offs after the solo began, so that a load long gone does
// not keep the next burst of conversions (minutes later) on one thread.
// Measured on the same VM, 512 KiB copy into out=: idle, 2 threads 6.7 us and 1 thread
// 12.4 us, with ~1% of threaded calls delayed 10-30 us by the host; with a busy-loop process on
// one core, threaded calls averaged 56 us (~1-2% of them waiting 0.2-2 ms for a descheduled
// helper), 1 thread 20 us, np.copyto 15 us.
constexpr auto kSoloCredit = std::chrono::microseconds(1000);
constexpr auto kSoloDebt = std::chrono::microseconds(200);
constexpr auto kSoloFirst = std::chrono::milliseconds(10);
constexpr auto kSoloMax = std::chrono::milliseconds(1000);
constexpr int64_t kSoloFirstCalls = 4;
constexpr int64_t kSoloReentryCalls = 8;
constexpr int64_t kSoloCallsSpan = 10;

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
  int caller_cpu = -1;  // where the caller published it (-1: unknown, or not to be checked)
};

// The CPU the calling thread runs on, or -1 where that cannot be known.
inline int current_cpu() {
#if defined(__linux__)
  return sched_getcpu();
#else
  return -1;
#endif
}

class Pool {
 public:
  // adaptive: solo mode applies and the call is judged (not for the probe, whose chunks wait
  // for each other on purpose).
  int run(int64_t n, int64_t grain, int threads, RangeFn body, bool adaptive);
  int helpers();
  void set_gate(bool closed);
  void fail_spawns(int n) {
    const std::lock_guard<std::mutex> lock(mu_);
    fail_spawns_ = n;
  }

 private:
  int ensure_helpers(int count);  // mu_ held; returns the helpers there are (<= count if short)
  void helper_main(uint64_t seen);
  // Paces (ns per unit) of the caller's chunks: the first kPaces of them.
  static constexpr int kPaces = 32;
  struct Paces {
    double pace[kPaces];
    int count = 0;
    double median();
  };
  // Runs chunks of `job` until none is left to claim; the number run. `paces` (the caller's):
  // how fast its chunks went.
  int64_t work(const Job& job, bool helper, Paces* paces = nullptr);
  bool claim(uint32_t generation, int64_t chunks, int64_t* chunk);
  void wait_at_gate();
  void judge(Clock::duration total, Clock::duration alone, Clock::time_point now);

 public:
  // Solo mode (see kSoloCredit): until when calls run alone, how many more calls must, and the
  // test hook that ends it.
  Clock::time_point solo_until() const {
    return Clock::time_point(Clock::duration(solo_until_.load(std::memory_order_relaxed)));
  }
  int64_t solo_calls() const { return solo_calls_left(Clock::now().time_since_epoch().count()); }
  void end_solo() {
    solo_until_.store(0, std::memory_order_relaxed);
    solo_calls_.store(0, std::memory_order_relaxed);
    solo_calls_until_.store(0, std::memory_order_relaxed);
    backoff_.store(0, std::memory_order_relaxed);
    balance_.store(0, std::memory_order_relaxed);
    solo_ended_.store(0, std::memory_order_relaxed);
    judged_since_.store(0, std::memory_order_relaxed);
    net_since_.store(0, std::memory_order_relaxed);
  }
  // Test hook: hold(true) makes the next helper that claims a chunk wait, holding it, until
  // hold(false); held() says whether one is waiting so.
  void hold_next_claim(bool hold);
  bool claim_held() const { return claim_held_.load(std::memory_order_acquire); }

 private:
  void wait_while_held();
  // Whether this call runs alone for solo mode: before solo_until_, or while solo_calls_ are
  // left and have not lapsed (each call that runs alone for them uses one up).
  bool solo_now();
  int64_t solo_calls_left(Clock::rep now) const {
    return now < solo_calls_until_.load(std::memory_order_relaxed)
               ? solo_calls_.load(std::memory_order_relaxed)
               : 0;
  }
  std::atomic<Clock::rep> solo_until_{0};
  std::atomic<int64_t> solo_calls_{0};
  std::atomic<Clock::rep> solo_calls_until_{0};  // when solo_calls_ lapse
  std::atomic<int64_t> judged_since_{0};  // calls judged since the last back-off ended
  std::atomic<Clock::rep> net_since_{0};   // their gains less their losses, uncapped
  // The account and the back-off (written by the call that holds the pool, read by any).
  std::atomic<Clock::rep> balance_{0};
  std::atomic<Clock::rep> backoff_{0};
  std::atomic<Clock::rep> solo_ended_{0};  // when the last back-off ended
 public:
  std::atomic<int64_t> solo_entries{0};  // how many times the pool went solo (for tests)
  std::atomic<int64_t> helper_polls{0};   // times a helper polled for a job (for tests)
  std::atomic<int64_t> left_on_caller_cpu{0};  // jobs a helper left on the caller's CPU
  int asleep() {
    const std::lock_guard<std::mutex> lock(mu_);
    return asleep_;
  }

 private:
  std::atomic<bool> hold_next_{false};
  std::atomic<bool> claim_held_{false};
  bool holding_ = false;  // guarded by gate_mu_

  std::mutex mu_;
  std::condition_variable wake_;  // helpers: a new job was published
  std::condition_variable done_;  // the caller: the last chunk finished
  // The caller sleeps on done_ (set before it waits, seq_cst against remaining_): only then does
  // the thread that finishes the last chunk take mu_ to wake it. A helper that took mu_ after
  // every job would often hold it just when the caller publishes its next one.
  std::atomic<bool> caller_waits_{false};
  int started_ = 0;               // helper threads (detached; they live as long as the process)
  int asleep_ = 0;                // helpers waiting on wake_ (guarded by mu_)
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

int Pool::run(int64_t n, int64_t grain, int threads, RangeFn body, bool adaptive) {
  if (n <= 0) return 0;
  grain = std::max<int64_t>(grain, 1);
  grain = std::max(grain, (n + kMaxChunks - 1) / kMaxChunks);
  const int64_t chunks = (n + grain - 1) / grain;
  threads = static_cast<int>(std::min<int64_t>({threads, kMaxThreads, chunks}));
  if (threads <= 1 || (adaptive && solo_now()) ||
      busy_.exchange(true, std::memory_order_acquire)) {
    body(0, n);  // alone: small work, one thread asked for, solo mode, or the pool is taken
    return 1;
  }
  struct Release {  // the pool is free again however this call ends
    std::atomic<bool>& busy;
    ~Release() { busy.store(false, std::memory_order_release); }
  } release{busy_};
  Job job;
  int helpers = 0;
  int had_helpers = 0;              // to tell whether this call starts a helper
  const auto start = Clock::now();  // judged from here: the hand-off counts
  {
    // A helper holds mu_ only for a few instructions, but one descheduled in them (by another
    // process, or by torch's OpenMP workers, which spin for milliseconds after each parallel
    // region) would hold this caller for a scheduler slice: measured on the 2-core dev VM,
    // 512 KiB copies right after a torch copy_ took 70 us instead of 8 when they waited here.
    // So a caller that finds it held runs alone (the probe, which counts threads, waits).
    std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
    for (int i = 0; i < 64 && !lock.owns_lock(); ++i) {  // a few microseconds at most
      cpu_relax();
      lock.try_lock();
    }
    if (!lock.owns_lock() && !adaptive) {
      lock.lock();  // the probe counts the threads that come: it waits for the lock
    }
    if (!lock.owns_lock()) {
      body(0, n);
      return 1;
    }
    had_helpers = started_;
    helpers = std::min(threads - 1, ensure_helpers(threads - 1));
    ++generation_;
    job = Job{&body, n, grain, chunks, static_cast<uint32_t>(generation_),
              adaptive ? current_cpu() : -1};
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
  const auto own_start = Clock::now();
  Paces paces;
  const int64_t mine = work(job, false, &paces);
  const auto own_end = Clock::now();
  // Whatever is left are chunks other threads have claimed and are running.
  auto finished = [&] { return remaining_.load(std::memory_order_acquire) == 0; };
  const auto per_chunk = (own_end - own_start) / std::max<int64_t>(mine, 1);
  const auto budget = std::clamp(std::chrono::duration_cast<std::chrono::microseconds>(2 * per_chunk),
                                 kCallerPoll, kCallerPollMax);
  if (!poll_for(budget, finished)) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_waits_.store(true, std::memory_order_seq_cst);
    done_.wait(lock, [&] { return remaining_.load(std::memory_order_seq_cst) == 0; });
    caller_waits_.store(false, std::memory_order_relaxed);
  }
  const auto end = Clock::now();
  // Not judged: a call that started a helper thread (a one-off cost), or had none to hand to.
  if (adaptive && helpers > 0 && helpers <= had_helpers && mine > 0) {
    // What the caller alone would have taken: all units at its median pace per chunk (its
    // average would count the chunks in which it was itself descheduled; its fastest, a chunk
    // of small units: a flat copy's head, a transpose's edge tiles).
    const auto alone =
        std::chrono::nanoseconds(static_cast<int64_t>(paces.median() * static_cast<double>(n)));
    judge(end - start, std::chrono::duration_cast<Clock::duration>(alone), end);
  }
  return participants_.load(std::memory_order_acquire);
}

bool Pool::solo_now() {
  const Clock::rep now = Clock::now().time_since_epoch().count();
  if (now < solo_until_.load(std::memory_order_relaxed)) return true;
  // Threads racing for the last call: one gets it, the others go on threaded.
  for (int64_t calls = solo_calls_left(now); calls > 0;) {
    if (solo_calls_.compare_exchange_weak(calls, calls - 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

void Pool::judge(Clock::duration total, Clock::duration alone, Clock::time_point now) {
  const int64_t judged = judged_since_.fetch_add(1, std::memory_order_relaxed) + 1;
  const Clock::rep net = net_since_.fetch_add((alone - total).count(), std::memory_order_relaxed) +
                         (alone - total).count();
  const Clock::rep credit = Clock::duration(kSoloCredit).count();
  const Clock::rep balance =
      std::min(balance_.load(std::memory_order_relaxed) + (alone - total).count(), credit);
  if (balance >= -Clock::duration(kSoloDebt).count()) {
    balance_.store(balance, std::memory_order_relaxed);
    return;
  }
  // Threads have lost more than they gained: solo, for longer if the last solo was recent.
  const Clock::rep first = Clock::duration(kSoloFirst).count();
  Clock::rep backoff = backoff_.load(std::memory_order_relaxed);
  const Clock::rep since = now.time_since_epoch().count() - solo_ended_.load(std::memory_order_relaxed);
  // Again: within the first judged calls after the last back-off, or soon after it while the
  // calls since have lost more than they gained. One stall after a long run of gains (a helper
  // whose vCPU the host took for a millisecond or two, on an idle machine) is a first back-off:
  // it must not keep the pool solo for seconds, as escalating back-offs did (4 MiB copies in a
  // loop on the 2-core dev VM averaged 60-111 us per block of 2000 calls, against 55 threaded).
  const bool again =
      backoff != 0 && (judged <= kSoloReentryCalls || (since <= 4 * backoff && net < 0));
  backoff = again ? std::min(2 * backoff, Clock::duration(kSoloMax).count()) : first;
  const Clock::rep until = now.time_since_epoch().count() + backoff;
  backoff_.store(backoff, std::memory_order_relaxed);
  balance_.store(0, std::memory_order_relaxed);
  solo_ended_.store(until, std::memory_order_relaxed);
  judged_since_.store(0, std::memory_order_relaxed);
  net_since_.store(0, std::memory_order_relaxed);
  solo_calls_.store(kSoloFirstCalls * (backoff / first), std::memory_order_relaxed);
  solo_calls_until_.store(now.time_since_epoch().count() + kSoloCallsSpan * backoff,
                          std::memory_order_relaxed);
  solo_until_.store(until, std::memory_order_relaxed);
  solo_entries.fetch_add(1, std::memory_order_relaxed);
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

double Pool::Paces::median() {
  if (count == 0) return 0;
  std::nth_element(pace, pace + count / 2, pace + count);
  return pace[count / 2];
}

int64_t Pool::work(const Job& job, bool helper, Paces* paces) {
  int64_t ran = 0, chunk = 0;
  // A successful claim keeps the job (and the caller's body) alive until this chunk is
  // counted down below.
  while (claim(job.generation, job.chunks, &chunk)) {
    if (ran++ == 0) participants_.fetch_add(1, std::memory_order_relaxed);
    if (helper && hold_next_.load(std::memory_order_acquire) &&
        hold_next_.exchange(false, std::memory_order_acq_rel)) {
      wait_while_held();  // test hook: a helper descheduled while it holds a chunk
    }
    const int64_t begin = chunk * job.grain, end = std::min(job.n, begin + job.grain);
    if (paces == nullptr || paces->count == kPaces) {
      (*job.body)(begin, end);
    } else {
      const auto t0 = Clock::now();
      (*job.body)(begin, end);
      const double pace = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              Clock::now() - t0).count()) / static_cast<double>(end - begin);
      paces->pace[paces->count++] = pace;
    }
    if (remaining_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        caller_waits_.load(std::memory_order_seq_cst)) {
      const std::lock_guard<std::mutex> lock(mu_);
      done_.notify_all();
    }
  }
  return ran;
}

void Pool::helper_main(uint64_t seen) {
  // poll: whether to poll before sleeping (not after leaving a job on the caller's CPU).
  for (bool poll = true;;) {
    if (poll) {
      helper_polls.fetch_add(1, std::memory_order_relaxed);
      poll_for(kHelperPoll, [&] { return published_.load(std::memory_order_acquire) != seen; });
    }
    poll = true;
    std::unique_lock<std::mutex> lock(mu_);
    ++asleep_;
    wake_.wait(lock, [&] { return generation_ != seen; });
    --asleep_;
    seen = generation_;
    if (wanted_ == 0) continue;  // enough helpers joined this one
    --wanted_;
    const Job job = job_;
    lock.unlock();
    // Woken onto the caller's own CPU (the scheduler does that when the others are busy: with
    // another process, or torch's spinning OpenMP workers), a helper would only take time from
    // the caller and hold chunks it cannot run: it leaves the job to the caller. (Measured on
    // the 2-core dev VM after a torch copy_: 512 KiB copies 70 us on 2 threads, 13 us on one.)
    // And it goes back to sleep at once: polling for the next job there would take the caller's
    // core for kHelperPoll. (Measured on the 2-vCPU Intel VM, 1 MiB copies 1 ms apart, the
    // helper woken onto the caller's CPU in almost every call: 119 us with the poll, 86 without,
    // 59 on one thread; bench --sweep copies at 256 KiB-4 MiB 0.69-0.81x -> 0.83-1.68x.)
    if (job.caller_cpu >= 0 && !hold_next_.load(std::memory_order_acquire) &&
        current_cpu() == job.caller_cpu) {
      left_on_caller_cpu.fetch_add(1, std::memory_order_relaxed);
      poll = false;
      continue;
    }
    if (gate_flag_.load(std::memory_order_acquire)) wait_at_gate();
    work(job, true);
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

void Pool::hold_next_claim(bool hold) {
  {
    const std::lock_guard<std::mutex> lock(gate_mu_);
    holding_ = hold;
    hold_next_.store(hold, std::memory_order_release);
  }
  gate_cv_.notify_all();
}

void Pool::wait_while_held() {
  std::unique_lock<std::mutex> lock(gate_mu_);
  claim_held_.store(true, std::memory_order_release);
  gate_cv_.wait(lock, [&] { return !holding_; });
  claim_held_.store(false, std::memory_order_release);
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
  return pool().run(n, grain, threads, body, /*adaptive=*/true);
}

int pool_helpers() { return pool().helpers(); }

void set_pool_gate(bool closed) { pool().set_gate(closed); }

void fail_pool_spawns(int n) { pool().fail_spawns(n); }

int64_t pool_solo_us() {
  const auto left = pool().solo_until() - Clock::now();
  return left.count() > 0 ? std::chrono::duration_cast<std::chrono::microseconds>(left).count() + 1
                          : 0;
}

int64_t pool_solo_calls() { return pool().solo_calls(); }

void end_pool_solo() { pool().end_solo(); }

int64_t pool_solo_entries() { return pool().solo_entries.load(std::memory_order_relaxed); }

PoolHelperStats pool_helper_stats() {
  Pool& p = pool();
  return {p.helper_polls.load(std::memory_order_relaxed),
          p.left_on_caller_cpu.load(std::memory_order_relaxed), p.asleep()};
}

void hold_next_pool_claim(bool hold) { pool().hold_next_claim(hold); }

bool pool_claim_held() { return pool().claim_held(); }

int parallel_probe(int64_t units, int threads) {
  std::mutex mu;
  std::set<std::thread::id> ids;
  const auto wanted = static_cast<size_t>(std::clamp<int64_t>(std::min<int64_t>(units, threads), 1, kMaxThreads));
  // Every unit waits until every thread that can come has come (or a second has passed), so
  // that one fast thread cannot take all the units.
  const auto deadline = Clock::now() + std::chrono::seconds(1);
  auto probe = [&](int64_t, int64_t) {
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
  };
  if (threads <= 1 || units <= 1) {
    probe(0, units);
  } else {
    pool().run(units, 1, threads, probe, /*adaptive=*/false);
  }
  return static_cast<int>(ids.size());
}

}  // namespace torchnp::core
