# torchnp._cuda: the CUDA runtime's torchnp_link (csrc/cuda), its own Python module so that
# torchnp._C stays CUDA-free and one CPU build serves CPU and CUDA torches alike.
#
#   include(cmake/TorchnpCuda.cmake)   # after TorchProbe.cmake, pybind11 and TorchnpCore.cmake
#
# TORCHNP_CUDA (AUTO, ON, OFF; validated by the caller) decides whether it is built:
#   AUTO  only when the installed torch is a CUDA build, an nvcc is found, and nvcc's CUDA
#         major equals torch's (a CPU torch with nvcc on PATH gets the CPU engine, and a STATUS
#         line says why);
#   ON    the same three conditions, each one that fails a FATAL_ERROR naming it;
#   OFF   never.
# nvcc: CMAKE_CUDA_COMPILER, else $CUDACXX, else $CUDA_HOME/bin or $CUDA_PATH/bin, else PATH,
# else /usr/local/cuda/bin. An nvcc found there may be a wrapper script; the toolkit root is the
# TOP= that `nvcc --dryrun` prints, and CMake is given that toolkit's own nvcc.
#
# Architectures, decided before enable_language(CUDA) (which would otherwise pick its own
# default), first match wins:
#   TORCHNP_CUDA_ARCHS (CMake variable or environment, CMake syntax: "80-real;90", or the
#     words "wheel" or "native"), else a CMAKE_CUDA_ARCHITECTURES given on the command line,
#   else $TORCH_CUDA_ARCH_LIST (torch's syntax, "8.0 9.0+PTX": X.Y -> SASS, +PTX adds PTX),
#   else native, when `nvidia-smi -L` lists a GPU at build time,
#   else the wheel list: SASS for every supported generation, PTX for the newest (so GPUs newer
#     than the toolkit still run it, JIT-compiled by the driver). No `a`/`f` targets: they are
#     not forward compatible.
#
# The CUDA runtime is linked statically (CUDA::cudart_static), because one build must serve
# every torch of that CUDA major from the floor up, whatever libcudart.so.N each torch wheel
# ships and wherever it puts it (nvidia/cuda_runtime/lib for cu12, nvidia/cu13/lib for cu13):
#  - a shared cudart would need an rpath into one torch wheel's layout, and a newer toolkit's
#    libcudart symbols that an older torch's copy lacks would fail at load;
#  - the static runtime needs only the driver, which it dlopens on the first CUDA call, so the
#    module imports without a driver and has no NEEDED entry on libcuda or libcudart;
#  - it is a second runtime beside torch's in the same process, which is sound: both use the
#    driver's per-device primary context, and streams, events and device pointers are driver
#    handles, so torch's integers (data_ptr(), cuda_stream) are valid here;
#  - its symbols are hidden (--exclude-libs): left exported, the dynamic linker would bind this
#    module's cuda* calls to whichever libcudart torch loaded RTLD_GLOBAL first.
# Any driver new enough for the toolkit's CUDA major runs it (minor-version compatibility),
# the same requirement torch's own cu1N wheels have.
#
# Build facts go into _cuda_build.json beside _build.json (which stays CPU-only) and into
# _cuda.build_info().

set(TORCHNP_CUDA_ARCHS "" CACHE STRING
    "CUDA architectures for torchnp._cuda (CMake syntax, or 'wheel' or 'native'); empty: automatic")

# Not building, for the reason given (its arguments, joined): a STATUS line under AUTO, a
# FATAL_ERROR under ON. A macro, so that return() leaves this file.
macro(_torchnp_cuda_skip)
  string(JOIN "" _torchnp_why ${ARGV})
  if(TORCHNP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TORCHNP_CUDA=ON, but ${_torchnp_why}")
  endif()
  message(STATUS "torchnp: torchnp._cuda not built (TORCHNP_CUDA=${TORCHNP_CUDA}): "
                 "${_torchnp_why}; building the CPU engine only")
  return()
endmacro()

# The wheel list for a CUDA major.minor: SASS for every generation the toolkit supports, PTX
# for the newest. CUDA 13 dropped everything below sm_75; sm_110 (Thor) exists on aarch64 only.
function(_torchnp_cuda_wheel_archs cuda_version out)
  string(REGEX MATCH "^[0-9]+" _major "${cuda_version}")
  if(_major EQUAL 13)
    set(_archs 75-real 80-real 86-real 89-real 90-real 100-real)
    if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
      list(APPEND _archs 110-real)
    endif()
    list(APPEND _archs 120)  # 120: SASS and PTX
  elseif(_major EQUAL 12 AND cuda_version VERSION_GREATER_EQUAL 12.8)
    set(_archs 70-real 75-real 80-real 86-real 89-real 90-real 100-real 120)
  elseif(_major EQUAL 12)
    set(_archs 70-real 75-real 80-real 86-real 89-real 90)
  else()
    set(_archs "")
  endif()
  set(${out} "${_archs}" PARENT_SCOPE)
endfunction()

# torch's TORCH_CUDA_ARCH_LIST ("7.5 8.0;9.0+PTX") in CMake's syntax ("75-real;80-real;90").
function(_torchnp_cuda_from_torch_list list out)
  string(REGEX REPLACE "[ \t;]+" ";" _items "${list}")
  set(_archs "")
  foreach(_item IN LISTS _items)
    if(_item STREQUAL "")
      continue()
    endif()
    if(NOT _item MATCHES "^([0-9]+)\\.([0-9])([af]?)(\\+PTX)?$")
      message(FATAL_ERROR "TORCH_CUDA_ARCH_LIST: cannot read '${_item}' (expected e.g. 8.0, "
                          "9.0a or 9.0+PTX; named generations like 'Ampere' are not supported: "
                          "spell them out, or set TORCHNP_CUDA_ARCHS)")
    endif()
    if(CMAKE_MATCH_4)
      list(APPEND _archs "${CMAKE_MATCH_1}${CMAKE_MATCH_2}${CMAKE_MATCH_3}")
    else()
      list(APPEND _archs "${CMAKE_MATCH_1}${CMAKE_MATCH_2}${CMAKE_MATCH_3}-real")
    endif()
  endforeach()
  set(${out} "${_archs}" PARENT_SCOPE)
endfunction()

# A CMake architecture list as the code in the binary: sm_XX (SASS) first, then compute_XX
# (PTX), the names cuobjdump prints. Keywords (all, all-major) stay as they are.
function(_torchnp_cuda_code_names archs out)
  set(_sass "")
  set(_ptx "")
  foreach(_a IN LISTS archs)
    if(_a MATCHES "^([0-9]+[af]?)-real$")
      list(APPEND _sass "sm_${CMAKE_MATCH_1}")
    elseif(_a MATCHES "^([0-9]+[af]?)-virtual$")
      list(APPEND _ptx "compute_${CMAKE_MATCH_1}")
    elseif(_a MATCHES "^([0-9]+[af]?)$")
      list(APPEND _sass "sm_${CMAKE_MATCH_1}")
      list(APPEND _ptx "compute_${CMAKE_MATCH_1}")
    else()
      list(APPEND _sass "${_a}")
    endif()
  endforeach()
  set(${out} ${_sass} ${_ptx} PARENT_SCOPE)
endfunction()

if(TORCHNP_CUDA STREQUAL "OFF")
  message(STATUS "torchnp: torchnp._cuda not built (TORCHNP_CUDA=OFF)")
  return()
endif()

# ---- torch: a CUDA build? ------------------------------------------------------------------
if(NOT TORCHNP_TORCH_CUDA)
  _torchnp_cuda_skip("the installed torch ${TORCHNP_TORCH_VERSION} is a CPU build "
                     "(torch.version.cuda is None)")
endif()
string(REGEX MATCH "^[0-9]+" _torchnp_torch_cuda_major "${TORCHNP_TORCH_CUDA}")

# ---- nvcc: found, and of torch's CUDA major? ------------------------------------------------
if(CMAKE_CUDA_COMPILER)
  set(_torchnp_nvcc "${CMAKE_CUDA_COMPILER}")
elseif(DEFINED ENV{CUDACXX} AND NOT "$ENV{CUDACXX}" STREQUAL "")
  set(_torchnp_nvcc "$ENV{CUDACXX}")
else()
  set(_torchnp_nvcc_hints "")
  foreach(_var CUDA_HOME CUDA_PATH)
    if(DEFINED ENV{${_var}} AND NOT "$ENV{${_var}}" STREQUAL "")
      list(APPEND _torchnp_nvcc_hints "$ENV{${_var}}/bin")
    endif()
  endforeach()
  find_program(TORCHNP_NVCC nvcc HINTS ${_torchnp_nvcc_hints} PATHS /usr/local/cuda/bin)
  set(_torchnp_nvcc "${TORCHNP_NVCC}")
endif()
if(NOT _torchnp_nvcc OR NOT EXISTS "${_torchnp_nvcc}")
  _torchnp_cuda_skip("no nvcc found (tried '${_torchnp_nvcc}', torch ${TORCHNP_TORCH_VERSION} "
                     "is built with CUDA ${TORCHNP_TORCH_CUDA}: put that toolkit's nvcc on PATH, "
                     "or set CUDA_HOME or CUDACXX)")
endif()
execute_process(COMMAND "${_torchnp_nvcc}" --version
                OUTPUT_VARIABLE _torchnp_nvcc_out ERROR_VARIABLE _torchnp_nvcc_err
                RESULT_VARIABLE _torchnp_nvcc_rc TIMEOUT 60)
if(NOT _torchnp_nvcc_rc EQUAL 0 OR NOT _torchnp_nvcc_out MATCHES "release ([0-9]+)\\.([0-9]+)")
  _torchnp_cuda_skip("${_torchnp_nvcc} --version failed or names no release "
                     "(${_torchnp_nvcc_rc}: ${_torchnp_nvcc_err})")
endif()
set(TORCHNP_NVCC_CUDA "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")
if(NOT CMAKE_MATCH_1 EQUAL _torchnp_torch_cuda_major)
  _torchnp_cuda_skip("nvcc ${_torchnp_nvcc} is CUDA ${TORCHNP_NVCC_CUDA}, torch "
                     "${TORCHNP_TORCH_VERSION} is built with CUDA ${TORCHNP_TORCH_CUDA}: their "
                     "CUDA majors must match")
endif()

# The toolkit root, as nvcc itself reports it: the nvcc found may be a wrapper script outside
# the toolkit, so its folder says nothing.
execute_process(COMMAND "${_torchnp_nvcc}" --dryrun -x cu -c /dev/null -o /dev/null
                OUTPUT_VARIABLE _torchnp_dry_out ERROR_VARIABLE _torchnp_dry_err
                RESULT_VARIABLE _torchnp_dry_rc TIMEOUT 60)
if(NOT "${_torchnp_dry_out}${_torchnp_dry_err}" MATCHES "#\\$ TOP=([^\r\n]*)")
  _torchnp_cuda_skip("`${_torchnp_nvcc} --dryrun` printed no TOP= (the toolkit root)")
endif()
get_filename_component(TORCHNP_CUDA_ROOT "${CMAKE_MATCH_1}" REALPATH)
if(EXISTS "${TORCHNP_CUDA_ROOT}/bin/nvcc")
  set(CMAKE_CUDA_COMPILER "${TORCHNP_CUDA_ROOT}/bin/nvcc")
else()
  set(CMAKE_CUDA_COMPILER "${_torchnp_nvcc}")
endif()
set(CUDAToolkit_ROOT "${TORCHNP_CUDA_ROOT}")
set(CUDA_TOOLKIT_ROOT_DIR "${TORCHNP_CUDA_ROOT}")  # for anything still using FindCUDA's name
# nvcc's host compiler is the one compiling the rest: one libstdc++, one set of warnings.
set(CMAKE_CUDA_HOST_COMPILER "${CMAKE_CXX_COMPILER}")

# ---- architectures, before enable_language(CUDA) --------------------------------------------
_torchnp_cuda_wheel_archs("${TORCHNP_NVCC_CUDA}" _torchnp_wheel_archs)
if(NOT TORCHNP_CUDA_ARCHS AND NOT "$ENV{TORCHNP_CUDA_ARCHS}" STREQUAL "")
  set(TORCHNP_CUDA_ARCHS "$ENV{TORCHNP_CUDA_ARCHS}")
endif()
if(TORCHNP_CUDA_ARCHS)
  set(_torchnp_archs "${TORCHNP_CUDA_ARCHS}")
  set(_torchnp_arch_source "TORCHNP_CUDA_ARCHS=${TORCHNP_CUDA_ARCHS}")
elseif(DEFINED CACHE{CMAKE_CUDA_ARCHITECTURES})
  set(_torchnp_archs "$CACHE{CMAKE_CUDA_ARCHITECTURES}")
  set(_torchnp_arch_source "CMAKE_CUDA_ARCHITECTURES")
elseif(NOT "$ENV{TORCH_CUDA_ARCH_LIST}" STREQUAL "")
  _torchnp_cuda_from_torch_list("$ENV{TORCH_CUDA_ARCH_LIST}" _torchnp_archs)
  set(_torchnp_arch_source "TORCH_CUDA_ARCH_LIST=$ENV{TORCH_CUDA_ARCH_LIST}")
else()
  set(_torchnp_archs "wheel")
  set(_torchnp_arch_source "the wheel list (no GPU visible at build time)")
  find_program(TORCHNP_NVIDIA_SMI nvidia-smi)
  if(TORCHNP_NVIDIA_SMI)
    execute_process(COMMAND "${TORCHNP_NVIDIA_SMI}" -L OUTPUT_VARIABLE _torchnp_smi_out
                    RESULT_VARIABLE _torchnp_smi_rc ERROR_QUIET TIMEOUT 30)
    if(_torchnp_smi_rc EQUAL 0 AND _torchnp_smi_out MATCHES "GPU [0-9]+")
      set(_torchnp_archs "native")
      set(_torchnp_arch_source "native (nvidia-smi -L lists a GPU at build time)")
    endif()
  endif()
endif()
if(_torchnp_archs STREQUAL "wheel")
  if(NOT _torchnp_wheel_archs)
    _torchnp_cuda_skip("no wheel architecture list for CUDA ${TORCHNP_NVCC_CUDA}: set "
                       "TORCHNP_CUDA_ARCHS")
  endif()
  set(_torchnp_archs "${_torchnp_wheel_archs}")
endif()
set(CMAKE_CUDA_ARCHITECTURES "${_torchnp_archs}")
set(CMAKE_CUDA_STANDARD 20)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
set(CMAKE_CUDA_EXTENSIONS OFF)

enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
if(_torchnp_archs STREQUAL "native")
  set(_torchnp_archs "${CMAKE_CUDA_ARCHITECTURES_NATIVE}")
endif()
_torchnp_cuda_code_names("${_torchnp_archs}" _torchnp_code)
set(TORCHNP_CUDA_VERSION "${CUDAToolkit_VERSION_MAJOR}.${CUDAToolkit_VERSION_MINOR}")
set(_torchnp_cuda_compiler "${CMAKE_CUDA_COMPILER_ID} ${CMAKE_CUDA_COMPILER_VERSION} "
                           "(host ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION})")
string(JOIN "" _torchnp_cuda_compiler ${_torchnp_cuda_compiler})
string(REPLACE ";" "," _torchnp_code_csv "${_torchnp_code}")
string(REPLACE ";" "," _torchnp_cmake_archs_csv "${CMAKE_CUDA_ARCHITECTURES}")
message(STATUS "torchnp: building torchnp._cuda: CUDA ${TORCHNP_CUDA_VERSION} at "
               "${TORCHNP_CUDA_ROOT} for torch's CUDA ${TORCHNP_TORCH_CUDA}; archs "
               "${CMAKE_CUDA_ARCHITECTURES} -> ${_torchnp_code_csv} (from ${_torchnp_arch_source}); "
               "cudart static")

# ---- the module ------------------------------------------------------------------------------
# The kernel in its own library: the only file nvcc compiles.
add_library(torchnp_cuda_gather STATIC "${TORCHNP_CSRC}/cuda/gather.cu")
target_include_directories(torchnp_cuda_gather PRIVATE "${TORCHNP_CSRC}")
target_link_libraries(torchnp_cuda_gather PRIVATE CUDA::cudart_static)
target_compile_options(torchnp_cuda_gather PRIVATE
  "$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-fvisibility=hidden>")
set_target_properties(torchnp_cuda_gather PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  CUDA_RUNTIME_LIBRARY Static)

# The Python glue under csrc/bindings/cuda (csrc/cuda stays free of Python), the link in csrc/cuda.
pybind11_add_module(_cuda MODULE "${TORCHNP_CSRC}/bindings/cuda/module.cpp"
                    "${TORCHNP_CSRC}/cuda/cuda_link.cpp")
target_include_directories(_cuda PRIVATE "${TORCHNP_CSRC}")
target_link_libraries(_cuda PRIVATE pybind11::headers torchnp_cuda_gather CUDA::cudart_static)
target_compile_options(_cuda PRIVATE -Wall -Wextra -fvisibility=hidden)
# The static runtime's symbols stay inside this module (see the top of this file).
target_link_options(_cuda PRIVATE "LINKER:--exclude-libs,ALL")
target_compile_definitions(_cuda PRIVATE
  TORCHNP_CUDA_BUILD_CUDA_VERSION="${TORCHNP_CUDA_VERSION}"
  TORCHNP_CUDA_BUILD_TORCH_CUDA_VERSION="${TORCHNP_TORCH_CUDA}"
  TORCHNP_CUDA_BUILD_ARCHS="${_torchnp_code_csv}"
  TORCHNP_CUDA_BUILD_CMAKE_ARCHS="${_torchnp_cmake_archs_csv}"
  TORCHNP_CUDA_BUILD_ARCH_SOURCE="${_torchnp_arch_source}"
  TORCHNP_CUDA_BUILD_CUDART="static"
  TORCHNP_CUDA_BUILD_COMPILER="${_torchnp_cuda_compiler}")
install(TARGETS _cuda LIBRARY DESTINATION torchnp)

set(_torchnp_code_json "${_torchnp_code}")
list(TRANSFORM _torchnp_code_json PREPEND "\"")
list(TRANSFORM _torchnp_code_json APPEND "\"")
string(JOIN ", " _torchnp_code_json ${_torchnp_code_json})
file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/_cuda_build.json"
  "{\"cuda_version\": \"${TORCHNP_CUDA_VERSION}\", "
  "\"torch_cuda_version\": \"${TORCHNP_TORCH_CUDA}\", "
  "\"archs\": [${_torchnp_code_json}], \"cmake_archs\": \"${CMAKE_CUDA_ARCHITECTURES}\", "
  "\"arch_source\": \"${_torchnp_arch_source}\", "
  "\"cudart\": \"static\", \"compiler\": \"${_torchnp_cuda_compiler}\"}\n")
install(FILES "${CMAKE_CURRENT_BINARY_DIR}/_cuda_build.json" DESTINATION torchnp)
