// Three-channel (C = 3) layout changes with AVX2: planes <-> pixel-major, for 4-byte
// elements (permutes + blends, 8 pixels per step) and 1-byte elements (pshufb, 16 pixels per
// step). NCHW <-> NHWC images have C = 3, too few channels for 8x8 tiles.
// Included only by kernels/avx2/transpose.cpp (compiled with -mavx2).
#pragma once

#include "core/kernels/avx2/common.h"
#include "core/kernels/portable-inl.h"

namespace torchnp::core::avx2 {
// Three source planes (j = 0, 1, 2) -> pixel-major destination (ds_i == 3 * elem size).
inline void interleave3(__m256i a, __m256i b, __m256i c, __m256i out[3]) {
  const __m256i i0 = _mm256_setr_epi32(0, 0, 0, 1, 1, 1, 2, 2);
  const __m256i i1 = _mm256_setr_epi32(2, 3, 3, 3, 4, 4, 4, 5);
  const __m256i i2 = _mm256_setr_epi32(5, 5, 6, 6, 6, 7, 7, 7);
  {
    __m256i pa = _mm256_permutevar8x32_epi32(a, i0), pb = _mm256_permutevar8x32_epi32(b, i0),
            pc = _mm256_permutevar8x32_epi32(c, i0);
    out[0] = _mm256_blend_epi32(_mm256_blend_epi32(pa, pb, 0x92), pc, 0x24);
  }
  {
    __m256i pa = _mm256_permutevar8x32_epi32(a, i1), pb = _mm256_permutevar8x32_epi32(b, i1),
            pc = _mm256_permutevar8x32_epi32(c, i1);
    out[1] = _mm256_blend_epi32(_mm256_blend_epi32(pa, pb, 0x24), pc, 0x49);
  }
  {
    __m256i pa = _mm256_permutevar8x32_epi32(a, i2), pb = _mm256_permutevar8x32_epi32(b, i2),
            pc = _mm256_permutevar8x32_epi32(c, i2);
    out[2] = _mm256_blend_epi32(_mm256_blend_epi32(pa, pb, 0x49), pc, 0x92);
  }
}

template <class S, class D>
void interleave3_loop(const char* src, int64_t ss_j, char* dst, int64_t ni) {
  constexpr bool kToBytes = sizeof(D) == 1;  // float -> (u)int8, else a 4-byte bit copy
  int64_t i = 0;
  for (; i + 8 <= ni; i += 8) {
    const char* s = src + i * 4;
    __m256i a = loadu(s), b = loadu(s + ss_j), c = loadu(s + 2 * ss_j);
    if constexpr (kToBytes) {
      a = _mm256_cvttps_epi32(_mm256_castsi256_ps(a));
      b = _mm256_cvttps_epi32(_mm256_castsi256_ps(b));
      c = _mm256_cvttps_epi32(_mm256_castsi256_ps(c));
    }
    __m256i o[3];
    interleave3(a, b, c, o);
    if constexpr (!kToBytes) {
      char* d = dst + i * 12;
      storeu(d, o[0]);
      storeu(d + 32, o[1]);
      storeu(d + 64, o[2]);
    } else {
      char* d = dst + i * 3;
      storeu128(d, low_bytes_x16(o[0], o[1]));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 16), low_bytes_x16(o[2], o[2]));
    }
  }
  transpose_loop<S, D>(src + i * 4, ss_j, dst + i * 3 * sizeof(D), 3 * sizeof(D), ni - i, 3);
}

// Pixel-major source (8 pixels x 3 channels in x0..x2) -> three planes: each plane's elements
// sit at distinct positions of x0..x2, so two blends gather them and one permute orders them.
template <class S, class D>
void deinterleave3_loop(const char* src, char* dst, int64_t ds_i, int64_t nj) {
  static_assert(sizeof(S) == 4 && sizeof(D) == 4);
  const __m256i ia = _mm256_setr_epi32(0, 3, 6, 1, 4, 7, 2, 5);
  const __m256i ib = _mm256_setr_epi32(1, 4, 7, 2, 5, 0, 3, 6);
  const __m256i ic = _mm256_setr_epi32(2, 5, 0, 3, 6, 1, 4, 7);
  int64_t j = 0;
  for (; j + 8 <= nj; j += 8) {
    const char* s = src + 12 * j;
    const __m256i x0 = loadu(s), x1 = loadu(s + 32), x2 = loadu(s + 64);
    // plane 0: x0 at 0,3,6; x1 at 1,4,7; x2 at 2,5 (and so on, rotated, for planes 1 and 2)
    const __m256i a = _mm256_blend_epi32(_mm256_blend_epi32(x0, x1, 0x92), x2, 0x24);
    const __m256i b = _mm256_blend_epi32(_mm256_blend_epi32(x0, x1, 0x24), x2, 0x49);
    const __m256i c = _mm256_blend_epi32(_mm256_blend_epi32(x0, x1, 0x49), x2, 0x92);
    storeu(dst + 4 * j, _mm256_permutevar8x32_epi32(a, ia));
    storeu(dst + ds_i + 4 * j, _mm256_permutevar8x32_epi32(b, ib));
    storeu(dst + 2 * ds_i + 4 * j, _mm256_permutevar8x32_epi32(c, ic));
  }
  transpose_loop<S, D>(src + 12 * j, 12, dst + 4 * j, ds_i, 3, nj - j);
}

// ---- 1-byte elements with 3 channels (uint8 images) ------------------------------------------
// pshufb gathers each output vector from the three input vectors; a mask byte of 0x80 gives 0,
// so out = shuffle(x0, m0) | shuffle(x1, m1) | shuffle(x2, m2).

struct Shuffle3 {
  alignas(16) int8_t m[3][3][16];  // [output vector][input vector][byte]
};

// Interleave: input vector x = plane x (16 pixels); output byte k = plane k%3, pixel k/3.
constexpr Shuffle3 make_interleave() {
  Shuffle3 s{};
  for (int v = 0; v < 3; ++v) {
    for (int x = 0; x < 3; ++x) {
      for (int t = 0; t < 16; ++t) {
        const int k = 16 * v + t;
        s.m[v][x][t] = static_cast<int8_t>(k % 3 == x ? k / 3 : 0x80);
      }
    }
  }
  return s;
}

// Deinterleave: input vector x = bytes 16x..16x+15 of 16 pixels; output plane v, pixel p is
// input byte 3p + v.
constexpr Shuffle3 make_deinterleave() {
  Shuffle3 s{};
  for (int v = 0; v < 3; ++v) {
    for (int x = 0; x < 3; ++x) {
      for (int p = 0; p < 16; ++p) {
        const int k = 3 * p + v;
        s.m[v][x][p] = static_cast<int8_t>(k / 16 == x ? k % 16 : 0x80);
      }
    }
  }
  return s;
}

inline constexpr Shuffle3 kInterleave = make_interleave();
inline constexpr Shuffle3 kDeinterleave = make_deinterleave();

inline __m128i shuffle3(const Shuffle3& s, int v, __m128i x0, __m128i x1, __m128i x2) {
  auto m = [&](int x) { return _mm_load_si128(reinterpret_cast<const __m128i*>(s.m[v][x])); };
  return _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(x0, m(0)), _mm_shuffle_epi8(x1, m(1))),
                      _mm_shuffle_epi8(x2, m(2)));
}

// Same-type copies of 1-byte elements (uint8, int8, bool, float8): bits move unchanged.
template <class T>
void transpose_bytes(const char* src, int64_t ss_j, char* dst, int64_t ds_i, int64_t ni,
                     int64_t nj) {
  if (nj == 3 && ds_i == 3) {  // planes -> pixels (NCHW -> NHWC)
    int64_t i = 0;
    for (; i + 16 <= ni; i += 16) {
      const __m128i a = loadu128(src + i), b = loadu128(src + i + ss_j),
                    c = loadu128(src + i + 2 * ss_j);
      char* d = dst + 3 * i;
      storeu128(d, shuffle3(kInterleave, 0, a, b, c));
      storeu128(d + 16, shuffle3(kInterleave, 1, a, b, c));
      storeu128(d + 32, shuffle3(kInterleave, 2, a, b, c));
    }
    transpose_loop<T, T>(src + i, ss_j, dst + 3 * i, 3, ni - i, 3);
    return;
  }
  if (ni == 3 && ss_j == 3) {  // pixels -> planes (NHWC -> NCHW)
    int64_t j = 0;
    for (; j + 16 <= nj; j += 16) {
      const char* s = src + 3 * j;
      const __m128i x0 = loadu128(s), x1 = loadu128(s + 16), x2 = loadu128(s + 32);
      storeu128(dst + j, shuffle3(kDeinterleave, 0, x0, x1, x2));
      storeu128(dst + ds_i + j, shuffle3(kDeinterleave, 1, x0, x1, x2));
      storeu128(dst + 2 * ds_i + j, shuffle3(kDeinterleave, 2, x0, x1, x2));
    }
    transpose_loop<T, T>(src + 3 * j, 3, dst + j, ds_i, 3, nj - j);
    return;
  }
  transpose_loop<T, T>(src, ss_j, dst, ds_i, ni, nj);
}

}  // namespace torchnp::core::avx2
