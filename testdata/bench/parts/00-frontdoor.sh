#!/usr/bin/env bash
# The front door's whole-process cost: `agentexec -c true` against
# `bash -c true` (the baseline), and the argv form against running the
# program directly. Interleaved runs, medians and p95, ratio to baseline.
set -euo pipefail
cd "$(dirname "$0")/../../.."
: "${AGENTEXEC_BIN:?}" "${PROCTIME:?set by testdata/bench/run}"
n=${FRONTDOOR_RUNS:-300}
"$PROCTIME" -n "$n" -warmup 30 -names 'bash -c true,agentexec -c true' -- \
  "$(command -v bash) -c true" "$AGENTEXEC_BIN -c true"
"$PROCTIME" -n "$n" -warmup 30 -names 'true,agentexec -- true' -- \
  "$(command -v true)" "$AGENTEXEC_BIN -- true"
