#include "core/simulated_link.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

namespace torchnp::core {

namespace {

thread_local std::string t_error;

SimulatedLink* self_of(void* self) { return static_cast<SimulatedLink*>(self); }

void* as_pointer(uint64_t address) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>(address));
}

}  // namespace

SimulatedLink::SimulatedLink(Options options) : options_(options) {
  link_.self = this;
  link_.name = "simulated";
  link_.alloc_host = &c_alloc_host;
  link_.free_host = &c_free_host;
  link_.copy = &c_copy;
  link_.record = &c_record;
  link_.wait = &c_wait;
  link_.query = &c_query;
  link_.release_event = &c_release_event;
  link_.gather = options.gather ? &c_gather : nullptr;
  link_.after_stream = &c_after_stream;
  link_.join_stream = &c_join_stream;
  link_.error = &c_error;
  worker_ = std::thread([this] { work(); });
}

SimulatedLink::~SimulatedLink() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  queued_.notify_all();
  worker_.join();
  for (auto& [p, n] : host_) std::free(p);
}

void SimulatedLink::fail_copy(int64_t nth, std::string cause) {
  std::lock_guard lock(mu_);
  fail_at_ = nth;
  fail_cause_ = std::move(cause);
}

void SimulatedLink::fail_alloc(int64_t count, int64_t delay_us) {
  std::lock_guard lock(mu_);
  fail_allocs_ = count;
  fail_alloc_delay_us_ = delay_us;
}

void SimulatedLink::reset() {
  std::lock_guard lock(mu_);
  fail_at_ = -1;
  sticky_.clear();
}

void SimulatedLink::set_delay_us(int64_t us) {
  std::lock_guard lock(mu_);
  options_.delay_us = us;
}

SimulatedLink::Stats SimulatedLink::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.live_events = static_cast<int64_t>(events_.size());
  s.host_buffers = static_cast<int64_t>(host_.size());
  s.host_bytes = 0;
  for (const auto& [p, n] : host_) s.host_bytes += static_cast<int64_t>(n);
  return s;
}

void SimulatedLink::enqueue(Op op) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(op);
    stats_.max_queued = std::max(stats_.max_queued, static_cast<int64_t>(queue_.size()));
  }
  queued_.notify_one();
}

void SimulatedLink::work() {
  std::unique_lock lock(mu_);
  for (;;) {
    queued_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything ran
    const Op op = queue_.front();
    queue_.pop_front();
    if (op.kind == Op::kEvent) {
      Event& e = events_[op.event];
      e.done = true;
      e.error = sticky_;
      finished_.notify_all();
      continue;
    }
    const int64_t delay = options_.delay_us;
    bool fault = false;
    if (fail_at_ >= 0) fault = fail_at_-- == 0;
    if (fault) {
      sticky_ = fail_cause_;
      continue;
    }
    const bool skip = !sticky_.empty();  // a failed stream runs nothing more
    lock.unlock();
    if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay));
    if (!skip) run(op);
    lock.lock();
    if (op.kind == Op::kCopy) {
      ++stats_.copies;
      (op.direction == TORCHNP_DEVICE_TO_HOST ? stats_.bytes_d2h : stats_.bytes_h2d) +=
          static_cast<int64_t>(op.bytes);
    } else {
      ++stats_.gathers;
    }
  }
}

void SimulatedLink::run(const Op& op) {
  if (op.kind == Op::kCopy) {
    if (op.bytes) std::memcpy(op.to, op.from, op.bytes);
    return;
  }
  // Gather: element i (C order of shape) of the strided source to position i of `to`.
  const auto isz = static_cast<int64_t>(op.bytes);
  int64_t idx[8] = {};
  int64_t rest = op.begin;
  for (int d = op.ndim - 1; d >= 0; --d) {
    idx[d] = rest % op.shape[d];
    rest /= op.shape[d];
  }
  char* out = op.to;
  for (int64_t i = op.begin; i < op.end; ++i) {
    int64_t off = 0;
    for (int d = 0; d < op.ndim; ++d) off += idx[d] * op.strides[d];
    std::memcpy(out, op.from + off, static_cast<size_t>(isz));
    out += isz;
    for (int d = op.ndim - 1; d >= 0; --d) {
      if (++idx[d] < op.shape[d]) break;
      idx[d] = 0;
    }
  }
}

int SimulatedLink::failed(std::string message) {
  t_error = std::move(message);
  return 1;
}

int SimulatedLink::c_alloc_host(void* self, size_t bytes, void** out) {
  int64_t delay = -1;
  {
    std::lock_guard lock(self_of(self)->mu_);
    if (self_of(self)->fail_allocs_ > 0) {
      --self_of(self)->fail_allocs_;
      delay = self_of(self)->fail_alloc_delay_us_;
    }
  }
  if (delay >= 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(delay));
    return self_of(self)->failed("simulated alloc_host: out of page-locked memory");
  }
  const size_t rounded = (bytes + 255) / 256 * 256;
  void* p = std::aligned_alloc(256, rounded ? rounded : 256);
  if (!p) return self_of(self)->failed("simulated alloc_host: out of memory");
  std::lock_guard lock(self_of(self)->mu_);
  self_of(self)->host_[p] = bytes;
  *out = p;
  return 0;
}

int SimulatedLink::c_free_host(void* self, void* p) {
  SimulatedLink* s = self_of(self);
  {
    std::lock_guard lock(s->mu_);
    if (s->host_.erase(p) == 0) return s->failed("simulated free_host: not a host allocation");
  }
  std::free(p);
  return 0;
}

int SimulatedLink::c_copy(void* self, torchnp_copy_kind kind, void* host, uint64_t device,
                          size_t bytes) {
  Op op{Op::kCopy};
  op.direction = kind;
  op.bytes = bytes;
  if (kind == TORCHNP_DEVICE_TO_HOST) {
    op.to = static_cast<char*>(host);
    op.from = static_cast<const char*>(as_pointer(device));
  } else {
    op.to = static_cast<char*>(as_pointer(device));
    op.from = static_cast<const char*>(host);
  }
  self_of(self)->enqueue(op);
  return 0;
}

int SimulatedLink::c_gather(void* self, uint64_t dst, uint64_t src, size_t itemsize, int ndim,
                            const int64_t* shape, const int64_t* strides, int64_t begin,
                            int64_t end) {
  SimulatedLink* s = self_of(self);
  if (ndim < 1 || ndim > 8) return s->failed("simulated gather: ndim must be 1..8");
  Op op{Op::kGather};
  op.to = static_cast<char*>(as_pointer(dst));
  op.from = static_cast<const char*>(as_pointer(src));
  op.bytes = itemsize;
  op.ndim = ndim;
  for (int d = 0; d < ndim; ++d) {
    op.shape[d] = shape[d];
    op.strides[d] = strides[d];
  }
  op.begin = begin;
  op.end = end;
  s->enqueue(op);
  return 0;
}

int SimulatedLink::c_record(void* self, uint64_t* event) {
  SimulatedLink* s = self_of(self);
  Op op{Op::kEvent};
  {
    std::lock_guard lock(s->mu_);
    op.event = s->next_event_++;
    s->events_[op.event] = Event{};
    ++s->stats_.events;
  }
  *event = op.event;
  s->enqueue(op);
  return 0;
}

int SimulatedLink::c_wait(void* self, uint64_t event) {
  SimulatedLink* s = self_of(self);
  std::unique_lock lock(s->mu_);
  auto it = s->events_.find(event);
  if (it == s->events_.end()) return s->failed("simulated wait: unknown event");
  s->finished_.wait(lock, [&] { return it->second.done; });
  if (!it->second.error.empty()) return s->failed(it->second.error);
  return 0;
}

int SimulatedLink::c_query(void* self, uint64_t event, int* done) {
  SimulatedLink* s = self_of(self);
  std::lock_guard lock(s->mu_);
  auto it = s->events_.find(event);
  if (it == s->events_.end()) return s->failed("simulated query: unknown event");
  if (it->second.done && !it->second.error.empty()) return s->failed(it->second.error);
  *done = it->second.done ? 1 : 0;
  return 0;
}

int SimulatedLink::c_release_event(void* self, uint64_t event) {
  SimulatedLink* s = self_of(self);
  std::lock_guard lock(s->mu_);
  auto it = s->events_.find(event);
  if (it == s->events_.end()) return s->failed("simulated release_event: unknown event");
  // Released before it fired (a dropped transfer): the worker must still find it.
  if (!it->second.done) return s->failed("simulated release_event: event still pending");
  s->events_.erase(it);
  return 0;
}

int SimulatedLink::c_after_stream(void* self, uint64_t stream) {
  SimulatedLink* s = self_of(self);
  std::lock_guard lock(s->mu_);
  ++s->stats_.after_stream[stream];
  return 0;
}

int SimulatedLink::c_join_stream(void* self, uint64_t stream, uint64_t event) {
  SimulatedLink* s = self_of(self);
  std::lock_guard lock(s->mu_);
  if (s->events_.count(event) == 0) return s->failed("simulated join_stream: unknown event");
  ++s->stats_.join_stream[stream];
  return 0;
}

const char* SimulatedLink::c_error(void*) { return t_error.c_str(); }

}  // namespace torchnp::core
