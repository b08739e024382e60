// Small AVX2 helpers shared by the kernels/avx2/*.cpp files (compiled with -mavx2 only there).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace torchnp::core::avx2 {

inline __m256i loadu(const char* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline __m128i loadu128(const char* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
inline void storeu(char* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline void storeu128(char* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }

// Low byte of each of the 16 int32 lanes of a and b, in order a0..a7 b0..b7 (truncation, as a
// C cast int32 -> int8/uint8 does).
inline __m128i low_bytes_x16(__m256i a, __m256i b) {
  const __m256i pick =
      _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                       -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i ab =
      _mm256_unpacklo_epi32(_mm256_shuffle_epi8(a, pick), _mm256_shuffle_epi8(b, pick));
  // lane 0: a0-3 b0-3, lane 1: a4-7 b4-7
  const __m128i x = _mm_unpacklo_epi64(_mm256_castsi256_si128(ab), _mm256_extracti128_si256(ab, 1));
  return _mm_shuffle_epi32(x, _MM_SHUFFLE(3, 1, 2, 0));
}

// float bits -> bfloat16 in the low half of each lane: round to nearest even on the bits,
// NaN -> 0x7fc0 with the sign kept (as f32_to_bf16 in numeric-inl.h).
inline __m256i bf16_round(__m256i x) {
  const __m256i abs = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
  const __m256i is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_add_epi32(x, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
  r = _mm256_srli_epi32(r, 16);
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x8000));
  const __m256i nan = _mm256_or_si256(_mm256_set1_epi32(0x7fc0), sign);
  return _mm256_blendv_epi8(r, nan, is_nan);
}

}  // namespace torchnp::core::avx2
