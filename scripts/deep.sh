#!/usr/bin/env bash
# `make deep`: the long local budgets CI does not run (about an hour on 2 cores).
#  - the C++ core tests with a copy of 2^31 + 4099 elements (2 GiB destination);
#  - the engine-level fuzz test with 20,000 examples per engine, the differential tests with the
#    `thorough` profile (20,000 per test and engine);
#  - the suite's > 2^31-element tests (they skip when under ~6 GiB is free);
#  - the C++ core cross-built for aarch64 and run under qemu-user, when the cross compiler and
#    qemu are installed (Debian: apt-get install g++-aarch64-linux-gnu qemu-user).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stage.sh
CI_BUDGET_S=${CI_BUDGET_S:-5400}
VENV=${VENV:-.venv}
PY=$VENV/bin/python
export PATH="$PWD/$VENV/bin:$PATH"
stage "C++ core tests with a 2 GiB copy" bash tests/cpp/build.sh release --big
stage "engine fuzz, 20,000 examples per engine" env TORCHNP_CORE_EXAMPLES=20000 \
  "$PY" -m pytest -q -p no:cacheprovider tests/test_core_copy.py "$@"
stage "differential, thorough profile" env HYPOTHESIS_PROFILE=thorough \
  "$PY" -m pytest -q -p no:cacheprovider tests/test_differential.py "$@"
stage "huge inputs (> 2^31 elements)" "$PY" -m pytest -q -p no:cacheprovider \
  -k "more_than_2_to_the_31" tests "$@"
if command -v aarch64-linux-gnu-g++ >/dev/null && command -v qemu-aarch64 >/dev/null; then
  stage "C++ core tests, aarch64 under qemu" bash tests/cpp/build.sh aarch64
else
  echo "deep: no aarch64 cross compiler / qemu-aarch64: the aarch64 build is skipped"
fi
