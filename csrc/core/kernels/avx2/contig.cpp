// The AVX2 kernel set (compiled with -mavx2 -mf16c -mfma; used only after a cpuid check):
// the portable loops auto-vectorised for AVX2, plus hand-written contiguous loops for the hot
// pairs, each in a normal and a streaming (non-temporal store) version.
// Every loop here must give the same bits as the baseline scalar code (tests/cpp checks).
#define TORCHNP_ISA avx2
#include <immintrin.h>

#include <array>

#include "core/kernels/avx2/common.h"
#include "core/kernels/portable-inl.h"

namespace torchnp::core {
namespace avx2 {
namespace {

template <bool kNT>
inline void store256(char* p, __m256i v) {
  if constexpr (kNT) {
    _mm256_stream_si256(reinterpret_cast<__m256i*>(p), v);
  } else {
    storeu(p, v);
  }
}

template <bool kNT>
inline void store128(char* p, __m128i v) {
  if constexpr (kNT) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(p), v);
  } else {
    storeu128(p, v);
  }
}

// ---- one vector step per pair: kStep elements from s to d -----------------------------------

struct F16ToF32 {
  using S = Half;
  using D = float;
  static constexpr int64_t kStep = 16;
  template <bool kNT>
  static void step(const char* s, char* d) {
    store256<kNT>(d, _mm256_castps_si256(_mm256_cvtph_ps(loadu128(s))));
    store256<kNT>(d + 32, _mm256_castps_si256(_mm256_cvtph_ps(loadu128(s + 16))));
  }
};

// vcvtps2ph with imm 0 rounds to nearest even, like f32_to_f16 (NaNs: same quiet pattern).
struct F32ToF16 {
  using S = float;
  using D = Half;
  static constexpr int64_t kStep = 16;
  template <bool kNT>
  static void step(const char* s, char* d) {
    __m256 a = _mm256_loadu_ps(reinterpret_cast<const float*>(s));
    __m256 b = _mm256_loadu_ps(reinterpret_cast<const float*>(s + 32));
    store128<kNT>(d, _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
    store128<kNT>(d + 16, _mm256_cvtps_ph(b, _MM_FROUND_TO_NEAREST_INT));
  }
};

struct BF16ToF32 {
  using S = BF16;
  using D = float;
  static constexpr int64_t kStep = 16;
  template <bool kNT>
  static void step(const char* s, char* d) {
    __m256i v = loadu(s);
    store256<kNT>(d, _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(v)), 16));
    store256<kNT>(d + 32,
                  _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(v, 1)), 16));
  }
};

struct F32ToBF16 {
  using S = float;
  using D = BF16;
  static constexpr int64_t kStep = 16;
  template <bool kNT>
  static void step(const char* s, char* d) {
    __m256i a = bf16_round(loadu(s));
    __m256i b = bf16_round(loadu(s + 32));
    // packus works per 128-bit lane (a0 b0 | a1 b1): put the 64-bit quarters back in order.
    store256<kNT>(d, _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8));
  }
};

struct F64ToF32 {
  using S = double;
  using D = float;
  static constexpr int64_t kStep = 8;
  template <bool kNT>
  static void step(const char* s, char* d) {
    __m128 a = _mm256_cvtpd_ps(_mm256_loadu_pd(reinterpret_cast<const double*>(s)));
    __m128 b = _mm256_cvtpd_ps(_mm256_loadu_pd(reinterpret_cast<const double*>(s + 32)));
    store256<kNT>(d, _mm256_castps_si256(_mm256_set_m128(b, a)));
  }
};

struct F32ToF64 {
  using S = float;
  using D = double;
  static constexpr int64_t kStep = 8;
  template <bool kNT>
  static void step(const char* s, char* d) {
    __m256 v = _mm256_loadu_ps(reinterpret_cast<const float*>(s));
    store256<kNT>(d, _mm256_castpd_si256(_mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    store256<kNT>(d + 32, _mm256_castpd_si256(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
  }
};

// float -> 8-bit integer: cvttps2dq gives the x86 "integer indefinite" for NaN / out of range,
// exactly cvtt32 of numeric-inl.h; then keep the low byte (wrap-around, not saturation).
template <class Dst>
struct F32ToByte {
  using S = float;
  using D = Dst;
  static constexpr int64_t kStep = 32;
  template <bool kNT>
  static void step(const char* s, char* d) {
    for (int h = 0; h < 2; ++h) {
      const float* f = reinterpret_cast<const float*>(s + 64 * h);
      __m256i a = _mm256_cvttps_epi32(_mm256_loadu_ps(f));
      __m256i b = _mm256_cvttps_epi32(_mm256_loadu_ps(f + 8));
      store128<kNT>(d + 16 * h, low_bytes_x16(a, b));
    }
  }
};

template <class Src>
struct ByteToF32 {
  using S = Src;
  using D = float;
  static constexpr int64_t kStep = 8;
  template <bool kNT>
  static void step(const char* s, char* d) {
    __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s));
    __m256i w = std::is_signed_v<Src> ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
    store256<kNT>(d, _mm256_castps_si256(_mm256_cvtepi32_ps(w)));
  }
};

// Byte swap of 2/4/8-byte units with vpshufb (complex parts are units of their own).
template <class P>
struct SwapUnits {
  using S = P;
  using D = P;
  static constexpr int64_t kStep = 64 / sizeof(P);
  template <bool kNT>
  static void step(const char* s, char* d) {
    alignas(32) static constexpr int8_t kMask[3][32] = {
        {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14,
         1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14},
        {3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
         3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12},
        {7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,
         7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8}};
    const __m256i m =
        _mm256_load_si256(reinterpret_cast<const __m256i*>(kMask[sizeof(P) == 2   ? 0
                                                                 : sizeof(P) == 4 ? 1
                                                                                  : 2]));
    store256<kNT>(d, _mm256_shuffle_epi8(loadu(s), m));
    store256<kNT>(d + 32, _mm256_shuffle_epi8(loadu(s + 32), m));
  }
  static void tail(const char* s, char* d, int64_t n) {
    swap_strided_loop<P, 1>(s, sizeof(P), d, sizeof(P), n);
  }
};

// Sign flips that are a pure XOR of sign bits (IEEE floats and complex parts, the float8 types
// with a negative zero): 64 bytes per step. The 32-byte mask repeats the element's sign-bit
// pattern (little endian: a component's sign is the top bit of its last byte).
template <class T, Negate kMode>
struct XorSigns {
  using S = T;
  using D = T;
  static constexpr int64_t kStep = 64 / sizeof(T);
  static constexpr bool flipped(int component) {
    if (!kIsComplex<T>) return true;  // real types: any mode negates the value
    return component == 0 ? (kMode == Negate::kReal || kMode == Negate::kBoth)
                          : (kMode == Negate::kImag || kMode == Negate::kBoth);
  }
  alignas(32) static constexpr std::array<int8_t, 32> kMask = [] {
    std::array<int8_t, 32> m{};
    constexpr int elem = sizeof(T), part = kIsComplex<T> ? elem / 2 : elem;
    for (int b = 0; b < 32; ++b) {
      const int pos = b % elem, component = pos / part;
      m[b] = (pos % part == part - 1 && flipped(component)) ? static_cast<int8_t>(-128) : 0;
    }
    return m;
  }();
  template <bool kNT>
  static void step(const char* s, char* d) {
    const __m256i m = _mm256_load_si256(reinterpret_cast<const __m256i*>(kMask.data()));
    store256<kNT>(d, _mm256_xor_si256(loadu(s), m));
    store256<kNT>(d + 32, _mm256_xor_si256(loadu(s + 32), m));
  }
  static void tail(const char* s, char* d, int64_t n) {
    negate_contig_loop<T, kMode>(s, sizeof(T), d, sizeof(T), n);
  }
};

// Plain copy, 64 bytes per step (used for large memcpy-class copies with streaming stores).
struct CopyBytes {
  using S = uint8_t;
  using D = uint8_t;
  static constexpr int64_t kStep = 64;
  template <bool kNT>
  static void step(const char* s, char* d) {
    __m256i a = loadu(s), b = loadu(s + 32);
    store256<kNT>(d, a);
    store256<kNT>(d + 32, b);
  }
  static void tail(const char* s, char* d, int64_t n) { std::memcpy(d, s, static_cast<size_t>(n)); }
};

template <class K>
void scalar_tail(const char* s, char* d, int64_t n) {
  if constexpr (requires { K::tail(s, d, n); }) {
    K::tail(s, d, n);
  } else {
    contig_loop<typename K::S, typename K::D>(s, sizeof(typename K::S), d, sizeof(typename K::D),
                                              n);
  }
}

// The driver: whole vector steps, scalar ends. The streaming version first brings the
// destination to a 32-byte boundary (stream stores need it) and fences at the end.
template <class K, bool kNT>
void contig_kernel(const char* s, int64_t, char* d, int64_t, int64_t n) {
  constexpr int64_t es = sizeof(typename K::S), ed = sizeof(typename K::D);
  int64_t k = 0;
  if constexpr (kNT) {
    const auto mis = reinterpret_cast<uintptr_t>(d) % 32;
    if (mis % ed != 0) {  // can never reach alignment: normal stores
      contig_kernel<K, false>(s, es, d, ed, n);
      return;
    }
    k = std::min<int64_t>(n, static_cast<int64_t>((32 - mis) % 32) / ed);
    scalar_tail<K>(s, d, k);
  }
  for (; k + K::kStep <= n; k += K::kStep) K::template step<kNT>(s + k * es, d + k * ed);
  scalar_tail<K>(s + k * es, d + k * ed, n - k);
  if constexpr (kNT) _mm_sfence();
}

// A complex element of two parts swaps as 2 units.
template <class P, int kParts, bool kNT>
void swap_elems(const char* s, int64_t, char* d, int64_t, int64_t n) {
  contig_kernel<SwapUnits<P>, kNT>(s, sizeof(P), d, sizeof(P), n * kParts);
}

}  // namespace

void install_transposes(KernelSet& ks);  // kernels/avx2/transpose.cpp

void install_vectorised(KernelSet& ks) {
  auto set = [&]<class K>(K) {
    const int s = static_cast<int>(type_code<typename K::S>());
    const int d = static_cast<int>(type_code<typename K::D>());
    ks.contig[s][d] = &contig_kernel<K, false>;
    ks.contig_streaming[s][d] = &contig_kernel<K, true>;
  };
  set(F16ToF32{});
  set(F32ToF16{});
  set(BF16ToF32{});
  set(F32ToBF16{});
  set(F64ToF32{});
  set(F32ToF64{});
  set(F32ToByte<uint8_t>{});
  set(F32ToByte<int8_t>{});
  set(ByteToF32<uint8_t>{});
  set(ByteToF32<int8_t>{});
  auto set_swap = [&]<class P>(P, int lg) {
    ks.swap_contig[lg - 1][0] = &swap_elems<P, 1, false>;
    ks.swap_contig[lg - 1][1] = &swap_elems<P, 2, false>;
    ks.swap_contig_streaming[lg - 1][0] = &swap_elems<P, 1, true>;
    ks.swap_contig_streaming[lg - 1][1] = &swap_elems<P, 2, true>;
  };
  set_swap(uint16_t{}, 1);
  set_swap(uint32_t{}, 2);
  set_swap(uint64_t{}, 3);
  auto set_negate = [&]<class T>(T) {
    const int t = static_cast<int>(type_code<T>());
    auto one = [&]<Negate kMode>() {
      const int m = static_cast<int>(kMode) - 1;
      ks.negate_contig[t][m] = &contig_kernel<XorSigns<T, kMode>, false>;
      ks.negate_contig_streaming[t][m] = &contig_kernel<XorSigns<T, kMode>, true>;
    };
    one.template operator()<Negate::kReal>();
    one.template operator()<Negate::kImag>();
    one.template operator()<Negate::kBoth>();
  };
  set_negate(Half{});
  set_negate(BF16{});
  set_negate(float{});
  set_negate(double{});
  set_negate(C32{});
  set_negate(C64{});
  set_negate(C128{});
  set_negate(F8E4M3FN{});
  set_negate(F8E5M2{});
  ks.copy_streaming = &contig_kernel<CopyBytes, true>;
  install_transposes(ks);
}

}  // namespace avx2

const KernelSet& avx2_kernels() {
  static const KernelSet ks = [] {
    KernelSet k{};
    k.name = "avx2";
    avx2::fill_portable(k);
    avx2::install_vectorised(k);
    return k;
  }();
  return ks;
}

}  // namespace torchnp::core
