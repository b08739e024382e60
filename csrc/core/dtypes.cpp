// Element sizes and NumPy / ml_dtypes names of the core's scalar types.
#include "copy.h"

namespace torchnp::core {
namespace {

struct TypeInfo {
  int64_t size;
  const char* name;
};

// Indexed by ScalarType; names are what `np.dtype(...).name` prints (ml_dtypes for the
// narrow floats and complex32).
constexpr TypeInfo kTypeInfo[] = {
    {1, "bool"},           {1, "int8"},        {2, "int16"},           {4, "int32"},
    {8, "int64"},          {1, "uint8"},       {2, "uint16"},          {4, "uint32"},
    {8, "uint64"},         {2, "float16"},     {2, "bfloat16"},        {4, "float32"},
    {8, "float64"},        {4, "complex32"},   {8, "complex64"},       {16, "complex128"},
    {1, "float8_e4m3fn"},  {1, "float8_e5m2"}, {1, "float8_e4m3fnuz"}, {1, "float8_e5m2fnuz"},
    {1, "float8_e8m0fnu"},
};
static_assert(sizeof(kTypeInfo) / sizeof(kTypeInfo[0]) ==
              static_cast<size_t>(ScalarType::kNumScalarTypes));

}  // namespace

int64_t itemsize(ScalarType t) {
  auto i = static_cast<size_t>(t);
  return i < static_cast<size_t>(ScalarType::kNumScalarTypes) ? kTypeInfo[i].size : 0;
}

const char* scalar_type_name(ScalarType t) {
  auto i = static_cast<size_t>(t);
  return i < static_cast<size_t>(ScalarType::kNumScalarTypes) ? kTypeInfo[i].name : "unknown";
}

}  // namespace torchnp::core
