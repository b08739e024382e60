# Sourced by the test and CI scripts: `stage NAME COMMAND...` runs COMMAND and prints how long it
# took, and the run's total so far against its budget (CI_BUDGET_S, default 3000 s = 50 min; the
# hard CI limit is 90 min). A failing stage stops the run (set -e in the caller). The start time
# is exported (STAGE_T0, epoch seconds), so nested scripts count from the outermost one.
: "${CI_BUDGET_S:=3000}"
: "${STAGE_T0:=$(date +%s)}"
export STAGE_T0 CI_BUDGET_S
stage() {
  local name=$1 start
  start=$(date +%s)
  shift
  echo "=== [stage] $name"
  "$@"
  local now
  now=$(date +%s)
  printf '=== [stage] %-48s %5d s   (total %5d s of %d s budget, %d%%)\n' \
    "$name" $((now - start)) $((now - STAGE_T0)) "$CI_BUDGET_S" $((100 * (now - STAGE_T0) / CI_BUDGET_S))
}
