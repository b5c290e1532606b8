#!/usr/bin/env bash
# Whole-process network benchmarks (egress proxy, docs/network.md):
#   1. per-command latency of `agentexec -c true` with and without a
#      network grant in the policy file (the grant starts the proxy and its
#      namespace), as a ratio against the run without;
#   2. a 100 MiB plain-HTTP download by curl inside the sandbox through the
#      proxy against the same download made directly on the host, as a
#      ratio of throughputs.
# The download server is a test host in a network namespace this script
# creates (veth pair, 198.51.100.0/30 routed only over it); no traffic
# leaves the machine. Needs root, ip, curl, python3. The Go benchmarks in
# ./egress measure the same costs without the rest of agentexec.
set -euo pipefail
cd "$(dirname "$0")/../../.."

bin=${AGENTEXEC_BIN:-bin/agentexec}
skip() { echo "bench: network skipped: $*"; exit 0; }
[ -x "$bin" ] || skip "no agentexec binary at $bin"
: "${PROCTIME:?set by testdata/bench/run}"
[ "$(id -u)" -eq 0 ] || skip "needs root for the test host's namespace"
for t in ip curl python3; do command -v "$t" >/dev/null || skip "needs $t"; done

tmp=$(mktemp -d)
ns=aebench$$
hif=aebh$$
srv=""
cleanup() {
  set +e
  if [ -n "$srv" ]; then kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; fi
  ip link del "$hif" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# A private HOME and XDG directories: the hundreds of commands below are
# recorded in a throw-away audit log, not the user's.
mkdir "$tmp/home" "$tmp/state" "$tmp/config" "$tmp/cache"
export HOME=$tmp/home XDG_STATE_HOME=$tmp/state XDG_CONFIG_HOME=$tmp/config XDG_CACHE_HOME=$tmp/cache
unset CI

policy() { # policy FILE PROGRAM [GRANT]
  {
    echo "version: 1"
    echo "default: deny"
    echo "rules:"
    echo "  - id: bench"
    echo "    verdict: allow"
    echo "    program: \"$2\""
    echo "    reason: benchmark"
    if [ -n "${3:-}" ]; then
      echo "    grants:"
      echo "      network: [\"$3\"]"
    fi
  } >"$1"
}

host=198.51.100.2
policy "$tmp/none.yaml" true
policy "$tmp/grant.yaml" true "$host:8080"
policy "$tmp/probe.yaml" printenv "$host:8080"
policy "$tmp/curl.yaml" curl "$host:8080"

# Is the proxy wired into this binary? A granted command sees HTTPS_PROXY.
probe=$("$bin" --policy "$tmp/probe.yaml" -c 'printenv HTTPS_PROXY' 2>/dev/null || true)
[ -n "$probe" ] || skip "this agentexec does not start the egress proxy for network grants yet"

# proctime splits each command on blanks: `-c true` passes as two arguments.
"$PROCTIME" -n 100 -warmup 10 -names no-grant,network-grant -- \
  "$bin --policy $tmp/none.yaml -c true" "$bin --policy $tmp/grant.yaml -c true"

# The test host: a namespace with a python HTTP server behind a veth pair.
ip netns add "$ns"
ip link add "$hif" type veth peer name eth0 netns "$ns"
ip addr add 198.51.100.1/30 dev "$hif"
ip link set "$hif" up
ip -n "$ns" addr add "$host/30" dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set lo up
ip route get "$host" | grep -q "dev $hif" || { echo "bench: network: route to $host is not over $hif" >&2; exit 1; }
mkdir "$tmp/www"
head -c $((100 << 20)) /dev/zero >"$tmp/www/blob"
ip netns exec "$ns" python3 -m http.server 8080 --bind "$host" --directory "$tmp/www" >/dev/null 2>&1 &
srv=$!
for _ in $(seq 50); do curl -fsS -o /dev/null "http://$host:8080/" 2>/dev/null && break; sleep 0.1; done

# Best of three for each, interleaved.
best_direct=0 best_proxy=0
for _ in 1 2 3; do
  t0=$(date +%s%N)
  curl -fsS --noproxy '*' -o /dev/null "http://$host:8080/blob"
  t1=$(date +%s%N)
  "$bin" --policy "$tmp/curl.yaml" -- curl -fsS -o /dev/null "http://$host:8080/blob"
  t2=$(date +%s%N)
  d=$((t1 - t0)) p=$((t2 - t1))
  { [ "$best_direct" -eq 0 ] || [ "$d" -lt "$best_direct" ]; } && best_direct=$d
  { [ "$best_proxy" -eq 0 ] || [ "$p" -lt "$best_proxy" ]; } && best_proxy=$p
done
awk -v d="$best_direct" -v p="$best_proxy" 'BEGIN {
  mb = 100 * 1048576 / 1e6
  printf "bench: download-100MiB-direct MB/s=%.0f ms=%.0f\n", mb / (d / 1e9), d / 1e6
  printf "bench: download-100MiB-proxied MB/s=%.0f ms=%.0f ratio=%.2f\n", mb / (p / 1e9), p / 1e6, d / p
}'
