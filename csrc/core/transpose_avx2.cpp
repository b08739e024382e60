// AVX2 2-D transposes with the cast fused (HPTT-style register micro-kernels):
//  * 8x8 f32 (any 4-byte type copied as is) through 8 ymm registers, optionally converted to
//    8-bit integers (NCHW f32 -> NHWC uint8);
//  * 3-channel interleave (NCHW -> NHWC with C = 3): three planes -> pixel-major, 8 pixels per
//    step with permutes + blends, the case where an 8x8 tile does not fit.
// Same results as the portable transpose_loop (tests/cpp compares them).
#define TORCHNP_ISA avx2
#include "avx2_common.h"
#include "kernel_table.h"

namespace torchnp::core::avx2 {
namespace {

inline void transpose8x8(__m256 r[8]) {
  __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Destination element writers for the 8x8 micro-kernel.
struct StoreF32 {
  static constexpr int64_t kSize = 4;
  static void rows(const __m256 r[8], char* d, int64_t ds_i) {
    for (int c = 0; c < 8; ++c) _mm256_storeu_ps(reinterpret_cast<float*>(d + c * ds_i), r[c]);
  }
};
struct StoreU8 {  // float -> uint8 / int8: cvtt32 then the low byte (numeric.h float_to_int)
  static constexpr int64_t kSize = 1;
  static void rows(const __m256 r[8], char* d, int64_t ds_i) {
    for (int c = 0; c < 8; c += 2) {
      __m128i b = low_bytes_x16(_mm256_cvttps_epi32(r[c]), _mm256_cvttps_epi32(r[c + 1]));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + c * ds_i), b);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + (c + 1) * ds_i), _mm_unpackhi_epi64(b, b));
    }
  }
};

template <class Store>
inline void micro8x8(const char* s, int64_t ss_j, char* d, int64_t ds_i) {
  __m256 r[8];
  for (int k = 0; k < 8; ++k) r[k] = _mm256_loadu_ps(reinterpret_cast<const float*>(s + k * ss_j));
  transpose8x8(r);
  Store::rows(r, d, ds_i);
}

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

// S is float or a 4-byte type copied bit for bit; D the matching destination.
template <class S, class D, class Store>
void transpose_f32(const char* src, int64_t ss_j, char* dst, int64_t ds_i, int64_t ni,
                   int64_t nj) {
  constexpr int64_t ed = Store::kSize;
  if (nj == 3 && ds_i == 3 * ed) {
    interleave3_loop<S, D>(src, ss_j, dst, ni);
    return;
  }
  if (ni < 8 || nj < 8) {
    transpose_loop<S, D>(src, ss_j, dst, ds_i, ni, nj);
    return;
  }
  const int64_t ni8 = ni & ~int64_t{7}, nj8 = nj & ~int64_t{7};
  // 16 x 16 steps (four 8x8 tiles) so that every source and destination cache line touched is
  // consumed whole before moving on: no reliance on L1 keeping lines that power-of-two
  // strides would alias into the same set.
  int64_t i0 = 0;
  for (; i0 + 16 <= ni8; i0 += 16) {
    int64_t j0 = 0;
    for (; j0 + 16 <= nj8; j0 += 16) {
      const char* s = src + i0 * 4 + j0 * ss_j;
      char* d = dst + i0 * ds_i + j0 * ed;
      micro8x8<Store>(s, ss_j, d, ds_i);
      micro8x8<Store>(s + 32, ss_j, d + 8 * ds_i, ds_i);
      micro8x8<Store>(s + 8 * ss_j, ss_j, d + 8 * ed, ds_i);
      micro8x8<Store>(s + 32 + 8 * ss_j, ss_j, d + 8 * ds_i + 8 * ed, ds_i);
    }
    for (; j0 < nj8; j0 += 8) {
      micro8x8<Store>(src + i0 * 4 + j0 * ss_j, ss_j, dst + i0 * ds_i + j0 * ed, ds_i);
      micro8x8<Store>(src + (i0 + 8) * 4 + j0 * ss_j, ss_j, dst + (i0 + 8) * ds_i + j0 * ed,
                      ds_i);
    }
  }
  for (; i0 < ni8; i0 += 8) {
    for (int64_t j0 = 0; j0 < nj8; j0 += 8) {
      micro8x8<Store>(src + i0 * 4 + j0 * ss_j, ss_j, dst + i0 * ds_i + j0 * ed, ds_i);
    }
  }
  // Ragged edges: the last nj % 8 columns for all rows, then the last ni % 8 rows.
  if (nj8 < nj) {
    transpose_loop<S, D>(src + nj8 * ss_j, ss_j, dst + nj8 * ed, ds_i, ni8, nj - nj8);
  }
  if (ni8 < ni) {
    transpose_loop<S, D>(src + ni8 * 4, ss_j, dst + ni8 * ds_i, ds_i, ni - ni8, nj);
  }
}

}  // namespace

void install_transposes(KernelSet& ks) {
  using ST = ScalarType;
  auto set = [&](ST s, ST d, TransposeLoop f) {
    ks.transpose[static_cast<int>(s)][static_cast<int>(d)] = f;
  };
  set(ST::kFloat32, ST::kFloat32, &transpose_f32<float, float, StoreF32>);
  set(ST::kInt32, ST::kInt32, &transpose_f32<int32_t, int32_t, StoreF32>);
  set(ST::kUInt32, ST::kUInt32, &transpose_f32<uint32_t, uint32_t, StoreF32>);
  set(ST::kFloat32, ST::kUInt8, &transpose_f32<float, uint8_t, StoreU8>);
  set(ST::kFloat32, ST::kInt8, &transpose_f32<float, int8_t, StoreU8>);
}

}  // namespace torchnp::core::avx2
