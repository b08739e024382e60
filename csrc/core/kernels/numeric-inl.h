// Scalar conversions between the core's number formats, bit-exact with NumPy 2.4 and
// ml_dtypes 0.6 on x86-64 (the oracle: tests/cpp/gen_oracle.py).
//
// Included by every kernel translation unit inside a per-ISA namespace (TORCHNP_ISA), so
// that the copies compiled with -mavx2 can never be picked by the linker for the baseline
// path (inline functions are otherwise merged across translation units).
#pragma once

#ifndef TORCHNP_ISA
#error "define TORCHNP_ISA (baseline, avx2, ...) before including numeric-inl.h"
#endif

#include <bit>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace torchnp::core::TORCHNP_ISA {

// ---- IEEE binary16 (NumPy float16) ---------------------------------------------------------

constexpr float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) {
    // Inf, or NaN made quiet (payload kept) exactly as vcvtph2ps does, so that the scalar and
    // F16C paths agree bit for bit.
    return std::bit_cast<float>(sign | 0x7f800000u | (man << 13) | (man != 0 ? 0x400000u : 0u));
  }
  if (exp == 0) {
    // Subnormal (or zero): man * 2^-24 is exact in float.
    float v = static_cast<float>(man) * 0x1p-24f;
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
}

// Round-to-nearest-even (IEEE 754 default), like vcvtps2ph with imm 0 and NumPy's
// npy_float_to_half. NaN keeps its top payload bits and is made quiet.
constexpr uint16_t f32_to_f16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) {
    if (x == 0x7f800000u) return sign | 0x7c00u;
    return static_cast<uint16_t>(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
  }
  if (x >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to infinity
  if (x < 0x38800000u) {
    // Below 2^-14: a half subnormal. a * 2^24 < 1024 is exact; adding 2^23 rounds it to an
    // integer with the current (nearest-even) rounding mode.
    float a = std::bit_cast<float>(x) * 0x1p24f;
    float r = (a + 0x1p23f) - 0x1p23f;
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
  }
  uint32_t r = x + 0xfffu + ((x >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((r - (112u << 23)) >> 13));
}

// Direct double -> half rounding (NumPy's npy_double_to_half): no double rounding via float.
constexpr uint16_t f64_to_f16(double d) {
  uint64_t x = std::bit_cast<uint64_t>(d);
  uint16_t sign = static_cast<uint16_t>((x >> 48) & 0x8000u);
  x &= 0x7fffffffffffffffull;
  if (x >= 0x7ff0000000000000ull) {
    if (x == 0x7ff0000000000000ull) return sign | 0x7c00u;
    return static_cast<uint16_t>(sign | 0x7e00u | ((x >> 42) & 0x3ffu));
  }
  if (x >= 0x40effe0000000000ull) return sign | 0x7c00u;  // >= 65520
  if (x < 0x3f10000000000000ull) {                        // < 2^-14
    double a = std::bit_cast<double>(x) * 0x1p24;
    double r = (a + 0x1p52) - 0x1p52;
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
  }
  uint64_t r = x + 0x1ffffffffffull + ((x >> 42) & 1u);
  return static_cast<uint16_t>(sign | ((r - (1008ull << 52)) >> 42));
}

// ---- bfloat16 (ml_dtypes) ------------------------------------------------------------------

constexpr float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(uint32_t{b} << 16); }

// Round-to-nearest-even on the bit pattern (ml_dtypes / Eigen float_to_bfloat16_rtne).
// Every NaN becomes the canonical quiet NaN 0x7fc0 with its sign kept, as ml_dtypes does.
constexpr uint16_t f32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>(0x7fc0u | ((x >> 16) & 0x8000u));
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

// ---- 8-bit floats (ml_dtypes; OCP FP8 / MX spec, AMD fnuz variants) ------------------------

enum class F8Kind : int { kE4M3FN = 0, kE5M2 = 1, kE4M3FNUZ = 2, kE5M2FNUZ = 3, kE8M0FNU = 4 };

struct F8Format {
  int exp_bits, man_bits, bias;
  int max_exponent;     // std::numeric_limits<T>::max_exponent in ml_dtypes
  uint8_t max_finite;   // bit pattern of the largest finite value
  uint8_t inf_code;     // NumTraits<T>::infinity(): inf where it exists, else the NaN code
  uint8_t nan_code;     // canonical quiet NaN
  bool has_subnormals;  // false only for e8m0 (every code is 2^(c-127))
  bool is_signed;
  bool nan_is_neg_zero;  // fnuz: 0x80 is the only NaN, there is no -0
};

constexpr F8Format f8_format(F8Kind k) {
  switch (k) {
    case F8Kind::kE4M3FN:
      return {4, 3, 7, 9, 0x7e, 0x7f, 0x7f, true, true, false};
    case F8Kind::kE5M2:
      return {5, 2, 15, 16, 0x7b, 0x7c, 0x7e, true, true, false};
    case F8Kind::kE4M3FNUZ:
      return {4, 3, 8, 8, 0x7f, 0x80, 0x80, true, true, true};
    case F8Kind::kE5M2FNUZ:
      return {5, 2, 16, 16, 0x7f, 0x80, 0x80, true, true, true};
    case F8Kind::kE8M0FNU:
      return {8, 0, 127, 128, 0xfe, 0xff, 0xff, false, false, false};
  }
  return {};
}

constexpr bool f8_is_nan(F8Kind k, uint8_t c) {
  switch (k) {
    case F8Kind::kE4M3FN:
      return (c & 0x7f) == 0x7f;
    case F8Kind::kE5M2:
      return (c & 0x7f) > 0x7c;
    case F8Kind::kE4M3FNUZ:
    case F8Kind::kE5M2FNUZ:
      return c == 0x80;
    case F8Kind::kE8M0FNU:
      return c == 0xff;
  }
  return false;
}

constexpr bool f8_is_inf(F8Kind k, uint8_t c) { return k == F8Kind::kE5M2 && (c & 0x7f) == 0x7c; }

// Exact decode (every 8-bit float value is a float).
constexpr float f8_to_f32(F8Kind k, uint8_t c) {
  const F8Format f = f8_format(k);
  if (f8_is_nan(k, c)) {
    // ml_dtypes keeps the code's sign bit (fnuz's only NaN, 0x80, is negative); e8m0 has none.
    const bool negative = k != F8Kind::kE8M0FNU && (c & 0x80u);
    return std::bit_cast<float>(negative ? 0xffc00000u : 0x7fc00000u);
  }
  if (k == F8Kind::kE8M0FNU) {
    // 2^(c-127); c == 0 is the float subnormal 2^-127.
    return c == 0 ? std::bit_cast<float>(0x00400000u) : std::bit_cast<float>(uint32_t{c} << 23);
  }
  uint32_t sign = (c & 0x80u) ? 0x80000000u : 0u;
  uint32_t man = c & ((1u << f.man_bits) - 1);
  uint32_t exp = (c & 0x7fu) >> f.man_bits;
  if (f8_is_inf(k, c)) return std::bit_cast<float>(sign | 0x7f800000u);
  if (exp == 0) {
    float v = static_cast<float>(man) *
              std::bit_cast<float>(static_cast<uint32_t>(127 + 1 - f.bias - f.man_bits) << 23);
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exp - f.bias + 127) << 23) | (man << (23 - f.man_bits)));
}

// Negation as ml_dtypes defines it: fnuz has no -0 and its NaN (0x80) stays NaN; unsigned
// e8m0 is left alone.
constexpr uint8_t f8_negate(F8Kind k, uint8_t c) {
  const F8Format f = f8_format(k);
  if (!f.is_signed) return c;  // e8m0: only NaN is ever negated
  if (f.nan_is_neg_zero && (c & 0x7f) == 0) return c;
  return static_cast<uint8_t>(c ^ 0x80u);
}

// float -> 8-bit float, round to nearest even, no saturation: ml_dtypes'
// ConvertImpl<float, T, kSaturate=false, kTruncate=false> re-derived step by step
// (non-finite, zero, sign of an unsigned target, normalise, align + round, pack, overflow).
constexpr uint8_t f32_to_f8(F8Kind k, float v) {
  const F8Format f = f8_format(k);
  uint32_t bits = std::bit_cast<uint32_t>(v);
  bool sign = (bits >> 31) != 0;
  uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits == 0x7f800000u) return sign ? f8_negate(k, f.inf_code) : f.inf_code;
  if (abs_bits > 0x7f800000u) return sign ? f8_negate(k, f.nan_code) : f.nan_code;
  if (abs_bits == 0) {
    if (k == F8Kind::kE8M0FNU) return f.nan_code;  // no zero and no saturation: NaN
    return sign ? f8_negate(k, 0) : 0;
  }
  if (!f.is_signed && sign) return f.nan_code;
  int unbiased_exp;
  uint32_t mant;
  uint32_t biased = abs_bits >> 23;
  uint32_t frac = abs_bits & 0x7fffffu;
  if (biased != 0) {
    unbiased_exp = static_cast<int>(biased) - 127;
    mant = 0x800000u | frac;
  } else {
    int shift = std::countl_zero(frac) - 9 + 1;  // leading zeros inside the 23-bit field, +1
    mant = frac << shift;
    unbiased_exp = (1 - 127) - shift;
  }
  int target_base = unbiased_exp + f.bias - 1;
  int denormal_adjust = target_base < 0 ? -target_base : 0;
  int align = (23 - f.man_bits) + denormal_adjust;
  if (align > 25) align = 25;
  // align >= 23 - 3 > 0 always: round to nearest even by adding a bias term.
  uint32_t rounded = mant + ((mant >> align) & 1u) + (1u << (align - 1)) - 1u;
  uint32_t aligned = rounded >> align;
  uint32_t exp_bits = target_base > 0 ? static_cast<uint32_t>(target_base) : 0u;
  uint32_t result = aligned + (exp_bits << f.man_bits);
  uint8_t out;
  if (target_base >= f.max_exponent + f.bias || result > f.max_finite) {
    out = f.inf_code;
  } else {
    out = static_cast<uint8_t>(result);
  }
  return sign ? f8_negate(k, out) : out;
}

// ---- float -> integer, as NumPy's C casts compile on x86-64 --------------------------------
// cvttsd2si returns the "integer indefinite" value (INT_MIN) for NaN and out-of-range inputs.
// Emulated with range checks so that no out-of-range float->int conversion (UB) happens.

constexpr int32_t cvtt32(double x) {
  return (x > -2147483649.0 && x < 2147483648.0) ? static_cast<int32_t>(x)
                                                 : std::numeric_limits<int32_t>::min();
}

constexpr int64_t cvtt64(double x) {
  return (x >= -0x1p63 && x < 0x1p63) ? static_cast<int64_t>(x)
                                      : std::numeric_limits<int64_t>::min();
}

// int8/int16/uint8/uint16/int32 targets: 32-bit cvtt, then keep the low bits (so 300.7 -> int8
// is 44 and -1.0 -> uint8 is 255, as NumPy gives).
// uint32: NumPy's vectorised loop (the bulk of any array) subtracts 2^31 from large values;
// its scalar tail uses a 64-bit cvtt instead. Both agree on (-2^31-1, 2^32); outside that we
// follow the vectorised body.
// uint64: gcc's sequence: values >= 2^63 are converted after subtracting 2^63.
template <class D>
constexpr D float_to_int(double x) {
  if constexpr (std::is_same_v<D, int64_t>) {
    return cvtt64(x);
  } else if constexpr (std::is_same_v<D, uint64_t>) {
    if (x >= 0x1p63) return static_cast<uint64_t>(cvtt64(x - 0x1p63)) ^ (uint64_t{1} << 63);
    return static_cast<uint64_t>(cvtt64(x));
  } else if constexpr (std::is_same_v<D, uint32_t>) {
    if (x >= 0x1p31) return static_cast<uint32_t>(cvtt32(x - 0x1p31)) ^ 0x80000000u;
    return static_cast<uint32_t>(cvtt32(x));
  } else {
    return static_cast<D>(cvtt32(x));
  }
}

// NumPy's float16 -> uint32 is a scalar loop: 64-bit cvtt, keep the low 32 bits.
constexpr uint32_t half_to_uint32(double x) { return static_cast<uint32_t>(cvtt64(x)); }

// ml_dtypes' float8 -> integer: NaN -> 0, +-inf saturate, finite values as a C cast.
template <class D>
constexpr D f8_float_to_int(float v) {
  if (v != v) return D{0};
  if (v == std::numeric_limits<float>::infinity()) return std::numeric_limits<D>::max();
  if (v == -std::numeric_limits<float>::infinity()) return std::numeric_limits<D>::min();
  return float_to_int<D>(static_cast<double>(v));
}

}  // namespace torchnp::core::TORCHNP_ISA
