#!/usr/bin/env bash
# make fuzz: run every native fuzz target of every package for FUZZTIME
# each (default 30s). `make test` already runs their seed corpora.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
status=0
for pkg in $(go list -tags seccomp ./...); do
  for target in $(go test -tags seccomp -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "== $pkg $target ($fuzztime)"
    go test -tags seccomp -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" || status=1
  done
done
exit $status
