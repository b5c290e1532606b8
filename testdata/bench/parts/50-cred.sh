#!/usr/bin/env bash
# Credential issue and revoke, whole process: `agentexec cred test NAME`
# issues one exec-provider credential from cred/testdata/exec-helper and
# revokes it at once. Baselines from the same run: `agentexec version`
# (starting agentexec) and the helper's two runs (issue, revoke) started
# directly by a shell. What agentexec adds per credential is roughly
# cred test - version - helper.
set -euo pipefail
cd "$(dirname "$0")/../../.."
: "${AGENTEXEC_BIN:?}" "${PROCTIME:?set by testdata/bench/run}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
helper=$PWD/cred/testdata/exec-helper
mkdir "$tmp/ws" "$tmp/helper"
cat > "$tmp/policy.yaml" <<YAML
version: 1
credentials:
  - {name: bench, provider: exec, command: [$helper], env: [TOKEN], ttl: 1h}
rules: []
YAML
export HELPER_DIR=$tmp/helper HELPER_MODE=ok HELPER_VALUE=ghs_BenchToken0123456789
HELPER_EXPIRES=$(date -u -d '+30 min' +%Y-%m-%dT%H:%M:%SZ)
export HELPER_EXPIRES
# proctime splits commands on blanks: the helper pair gets its own script.
printf '#!/bin/sh\n%s issue </dev/null >/dev/null && %s revoke </dev/null\n' "$helper" "$helper" > "$tmp/pair"
chmod 755 "$tmp/pair"
n=${CRED_RUNS:-100}
"$PROCTIME" -n "$n" -warmup 10 -names 'agentexec version,helper issue+revoke,agentexec cred test' -- \
  "$AGENTEXEC_BIN version" \
  "$tmp/pair" \
  "$AGENTEXEC_BIN cred test --policy $tmp/policy.yaml --workspace $tmp/ws bench"
