// Portable loop templates and the code that fills a KernelSet from them.
//
// Per-ISA: each kernel set's translation unit includes this inside its own namespace
// (TORCHNP_ISA), so the compiler auto-vectorises the same source for each instruction set;
// hand-written loops then replace table entries where they are faster.
#pragma once

#include <utility>

#include "core/kernels/cast-inl.h"
#include "core/kernels/kernel_set.h"

namespace torchnp::core::TORCHNP_ISA {

template <class S, class D>
void strided_loop(const char* src, int64_t ss, char* dst, int64_t ds, int64_t n) {
  constexpr int64_t es = sizeof(S), ed = sizeof(D);
  if (ss == -es && ds == ed) {
    // A reversed source (a[::-1] into a fresh array): with compile-time strides the compiler
    // vectorises it with lane permutes; the generic loop below runs 2x slower than NumPy here.
    for (int64_t k = 0; k < n; ++k) store<D>(dst + k * ed, cast<D>(load<S>(src - k * es)));
    return;
  }
  for (int64_t k = 0; k < n; ++k) store<D>(dst + k * ds, cast<D>(load<S>(src + k * ss)));
}

// Same loop with compile-time unit strides, so that the compiler can vectorise it.
template <class S, class D>
void contig_loop(const char* src, int64_t, char* dst, int64_t, int64_t n) {
  constexpr int64_t es = sizeof(S), ed = sizeof(D);
  for (int64_t k = 0; k < n; ++k) store<D>(dst + k * ed, cast<D>(load<S>(src + k * es)));
}

// Blocked transpose: a tile of kTile x kTile elements keeps both the strided reads and the
// contiguous writes inside L1.
template <class S, class D>
void transpose_loop(const char* src, int64_t ss_j, char* dst, int64_t ds_i, int64_t ni,
                    int64_t nj) {
  constexpr int64_t kTile = 32;
  constexpr int64_t es = sizeof(S), ed = sizeof(D);
  for (int64_t i0 = 0; i0 < ni; i0 += kTile) {
    const int64_t i1 = i0 + kTile < ni ? i0 + kTile : ni;
    for (int64_t j0 = 0; j0 < nj; j0 += kTile) {
      const int64_t j1 = j0 + kTile < nj ? j0 + kTile : nj;
      for (int64_t i = i0; i < i1; ++i) {
        const char* s = src + i * es;
        char* d = dst + i * ds_i;
        for (int64_t j = j0; j < j1; ++j) store<D>(d + j * ed, cast<D>(load<S>(s + j * ss_j)));
      }
    }
  }
}

template <class P, int kParts>
struct SwapElem {
  P part[kParts];
};

template <class P, int kParts>
void swap_strided_loop(const char* src, int64_t ss, char* dst, int64_t ds, int64_t n) {
  using E = SwapElem<P, kParts>;
  for (int64_t k = 0; k < n; ++k) {
    E e = load<E>(src + k * ss);
    for (int q = 0; q < kParts; ++q) e.part[q] = byteswap(e.part[q]);
    store<E>(dst + k * ds, e);
  }
}

template <class P, int kParts>
void swap_contig_loop(const char* src, int64_t, char* dst, int64_t, int64_t n) {
  constexpr int64_t es = sizeof(P) * kParts;
  swap_strided_loop<P, kParts>(src, es, dst, es, n);
}

// Sign flips in the element's own type (torch's conj / neg bits), any strides; the unit-stride
// instantiation has compile-time strides so that it vectorises.
template <class T, Negate kMode>
void negate_loop(const char* src, int64_t ss, char* dst, int64_t ds, int64_t n) {
  for (int64_t k = 0; k < n; ++k) store<T>(dst + k * ds, apply_negate<kMode>(load<T>(src + k * ss)));
}

template <class T, Negate kMode>
void negate_contig_loop(const char* src, int64_t, char* dst, int64_t, int64_t n) {
  constexpr int64_t e = sizeof(T);
  for (int64_t k = 0; k < n; ++k) store<T>(dst + k * e, apply_negate<kMode>(load<T>(src + k * e)));
}

template <int kT>
void fill_negate(KernelSet& ks) {
  using T = typename TypeOf<static_cast<ScalarType>(kT)>::type_t;
  if constexpr (!std::is_same_v<T, Bool>) {  // bool has no negation: nullptr, plans refuse it
    auto set = [&]<Negate kMode>() {
      const int m = static_cast<int>(kMode) - 1;
      ks.negate_strided[kT][m] = &negate_loop<T, kMode>;
      ks.negate_contig[kT][m] = &negate_contig_loop<T, kMode>;
    };
    set.template operator()<Negate::kReal>();
    set.template operator()<Negate::kImag>();
    set.template operator()<Negate::kBoth>();
  }
}

template <int kS, int kD>
void fill_pair(KernelSet& ks) {
  using S = typename TypeOf<static_cast<ScalarType>(kS)>::type_t;
  using D = typename TypeOf<static_cast<ScalarType>(kD)>::type_t;
  ks.strided[kS][kD] = &strided_loop<S, D>;
  ks.contig[kS][kD] = &contig_loop<S, D>;
  ks.transpose[kS][kD] = &transpose_loop<S, D>;
}

template <int kS, int... kD>
void fill_row(KernelSet& ks, std::integer_sequence<int, kD...>) {
  (fill_pair<kS, kD>(ks), ...);
  fill_negate<kS>(ks);
}

template <int... kS>
void fill_all(KernelSet& ks, std::integer_sequence<int, kS...>) {
  (fill_row<kS>(ks, std::make_integer_sequence<int, kNumTypes>{}), ...);
}

template <class P>
void fill_swap(KernelSet& ks, int log2_part) {
  ks.swap_strided[log2_part - 1][0] = &swap_strided_loop<P, 1>;
  ks.swap_strided[log2_part - 1][1] = &swap_strided_loop<P, 2>;
  ks.swap_contig[log2_part - 1][0] = &swap_contig_loop<P, 1>;
  ks.swap_contig[log2_part - 1][1] = &swap_contig_loop<P, 2>;
}

inline void fill_portable(KernelSet& ks) {
  fill_all(ks, std::make_integer_sequence<int, kNumTypes>{});
  fill_swap<uint16_t>(ks, 1);
  fill_swap<uint32_t>(ks, 2);
  fill_swap<uint64_t>(ks, 3);
}

}  // namespace torchnp::core::TORCHNP_ISA
