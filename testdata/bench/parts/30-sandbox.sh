#!/usr/bin/env bash
# The sandbox's whole-process cost: `true` run fresh each time, interleaved,
# median and p95, ratio to `bash -c true` (the baseline):
#   bash -c true         no sandbox
#   agentexec version    starting agentexec and exiting: its process floor
#   bwrap true           bubblewrap with the same isolation as the sandbox
#                        (new user, mount, pid, ipc, uts and network
#                        namespaces; read-only system dirs, tmpfs /tmp, the
#                        workspace read-write, a new session, caps dropped)
#   sandboxrun true      sandbox.Run alone in a fresh process (no policy,
#                        no audit): sandbox/internal/sandboxrun
#   agentexec -c true    the whole front door: policy, audit, sandbox
# The per-phase split of sandbox.Run (validate, prepare, create, start, wait,
# destroy) is BenchmarkRunTrue in the Go benchmark pass.
set -euo pipefail
cd "$(dirname "$0")/../../.."
: "${AGENTEXEC_BIN:?}" "${PROCTIME:?set by testdata/bench/run}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Linked like bin/agentexec (Makefile: static, netgo, osusergo).
CGO_ENABLED=1 go build -tags seccomp,netgo,osusergo -ldflags '-linkmode external -extldflags -static' \
  -o "$tmp/sandboxrun" ./sandbox/internal/sandboxrun
ws=$tmp/ws
mkdir "$ws"
n=${SANDBOX_RUNS:-200}

bw=$(command -v bwrap || true)
names='bash -c true,agentexec version'
cmds=("$(command -v bash) -c true" "$AGENTEXEC_BIN version")
if [ -n "$bw" ]; then
  ro=""
  for d in /usr /etc /opt; do [ -d "$d" ] && ro="$ro --ro-bind $d $d"; done
  for l in bin sbin lib lib64; do
    if [ -L "/$l" ]; then ro="$ro --symlink $(readlink "/$l") /$l"; elif [ -d "/$l" ]; then ro="$ro --ro-bind /$l /$l"; fi
  done
  names="$names,bwrap true"
  cmds+=("$bw --unshare-all --unshare-user --uid 1000 --gid 1000 --cap-drop ALL --die-with-parent --new-session$ro --proc /proc --dev /dev --tmpfs /tmp --bind $ws $ws --chdir $ws $(command -v true)")
else
  echo "bench: bwrap not installed; its row is skipped"
fi
names="$names,sandboxrun true,agentexec -c true"
cmds+=("$tmp/sandboxrun $(command -v true)")
cmds+=("$AGENTEXEC_BIN --workspace $ws -c true")

cd "$ws"
"$PROCTIME" -n "$n" -warmup 20 -names "$names" -- "${cmds[@]}"
