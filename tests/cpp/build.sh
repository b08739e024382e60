#!/usr/bin/env bash
# Builds and runs the torch-free C++ tests of csrc/core.
#   tests/cpp/build.sh            release build (-O2), run tests
#   tests/cpp/build.sh asan       ASan + UBSan (float-cast-overflow too), run tests
#   tests/cpp/build.sh portable   portable kernels only (no per-ISA files), run tests
#   tests/cpp/build.sh tsan       ThreadSanitizer: the pool and slice tests (test_core --pool-only)
#                                 and the transfer pipeline (test_transfer --quick)
#   tests/cpp/build.sh aarch64    cross-built for aarch64 (aarch64-linux-gnu-g++), run under
#                                 qemu-aarch64 (Debian: g++-aarch64-linux-gnu qemu-user)
#   tests/cpp/build.sh release --big   also a copy of 2^31 + 4099 elements (2 GiB destination)
#   $BUILD_DIR/bench_core [threads] [variant]   micro-benchmark (after a build)
#   BUILD_DIR=... to choose where (default build/cpp-<mode> in the checkout), NO_RUN=1 to only build.
set -euo pipefail
mode=${1:-release}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# Inside the checkout, so that two clones never share (and confuse) a CMake cache or an oracle.
build=${BUILD_DIR:-$root/build/cpp-$mode}
oracle=${ORACLE:-$root/build/cpp-oracle.bin}
san=OFF
portable=OFF
btype=Release
extra=()
case $mode in
  release) ;;
  asan) san=ON; btype=RelWithDebInfo ;;
  portable) portable=ON ;;
  tsan) btype=RelWithDebInfo; extra=(-DCMAKE_CXX_FLAGS=-fsanitize=thread
                                    -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread) ;;
  aarch64) extra=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64
                  -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++) ;;
  *) echo "usage: $0 [release|asan|portable|tsan|aarch64] [--big]" >&2; exit 2 ;;
esac
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=$btype -DTORCHNP_SANITIZE=$san \
  -DTORCHNP_PORTABLE_ONLY=$portable -DCMAKE_CXX_FLAGS_RELEASE="-O2" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" "${extra[@]}" >/dev/null
cmake --build "$build"
if [[ -n ${NO_RUN:-} ]]; then exit 0; fi
if [[ $mode == tsan ]]; then
  TSAN_OPTIONS="halt_on_error=1 ${TSAN_OPTIONS:-}" "$build/test_core" --pool-only
  TSAN_OPTIONS="halt_on_error=1 ${TSAN_OPTIONS:-}" "$build/test_transfer" --quick
  exit
fi
# Regenerate when the generator or the element-type table changed (or NumPy/ml_dtypes did:
# delete the file).
if [[ ! -f $oracle || $here/gen_oracle.py -nt $oracle || $root/csrc/core/element_types.def -nt $oracle ]]; then
  mkdir -p "$(dirname "$oracle")"
  python "$here/gen_oracle.py" "$oracle"
fi
if [[ $mode == aarch64 ]]; then  # qemu-user cannot fork a multi-threaded process
  TORCHNP_TEST_NO_FORK=1 qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/test_core" "$oracle" "${@:2}"
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/test_transfer" --quick
  qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/test_gather_plan" --quick
  exit
fi
"$build/test_core" "$oracle" "${@:2}"
"$build/test_transfer"
"$build/test_gather_plan"
