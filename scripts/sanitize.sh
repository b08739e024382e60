#!/usr/bin/env bash
# The whole Python suite against an ASan + UBSan build of the extension (TORCHNP_SANITIZE=ON):
# zero reports, or the run fails. The sanitised build goes into build/asan-site (a --target
# install that PYTHONPATH puts ahead of the installed package; tests/conftest.py checks that
# this is the module under test); the sanitizer runtime is preloaded because python itself is
# not instrumented. Reduced budgets: the hypothesis `dev` profile, 200 engine-fuzz examples.
#
# Options, each with its reason:
#   detect_leaks=0     CPython and torch keep allocations until exit by design (interned
#                      objects, the dispatcher's registries); LeakSanitizer would report them all.
#                      Leaks of our own are tested directly (tests/test_reliability.py: refcounts
#                      and RSS).
#   halt_on_error / -fno-sanitize-recover (the build's flags): the first report ends the run.
# No report is suppressed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stage.sh
VENV=${VENV:-.venv}
PY=$VENV/bin/python
export PATH="$PWD/$VENV/bin:$PATH"
site=$PWD/build/asan-site
rm -rf "$site"
stage "ASan + UBSan build of the extension" env TORCHNP_SANITIZE=ON "$PY" -m pip install -q \
  --no-build-isolation --no-deps --target "$site" -C build-dir=build/asan-wheel .
libasan=$(g++ -print-file-name=libasan.so)
libubsan=$(g++ -print-file-name=libubsan.so)
[[ -f $libasan && -f $libubsan ]] || { echo "sanitize: no libasan/libubsan for g++" >&2; exit 1; }
stage "pytest under ASan + UBSan" env \
  LD_PRELOAD="$libasan $libubsan" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
  PYTHONPATH="$site" TORCHNP_EXPECT_MODULE="$site/torchnp" \
  HYPOTHESIS_PROFILE=dev TORCHNP_CORE_EXAMPLES=200 \
  "$PY" -m pytest -q -p no:cacheprovider -m "not slow" tests "$@"
