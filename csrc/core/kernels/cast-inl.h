// Element types as stored in memory, unaligned loads and stores, byte swaps, the element cast
// cast<D>(S) that every kernel uses (NumPy's unsafe cast, see numeric-inl.h) and the sign flips
// of torch's conj / neg bits.
//
// Per-ISA: compiled once inside each kernel set's namespace (TORCHNP_ISA), like numeric-inl.h.
#pragma once

#include <cstring>
#include <type_traits>
#include <utility>

#include "core/kernels/numeric-inl.h"
#include "core/torchnp_core.h"

namespace torchnp::core::TORCHNP_ISA {

struct Bool {
  uint8_t v;
};
struct Half {
  uint16_t v;
};
struct BF16 {
  uint16_t v;
};
template <F8Kind K>
struct F8 {
  uint8_t v;
};
struct C32 {
  Half re, im;
};
struct C64 {
  float re, im;
};
struct C128 {
  double re, im;
};

using F8E4M3FN = F8<F8Kind::kE4M3FN>;
using F8E5M2 = F8<F8Kind::kE5M2>;
using F8E4M3FNUZ = F8<F8Kind::kE4M3FNUZ>;
using F8E5M2FNUZ = F8<F8Kind::kE5M2FNUZ>;
using F8E8M0FNU = F8<F8Kind::kE8M0FNU>;

// ScalarType code -> C++ type, from the table.
template <ScalarType T>
struct TypeOf;
#define TORCHNP_ELEMENT_TYPE(code, enumerator, name, short_name, size, components, cpp, ...) \
  template <>                                                                              \
  struct TypeOf<ScalarType::enumerator> {                                                  \
    using type_t = cpp;                                                                    \
    static_assert(sizeof(cpp) == size, "element_types.def: itemsize of " #name);           \
  };
#include "core/element_types.def"
#undef TORCHNP_ELEMENT_TYPE

// C++ type -> ScalarType code (inverse of TypeOf).
template <class T>
constexpr ScalarType type_code() {
  constexpr int n = kNumTypes;
  auto found = static_cast<ScalarType>(kNumTypes);
  [&]<int... I>(std::integer_sequence<int, I...>) {
    ((std::is_same_v<T, typename TypeOf<static_cast<ScalarType>(I)>::type_t>
          ? (found = static_cast<ScalarType>(I), 0)
          : 0),
     ...);
  }(std::make_integer_sequence<int, n>{});
  return found;
}

template <class T>
inline constexpr bool kIsInt = std::is_integral_v<T>;
template <class T>
inline constexpr bool kIsComplex =
    std::is_same_v<T, C32> || std::is_same_v<T, C64> || std::is_same_v<T, C128>;
template <class T>
struct IsF8 : std::false_type {};
template <F8Kind K>
struct IsF8<F8<K>> : std::true_type {
  static constexpr F8Kind kKind = K;
};
template <class T>
inline constexpr bool kIsF8 = IsF8<T>::value;

// ---- memory access -------------------------------------------------------------------------

template <class T>
inline T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <class T>
inline void store(char* p, T v) {
  std::memcpy(p, &v, sizeof(T));
}

// Reverses the bytes of each component (a complex number swaps its two parts separately,
// like NumPy's '>c8').
template <class T>
inline T byteswap(T v) {
  constexpr size_t part = kIsComplex<T> ? sizeof(T) / 2 : sizeof(T);
  if constexpr (part == 1) {
    return v;
  } else {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    for (size_t p = 0; p < sizeof(T); p += part) {
      for (size_t i = 0; i < part / 2; ++i) {
        unsigned char t = b[p + i];
        b[p + i] = b[p + part - 1 - i];
        b[p + part - 1 - i] = t;
      }
    }
    std::memcpy(&v, b, sizeof(T));
    return v;
  }
}

// ---- scalar views --------------------------------------------------------------------------

template <class S>
inline float to_f32(S x) {
  if constexpr (std::is_same_v<S, Bool>) {
    return x.v != 0 ? 1.0f : 0.0f;
  } else if constexpr (kIsInt<S> || std::is_same_v<S, float> || std::is_same_v<S, double>) {
    return static_cast<float>(x);  // one correctly rounded conversion
  } else if constexpr (std::is_same_v<S, Half>) {
    return f16_to_f32(x.v);
  } else if constexpr (std::is_same_v<S, BF16>) {
    return bf16_to_f32(x.v);
  } else {
    static_assert(kIsF8<S>);
    return f8_to_f32(IsF8<S>::kKind, x.v);
  }
}

template <class S>
inline double to_f64(S x) {
  if constexpr (std::is_same_v<S, Bool>) {
    return x.v != 0 ? 1.0 : 0.0;
  } else if constexpr (kIsInt<S> || std::is_same_v<S, float> || std::is_same_v<S, double>) {
    return static_cast<double>(x);
  } else {
    return static_cast<double>(to_f32(x));  // exact for every narrow float
  }
}

template <class S>
inline bool to_bool(S x) {
  if constexpr (std::is_same_v<S, Bool>) {
    return x.v != 0;
  } else if constexpr (kIsInt<S>) {
    return x != 0;
  } else if constexpr (std::is_same_v<S, Half> || std::is_same_v<S, BF16>) {
    return (x.v & 0x7fffu) != 0;  // NaN is true, +-0 false
  } else if constexpr (std::is_same_v<S, float> || std::is_same_v<S, double>) {
    return !(x == 0);  // NaN -> true
  } else if constexpr (kIsComplex<S>) {
    return to_bool(x.re) || to_bool(x.im);
  } else {
    static_assert(kIsF8<S>);
    if constexpr (IsF8<S>::kKind == F8Kind::kE8M0FNU) {
      return true;  // e8m0 has no zero
    } else if constexpr (IsF8<S>::kKind == F8Kind::kE4M3FNUZ ||
                         IsF8<S>::kKind == F8Kind::kE5M2FNUZ) {
      return x.v != 0;  // 0x80 is NaN, hence true
    } else {
      return (x.v & 0x7fu) != 0;
    }
  }
}

// ---- the element cast ----------------------------------------------------------------------

template <class D, class S>
inline D cast(S x) {
  if constexpr (std::is_same_v<D, S>) {
    return x;
  } else if constexpr (std::is_same_v<D, Bool>) {
    return Bool{static_cast<uint8_t>(to_bool(x))};
  } else if constexpr (kIsComplex<S> && !kIsComplex<D>) {
    return cast<D>(x.re);  // NumPy drops the imaginary part
  } else if constexpr (std::is_same_v<S, Bool>) {
    return cast<D>(static_cast<uint8_t>(x.v != 0));
  } else if constexpr (kIsInt<D>) {
    if constexpr (kIsInt<S>) {
      return static_cast<D>(x);  // two's complement wrap-around (well defined in C++20)
    } else if constexpr (kIsF8<S>) {
      return f8_float_to_int<D>(to_f32(x));
    } else if constexpr (std::is_same_v<S, Half> && std::is_same_v<D, uint32_t>) {
      return half_to_uint32(to_f64(x));
    } else {
      return float_to_int<D>(to_f64(x));
    }
  } else if constexpr (std::is_same_v<D, float>) {
    return to_f32(x);
  } else if constexpr (std::is_same_v<D, double>) {
    return to_f64(x);
  } else if constexpr (std::is_same_v<D, Half>) {
    if constexpr (std::is_same_v<S, double>) {
      return Half{f64_to_f16(x)};  // NumPy rounds double -> half directly
    } else {
      return Half{f32_to_f16(to_f32(x))};
    }
  } else if constexpr (std::is_same_v<D, BF16>) {
    return BF16{f32_to_bf16(to_f32(x))};  // ml_dtypes goes through float (double rounding)
  } else if constexpr (kIsF8<D>) {
    return D{f32_to_f8(IsF8<D>::kKind, to_f32(x))};  // ml_dtypes goes through float
  } else if constexpr (std::is_same_v<D, C32>) {
    if constexpr (kIsComplex<S>) {
      return C32{Half{f32_to_f16(to_f32(x.re))}, Half{f32_to_f16(to_f32(x.im))}};
    } else if constexpr (std::is_same_v<S, Half>) {
      return C32{x, Half{0}};
    } else {
      return C32{Half{f32_to_f16(to_f32(x))}, Half{0}};  // ml_dtypes: through float
    }
  } else if constexpr (std::is_same_v<D, C64>) {
    if constexpr (kIsComplex<S>) {
      return C64{to_f32(x.re), to_f32(x.im)};
    } else {
      return C64{to_f32(x), 0.0f};
    }
  } else {
    static_assert(std::is_same_v<D, C128>);
    if constexpr (kIsComplex<S>) {
      return C128{to_f64(x.re), to_f64(x.im)};
    } else {
      return C128{to_f64(x), 0.0};
    }
  }
}

// ---- sign flips (torch's conj / neg bits) --------------------------------------------------

// -x in the element's own type, as np.negative computes it: an IEEE sign flip for floats (NaNs
// included), two's complement for integers, and ml_dtypes' rule for the float8 types without a
// negative zero (fnuz: 0 and the NaN 0x80 stay as they are) or without a sign (e8m0: NaN).
template <class T>
inline T negated(T x) {
  if constexpr (kIsInt<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(U{0} - static_cast<U>(x)));
  } else if constexpr (std::is_same_v<T, float>) {
    return std::bit_cast<float>(std::bit_cast<uint32_t>(x) ^ 0x80000000u);
  } else if constexpr (std::is_same_v<T, double>) {
    return std::bit_cast<double>(std::bit_cast<uint64_t>(x) ^ 0x8000000000000000u);
  } else if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BF16>) {
    return T{static_cast<uint16_t>(x.v ^ 0x8000u)};
  } else {
    static_assert(kIsF8<T>, "no negation for this type (bool has none)");
    constexpr F8Kind k = IsF8<T>::kKind;
    if constexpr (k == F8Kind::kE8M0FNU) {
      return T{0xff};
    } else if constexpr (k == F8Kind::kE4M3FNUZ || k == F8Kind::kE5M2FNUZ) {
      return T{(x.v & 0x7fu) == 0 ? x.v : static_cast<uint8_t>(x.v ^ 0x80u)};
    } else {
      return T{static_cast<uint8_t>(x.v ^ 0x80u)};
    }
  }
}

// The source element with the components of `kMode` negated (real types: the value).
template <Negate kMode, class T>
inline T apply_negate(T x) {
  if constexpr (kIsComplex<T>) {
    if constexpr (kMode == Negate::kReal || kMode == Negate::kBoth) x.re = negated(x.re);
    if constexpr (kMode == Negate::kImag || kMode == Negate::kBoth) x.im = negated(x.im);
    return x;
  } else {
    return negated(x);
  }
}

}  // namespace torchnp::core::TORCHNP_ISA
