#include "core/transfer.h"

#include <algorithm>
#include <cstring>

namespace torchnp::core {

namespace {

[[noreturn]] void fail(const torchnp_link* link, const char* what) {
  const char* cause = link->error ? link->error(link->self) : nullptr;
  throw TransferError(std::string("torchnp: device transfer failed (") + what + " on " +
                      (link->name ? link->name : "link") + "): " +
                      (cause && *cause ? cause : "unknown cause"));
}

void check(const torchnp_link* link, int rc, const char* what) {
  if (rc != 0) fail(link, what);
}

// The address at which a chunk's buffer would hold element 0 of the dense block: the plan's
// slice then reads (or writes) exactly the chunk's bytes inside the buffer. Integer arithmetic:
// the address itself lies outside the buffer and is never dereferenced.
char* rebased(char* buffer, int64_t offset) {
  return reinterpret_cast<char*>(reinterpret_cast<uintptr_t>(buffer) -
                                 static_cast<uintptr_t>(offset));
}

// The events of one transfer's ring, waited and released whatever happens.
class Ring {
 public:
  Ring(const torchnp_link* link, Staging* staging, int want)
      : link_(link), staging_(staging), buffers_(staging->acquire(want)),
        events_(buffers_.size(), 0), pending_(buffers_.size(), false) {}
  ~Ring() {
    drain_quietly();
    staging_->release(buffers_);
  }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  size_t size() const { return buffers_.size(); }
  char* buffer(int64_t k) const { return buffers_[slot(k)]; }

  // Before enqueueing work for chunk k: until its event is recorded, a failure leaves work in
  // flight that no event covers.
  void enqueueing() { dirty_ = true; }
  // The event after chunk k's copies; slot k % size must be free.
  void record(int64_t k) {
    uint64_t ev = 0;
    check(link_, link_->record(link_->self, &ev), "record");
    events_[slot(k)] = ev;
    pending_[slot(k)] = true;
    dirty_ = false;
  }
  // Waits for chunk k's event and frees its slot (no-op when nothing is pending there).
  void wait(int64_t k) {
    const size_t s = slot(k);
    if (!pending_[s]) return;
    pending_[s] = false;
    const int rc = link_->wait(link_->self, events_[s]);
    if (rc != 0) {
      std::string cause = link_->error ? link_->error(link_->self) : "";
      link_->release_event(link_->self, events_[s]);
      throw TransferError("torchnp: device transfer failed (wait on " +
                          std::string(link_->name ? link_->name : "link") + "): " +
                          (cause.empty() ? "unknown cause" : cause));
    }
    check(link_, link_->release_event(link_->self, events_[s]), "release_event");
  }

 private:
  size_t slot(int64_t k) const { return static_cast<size_t>(k % static_cast<int64_t>(size())); }
  // Copies still in flight must land before their buffers go back to the pool: the recorded
  // events, and, after a failure between a copy and its event (a failed record, a copy that
  // failed after its gather went in), one more event behind everything enqueued.
  void drain_quietly() noexcept {
    bool unrecorded = dirty_;
    for (size_t s = 0; s < size(); ++s) {
      if (!pending_[s]) continue;
      pending_[s] = false;
      link_->wait(link_->self, events_[s]);
      link_->release_event(link_->self, events_[s]);
    }
    uint64_t ev = 0;
    if (unrecorded && link_->record(link_->self, &ev) == 0) {
      link_->wait(link_->self, ev);
      link_->release_event(link_->self, ev);
    }
  }

  const torchnp_link* link_;
  Staging* staging_;
  std::vector<char*> buffers_;
  std::vector<uint64_t> events_;
  std::vector<bool> pending_;
  bool dirty_ = false;
};

void validate(const torchnp_link* link, Staging* staging, const Plan* plan, int64_t bytes) {
  if (!link || !staging || !plan) throw std::invalid_argument("torchnp: transfer without link");
  if (staging->link() != link) throw std::invalid_argument("torchnp: staging of another link");
  if (bytes < 0) throw std::invalid_argument("torchnp: negative transfer size");
}

}  // namespace

// ---- staging ------------------------------------------------------------------------------

Staging::Staging(const torchnp_link* link, int64_t chunk_bytes, int64_t cap_bytes)
    : link_(link), chunk_(chunk_bytes), cap_(cap_bytes) {
  if (chunk_bytes <= 0 || chunk_bytes % 64 != 0) {
    throw std::invalid_argument("torchnp: staging chunk size must be a positive multiple of 64");
  }
}

Staging::~Staging() {
  for (char* p : idle_) link_->free_host(link_->self, p);
}

std::vector<char*> Staging::acquire(int want) {
  want = std::max(want, 1);
  std::vector<char*> got;
  std::unique_lock lock(mu_);
  for (;;) {
    while (static_cast<int>(got.size()) < want && !idle_.empty()) {
      got.push_back(idle_.back());
      idle_.pop_back();
    }
    // New buffers while under the cap; the first one of a transfer even above it, unless
    // others are out and will come back.
    while (static_cast<int>(got.size()) < want &&
           ((held_ + 1) * chunk_ <= cap_ || (got.empty() && held_ == 0))) {
      void* p = nullptr;
      ++held_;  // reserved while the lock is dropped
      lock.unlock();
      const int rc = link_->alloc_host(link_->self, static_cast<size_t>(chunk_), &p);
      std::string cause = rc != 0 && link_->error ? link_->error(link_->self) : "";
      lock.lock();
      if (rc != 0) {
        --held_;
        returned_.notify_all();  // a waiter that counted on this reservation must look again
        if (!got.empty()) return got;  // fewer buffers, still a pipeline
        lock.unlock();
        throw TransferError("torchnp: cannot allocate page-locked staging (" +
                            std::to_string(chunk_) + " bytes on " +
                            (link_->name ? link_->name : "link") + "): " +
                            (cause.empty() ? "unknown cause" : cause));
      }
      got.push_back(static_cast<char*>(p));
    }
    if (!got.empty()) return got;
    returned_.wait(lock);
  }
}

void Staging::release(const std::vector<char*>& buffers) {
  std::vector<char*> freed;
  {
    std::lock_guard lock(mu_);
    for (char* p : buffers) {
      if (held_ * chunk_ > cap_) {  // over a lowered cap: give it back now
        --held_;
        freed.push_back(p);
      } else {
        idle_.push_back(p);
      }
    }
  }
  returned_.notify_all();
  // Outside the lock: cudaFreeHost waits for the device to be idle.
  for (char* p : freed) link_->free_host(link_->self, p);
}

int64_t Staging::trim() {
  std::vector<char*> freed;
  {
    std::lock_guard lock(mu_);
    freed.swap(idle_);
    held_ -= static_cast<int64_t>(freed.size());
  }
  for (char* p : freed) link_->free_host(link_->self, p);
  return static_cast<int64_t>(freed.size()) * chunk_;
}

void Staging::set_cap(int64_t cap_bytes) {
  std::vector<char*> freed;
  {
    std::lock_guard lock(mu_);
    cap_ = std::max<int64_t>(cap_bytes, 0);
    while (held_ * chunk_ > cap_ && !idle_.empty()) {
      freed.push_back(idle_.back());
      idle_.pop_back();
      --held_;
    }
  }
  for (char* p : freed) link_->free_host(link_->self, p);
  returned_.notify_all();
}

Staging::Stats Staging::stats() const {
  std::lock_guard lock(mu_);
  const auto idle = static_cast<int64_t>(idle_.size());
  return {chunk_, cap_, held_ * chunk_, idle * chunk_, held_};
}

// ---- device -> host -----------------------------------------------------------------------

namespace {

// One piece of a batch: bytes [off, off + len) of job `job`'s device block, staged at `place`
// in its group's buffer (a multiple of 64, so the plan's rebased source keeps its alignment).
struct Piece {
  size_t job;
  int64_t off, len, place;
};

void check_download(const Download& job) {
  validate(job.link, job.staging, job.plan, job.bytes);
  const int64_t isz = itemsize(job.plan->src_dtype);
  if (job.bytes != job.plan->numel * isz) {
    throw std::invalid_argument("torchnp: download size differs from the planned copy");
  }
  if (job.gather.ndim > 0 &&
      (!job.link->gather || job.gather.itemsize != isz || job.gather.scratch_bytes < isz ||
       job.gather.scratch_bytes % isz != 0)) {
    throw std::invalid_argument(
        "torchnp: gather not available on this link, or a wrong itemsize or scratch size");
  }
  if (job.direct && job.gather.ndim > 0) {
    throw std::invalid_argument("torchnp: a direct download needs a dense device source");
  }
}

// Enqueues the copies (and gathers) that stage `p` at `to`.
void stage_piece(const Download& job, const Piece& p, char* to) {
  const torchnp_link* link = job.link;
  if (job.gather.ndim == 0) {
    check(link, link->copy(link->self, TORCHNP_DEVICE_TO_HOST, to,
                           job.src + static_cast<uint64_t>(p.off), static_cast<size_t>(p.len)),
          "copy");
    return;
  }
  // Packed through the scratch in pieces of its size (the staging chunk may have grown since
  // the scratch was sized): the copy stream runs them in order, so one scratch serves all.
  const Gather& g = job.gather;
  const int64_t isz = g.itemsize;
  for (int64_t sub = 0; sub < p.len; sub += g.scratch_bytes) {
    const int64_t n = std::min(g.scratch_bytes, p.len - sub);
    check(link, link->gather(link->self, g.scratch, job.src, static_cast<size_t>(isz), g.ndim,
                             g.shape.data(), g.strides.data(), (p.off + sub) / isz,
                             (p.off + sub + n) / isz),
          "gather");
    check(link, link->copy(link->self, TORCHNP_DEVICE_TO_HOST, to + sub, g.scratch,
                           static_cast<size_t>(n)),
          "copy");
  }
}

// The pieces of a batch: each job's bytes (direct jobs aside) cut at the chunk size, placed in
// order into groups of one staging buffer each; a piece that does not fit after the others
// opens the next group, so no group is empty.
struct Packing {
  std::vector<Piece> pieces;
  std::vector<size_t> group_start{0};  // group g: pieces [group_start[g], group_start[g + 1])
  int64_t groups() const {
    return pieces.empty() ? 0 : static_cast<int64_t>(group_start.size()) - 1;
  }
};

template <class Job>
Packing pack(std::span<const Job> jobs, int64_t chunk) {
  Packing out;
  int64_t place = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (jobs[j].direct) continue;
    for (int64_t off = 0; off < jobs[j].bytes; off += chunk) {
      const int64_t len = std::min(chunk, jobs[j].bytes - off);
      if (place + len > chunk) {
        out.group_start.push_back(out.pieces.size());
        place = 0;
      }
      out.pieces.push_back({j, off, len, place});
      place += (len + 63) / 64 * 64;
    }
  }
  out.group_start.push_back(out.pieces.size());
  return out;
}

// Records an event behind everything enqueued, optionally makes `join`'s stream wait for it,
// and waits for it on the host; throws TransferError naming the cause.
void finish(const torchnp_link* link, const uint64_t* join) {
  uint64_t done = 0;
  check(link, link->record(link->self, &done), "record");
  const int rc_join = join ? link->join_stream(link->self, *join, done) : 0;
  const int rc_wait = link->wait(link->self, done);
  std::string cause = (rc_join || rc_wait) && link->error ? link->error(link->self) : "";
  link->release_event(link->self, done);
  if (rc_join || rc_wait) {  // the cause is the last failed call's: the wait's when both failed
    throw TransferError("torchnp: device transfer failed (" +
                        std::string(rc_wait ? "wait" : "join_stream") + " on " +
                        (link->name ? link->name : "link") + "): " +
                        (cause.empty() ? "unknown cause" : cause));
  }
}

}  // namespace

void download(const Download& job) { download_batch(std::span<const Download>(&job, 1)); }

void download_batch(std::span<const Download> jobs) {
  if (jobs.empty()) return;
  for (const Download& job : jobs) {
    check_download(job);
    if (job.link != jobs[0].link || job.staging != jobs[0].staging ||
        job.stream != jobs[0].stream) {
      throw std::invalid_argument("torchnp: a batch of downloads shares one link and stream");
    }
  }
  const torchnp_link* link = jobs[0].link;
  check(link, link->after_stream(link->self, jobs[0].stream), "after_stream");

  // Page-locked destinations with identical bytes: one DMA each, straight in, waited last.
  bool any_direct = false;
  for (const Download& job : jobs) {
    if (!job.direct || job.bytes == 0) continue;
    any_direct = true;
    check(link, link->copy(link->self, TORCHNP_DEVICE_TO_HOST, job.dst + job.plan->dst_offset,
                           job.src, static_cast<size_t>(job.bytes)),
          "copy");
  }

  // The others' bytes, job after job, in groups of one buffer each: a small leaf shares its
  // buffer with the next ones. (The chunk is a multiple of 64 and of every itemsize.)
  const Packing packing = pack(jobs, jobs[0].staging->chunk_bytes());
  const auto& pieces = packing.pieces;
  const auto& group_start = packing.group_start;
  const int64_t groups = packing.groups();
  if (groups > 0) {
    Ring ring(link, jobs[0].staging,
              static_cast<int>(std::min<int64_t>(jobs[0].buffers, groups)));
    const auto r = static_cast<int64_t>(ring.size());
    auto issue = [&](int64_t g) {
      ring.enqueueing();
      for (size_t i = group_start[g]; i < group_start[g + 1]; ++i) {
        stage_piece(jobs[pieces[i].job], pieces[i], ring.buffer(g) + pieces[i].place);
      }
      ring.record(g);
    };
    for (int64_t g = 0; g < std::min(r, groups); ++g) issue(g);
    for (int64_t g = 0; g < groups; ++g) {
      ring.wait(g);
      for (size_t i = group_start[g]; i < group_start[g + 1]; ++i) {
        const Piece& p = pieces[i];
        const Download& job = jobs[p.job];
        const int64_t isz = itemsize(job.plan->src_dtype);
        execute(*job.plan, rebased(ring.buffer(g) + p.place, p.off), job.dst,
                Slice{Order::kSource, p.off / isz, (p.off + p.len) / isz});
      }
      if (g + r < groups) issue(g + r);
    }
  }
  if (any_direct) finish(link, nullptr);
}

// ---- host -> device -----------------------------------------------------------------------

void upload(const Upload& job) { upload_batch(std::span<const Upload>(&job, 1)); }

void upload_batch(std::span<const Upload> jobs) {
  if (jobs.empty()) return;
  for (const Upload& job : jobs) {
    validate(job.link, job.staging, job.plan, job.bytes);
    if (job.bytes != job.plan->numel * itemsize(job.plan->dst_dtype)) {
      throw std::invalid_argument("torchnp: upload size differs from the planned copy");
    }
    if (job.link != jobs[0].link || job.staging != jobs[0].staging ||
        job.stream != jobs[0].stream) {
      throw std::invalid_argument("torchnp: a batch of uploads shares one link and stream");
    }
  }
  const torchnp_link* link = jobs[0].link;
  // Nothing here reads device memory the user's stream may still be writing, but the
  // destinations may be memory the stream used before (torch's caching allocator): order
  // after it, so no earlier kernel of the stream reads the new bytes.
  check(link, link->after_stream(link->self, jobs[0].stream), "after_stream");
  for (const Upload& job : jobs) {  // page-locked sources with identical bytes: straight DMA
    if (!job.direct || job.bytes == 0) continue;
    check(link, link->copy(link->self, TORCHNP_HOST_TO_DEVICE,
                           const_cast<char*>(job.src) + job.plan->src_offset, job.dst,
                           static_cast<size_t>(job.bytes)),
          "copy");
  }
  // The others, job after job, packed into the ring's buffers as a download batch does.
  const Packing packing = pack(jobs, jobs[0].staging->chunk_bytes());
  const auto& pieces = packing.pieces;
  const auto& group_start = packing.group_start;
  const int64_t groups = packing.groups();
  if (groups > 0) {
    Ring ring(link, jobs[0].staging,
              static_cast<int>(std::min<int64_t>(jobs[0].buffers, groups)));
    for (int64_t g = 0; g < groups; ++g) {
      ring.wait(g);  // the buffer's previous group has crossed
      for (size_t i = group_start[g]; i < group_start[g + 1]; ++i) {
        const Piece& p = pieces[i];
        const Upload& job = jobs[p.job];
        const int64_t isz = itemsize(job.plan->dst_dtype);
        execute(*job.plan, job.src, rebased(ring.buffer(g) + p.place, p.off),
                Slice{Order::kDestination, p.off / isz, (p.off + p.len) / isz});
      }
      ring.enqueueing();
      for (size_t i = group_start[g]; i < group_start[g + 1]; ++i) {
        const Piece& p = pieces[i];
        check(link, link->copy(link->self, TORCHNP_HOST_TO_DEVICE, ring.buffer(g) + p.place,
                               jobs[p.job].dst + static_cast<uint64_t>(p.off),
                               static_cast<size_t>(p.len)),
              "copy");
      }
      ring.record(g);
    }
  }
  // The user's stream waits for the last copy; the host too (a direct source is the caller's
  // memory: it must have crossed before returning).
  finish(link, &jobs[0].stream);
}

}  // namespace torchnp::core
