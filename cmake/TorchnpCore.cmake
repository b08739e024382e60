# The torch-free core (csrc/core) as the static library `torchnp_core`: defined here once, for
# the Python extension (CMakeLists.txt) and for the standalone C++ tests (tests/cpp).
#
#   include(TorchnpCore.cmake)   # after project(); TORCHNP_SANITIZE (ON/OFF) is honoured
#
# Sources are included as "core/..." from the csrc folder. Per-ISA kernel files get their ISA
# flags and nothing else does (a global -mavx2 would SIGILL older CPUs); kernels/dispatch.cpp
# picks a kernel set at run time. The AVX2 files are compiled only for x86-64 targets.
set(TORCHNP_CSRC "${CMAKE_CURRENT_LIST_DIR}/../csrc")
get_filename_component(TORCHNP_CSRC "${TORCHNP_CSRC}" ABSOLUTE)
option(TORCHNP_PORTABLE_ONLY "Compile only the portable kernels (no per-ISA kernel files)" OFF)

file(GLOB TORCHNP_CORE_SOURCES CONFIGURE_DEPENDS
     "${TORCHNP_CSRC}/core/*.cpp" "${TORCHNP_CSRC}/core/kernels/*.cpp")
set(TORCHNP_CPU_VARIANTS "baseline")
set(_torchnp_x86 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|x64)$")
  set(_torchnp_x86 ON)
endif()
if(_torchnp_x86 AND NOT TORCHNP_PORTABLE_ONLY)
  file(GLOB _torchnp_avx2_sources CONFIGURE_DEPENDS "${TORCHNP_CSRC}/core/kernels/avx2/*.cpp")
  set_source_files_properties(${_torchnp_avx2_sources} PROPERTIES COMPILE_OPTIONS
                              "-mavx2;-mf16c;-mfma")
  list(APPEND TORCHNP_CORE_SOURCES ${_torchnp_avx2_sources})
  list(APPEND TORCHNP_CPU_VARIANTS "avx2")
endif()

find_package(Threads REQUIRED)
add_library(torchnp_core STATIC ${TORCHNP_CORE_SOURCES})
target_include_directories(torchnp_core PUBLIC "${TORCHNP_CSRC}")
target_compile_features(torchnp_core PUBLIC cxx_std_20)
target_compile_options(torchnp_core PRIVATE -Wall -Wextra -fvisibility=hidden)
target_link_libraries(torchnp_core PUBLIC Threads::Threads)
set_target_properties(torchnp_core PROPERTIES POSITION_INDEPENDENT_CODE ON)
if("avx2" IN_LIST TORCHNP_CPU_VARIANTS)
  target_compile_definitions(torchnp_core PRIVATE TORCHNP_WITH_AVX2=1)
else()
  target_compile_definitions(torchnp_core PRIVATE TORCHNP_WITH_AVX2=0)
endif()
if(TORCHNP_SANITIZE)
  set(_torchnp_san -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all
                   -fno-omit-frame-pointer)
  target_compile_options(torchnp_core PUBLIC ${_torchnp_san})
  target_link_options(torchnp_core PUBLIC ${_torchnp_san})
endif()
