# Describe the installed torch to CMake from Python: where its headers and libraries are, and
# its version. Defines the imported target torchnp::torch_stable (torch's include folder, for its
# stable C headers only, and libtorch_cpu, where the stable C shim lives) and the variables
# TORCHNP_TORCH_VERSION ("2.13") and TORCHNP_TORCH_CUDA ("" or "13.0").
execute_process(
  COMMAND "${Python3_EXECUTABLE}" -c [=[
import os, torch
root = os.path.dirname(torch.__file__)
print("includes=" + os.path.join(root, "include"))
print("libdir=" + os.path.join(root, "lib"))
print("version=" + ".".join(torch.__version__.split("+")[0].split(".")[:2]))
print("cuda=" + (torch.version.cuda or ""))
print("versionfile=" + os.path.join(os.path.dirname(torch.__file__), "version.py"))
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
_torchnp_probe_field(version TORCHNP_TORCH_VERSION)
_torchnp_probe_field(cuda TORCHNP_TORCH_CUDA)
_torchnp_probe_field(versionfile _torch_version_file)
string(REPLACE "|" ";" _torch_includes "${_torch_includes}")
# Re-run this probe (and so rebuild against the new headers) whenever torch is reinstalled.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_torch_version_file}")
message(STATUS "torchnp: torch ${TORCHNP_TORCH_VERSION} (CUDA '${TORCHNP_TORCH_CUDA}'), "
               "lib ${_torch_lib}")

add_library(torchnp::torch_stable INTERFACE IMPORTED)
target_include_directories(torchnp::torch_stable SYSTEM INTERFACE ${_torch_includes})
find_library(_torchnp_lib_torch_cpu NAMES torch_cpu PATHS "${_torch_lib}" NO_DEFAULT_PATH REQUIRED)
target_link_libraries(torchnp::torch_stable INTERFACE "${_torchnp_lib_torch_cpu}")
