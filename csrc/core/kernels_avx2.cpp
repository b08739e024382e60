// The AVX2 kernel set (compiled with -mavx2 -mf16c -mfma; used only after a cpuid check):
// the portable loops auto-vectorised for AVX2, plus hand-written loops for the hot pairs.
// Every loop here must give the same bits as the baseline scalar code (tests/cpp checks).
#define TORCHNP_ISA avx2
#include <immintrin.h>

#include "avx2_common.h"
#include "kernel_table.h"

namespace torchnp::core {
namespace avx2 {
namespace {

// ---- contiguous casts ------------------------------------------------------------------------
// Each processes whole vectors and leaves the tail to the portable loop (same results).

void f16_to_f32(const char* s, int64_t, char* d, int64_t, int64_t n) {
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    __m256 a = _mm256_cvtph_ps(loadu128(s + 2 * k));
    __m256 b = _mm256_cvtph_ps(loadu128(s + 2 * k + 16));
    _mm256_storeu_ps(reinterpret_cast<float*>(d + 4 * k), a);
    _mm256_storeu_ps(reinterpret_cast<float*>(d + 4 * k + 32), b);
  }
  contig_loop<Half, float>(s + 2 * k, 2, d + 4 * k, 4, n - k);
}

// vcvtps2ph with imm 0 rounds to nearest even, like f32_to_f16 (NaNs: same quiet pattern).
void f32_to_f16(const char* s, int64_t, char* d, int64_t, int64_t n) {
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    __m256 a = _mm256_loadu_ps(reinterpret_cast<const float*>(s + 4 * k));
    __m256 b = _mm256_loadu_ps(reinterpret_cast<const float*>(s + 4 * k + 32));
    storeu128(d + 2 * k, _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
    storeu128(d + 2 * k + 16, _mm256_cvtps_ph(b, _MM_FROUND_TO_NEAREST_INT));
  }
  contig_loop<float, Half>(s + 4 * k, 4, d + 2 * k, 2, n - k);
}

void bf16_to_f32(const char* s, int64_t, char* d, int64_t, int64_t n) {
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    __m256i v = loadu(s + 2 * k);
    __m256i lo = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(v)), 16);
    __m256i hi = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(v, 1)), 16);
    storeu(d + 4 * k, lo);
    storeu(d + 4 * k + 32, hi);
  }
  contig_loop<BF16, float>(s + 2 * k, 2, d + 4 * k, 4, n - k);
}

// Round to nearest even on the bits; NaN -> 0x7fc0 (as f32_to_bf16).
inline __m256i bf16_round(__m256i x) {
  const __m256i abs = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
  const __m256i is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
  r = _mm256_srli_epi32(r, 16);
  return _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7fc0), is_nan);
}

void f32_to_bf16(const char* s, int64_t, char* d, int64_t, int64_t n) {
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    __m256i a = bf16_round(loadu(s + 4 * k));
    __m256i b = bf16_round(loadu(s + 4 * k + 32));
    // packus works per 128-bit lane: a0 b0 a1 b1 -> reorder the 64-bit quarters.
    __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xd8);
    storeu(d + 2 * k, p);
  }
  contig_loop<float, BF16>(s + 4 * k, 4, d + 2 * k, 2, n - k);
}

void f64_to_f32(const char* s, int64_t, char* d, int64_t, int64_t n) {
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m128 a = _mm256_cvtpd_ps(_mm256_loadu_pd(reinterpret_cast<const double*>(s + 8 * k)));
    __m128 b = _mm256_cvtpd_ps(_mm256_loadu_pd(reinterpret_cast<const double*>(s + 8 * k + 32)));
    _mm256_storeu_ps(reinterpret_cast<float*>(d + 4 * k), _mm256_set_m128(b, a));
  }
  contig_loop<double, float>(s + 8 * k, 8, d + 4 * k, 4, n - k);
}

void f32_to_f64(const char* s, int64_t, char* d, int64_t, int64_t n) {
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m256 v = _mm256_loadu_ps(reinterpret_cast<const float*>(s + 4 * k));
    _mm256_storeu_pd(reinterpret_cast<double*>(d + 8 * k), _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    _mm256_storeu_pd(reinterpret_cast<double*>(d + 8 * k + 32),
                     _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  }
  contig_loop<float, double>(s + 4 * k, 4, d + 8 * k, 8, n - k);
}

// float -> 8-bit integer: cvttps2dq gives the x86 "integer indefinite" for NaN / out of range,
// exactly cvtt32 of numeric.h; then keep the low byte (wrap-around, not saturation).
template <class D>
void f32_to_byte(const char* s, int64_t, char* d, int64_t, int64_t n) {
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    __m256i a = _mm256_cvttps_epi32(_mm256_loadu_ps(reinterpret_cast<const float*>(s + 4 * k)));
    __m256i b = _mm256_cvttps_epi32(_mm256_loadu_ps(reinterpret_cast<const float*>(s + 4 * k + 32)));
    storeu128(d + k, low_bytes_x16(a, b));
  }
  contig_loop<float, D>(s + 4 * k, 4, d + k, 1, n - k);
}

template <class S>
void byte_to_f32(const char* s, int64_t, char* d, int64_t, int64_t n) {
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + k));
    __m256i w = std::is_signed_v<S> ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
    _mm256_storeu_ps(reinterpret_cast<float*>(d + 4 * k), _mm256_cvtepi32_ps(w));
  }
  contig_loop<S, float>(s + k, 1, d + 4 * k, 4, n - k);
}

// ---- byte swaps (vpshufb) -------------------------------------------------------------------

template <int kPart>
void swap_contig(const char* s, int64_t, char* d, int64_t, int64_t units) {
  static_assert(kPart == 2 || kPart == 4 || kPart == 8);
  alignas(32) static constexpr int8_t kMask[3][32] = {
      {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14,
       1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14},
      {3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
       3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12},
      {7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,
       7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8}};
  const __m256i m = _mm256_load_si256(
      reinterpret_cast<const __m256i*>(kMask[kPart == 2 ? 0 : kPart == 4 ? 1 : 2]));
  const int64_t bytes = units * kPart;
  int64_t k = 0;
  for (; k + 64 <= bytes; k += 64) {
    storeu(d + k, _mm256_shuffle_epi8(loadu(s + k), m));
    storeu(d + k + 32, _mm256_shuffle_epi8(loadu(s + k + 32), m));
  }
  using P = std::conditional_t<kPart == 2, uint16_t, std::conditional_t<kPart == 4, uint32_t, uint64_t>>;
  swap_strided_loop<P, 1>(s + k, kPart, d + k, kPart, (bytes - k) / kPart);
}

template <int kPart, int kParts>
void swap_contig_elems(const char* s, int64_t, char* d, int64_t, int64_t n) {
  swap_contig<kPart>(s, 0, d, 0, n * kParts);
}

}  // namespace

void install_transposes(KernelSet& ks);  // transpose_avx2.cpp

void install_vectorised(KernelSet& ks) {
  auto set = [&](ScalarType s, ScalarType d, StridedLoop f) {
    ks.contig[static_cast<int>(s)][static_cast<int>(d)] = f;
  };
  using ST = ScalarType;
  set(ST::kFloat16, ST::kFloat32, &f16_to_f32);
  set(ST::kFloat32, ST::kFloat16, &f32_to_f16);
  set(ST::kBFloat16, ST::kFloat32, &bf16_to_f32);
  set(ST::kFloat32, ST::kBFloat16, &f32_to_bf16);
  set(ST::kFloat64, ST::kFloat32, &f64_to_f32);
  set(ST::kFloat32, ST::kFloat64, &f32_to_f64);
  set(ST::kFloat32, ST::kUInt8, &f32_to_byte<uint8_t>);
  set(ST::kFloat32, ST::kInt8, &f32_to_byte<int8_t>);
  set(ST::kUInt8, ST::kFloat32, &byte_to_f32<uint8_t>);
  set(ST::kInt8, ST::kFloat32, &byte_to_f32<int8_t>);
  ks.swap_contig[0][0] = &swap_contig_elems<2, 1>;
  ks.swap_contig[0][1] = &swap_contig_elems<2, 2>;
  ks.swap_contig[1][0] = &swap_contig_elems<4, 1>;
  ks.swap_contig[1][1] = &swap_contig_elems<4, 2>;
  ks.swap_contig[2][0] = &swap_contig_elems<8, 1>;
  ks.swap_contig[2][1] = &swap_contig_elems<8, 2>;
  install_transposes(ks);
}

}  // namespace avx2

const KernelSet* avx2_kernels() {
  static const KernelSet ks = [] {
    KernelSet k{};
    k.name = "avx2";
    avx2::fill_portable(k);
    avx2::install_vectorised(k);
    return k;
  }();
  return &ks;
}

}  // namespace torchnp::core
