#!/usr/bin/env bash
# The policy's cold start, as every shell invocation pays it: a fresh
# agentexec process that loads the built-in profile (or a generated
# 1000-rule policy file), validates it and decides one line, against
# `bash -c true` (the baseline) and `agentexec version` (process start
# alone, so the difference is the policy's own cost). Interleaved runs,
# medians and p95, ratio to the baseline.
set -euo pipefail
cd "$(dirname "$0")/../../.."
: "${AGENTEXEC_BIN:?}" "${PROCTIME:?set by testdata/bench/run}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A policy with 1000 rules, the last of which decide the line. The
# workspace is an empty directory outside it, so no workspace file applies.
mkdir "$tmp/ws"
{
  echo "version: 1"
  echo "default: deny"
  echo "rules:"
  for i in $(seq 1 997); do
    echo "  - {id: r$i, verdict: allow, program: [tool$i, \"t$i-*\"], args: [sub$i, [\"-x\", \"--y=*\"]], without_flags: [-f], reason: rule $i}"
  done
  echo "  - {id: go, verdict: allow, program: go, args: [[build, test]], reason: go, grants: {network: [{registry: go}]}}"
  echo "  - {id: tail, verdict: allow, program: tail, reason: tail}"
  echo "  - {id: push, verdict: deny, program: git, args: [push], reason: push}"
} > "$tmp/1000.yaml"

n=${POLICY_RUNS:-200}
# XDG_CONFIG_HOME and /etc/agentexec could hold a user's policy; point the
# search at the empty directory so the built-in profile is what is timed.
export XDG_CONFIG_HOME="$tmp/ws"
cd "$tmp/ws"
"$PROCTIME" -n "$n" -warmup 20 \
  -names 'bash -c true,agentexec version,policy check builtin,policy check 1000 rules' -- \
  "$(command -v bash) -c true" \
  "$AGENTEXEC_BIN version" \
  "$AGENTEXEC_BIN policy check --workspace $tmp/ws -- go test ./..." \
  "$AGENTEXEC_BIN policy check --workspace $tmp/ws --policy $tmp/1000.yaml -- go test ./..."
