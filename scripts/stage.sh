# Sourced by the test and CI scripts: `stage NAME COMMAND...` runs COMMAND and prints how long it
# took, and the run's total so far against its budget (CI_BUDGET_S, default 3000 s = 50 min; the
# hard CI limit is 90 min). A failing stage stops the run (set -e in the caller).
: "${CI_BUDGET_S:=3000}"
: "${STAGE_T0:=$SECONDS}"
export STAGE_T0 CI_BUDGET_S
stage() {
  local name=$1 start=$SECONDS
  shift
  echo "=== [stage] $name"
  "$@"
  local took=$((SECONDS - start)) total=$((SECONDS - STAGE_T0))
  printf '=== [stage] %-44s %5d s   (total %5d s of %d s budget, %d%%)\n' \
    "$name" "$took" "$total" "$CI_BUDGET_S" $((100 * total / CI_BUDGET_S))
}
