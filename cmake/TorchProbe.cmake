# Describe the installed torch to CMake the way torch.utils.cpp_extension does: include paths,
# library dir, C++ ABI flag, version. Defines the imported target torchnp::torch and the
# variables TORCHNP_TORCH_VERSION ("2.13"), TORCHNP_TORCH_CUDA ("" or "13.0"),
# TORCHNP_TORCH_PARALLEL (ATen's parallel backend: "OpenMP" or "native thread pool") and
# TORCHNP_TORCH_OMP_RUNTIME (the OpenMP library libtorch_cpu uses, when torch runs on OpenMP).
execute_process(
  COMMAND "${Python3_EXECUTABLE}" -c [=[
import os, torch
from torch.utils import cpp_extension as ce
print("includes=" + "|".join(ce.include_paths()))
print("libdir=" + os.path.join(os.path.dirname(torch.__file__), "lib"))
print("abi=%d" % int(torch._C._GLIBCXX_USE_CXX11_ABI))
print("version=" + ".".join(torch.__version__.split("+")[0].split(".")[:2]))
print("cuda=" + (torch.version.cuda or ""))
print("versionfile=" + os.path.join(os.path.dirname(torch.__file__), "version.py"))
backend = [l.split(":", 1)[1].strip() for l in torch.__config__.parallel_info().splitlines()
           if l.startswith("ATen parallel backend")]
print("parallel=" + (backend[0] if backend else ""))
# The OpenMP runtime libtorch_cpu itself resolves omp_* from (dlsym on its handle searches its
# dependencies): the extension must join that one team, not start a second runtime, which
# torch.set_num_threads would not reach. Asking the dynamic linker is exact even when other
# OpenMP libraries are loaded too (conda: libiomp5 for torch, libgomp for something else).
omp = ""
try:
    import ctypes, glob
    class _DlInfo(ctypes.Structure):
        _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                    ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]
    libdir = os.path.join(os.path.dirname(torch.__file__), "lib")
    cpu = (glob.glob(os.path.join(libdir, "libtorch_cpu.so")) +
           glob.glob(os.path.join(libdir, "libtorch_cpu.dylib")))
    if cpu:
        fn = ctypes.CDLL(cpu[0]).omp_get_max_threads
        info = _DlInfo()
        if ctypes.CDLL(None).dladdr(ctypes.cast(fn, ctypes.c_void_p), ctypes.byref(info)):
            omp = os.path.realpath(info.fname.decode())
except (OSError, AttributeError, ValueError):
    pass
print("omp=" + omp)
]=]
  OUTPUT_VARIABLE _probe
  RESULT_VARIABLE _probe_rc
  ERROR_VARIABLE _probe_err)
if(NOT _probe_rc EQUAL 0)
  message(FATAL_ERROR "torchnp needs torch installed in the build environment (build with "
                      "pip install --no-build-isolation .): ${_probe_err}")
endif()

function(_torchnp_probe_field key out)
  string(REGEX MATCH "${key}=([^\n]*)" _m "${_probe}")
  set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()
_torchnp_probe_field(includes _torch_includes)
_torchnp_probe_field(libdir _torch_lib)
_torchnp_probe_field(abi _abi)
_torchnp_probe_field(version TORCHNP_TORCH_VERSION)
_torchnp_probe_field(cuda TORCHNP_TORCH_CUDA)
_torchnp_probe_field(versionfile _torch_version_file)
_torchnp_probe_field(parallel TORCHNP_TORCH_PARALLEL)
_torchnp_probe_field(omp TORCHNP_TORCH_OMP_RUNTIME)
string(REPLACE "|" ";" _torch_includes "${_torch_includes}")
# Re-run this probe (and so rebuild against the new headers) whenever torch is reinstalled.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_torch_version_file}")
message(STATUS "torchnp: torch ${TORCHNP_TORCH_VERSION} (CUDA '${TORCHNP_TORCH_CUDA}'), "
               "lib ${_torch_lib}, C++11 ABI ${_abi}, parallel backend '${TORCHNP_TORCH_PARALLEL}' "
               "${TORCHNP_TORCH_OMP_RUNTIME}")

add_library(torchnp::torch INTERFACE IMPORTED)
target_include_directories(torchnp::torch SYSTEM INTERFACE ${_torch_includes})
target_compile_definitions(torchnp::torch INTERFACE _GLIBCXX_USE_CXX11_ABI=${_abi})
foreach(_lib c10 torch torch_cpu torch_python)
  find_library(_torchnp_lib_${_lib} NAMES ${_lib} PATHS "${_torch_lib}" NO_DEFAULT_PATH REQUIRED)
  target_link_libraries(torchnp::torch INTERFACE "${_torchnp_lib_${_lib}}")
endforeach()
