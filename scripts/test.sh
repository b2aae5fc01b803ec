#!/usr/bin/env bash
# Warren's test command (`npm test`): builds everything, makes sure the real test binaries exist
# (kube-apiserver, kube-controller-manager, etcd, helm, echo-basic; built once from the Go module proxy and cached), then runs every test inside
# a fresh network namespace whose only interfaces are loopback and a dummy device holding the test-host
# addresses 198.18.0.2-198.18.0.41, the rig's pod addresses 198.18.1.2-198.18.1.61 (see core/test/support/rig)
# and the Gateway conformance run's tunnel entrances 198.18.2.2-198.18.2.81 (see core/test/gateway-conformance).
# Traffic to anything else cannot leave the namespace.
#
# Before the tests it runs the linter and formatter check (`npm run lint`, configured in biome.jsonc), which
# counts as one test of the summary: a finding fails the run even when every ava test passes.
#
# Prints "N passed, N failed" as its last line (skipped and todo tests count as failed) and writes the same
# line to .cache/test-summary. Extra arguments go to ava (e.g. a file glob to run a subset).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache

summary() { echo "$1" | tee .cache/test-summary; }

if [[ "${WARREN_SKIP_TEST_BINARIES:-}" != 1 ]]; then
  WARREN_TEST_BIN="$(bash scripts/test-binaries.sh | tail -1)"
  export WARREN_TEST_BIN
fi

lint_failed=0
if ! npx biome ci --colors=off --error-on-warnings .; then
  lint_failed=1
  echo 'lint: FAILED (see the findings above; `npm run lint` repeats them, `npm run format` fixes the formatting)'
fi

npx tsc -b

run_ava() {
  npx ava --tap "$@"
}

export -f run_ava
tap=".cache/test-output.tap"
set +e
bash scripts/in-test-netns.sh bash -c 'run_ava "$@"' bash "$@" | tee "$tap"
status=${PIPESTATUS[0]}
set -e

pass=$(grep -E '^# pass ' "$tap" | tail -1 | awk '{print $3}' || true)
fail=$(grep -E '^# fail ' "$tap" | tail -1 | awk '{print $3}' || true)
skip=$(grep -E '^# skip ' "$tap" | tail -1 | awk '{print $3}' || true)
todo=$(grep -E '^# todo ' "$tap" | tail -1 | awk '{print $3}' || true)
pass=${pass:-0}; failed=$(( ${fail:-0} + ${skip:-0} + ${todo:-0} ))
# An ava crash (uncaught exception, timeout) may leave no counts: never report success then.
if [[ $status != 0 && $failed == 0 ]]; then failed=1; fi
if (( lint_failed )); then
  echo 'lint: FAILED (counted as one failed test)'
  failed=$(( failed + 1 ))
else
  pass=$(( pass + 1 ))
fi
summary "$pass passed, $failed failed"
[[ $status == 0 && $failed == 0 && $lint_failed == 0 ]]
