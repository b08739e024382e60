// AVX2 2-D transposes with the cast fused (HPTT-style register micro-kernels):
//  * 8x8 f32 through 8 ymm registers (any 4-byte type copied as is), converting on load
//    (f64, f16, bf16 -> f32) or on store (f32 -> f16, bf16, f64, uint8/int8);
//  * 4x4 for 8-byte and 8x8 (SSE) for 2-byte types, bits unchanged;
//  * 3-channel interleave / deinterleave (NCHW <-> NHWC with C = 3) for 4- and 1-byte
//    elements, where an 8x8 tile does not fit;
//  * non-temporal-store versions for destinations larger than the last-level cache.
// Same results as the portable transpose_loop, bit for bit (tests/cpp compares them).
#define TORCHNP_ISA avx2
#include "core/kernels/avx2/channels3.h"
#include "core/kernels/avx2/common.h"
#include "core/kernels/portable-inl.h"

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

// The same 8x8 transpose of 4-byte elements, read from memory (row k at p + k * stride) with
// the 128-bit lane crossing done by the loads: each register is filled from two half rows
// (rows k and k + 4, columns 0-3, or columns 4-7), so that 8 unpacks and 8 shuffles finish
// the job where transpose8x8 needs 8 lane permutes more (the shuffle port is the bottleneck).
inline void load_halves8x8(const char* p, int64_t stride, __m256 r[8]) {
  auto half = [&](int row, int col) {
    return _mm_loadu_ps(reinterpret_cast<const float*>(p + row * stride) + col);
  };
  __m256 q[8];
  for (int k = 0; k < 4; ++k) {
    q[k] = _mm256_insertf128_ps(_mm256_castps128_ps256(half(k, 0)), half(k + 4, 0), 1);
    q[k + 4] = _mm256_insertf128_ps(_mm256_castps128_ps256(half(k, 4)), half(k + 4, 4), 1);
  }
  for (int h = 0; h < 2; ++h) {  // columns 0-3, then 4-7
    const __m256* x = q + 4 * h;
    const __m256 t0 = _mm256_unpacklo_ps(x[0], x[1]), t1 = _mm256_unpackhi_ps(x[0], x[1]);
    const __m256 t2 = _mm256_unpacklo_ps(x[2], x[3]), t3 = _mm256_unpackhi_ps(x[2], x[3]);
    r[4 * h + 0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * h + 1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * h + 2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * h + 3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  }
}

// Destination element writers for the 8x8 micro-kernel.
struct StoreF32 {
  static constexpr bool kStreaming = false;
  static void rows(const __m256 r[8], char* d, int64_t ds_i) {
    for (int c = 0; c < 8; ++c) _mm256_storeu_ps(reinterpret_cast<float*>(d + c * ds_i), r[c]);
  }
};
// Non-temporal stores (destination 32-byte aligned): for destinations much larger than the
// last-level cache, where a normal store would first read the line it overwrites.
// rows2 writes two 8x8 results side by side, each destination line (16 floats) whole and at
// once: write-combining buffers then flush full lines. Streaming the two halves of a line from
// different micro tiles keeps 8 lines half-written at a time, and on the development machine
// that ran 2.5x slower (8192^2 f32: 9 GB/s against 23 GB/s).
struct StreamF32 {
  static constexpr bool kStreaming = true;
  static void rows(const __m256 r[8], char* d, int64_t ds_i) {
    for (int c = 0; c < 8; ++c) _mm256_stream_ps(reinterpret_cast<float*>(d + c * ds_i), r[c]);
  }
  static void rows2(const __m256 a[8], const __m256 b[8], char* d, int64_t ds_i) {
    for (int c = 0; c < 8; ++c) {
      float* p = reinterpret_cast<float*>(d + c * ds_i);
      _mm256_stream_ps(p, a[c]);
      _mm256_stream_ps(p + 8, b[c]);
    }
  }
};
struct StoreU8 {  // float -> uint8 / int8: cvtt32 then the low byte (numeric-inl.h float_to_int)
  static constexpr bool kStreaming = false;
  static void rows(const __m256 r[8], char* d, int64_t ds_i) {
    for (int c = 0; c < 8; c += 2) {
      __m128i b = low_bytes_x16(_mm256_cvttps_epi32(r[c]), _mm256_cvttps_epi32(r[c + 1]));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + c * ds_i), b);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(d + (c + 1) * ds_i), _mm_unpackhi_epi64(b, b));
    }
  }
};
struct StoreHalf {  // vcvtps2ph, round to nearest even (= f32_to_f16)
  static constexpr bool kStreaming = false;
  static void rows(const __m256 r[8], char* d, int64_t ds_i) {
    for (int c = 0; c < 8; ++c) {
      storeu128(d + c * ds_i, _mm256_cvtps_ph(r[c], _MM_FROUND_TO_NEAREST_INT));
    }
  }
};
struct StoreBF16 {  // = f32_to_bf16
  static constexpr bool kStreaming = false;
  static void rows(const __m256 r[8], char* d, int64_t ds_i) {
    for (int c = 0; c < 8; ++c) {
      const __m256i x = bf16_round(_mm256_castps_si256(r[c]));
      // packus per 128-bit lane, then qwords 0 and 2 hold elements 0-3 and 4-7
      const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(x, x), 0x08);
      storeu128(d + c * ds_i, _mm256_castsi256_si128(p));
    }
  }
};
struct StoreF64 {
  static constexpr bool kStreaming = false;
  static void rows(const __m256 r[8], char* d, int64_t ds_i) {
    for (int c = 0; c < 8; ++c) {
      double* p = reinterpret_cast<double*>(d + c * ds_i);
      _mm256_storeu_pd(p, _mm256_cvtps_pd(_mm256_castps256_ps128(r[c])));
      _mm256_storeu_pd(p + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(r[c], 1)));
    }
  }
};

// kB x kB register micro-kernels: dst[i * ds_i + j * ed] = src[i * es + j * ss_j].
// Source row readers: 8 consecutive source elements -> 8 floats. Each conversion is exact or
// is the cast itself (f64 -> f32 rounds once, as cast<float>(double) does).
struct LoadF32 {  // f32, or any 4-byte type whose bits are moved unchanged
  static __m256 row(const char* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
};
struct LoadF64 {
  static __m256 row(const char* p) {
    const __m128 a = _mm256_cvtpd_ps(_mm256_loadu_pd(reinterpret_cast<const double*>(p)));
    const __m128 b = _mm256_cvtpd_ps(_mm256_loadu_pd(reinterpret_cast<const double*>(p + 32)));
    return _mm256_set_m128(b, a);
  }
};
struct LoadHalf {
  static __m256 row(const char* p) { return _mm256_cvtph_ps(loadu128(p)); }
};
struct LoadBF16 {
  static __m256 row(const char* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
  }
};
// 8 x 8 through registers, converting on the way in (Load) and out (Store).
template <class Src, class Dst, class Store, class Load = LoadF32>
struct Micro8x8F32 {
  using S = Src;
  using D = Dst;
  static constexpr int64_t kB = 8;
  static constexpr bool kStreaming = Store::kStreaming;
  static void run(const char* s, int64_t ss_j, char* d, int64_t ds_i) {
    __m256 r[8];
    if constexpr (std::is_same_v<Load, LoadF32>) {
      load_halves8x8(s, ss_j, r);  // 16 shuffles instead of 24
    } else {
      for (int k = 0; k < 8; ++k) r[k] = Load::row(s + k * ss_j);
      transpose8x8(r);
    }
    Store::rows(r, d, ds_i);
  }
  // 16 source rows -> 8 destination rows of 16 elements (stores that complete whole lines).
  static void run_pair(const char* s, int64_t ss_j, char* d, int64_t ds_i)
    requires requires(const __m256* a, char* p) { Store::rows2(a, a, p, int64_t{}); }
  {
    __m256 a[8], b[8];
    if constexpr (std::is_same_v<Load, LoadF32>) {
      load_halves8x8(s, ss_j, a);
      load_halves8x8(s + 8 * ss_j, ss_j, b);
    } else {
      for (int k = 0; k < 8; ++k) a[k] = Load::row(s + k * ss_j);
      for (int k = 0; k < 8; ++k) b[k] = Load::row(s + (k + 8) * ss_j);
      transpose8x8(a);
      transpose8x8(b);
    }
    Store::rows2(a, b, d, ds_i);
  }
};

template <class T, bool kNT>
struct Micro4x4F64 {  // any 8-byte type, bits unchanged
  using S = T;
  using D = T;
  static constexpr int64_t kB = 4;
  static constexpr bool kStreaming = kNT;
  static void run(const char* s, int64_t ss_j, char* d, int64_t ds_i) {
    auto ld = [&](int k) { return _mm256_loadu_pd(reinterpret_cast<const double*>(s + k * ss_j)); };
    const __m256d r0 = ld(0), r1 = ld(1), r2 = ld(2), r3 = ld(3);
    const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    const __m256d c[4] = {
        _mm256_permute2f128_pd(t0, t2, 0x20), _mm256_permute2f128_pd(t1, t3, 0x20),
        _mm256_permute2f128_pd(t0, t2, 0x31), _mm256_permute2f128_pd(t1, t3, 0x31)};
    for (int k = 0; k < 4; ++k) {
      double* p = reinterpret_cast<double*>(d + k * ds_i);
      if constexpr (kNT) {
        _mm256_stream_pd(p, c[k]);
      } else {
        _mm256_storeu_pd(p, c[k]);
      }
    }
  }
};

template <class T>
struct Micro8x8U16 {  // any 2-byte type, bits unchanged (SSE2 unpack network)
  using S = T;
  using D = T;
  static constexpr int64_t kB = 8;
  static constexpr bool kStreaming = false;
  static void run(const char* s, int64_t ss_j, char* d, int64_t ds_i) {
    __m128i r[8];
    for (int k = 0; k < 8; ++k) r[k] = loadu128(s + k * ss_j);
    __m128i a[8], b[8];
    for (int k = 0; k < 4; ++k) {
      a[2 * k] = _mm_unpacklo_epi16(r[2 * k], r[2 * k + 1]);
      a[2 * k + 1] = _mm_unpackhi_epi16(r[2 * k], r[2 * k + 1]);
    }
    // a[0] = r0r1 cols 0-3, a[1] = r0r1 cols 4-7, a[2] = r2r3 cols 0-3, ...
    for (int k = 0; k < 2; ++k) {
      const int q = 4 * k;
      b[q + 0] = _mm_unpacklo_epi32(a[q + 0], a[q + 2]);  // cols 0,1 of rows 0-3 (or 4-7)
      b[q + 1] = _mm_unpackhi_epi32(a[q + 0], a[q + 2]);  // cols 2,3
      b[q + 2] = _mm_unpacklo_epi32(a[q + 1], a[q + 3]);  // cols 4,5
      b[q + 3] = _mm_unpackhi_epi32(a[q + 1], a[q + 3]);  // cols 6,7
    }
    for (int k = 0; k < 4; ++k) {
      storeu128(d + (2 * k) * ds_i, _mm_unpacklo_epi64(b[k], b[4 + k]));
      storeu128(d + (2 * k + 1) * ds_i, _mm_unpackhi_epi64(b[k], b[4 + k]));
    }
  }
};

// Runs a micro-kernel over a tile in 2kB x 2kB steps (four micro tiles), so that every source
// and destination cache line touched is consumed whole before moving on: no reliance on L1
// keeping lines that power-of-two strides would alias into the same set. The two halves of
// each destination line are written back to back (measured ~10% faster on 8192^2 f32).
template <class M>
void transpose_blocked(const char* src, int64_t ss_j, char* dst, int64_t ds_i, int64_t ni,
                       int64_t nj) {
  using S = typename M::S;
  using D = typename M::D;
  constexpr int64_t es = sizeof(S), ed = sizeof(D), B = M::kB;
  if (ni < B || nj < B) {
    transpose_loop<S, D>(src, ss_j, dst, ds_i, ni, nj);
    return;
  }
  const int64_t nib = ni - ni % B, njb = nj - nj % B;
  int64_t i0 = 0;
  for (; i0 + 2 * B <= nib; i0 += 2 * B) {
    int64_t j0 = 0;
    for (; j0 + 2 * B <= njb; j0 += 2 * B) {
      const char* s = src + i0 * es + j0 * ss_j;
      char* d = dst + i0 * ds_i + j0 * ed;
      // The 2B source rows are 2B separate streams: fetch 4 lines ahead along each
      // (measured +10-15% on 8192^2 f32; the hardware prefetcher does not keep up with 32).
      for (int64_t k = 0; k < 2 * B; ++k) _mm_prefetch(s + k * ss_j + 256, _MM_HINT_T0);
      if constexpr (requires { M::run_pair(s, ss_j, d, ds_i); }) {
        M::run_pair(s, ss_j, d, ds_i);  // destination rows i0 .. i0+B, whole lines
        M::run_pair(s + B * es, ss_j, d + B * ds_i, ds_i);
      } else {
        M::run(s, ss_j, d, ds_i);
        M::run(s + B * ss_j, ss_j, d + B * ed, ds_i);
        M::run(s + B * es, ss_j, d + B * ds_i, ds_i);
        M::run(s + B * es + B * ss_j, ss_j, d + B * ds_i + B * ed, ds_i);
      }
    }
    for (; j0 < njb; j0 += B) {
      M::run(src + i0 * es + j0 * ss_j, ss_j, dst + i0 * ds_i + j0 * ed, ds_i);
      M::run(src + (i0 + B) * es + j0 * ss_j, ss_j, dst + (i0 + B) * ds_i + j0 * ed, ds_i);
    }
  }
  for (; i0 < nib; i0 += B) {
    for (int64_t j0 = 0; j0 < njb; j0 += B) {
      M::run(src + i0 * es + j0 * ss_j, ss_j, dst + i0 * ds_i + j0 * ed, ds_i);
    }
  }
  // Ragged edges: the last nj % B columns of the full rows, then the last ni % B rows.
  if (njb < nj) {
    transpose_loop<S, D>(src + njb * ss_j, ss_j, dst + njb * ed, ds_i, nib, nj - njb);
  }
  if (nib < ni) {
    transpose_loop<S, D>(src + nib * es, ss_j, dst + nib * ds_i, ds_i, ni - nib, nj);
  }
  if constexpr (M::kStreaming) _mm_sfence();  // order the weakly-ordered stores
}

// Streaming stores need 32-byte aligned rows; otherwise run the normal-store kernel.
template <class M, class MNormal>
void transpose_streaming(const char* src, int64_t ss_j, char* dst, int64_t ds_i, int64_t ni,
                         int64_t nj) {
  if (reinterpret_cast<uintptr_t>(dst) % 32 != 0 || ds_i % 32 != 0) {
    transpose_blocked<MNormal>(src, ss_j, dst, ds_i, ni, nj);
  } else {
    transpose_blocked<M>(src, ss_j, dst, ds_i, ni, nj);
  }
}

// 4-byte source (f32, or any 4-byte type copied bit for bit): 3-channel (de)interleave where
// it applies, else the 8x8 kernel.
template <class S, class D, class Store, class Load = LoadF32>
void transpose_f32(const char* src, int64_t ss_j, char* dst, int64_t ds_i, int64_t ni, int64_t nj) {
  if constexpr (std::is_same_v<Load, LoadF32> && sizeof(D) <= 4 &&
                !std::is_same_v<Store, StoreHalf> && !std::is_same_v<Store, StoreBF16>) {
    if (nj == 3 && ds_i == 3 * static_cast<int64_t>(sizeof(D))) {
      interleave3_loop<S, D>(src, ss_j, dst, ni);
      return;
    }
    if constexpr (sizeof(D) == 4) {
      if (ni == 3 && ss_j == 12) {
        deinterleave3_loop<S, D>(src, dst, ds_i, nj);
        return;
      }
    }
  }
  if constexpr (Store::kStreaming) {
    transpose_streaming<Micro8x8F32<S, D, Store, Load>, Micro8x8F32<S, D, StoreF32, Load>>(
        src, ss_j, dst, ds_i, ni, nj);
  } else {
    transpose_blocked<Micro8x8F32<S, D, Store, Load>>(src, ss_j, dst, ds_i, ni, nj);
  }
}

}  // namespace

void install_transposes(KernelSet& ks) {
  using ST = ScalarType;
  auto set = [&](ST s, ST d, TransposeLoop f) {
    ks.transpose[static_cast<int>(s)][static_cast<int>(d)] = f;
    ks.transpose_vectorised[static_cast<int>(s)][static_cast<int>(d)] = true;
  };
  set(ST::kFloat32, ST::kFloat32, &transpose_f32<float, float, StoreF32>);
  set(ST::kInt32, ST::kInt32, &transpose_f32<int32_t, int32_t, StoreF32>);
  set(ST::kUInt32, ST::kUInt32, &transpose_f32<uint32_t, uint32_t, StoreF32>);
  set(ST::kFloat32, ST::kUInt8, &transpose_f32<float, uint8_t, StoreU8>);
  set(ST::kFloat32, ST::kInt8, &transpose_f32<float, int8_t, StoreU8>);
  // Casts fused into the 8x8 kernel (converted on load or on store).
  set(ST::kFloat64, ST::kFloat32, &transpose_f32<double, float, StoreF32, LoadF64>);
  set(ST::kFloat16, ST::kFloat32, &transpose_f32<Half, float, StoreF32, LoadHalf>);
  set(ST::kBFloat16, ST::kFloat32, &transpose_f32<BF16, float, StoreF32, LoadBF16>);
  // (uint8 -> f32 is left to the buffered path: its 3-channel byte shuffle is faster for
  // NHWC u8 -> NCHW f32 than 8x8 tiles, which need 8 channels.)
  set(ST::kFloat32, ST::kFloat16, &transpose_f32<float, Half, StoreHalf>);
  set(ST::kFloat32, ST::kBFloat16, &transpose_f32<float, BF16, StoreBF16>);
  set(ST::kFloat32, ST::kFloat64, &transpose_f32<float, double, StoreF64>);
  // 8-byte and 2-byte types: bit copies.
  auto set_bits = [&]<class T, class M, class MNt>(T, M, MNt) {
    const int t = static_cast<int>(type_code<T>());
    ks.transpose[t][t] = &transpose_blocked<M>;
    ks.transpose_vectorised[t][t] = true;
    if constexpr (!std::is_same_v<MNt, std::nullptr_t>) {
      ks.transpose_streaming[t][t] = &transpose_streaming<MNt, M>;
    }
  };
  set_bits(double{}, Micro4x4F64<double, false>{}, Micro4x4F64<double, true>{});
  set_bits(int64_t{}, Micro4x4F64<int64_t, false>{}, Micro4x4F64<int64_t, true>{});
  set_bits(uint64_t{}, Micro4x4F64<uint64_t, false>{}, Micro4x4F64<uint64_t, true>{});
  set_bits(C64{}, Micro4x4F64<C64, false>{}, Micro4x4F64<C64, true>{});
  set_bits(Half{}, Micro8x8U16<Half>{}, nullptr);
  set_bits(BF16{}, Micro8x8U16<BF16>{}, nullptr);
  set_bits(int16_t{}, Micro8x8U16<int16_t>{}, nullptr);
  set_bits(uint16_t{}, Micro8x8U16<uint16_t>{}, nullptr);
  set(ST::kUInt8, ST::kUInt8, &transpose_bytes<uint8_t>);
  set(ST::kInt8, ST::kInt8, &transpose_bytes<int8_t>);
  auto set_nt = [&](ST s, ST d, TransposeLoop f) {
    ks.transpose_streaming[static_cast<int>(s)][static_cast<int>(d)] = f;
  };
  set_nt(ST::kFloat32, ST::kFloat32, &transpose_f32<float, float, StreamF32>);
  set_nt(ST::kFloat64, ST::kFloat32, &transpose_f32<double, float, StreamF32, LoadF64>);
  set_nt(ST::kFloat16, ST::kFloat32, &transpose_f32<Half, float, StreamF32, LoadHalf>);
  set_nt(ST::kBFloat16, ST::kFloat32, &transpose_f32<BF16, float, StreamF32, LoadBF16>);
  set_nt(ST::kInt32, ST::kInt32, &transpose_f32<int32_t, int32_t, StreamF32>);
  set_nt(ST::kUInt32, ST::kUInt32, &transpose_f32<uint32_t, uint32_t, StreamF32>);
}

}  // namespace torchnp::core::avx2
