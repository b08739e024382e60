// torchnp._C's device transfers: the pipeline of core/transfer.h on a link, as Python sees it.
//
// A `Link` wraps one torchnp_link (core/link.h): the CUDA module's (a PyCapsule named
// "torchnp.link" from torchnp._cuda.link(device), valid for the process) or a host-simulated
// one owned by the object (the tests' device). It owns the link's staging buffers and runs
// downloads and uploads with the GIL released. Device addresses and streams are integers
// (tensor.data_ptr(), torch.cuda.current_stream().cuda_stream): no torch type crosses here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/arrays.h"
#include "core/simulated_link.h"
#include "core/transfer.h"

namespace torchnp::bindings {

namespace {

// Default staging: 3 buffers of 8 MiB (a chunk crosses a 50 GB/s link in ~170 us, long next to
// an event's ~10 us) under a 64 MiB cap shared by every transfer on the link.
constexpr int64_t kChunkBytes = 8 << 20;
constexpr int64_t kCapBytes = 64 << 20;

core::Operand dense_operand(int code, const std::vector<int64_t>& strides) {
  core::Operand op;
  op.data = reinterpret_cast<char*>(uintptr_t{64});  // 0 mod 64, as every chunk's buffer is
  op.dtype = to_scalar_type(code);
  op.strides = strides;
  return op;
}

bool whole_memcpy(const core::Plan& p) {
  return p.method == core::Method::kFlat && p.inner.memcpy && p.src_offset == 0;
}

class Link {
 public:
  static std::shared_ptr<Link> of_capsule(const py::capsule& capsule) {
    if (std::string(capsule.name() ? capsule.name() : "") != "torchnp.link") {
      throw std::invalid_argument("torchnp._C.Link: a PyCapsule named 'torchnp.link' is needed");
    }
    auto l = std::shared_ptr<Link>(new Link());
    l->link_ = capsule.get_pointer<const torchnp_link>();
    l->keep_ = capsule;
    l->staging_ = std::make_shared<core::Staging>(l->link_, kChunkBytes, kCapBytes);
    return l;
  }
  static std::shared_ptr<Link> simulated(int64_t delay_us, bool gather, int64_t chunk_bytes,
                                         int64_t cap_bytes) {
    auto l = std::shared_ptr<Link>(new Link());
    l->sim_ = std::make_unique<core::SimulatedLink>(core::SimulatedLink::Options{delay_us, gather});
    l->link_ = l->sim_->link();
    l->staging_ = std::make_shared<core::Staging>(l->link_, chunk_bytes, cap_bytes);
    return l;
  }
  ~Link() {
    staging_.reset();  // its buffers go back through the link, which must still be there
  }

  std::string name() const { return link_->name ? link_->name : "link"; }
  bool has_gather() const { return link_->gather != nullptr; }

  // dst (host ndarray) <- `src_addr`: the device bytes, numel * itemsize(src_code) of them,
  // laid out densely with `src_strides` (bytes, one per dim of dst) — or, with `gather`
  // = (shape, strides, scratch_addr, scratch_bytes), packed by the link from a strided device
  // source at `src_addr` in that C order first.
  void download(const py::array& dst, int dst_code, bool dst_swapped, uint64_t src_addr,
                int src_code, const std::vector<int64_t>& src_strides, int negate,
                const std::optional<py::tuple>& gather, uint64_t stream, int buffers,
                bool dst_pinned) {
    core::Plan plan;
    core::Download job = make_download(dst, dst_code, dst_swapped, src_addr, src_code, src_strides,
                                       negate, gather, dst_pinned, plan);
    job.stream = stream;
    job.buffers = buffers;
    run([&](core::Staging* st) {
      job.staging = st;
      core::download(job);
    });
  }

  // Several downloads as one pipeline: items as download() takes them (without stream and
  // buffers, shared), a list that keeps the arrays alive while the GIL is released.
  void download_many(const py::list& items, uint64_t stream, int buffers) {
    std::vector<core::Plan> plans(items.size());  // sized first: the jobs point into it
    std::vector<core::Download> jobs;
    jobs.reserve(items.size());
    size_t i = 0;
    for (const py::handle item : items) {
      const auto t = py::reinterpret_borrow<py::tuple>(item);
      if (py::len(t) != 9) throw std::invalid_argument("torchnp._C.Link.download_many: 9-tuples");
      const auto gather = t[7].is_none() ? std::optional<py::tuple>()
                                         : std::optional<py::tuple>(t[7].cast<py::tuple>());
      jobs.push_back(make_download(t[0].cast<py::array>(), t[1].cast<int>(), t[2].cast<bool>(),
                                   t[3].cast<uint64_t>(), t[4].cast<int>(),
                                   t[5].cast<std::vector<int64_t>>(), t[6].cast<int>(), gather,
                                   t[8].cast<bool>(), plans[i]));
      jobs.back().stream = stream;
      jobs.back().buffers = buffers;
      ++i;
    }
    run([&](core::Staging* st) {
      for (core::Download& job : jobs) job.staging = st;
      core::download_batch(jobs);
    });
  }

  // `dst_addr` (a dense device block, `dst_strides` bytes per dim of src) <- src (host ndarray).
  void upload(uint64_t dst_addr, int dst_code, const std::vector<int64_t>& dst_strides,
              const py::array& src, int src_code, bool src_swapped, uint64_t stream, int buffers,
              bool src_pinned) {
    core::Plan plan;
    core::Upload job = make_upload(dst_addr, dst_code, dst_strides, src, src_code, src_swapped,
                                   src_pinned, plan);
    job.stream = stream;
    job.buffers = buffers;
    run([&](core::Staging* st) {
      job.staging = st;
      core::upload(job);
    });
  }

  // Several uploads as one pipeline: items as upload() takes them (without stream and
  // buffers), in a list that keeps the arrays alive while the GIL is released.
  void upload_many(const py::list& items, uint64_t stream, int buffers) {
    std::vector<core::Plan> plans(items.size());  // sized first: the jobs point into it
    std::vector<core::Upload> jobs;
    jobs.reserve(items.size());
    size_t i = 0;
    for (const py::handle item : items) {
      const auto t = py::reinterpret_borrow<py::tuple>(item);
      if (py::len(t) != 7) throw std::invalid_argument("torchnp._C.Link.upload_many: 7-tuples");
      jobs.push_back(make_upload(t[0].cast<uint64_t>(), t[1].cast<int>(),
                                 t[2].cast<std::vector<int64_t>>(), t[3].cast<py::array>(),
                                 t[4].cast<int>(), t[5].cast<bool>(), t[6].cast<bool>(),
                                 plans[i]));
      jobs.back().stream = stream;
      jobs.back().buffers = buffers;
      ++i;
    }
    run([&](core::Staging* st) {
      for (core::Upload& job : jobs) job.staging = st;
      core::upload_batch(jobs);
    });
  }

  void configure(int64_t chunk_bytes, int64_t cap_bytes) {
    std::lock_guard lock(mu_);
    if (chunk_bytes != staging_->chunk_bytes()) {
      // Transfers in flight keep the old buffers (shared ownership) until they end.
      staging_ = std::make_shared<core::Staging>(link_, chunk_bytes, cap_bytes);
    } else {
      staging_->set_cap(cap_bytes);
    }
  }
  int64_t trim() {
    std::shared_ptr<core::Staging> st;
    {
      std::lock_guard lock(mu_);
      st = staging_;
    }
    py::gil_scoped_release no_gil;  // cudaFreeHost waits for the device to be idle
    return st->trim();
  }
  py::dict staging_stats() const {
    std::shared_ptr<core::Staging> st;
    {
      std::lock_guard lock(mu_);
      st = staging_;
    }
    const auto s = st->stats();
    py::dict d;
    d["chunk_bytes"] = s.chunk_bytes;
    d["cap_bytes"] = s.cap_bytes;
    d["held_bytes"] = s.held_bytes;
    d["idle_bytes"] = s.idle_bytes;
    d["buffers"] = s.buffers;
    return d;
  }

  // Page-locked host memory from the link, freed when the returned object goes.
  uint64_t alloc_host(int64_t bytes) {
    void* p = nullptr;
    if (bytes < 0) throw std::invalid_argument("torchnp: negative size");
    if (link_->alloc_host(link_->self, static_cast<size_t>(bytes ? bytes : 1), &p) != 0) {
      throw std::runtime_error(std::string("torchnp: cannot allocate page-locked memory (") +
                               std::to_string(bytes) + " bytes on " + name() +
                               "): " + link_->error(link_->self));
    }
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p));
  }
  void free_host(uint64_t p) {
    if (link_->free_host(link_->self, reinterpret_cast<void*>(static_cast<uintptr_t>(p))) != 0) {
      throw std::runtime_error(std::string("torchnp: free_host: ") + link_->error(link_->self));
    }
  }

  // The job for one download (staging, stream and buffers left to the caller); `plan` receives
  // the host side's plan, which the job points to.
  core::Download make_download(const py::array& dst, int dst_code, bool dst_swapped,
                               uint64_t src_addr, int src_code,
                               const std::vector<int64_t>& src_strides, int negate,
                               const std::optional<py::tuple>& gather, bool dst_pinned,
                               core::Plan& plan) const {
    if (!dst.writeable()) throw std::invalid_argument("torchnp._C.Link.download: dst read-only");
    if (src_strides.size() != static_cast<size_t>(dst.ndim())) {
      throw std::invalid_argument("torchnp._C.Link.download: one source stride per dimension");
    }
    const core::Operand d = make_operand(dst, dst_code, dst_swapped);
    const core::Operand s = dense_operand(src_code, src_strides);
    plan = core::plan_copy(shape_of(dst), d, s, to_negate(negate), torch_threads());
    core::Download job;
    job.link = link_;
    job.src = src_addr;
    job.bytes = plan.numel * core::itemsize(s.dtype);
    job.plan = &plan;
    job.dst = d.data;
    if (gather) {
      const auto shape = (*gather)[0].cast<std::vector<int64_t>>();
      const auto strides = (*gather)[1].cast<std::vector<int64_t>>();
      if (shape.size() != strides.size() || shape.empty() || shape.size() > 8) {
        throw std::invalid_argument("torchnp._C.Link.download: gather needs 1-8 dims");
      }
      job.gather.ndim = static_cast<int>(shape.size());
      std::copy(shape.begin(), shape.end(), job.gather.shape.begin());
      std::copy(strides.begin(), strides.end(), job.gather.strides.begin());
      job.gather.itemsize = core::itemsize(s.dtype);
      job.gather.scratch = (*gather)[2].cast<uint64_t>();
      job.gather.scratch_bytes = (*gather)[3].cast<int64_t>();
    }
    job.direct = dst_pinned && !gather && whole_memcpy(plan);
    return job;
  }

  core::Upload make_upload(uint64_t dst_addr, int dst_code, const std::vector<int64_t>& dst_strides,
                           const py::array& src, int src_code, bool src_swapped, bool src_pinned,
                           core::Plan& plan) const {
    if (dst_strides.size() != static_cast<size_t>(src.ndim())) {
      throw std::invalid_argument("torchnp._C.Link.upload: one destination stride per dimension");
    }
    const core::Operand s = make_operand(src, src_code, src_swapped);
    const core::Operand d = dense_operand(dst_code, dst_strides);
    plan = core::plan_copy(shape_of(src), d, s, core::Negate::kNone, torch_threads());
    core::Upload job;
    job.link = link_;
    job.dst = dst_addr;
    job.bytes = plan.numel * core::itemsize(d.dtype);
    job.plan = &plan;
    job.src = s.data;
    job.direct = src_pinned && plan.method == core::Method::kFlat && plan.inner.memcpy &&
                 plan.dst_offset == 0;
    return job;
  }

  core::SimulatedLink& sim() {
    if (!sim_) throw std::invalid_argument("torchnp._C.Link: not a simulated link");
    return *sim_;
  }

 private:
  Link() = default;

  template <class F>
  void run(F&& body) {
    std::shared_ptr<core::Staging> st;
    {
      std::lock_guard lock(mu_);
      st = staging_;
    }
    py::gil_scoped_release no_gil;  // a transfer waits on the link: never hold the GIL there
    body(st.get());
  }

  const torchnp_link* link_ = nullptr;
  py::object keep_;  // the capsule, for links that live in another module
  std::unique_ptr<core::SimulatedLink> sim_;
  mutable std::mutex mu_;
  std::shared_ptr<core::Staging> staging_;
};

// A block of page-locked memory as a Python buffer (an ndarray's base): released through the
// link when the last view of it is gone.
struct PinnedBuffer {
  std::shared_ptr<Link> link;
  uint64_t address = 0;
  int64_t bytes = 0;
  ~PinnedBuffer() {
    if (address) {
      // cudaFreeHost waits for the device to be idle: other Python threads run meanwhile.
      py::gil_scoped_release no_gil;
      try {
        link->free_host(address);
      } catch (...) {  // nothing to tell from a destructor; the memory leaks instead
      }
    }
  }
};

}  // namespace

void add_transfers(py::module_& m) {
  py::register_exception<core::TransferError>(m, "TransferError", PyExc_RuntimeError);

  py::class_<Link, std::shared_ptr<Link>>(m, "Link",
                                          "A host <-> device link and its staging buffers.")
      .def_static("of_capsule", &Link::of_capsule, py::arg("capsule"))
      .def_static("simulated", &Link::simulated, py::arg("delay_us") = 0,
                  py::arg("gather") = true, py::arg("chunk_bytes") = kChunkBytes,
                  py::arg("cap_bytes") = kCapBytes,
                  "A host-simulated link (device memory is host memory; a worker thread does "
                  "the DMA), for tests and dry runs.")
      .def_property_readonly("name", &Link::name)
      .def_property_readonly("has_gather", &Link::has_gather)
      .def("download", &Link::download, py::arg("dst").noconvert(), py::arg("dst_code"),
           py::arg("dst_swapped"), py::arg("src_addr"), py::arg("src_code"),
           py::arg("src_strides"), py::arg("negate") = 0, py::arg("gather") = py::none(),
           py::arg("stream") = 0, py::arg("buffers") = 3, py::arg("dst_pinned") = false)
      .def("download_many", &Link::download_many, py::arg("items"), py::arg("stream") = 0,
           py::arg("buffers") = 3,
           "Several downloads as one pipeline: (dst, dst_code, dst_swapped, src_addr, src_code, "
           "src_strides, negate, gather, dst_pinned) each.")
      .def("upload_many", &Link::upload_many, py::arg("items"), py::arg("stream") = 0,
           py::arg("buffers") = 3,
           "Several uploads as one pipeline: (dst_addr, dst_code, dst_strides, src, src_code, "
           "src_swapped, src_pinned) each.")
      .def("upload", &Link::upload, py::arg("dst_addr"), py::arg("dst_code"),
           py::arg("dst_strides"), py::arg("src").noconvert(), py::arg("src_code"),
           py::arg("src_swapped"), py::arg("stream") = 0, py::arg("buffers") = 3,
           py::arg("src_pinned") = false)
      .def("configure", &Link::configure, py::arg("chunk_bytes"), py::arg("cap_bytes"))
      .def("trim", &Link::trim, "Free the idle staging buffers; the bytes freed.")
      .def("staging_stats", &Link::staging_stats)
      .def(
          "pinned",
          [](const std::shared_ptr<Link>& self, int64_t bytes) {
            auto buf = std::make_unique<PinnedBuffer>();
            buf->address = self->alloc_host(bytes);
            buf->link = self;
            buf->bytes = bytes;
            return buf;
          },
          py::arg("nbytes"), "Page-locked host memory (a writable buffer) of nbytes bytes.")
      // Simulated links only: fault injection and what the worker did.
      .def(
          "fail_copy",
          [](Link& self, int64_t nth, std::string cause) { self.sim().fail_copy(nth, cause); },
          py::arg("nth"), py::arg("cause"))
      .def("reset", [](Link& self) { self.sim().reset(); })
      .def(
          "set_delay_us", [](Link& self, int64_t us) { self.sim().set_delay_us(us); },
          py::arg("us"))
      .def("link_stats", [](Link& self) {
        const auto s = self.sim().stats();
        py::dict d;
        d["copies"] = s.copies;
        d["gathers"] = s.gathers;
        d["bytes_d2h"] = s.bytes_d2h;
        d["bytes_h2d"] = s.bytes_h2d;
        d["events"] = s.events;
        d["live_events"] = s.live_events;
        d["host_buffers"] = s.host_buffers;
        d["host_bytes"] = s.host_bytes;
        d["max_queued"] = s.max_queued;
        d["after_stream"] = s.after_stream;
        d["join_stream"] = s.join_stream;
        return d;
      });

  py::class_<PinnedBuffer>(m, "PinnedBuffer", py::buffer_protocol())
      .def_property_readonly("address", [](const PinnedBuffer& b) { return b.address; })
      .def_property_readonly("nbytes", [](const PinnedBuffer& b) { return b.bytes; })
      .def_property_readonly("link", [](const PinnedBuffer& b) { return b.link->name(); })
      .def_buffer([](PinnedBuffer& b) {
        return py::buffer_info(reinterpret_cast<void*>(static_cast<uintptr_t>(b.address)),
                               1, py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(b.bytes)}, {py::ssize_t{1}}, false);
      });
}

}  // namespace torchnp::bindings
