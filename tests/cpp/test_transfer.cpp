// C++ tests of the device transfer pipeline (csrc/core/transfer.h) on the host-simulated link:
//  1. downloads and uploads of random shapes, layouts and element-type pairs, sizes from 0
//     bytes to many chunks, dense and gathered device sources, 1-4 staging buffers, one thread
//     and the pool: the bytes equal one whole execute() of the same plan;
//  2. faults: a copy failing mid-way throws TransferError naming the cause, every buffer goes
//     back, nothing stays in flight, and the link works again after reset();
//  3. staging: buffers are reused (allocated once), the cap holds with many transfers in
//     flight from several threads, trim() frees the idle ones;
//  4. stream ordering: every transfer orders after the user's stream, uploads join it.
// Usage: test_transfer [--quick]   (the TSan build runs --quick)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/simulated_link.h"
#include "core/transfer.h"
#include "check.h"

using namespace torchnp::core;

namespace {

uint64_t addr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

// 64-aligned storage with random bytes.
struct Block {
  std::vector<char> raw;
  char* data;
  int64_t bytes;
  Block(int64_t n, std::mt19937_64& rng) : raw(static_cast<size_t>(n) + 128), bytes(n) {
    data = raw.data() + (64 - reinterpret_cast<uintptr_t>(raw.data()) % 64);
    for (int64_t i = 0; i < n; ++i) data[i] = static_cast<char>(rng());
  }
};

// A random layout of `shape` (a permutation of the dims, maybe reversed dims) over a block.
struct Layout {
  std::vector<int64_t> strides;  // bytes
  int64_t offset;                // from the block to element (0, ..., 0)
};
Layout dense_layout(const std::vector<int64_t>& shape, int64_t isz, std::mt19937_64& rng,
                    bool allow_negative) {
  const int nd = static_cast<int>(shape.size());
  std::vector<int> perm(nd);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  Layout l{std::vector<int64_t>(nd), 0};
  int64_t s = isz;
  for (int q = nd - 1; q >= 0; --q) {
    const int d = perm[q];
    l.strides[d] = s;
    s *= shape[d];
  }
  if (allow_negative) {
    for (int d = 0; d < nd; ++d) {
      if (rng() % 3 == 0 && shape[d] > 1) {
        l.offset += (shape[d] - 1) * l.strides[d];
        l.strides[d] = -l.strides[d];
      }
    }
  }
  return l;
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
}

const ScalarType kTypes[] = {ScalarType::kFloat32, ScalarType::kFloat64, ScalarType::kFloat16,
                             ScalarType::kBFloat16, ScalarType::kInt8, ScalarType::kInt64,
                             ScalarType::kComplex64, ScalarType::kUInt8};

std::vector<int64_t> random_shape(std::mt19937_64& rng, int64_t target) {
  const int nd = 1 + static_cast<int>(rng() % 4);
  std::vector<int64_t> shape(nd, 1);
  int64_t left = std::max<int64_t>(target, 1);
  for (int d = 0; d < nd; ++d) {
    const int64_t cap = d == nd - 1 ? left : std::max<int64_t>(1, left / (1 + rng() % 4));
    shape[d] = std::max<int64_t>(1, std::min<int64_t>(cap, 1 + rng() % (cap + 1)));
    left = std::max<int64_t>(1, left / shape[d]);
  }
  if (target == 0) shape[rng() % nd] = 0;
  return shape;
}

void test_random_transfers(int cases, bool quick) {
  std::mt19937_64 rng(20261201);
  SimulatedLink sim({});
  const int64_t chunk = 4096;
  Staging staging(sim.link(), chunk, 64 * chunk);
  for (int c = 0; c < cases; ++c) {
    const ScalarType dev_t = kTypes[rng() % std::size(kTypes)];
    const ScalarType host_t = kTypes[rng() % std::size(kTypes)];
    const int64_t isz = itemsize(dev_t), hsz = itemsize(host_t);
    // 0 bytes, 1 element, around one chunk, many chunks.
    const int64_t pick[] = {0, 1, chunk / isz, chunk / isz + 1, (quick ? 5 : 37) * chunk / isz + 3,
                            static_cast<int64_t>(rng() % (quick ? 3000 : 20000))};
    const int64_t target = pick[rng() % std::size(pick)];
    const auto shape = random_shape(rng, target);
    const int64_t n = numel_of(shape);
    const bool gathered = rng() % 3 == 0;
    const int threads = 1 + static_cast<int>(rng() % 2);
    const int buffers = 1 + static_cast<int>(rng() % 4);
    const bool down = rng() % 2 == 0;
    const bool swapped = rng() % 4 == 0 && !(host_t == ScalarType::kUInt8 || host_t == ScalarType::kInt8);

    // The device bytes that cross the link are dense, in `link` order; the host side has its
    // own random layout (negative strides allowed).
    Layout link = dense_layout(shape, isz, rng, false);
    Layout host = dense_layout(shape, hsz, rng, true);
    Block host_mem(n * hsz, rng), dev_mem(n * isz, rng);
    std::vector<int64_t> link_st = link.strides;

    if (down) {
      // Plan staging (dense, link order) -> host.
      Operand src{nullptr, dev_t, false, link_st};
      src.data = reinterpret_cast<char*>(uintptr_t{64});  // 0 mod 64, as staging chunks are
      Operand dst{host_mem.data + host.offset, host_t, swapped, host.strides};
      Plan plan = plan_copy(shape, dst, src, Negate::kNone, threads);
      // Expected: the whole copy straight from the device block.
      Block expect(n * hsz, rng);
      std::memcpy(expect.data, host_mem.data, static_cast<size_t>(n * hsz));
      execute(plan, dev_mem.data, expect.data + host.offset);

      Download job;
      job.link = sim.link();
      job.staging = &staging;
      job.bytes = n * isz;
      job.plan = &plan;
      job.dst = host_mem.data + host.offset;
      job.stream = 7;
      job.buffers = buffers;
      std::vector<char> scratch;
      Block strided(0, rng);
      if (gathered && n > 0 && shape.size() <= 8) {
        // The device source is strided (a random dense layout of its own); the link packs it
        // into link order. gather's shape is the link order's dims, outermost first.
        Layout own = dense_layout(shape, isz, rng, true);
        strided = Block(n * isz, rng);
        // Put the device bytes into the strided layout: element idx at own.offset + idx.own.
        std::vector<int> order(shape.size());
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(),
                  [&](int a, int b) { return link_st[a] > link_st[b]; });
        job.gather.ndim = static_cast<int>(shape.size());
        job.gather.itemsize = isz;
        std::vector<int64_t> idx(shape.size(), 0);
        for (int64_t e = 0; e < n; ++e) {
          int64_t lo = 0, so = own.offset;
          for (size_t d = 0; d < shape.size(); ++d) {
            lo += idx[d] * link_st[d];
            so += idx[d] * own.strides[d];
          }
          std::memcpy(strided.data + so, dev_mem.data + lo, static_cast<size_t>(isz));
          for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
          }
        }
        for (size_t q = 0; q < order.size(); ++q) {
          job.gather.shape[q] = shape[order[q]];
          job.gather.strides[q] = own.strides[order[q]];
        }
        // A chunk's worth, or less (the staging chunk grew since the scratch was sized): the
        // pipeline then gathers each chunk in pieces.
        const int64_t pieces = 1 + static_cast<int64_t>(rng() % 3);
        job.gather.scratch_bytes = std::max<int64_t>(isz, chunk / pieces / isz * isz);
        scratch.resize(static_cast<size_t>(job.gather.scratch_bytes));
        job.gather.scratch = addr(scratch.data());
        job.src = addr(strided.data + own.offset);
      } else {
        job.src = addr(dev_mem.data);
      }
      download(job);
      CHECK(std::memcmp(expect.data, host_mem.data, static_cast<size_t>(n * hsz)) == 0,
            "download case %d: %s -> %s, n=%lld, gathered=%d, buffers=%d", c,
            scalar_type_name(dev_t), scalar_type_name(host_t), static_cast<long long>(n),
            gathered, buffers);
    } else {
      // Plan host -> staging (dense, link order).
      Operand src{host_mem.data + host.offset, host_t, swapped, host.strides};
      Operand dst{reinterpret_cast<char*>(uintptr_t{64}), dev_t, false, link_st};
      Plan plan = plan_copy(shape, dst, src, Negate::kNone, threads);
      Block expect(n * isz, rng);
      execute(plan, host_mem.data + host.offset, expect.data);
      Upload job;
      job.link = sim.link();
      job.staging = &staging;
      job.dst = addr(dev_mem.data);
      job.bytes = n * isz;
      job.plan = &plan;
      job.src = host_mem.data + host.offset;
      job.stream = 9;
      job.buffers = buffers;
      upload(job);
      CHECK(std::memcmp(expect.data, dev_mem.data, static_cast<size_t>(n * isz)) == 0,
            "upload case %d: %s -> %s, n=%lld, buffers=%d", c, scalar_type_name(host_t),
            scalar_type_name(dev_t), static_cast<long long>(n), buffers);
    }
  }
  const auto st = sim.stats();
  CHECK(st.live_events == 0, "events left: %lld", static_cast<long long>(st.live_events));
  CHECK(st.after_stream.count(7) || st.after_stream.count(9), "no stream ordering recorded");
  CHECK(staging.stats().held_bytes == staging.stats().idle_bytes, "staging still in use");
  CHECK(staging.stats().buffers <= 64, "cap exceeded");
}

// A copy failing mid-way: the cause in the message, nothing in flight after, staging back.
void test_faults() {
  std::mt19937_64 rng(7);
  SimulatedLink sim({});
  const int64_t chunk = 1024;
  Staging staging(sim.link(), chunk, 8 * chunk);
  const std::vector<int64_t> shape{40, 100};  // 4000 f32 = 16000 bytes = 16 chunks
  const int64_t n = 4000;
  Block dev(n * 4, rng), host(n * 8, rng);
  std::vector<int64_t> st4{400, 4}, st8{800, 8};
  for (int nth : {0, 3, 15}) {
    for (bool down : {true, false}) {
      sim.fail_copy(nth, "simulated link fault #" + std::to_string(nth));
      bool threw = false;
      try {
        if (down) {
          Operand src{reinterpret_cast<char*>(uintptr_t{64}), ScalarType::kFloat32, false, st4};
          Operand dst{host.data, ScalarType::kFloat64, false, st8};
          Plan plan = plan_copy(shape, dst, src);
          Download job;
          job.link = sim.link();
          job.staging = &staging;
          job.src = addr(dev.data);
          job.bytes = n * 4;
          job.plan = &plan;
          job.dst = host.data;
          download(job);
        } else {
          Operand src{host.data, ScalarType::kFloat64, false, st8};
          Operand dst{reinterpret_cast<char*>(uintptr_t{64}), ScalarType::kFloat32, false, st4};
          Plan plan = plan_copy(shape, dst, src);
          Upload job;
          job.link = sim.link();
          job.staging = &staging;
          job.dst = addr(dev.data);
          job.bytes = n * 4;
          job.plan = &plan;
          job.src = host.data;
          upload(job);
        }
      } catch (const TransferError& e) {
        threw = std::string(e.what()).find("simulated link fault #" + std::to_string(nth)) !=
                std::string::npos;
        if (!threw) std::printf("message: %s\n", e.what());
      }
      CHECK(threw, "fault at copy %d (%s) did not raise TransferError naming it", nth,
            down ? "download" : "upload");
      CHECK(sim.stats().live_events == 0, "events left after a fault");
      CHECK(staging.stats().held_bytes == staging.stats().idle_bytes, "staging kept after fault");
      sim.reset();
    }
  }
}

// Many transfers from several threads, a small cap: buffers reused, cap held, all correct.
void test_concurrency(int per_thread) {
  SimulatedLink sim({});
  sim.set_delay_us(20);
  const int64_t chunk = 2048;
  Staging staging(sim.link(), chunk, 6 * chunk);
  std::atomic<int> wrong{0};
  auto worker = [&](int seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < per_thread; ++i) {
      const int64_t n = 1 + static_cast<int64_t>(rng() % 6000);
      const std::vector<int64_t> shape{n};
      std::vector<int64_t> s4{4}, s8{8};
      Block dev(n * 4, rng), host(n * 8, rng), expect(n * 8, rng);
      Operand src{reinterpret_cast<char*>(uintptr_t{64}), ScalarType::kFloat32, false, s4};
      Operand dst{host.data, ScalarType::kFloat64, false, s8};
      Plan plan = plan_copy(shape, dst, src);
      execute(plan, dev.data, expect.data);
      Download job;
      job.link = sim.link();
      job.staging = &staging;
      job.src = addr(dev.data);
      job.bytes = n * 4;
      job.plan = &plan;
      job.dst = host.data;
      job.buffers = 4;
      download(job);
      if (std::memcmp(expect.data, host.data, static_cast<size_t>(n * 8)) != 0) ++wrong;
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) ts.emplace_back(worker, 100 + t);
  for (auto& t : ts) t.join();
  CHECK(wrong == 0, "%d concurrent downloads wrong", wrong.load());
  const auto s = staging.stats();
  CHECK(s.buffers <= 6, "cap of 6 buffers exceeded: %lld", static_cast<long long>(s.buffers));
  CHECK(sim.stats().host_buffers == s.buffers, "page-locked allocations != staging buffers");
  CHECK(sim.stats().max_queued >= 2, "nothing was ever in flight together");
  CHECK(staging.trim() == s.buffers * chunk, "trim did not free every idle buffer");
  CHECK(sim.stats().host_buffers == 0, "page-locked memory left after trim");
}

// Reuse: a second transfer allocates nothing new; the direct path stages nothing.
void test_staging_reuse() {
  std::mt19937_64 rng(3);
  SimulatedLink sim({});
  Staging staging(sim.link(), 1024, 4 * 1024);
  const int64_t n = 10000;
  Block dev(n, rng), host(n, rng);
  std::vector<int64_t> s1{1};
  const std::vector<int64_t> shape{n};
  Operand src{reinterpret_cast<char*>(uintptr_t{64}), ScalarType::kUInt8, false, s1};
  Operand dst{host.data, ScalarType::kUInt8, false, s1};
  Plan plan = plan_copy(shape, dst, src);
  Download job;
  job.link = sim.link();
  job.staging = &staging;
  job.src = addr(dev.data);
  job.bytes = n;
  job.plan = &plan;
  job.dst = host.data;
  job.buffers = 4;
  download(job);
  const int64_t allocated = sim.stats().host_buffers;
  download(job);
  CHECK(sim.stats().host_buffers == allocated, "second transfer allocated staging again");
  CHECK(std::memcmp(dev.data, host.data, static_cast<size_t>(n)) == 0, "staged download wrong");
  const int64_t copies = sim.stats().copies;
  std::memset(host.data, 0, static_cast<size_t>(n));
  job.direct = true;
  download(job);
  CHECK(sim.stats().copies == copies + 1, "direct download was not one copy");
  CHECK(std::memcmp(dev.data, host.data, static_cast<size_t>(n)) == 0, "direct download wrong");
  // A cap below one chunk still gives a transfer one buffer.
  staging.set_cap(0);
  CHECK(sim.stats().host_buffers == 0, "lowering the cap kept idle buffers");
  job.direct = false;
  download(job);
  CHECK(staging.stats().buffers == 0, "a buffer above the cap was kept");
  CHECK(std::memcmp(dev.data, host.data, static_cast<size_t>(n)) == 0, "capped download wrong");
}

// A batch: many small and some multi-chunk jobs, some gathered, some direct, as one pipeline:
// each destination equals its own whole copy, and small jobs share buffers (few events).
void test_batches(int rounds) {
  std::mt19937_64 rng(99);
  SimulatedLink sim({});
  const int64_t chunk = 4096;
  Staging staging(sim.link(), chunk, 8 * chunk);
  for (int round = 0; round < rounds; ++round) {
    const int jobs_n = 1 + static_cast<int>(rng() % 40);
    std::vector<Block> devs, hosts, expects, stridedv;
    std::vector<std::vector<int64_t>> shapes, link_st, host_st, own_st;
    std::vector<Plan> plans;
    std::vector<std::vector<char>> scratch;
    devs.reserve(jobs_n), hosts.reserve(jobs_n), expects.reserve(jobs_n), stridedv.reserve(jobs_n);
    plans.reserve(jobs_n), scratch.reserve(jobs_n);
    std::vector<Download> jobs;
    int64_t total = 0;
    for (int j = 0; j < jobs_n; ++j) {
      const ScalarType dev_t = kTypes[rng() % std::size(kTypes)];
      const ScalarType host_t = kTypes[rng() % std::size(kTypes)];
      const int64_t isz = itemsize(dev_t), hsz = itemsize(host_t);
      const int64_t target = rng() % 4 == 0 ? 3 * chunk / isz + 5 : static_cast<int64_t>(rng() % 300);
      shapes.push_back(random_shape(rng, target));
      const auto& shape = shapes.back();
      const int64_t n = numel_of(shape);
      total += n * isz;
      Layout link = dense_layout(shape, isz, rng, false);
      Layout host = dense_layout(shape, hsz, rng, true);
      link_st.push_back(link.strides);
      host_st.push_back(host.strides);
      devs.emplace_back(n * isz, rng);
      hosts.emplace_back(n * hsz, rng);
      expects.emplace_back(n * hsz, rng);
      std::memcpy(expects.back().data, hosts.back().data, static_cast<size_t>(n * hsz));
      Operand src{reinterpret_cast<char*>(uintptr_t{64}), dev_t, false, link_st.back()};
      Operand dst{hosts.back().data + host.offset, host_t, false, host_st.back()};
      plans.push_back(plan_copy(shape, dst, src, Negate::kNone, 1 + static_cast<int>(rng() % 2)));
      execute(plans.back(), devs.back().data, expects.back().data + host.offset);
      Download job;
      job.link = sim.link();
      job.staging = &staging;
      job.src = addr(devs.back().data);
      job.bytes = n * isz;
      job.plan = &plans.back();
      job.dst = hosts.back().data + host.offset;
      job.buffers = 3;
      scratch.emplace_back();
      stridedv.emplace_back(0, rng);
      if (rng() % 4 == 0 && n > 0 && shape.size() <= 8) {  // gathered from a strided layout
        Layout own = dense_layout(shape, isz, rng, true);
        own_st.push_back(own.strides);
        stridedv.back() = Block(n * isz, rng);
        std::vector<int> order(shape.size());
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(),
                  [&](int a, int b) { return link.strides[a] > link.strides[b]; });
        std::vector<int64_t> idx(shape.size(), 0);
        for (int64_t e = 0; e < n; ++e) {
          int64_t lo = 0, so = own.offset;
          for (size_t d = 0; d < shape.size(); ++d) {
            lo += idx[d] * link.strides[d];
            so += idx[d] * own.strides[d];
          }
          std::memcpy(stridedv.back().data + so, devs.back().data + lo, static_cast<size_t>(isz));
          for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
          }
        }
        job.gather.ndim = static_cast<int>(shape.size());
        job.gather.itemsize = isz;
        for (size_t q = 0; q < order.size(); ++q) {
          job.gather.shape[q] = shape[order[q]];
          job.gather.strides[q] = own.strides[order[q]];
        }
        job.gather.scratch_bytes = chunk;
        scratch.back().resize(static_cast<size_t>(chunk));
        job.gather.scratch = addr(scratch.back().data());
        job.src = addr(stridedv.back().data + own.offset);
      } else if (rng() % 5 == 0 && plans.back().method == Method::kFlat &&
                 plans.back().inner.memcpy && plans.back().src_offset == 0) {
        job.direct = true;
      }
      jobs.push_back(job);
    }
    const int64_t events_before = sim.stats().events;
    download_batch(jobs);
    for (int j = 0; j < jobs_n; ++j) {
      CHECK(std::memcmp(expects[j].data, hosts[j].data, static_cast<size_t>(hosts[j].bytes)) == 0,
            "batch round %d, job %d of %d differs", round, j, jobs_n);
    }
    const int64_t events = sim.stats().events - events_before;
    // Sequential packing wastes less than a buffer per two: at most twice the buffers the
    // padded bytes fill, one more for the last, one for the direct copies.
    const int64_t padded = total + 64 * (jobs_n + total / chunk + 1);
    CHECK(events <= 2 * ((padded + chunk - 1) / chunk) + 2, "round %d: %lld events for %lld bytes",
          round, static_cast<long long>(events), static_cast<long long>(total));
  }
  // Many small leaves share buffers: 100 leaves of 100 bytes take 3 buffers' worth, not 100.
  const int64_t n = 100;
  std::vector<Block> devs, hosts;
  devs.reserve(n), hosts.reserve(n);
  std::vector<Plan> plans;
  plans.reserve(n);
  std::vector<int64_t> s1{1};
  const std::vector<int64_t> shape{100};
  std::vector<Download> jobs;
  for (int64_t j = 0; j < n; ++j) {
    devs.emplace_back(100, rng);
    hosts.emplace_back(100, rng);
    Operand src{reinterpret_cast<char*>(uintptr_t{64}), ScalarType::kUInt8, false, s1};
    Operand dst{hosts.back().data, ScalarType::kUInt8, false, s1};
    plans.push_back(plan_copy(shape, dst, src));
    Download job;
    job.link = sim.link();
    job.staging = &staging;
    job.src = addr(devs.back().data);
    job.bytes = 100;
    job.plan = &plans.back();
    job.dst = hosts.back().data;
    jobs.push_back(job);
  }
  const int64_t before = sim.stats().events;
  download_batch(jobs);
  const int64_t events = sim.stats().events - before;
  CHECK(events == 4, "100 leaves of 100 B in 4 KiB buffers (128 B places): %lld events, want 4",
        static_cast<long long>(events));
  for (int64_t j = 0; j < n; ++j) {
    CHECK(std::memcmp(devs[j].data, hosts[j].data, 100) == 0, "small leaf %lld differs",
          static_cast<long long>(j));
  }
}

// Upload batches: random jobs (some direct), each device block equal to its own whole copy;
// small jobs share buffers.
void test_upload_batches(int rounds) {
  std::mt19937_64 rng(123);
  SimulatedLink sim({});
  const int64_t chunk = 4096;
  Staging staging(sim.link(), chunk, 8 * chunk);
  for (int round = 0; round < rounds; ++round) {
    const int jobs_n = 1 + static_cast<int>(rng() % 40);
    std::vector<Block> devs, hosts, expects;
    std::vector<std::vector<int64_t>> shapes, link_st, host_st;
    std::vector<Plan> plans;
    devs.reserve(jobs_n), hosts.reserve(jobs_n), expects.reserve(jobs_n), plans.reserve(jobs_n);
    std::vector<Upload> jobs;
    for (int j = 0; j < jobs_n; ++j) {
      const ScalarType dev_t = kTypes[rng() % std::size(kTypes)];
      const ScalarType host_t = kTypes[rng() % std::size(kTypes)];
      const int64_t isz = itemsize(dev_t), hsz = itemsize(host_t);
      const int64_t target = rng() % 4 == 0 ? 3 * chunk / isz + 5 : static_cast<int64_t>(rng() % 300);
      shapes.push_back(random_shape(rng, target));
      const auto& shape = shapes.back();
      const int64_t n = numel_of(shape);
      Layout link = dense_layout(shape, isz, rng, false);
      Layout host = dense_layout(shape, hsz, rng, true);
      link_st.push_back(link.strides);
      host_st.push_back(host.strides);
      devs.emplace_back(n * isz, rng);
      hosts.emplace_back(n * hsz, rng);
      expects.emplace_back(n * isz, rng);
      Operand src{hosts.back().data + host.offset, host_t, false, host_st.back()};
      Operand dst{reinterpret_cast<char*>(uintptr_t{64}), dev_t, false, link_st.back()};
      plans.push_back(plan_copy(shape, dst, src, Negate::kNone, 1 + static_cast<int>(rng() % 2)));
      execute(plans.back(), hosts.back().data + host.offset, expects.back().data);
      Upload job;
      job.link = sim.link();
      job.staging = &staging;
      job.dst = addr(devs.back().data);
      job.bytes = n * isz;
      job.plan = &plans.back();
      job.src = hosts.back().data + host.offset;
      job.direct = rng() % 5 == 0 && plans.back().method == Method::kFlat &&
                   plans.back().inner.memcpy && plans.back().dst_offset == 0;
      jobs.push_back(job);
    }
    upload_batch(jobs);
    for (int j = 0; j < jobs_n; ++j) {
      CHECK(std::memcmp(expects[j].data, devs[j].data, static_cast<size_t>(devs[j].bytes)) == 0,
            "upload batch round %d, job %d of %d differs", round, j, jobs_n);
    }
  }
  CHECK(sim.stats().live_events == 0, "events left after upload batches");
}

// Page-locked memory running out: a transfer with no buffer fails naming the cause and leaves
// nothing reserved; one that got some buffers runs on those; a waiter is not left hanging.
void test_allocation_failures() {
  std::mt19937_64 rng(11);
  SimulatedLink sim({});
  const int64_t chunk = 1024, n = 8192;
  Staging staging(sim.link(), chunk, 4 * chunk);
  Block dev(n, rng), host(n, rng);
  std::vector<int64_t> s1{1};
  const std::vector<int64_t> shape{n};
  Operand src{reinterpret_cast<char*>(uintptr_t{64}), ScalarType::kUInt8, false, s1};
  Operand dst{host.data, ScalarType::kUInt8, false, s1};
  Plan plan = plan_copy(shape, dst, src);
  Download job;
  job.link = sim.link();
  job.staging = &staging;
  job.src = addr(dev.data);
  job.bytes = n;
  job.plan = &plan;
  job.dst = host.data;
  job.buffers = 4;
  sim.fail_alloc(1);
  bool threw = false;
  try {
    download(job);
  } catch (const TransferError& e) {
    threw = std::string(e.what()).find("out of page-locked memory") != std::string::npos;
  }
  CHECK(threw, "a failed staging allocation did not raise TransferError naming it");
  CHECK(staging.stats().buffers == 0, "a failed allocation stayed reserved");
  job.buffers = 1;
  download(job);  // one idle buffer now
  job.buffers = 4;
  sim.fail_alloc(2);  // the idle buffer, then two refusals: a ring of fewer buffers
  std::memset(host.data, 0, static_cast<size_t>(n));
  download(job);
  CHECK(std::memcmp(dev.data, host.data, static_cast<size_t>(n)) == 0, "short ring wrong");
  // Two threads on a one-buffer cap while allocations fail now and then: both finish.
  staging.trim();
  staging.set_cap(chunk);
  std::atomic<int> done{0};
  auto worker = [&] {
    for (int i = 0; i < 50; ++i) {
      try {
        download(job);
      } catch (const TransferError&) {
      }
    }
    ++done;
  };
  std::thread a(worker), b(worker), c([&] {
    for (int i = 0; i < 20; ++i) {
      sim.fail_alloc(1);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  a.join();
  b.join();
  c.join();
  CHECK(done == 2, "a transfer hung after an allocation failure");
  CHECK(staging.stats().buffers <= 1, "cap of one buffer exceeded");

  // The window itself: A reserves the only buffer and its allocation fails slowly; B, arriving
  // meanwhile, waits for it; A's failure must wake B, which then allocates and finishes.
  staging.trim();
  sim.fail_alloc(1, 100000);
  std::thread first([&] {
    try {
      download(job);
    } catch (const TransferError&) {
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto second_done = std::make_shared<std::atomic<bool>>(false);
  std::thread second([&job, second_done] {
    download(job);
    *second_done = true;
  });
  first.join();
  for (int i = 0; i < 200 && !*second_done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!*second_done) {
    std::printf("FAIL: a transfer waiting for staging was never woken by a failed allocation\n");
    std::fflush(stdout);
    std::_Exit(1);  // the waiter would hang the process at exit
  }
  second.join();
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  test_random_transfers(quick ? 150 : 1500, quick);
  test_faults();
  test_concurrency(quick ? 20 : 100);
  test_staging_reuse();
  test_allocation_failures();
  test_batches(quick ? 30 : 200);
  test_upload_batches(quick ? 30 : 200);
  if (g_failures) {
    std::printf("test_transfer: %d failure(s)\n", g_failures);
    return 1;
  }
  std::printf("test_transfer: all passed\n");
  return 0;
}
