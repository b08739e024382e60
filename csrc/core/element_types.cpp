// Sizes and names of the element types, from element_types.def.
#include "core/torchnp_core.h"

namespace torchnp::core {
namespace {

struct TypeInfo {
  int code;
  int64_t size;
  int components;
  const char* name;
  const char* short_name;
};

constexpr TypeInfo kTypeInfo[] = {
#define TORCHNP_ELEMENT_TYPE(code, enumerator, name, short_name, size, components, ...) \
  {code, size, components, #name, #short_name},
#include "core/element_types.def"
#undef TORCHNP_ELEMENT_TYPE
};
static_assert(sizeof(kTypeInfo) / sizeof(kTypeInfo[0]) == kNumTypes);

constexpr bool codes_are_positions() {
  for (int i = 0; i < kNumTypes; ++i) {
    if (kTypeInfo[i].code != i) return false;
  }
  return true;
}
static_assert(codes_are_positions(), "element_types.def: codes must be 0, 1, 2, ... in order");

}  // namespace

bool is_valid(ScalarType t) { return static_cast<int>(t) < kNumTypes; }  // the enum is unsigned

int64_t itemsize(ScalarType t) { return is_valid(t) ? kTypeInfo[static_cast<int>(t)].size : 0; }

int components(ScalarType t) {
  return is_valid(t) ? kTypeInfo[static_cast<int>(t)].components : 1;
}

const char* scalar_type_name(ScalarType t) {
  return is_valid(t) ? kTypeInfo[static_cast<int>(t)].name : "unknown";
}

const char* scalar_type_short(ScalarType t) {
  return is_valid(t) ? kTypeInfo[static_cast<int>(t)].short_name : "?";
}

}  // namespace torchnp::core
