// The C++ tests' one assertion: CHECK(cond, printf-style message) counts a failure and prints
// the first 50, so a run reports many failures instead of stopping at the first.
#pragma once

#include <cstdio>

inline int g_failures = 0;

#define CHECK(cond, ...)                                            \
  do {                                                              \
    if (!(cond)) {                                                  \
      if (++g_failures < 50) {                                      \
        std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
        std::printf(__VA_ARGS__);                                   \
        std::printf("\n");                                          \
      }                                                             \
    }                                                               \
  } while (0)
