#!/usr/bin/env bash
# The front door's whole-process cost: `agentexec -c true` against
# `bash -c true` (the baseline), and the argv form against running the
# program directly. Interleaved runs, medians and p95, ratio to baseline.
set -euo pipefail
cd "$(dirname "$0")/../../.."
: "${AGENTEXEC_BIN:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/proctime" ./testdata/bench/proctime
n=${FRONTDOOR_RUNS:-300}
"$tmp/proctime" -n "$n" -warmup 30 -names 'bash -c true,agentexec -c true' -- \
  "$(command -v bash) -c true" "$AGENTEXEC_BIN -c true"
"$tmp/proctime" -n "$n" -warmup 30 -names 'true,agentexec -- true' -- \
  "$(command -v true)" "$AGENTEXEC_BIN -- true"
