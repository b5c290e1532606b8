#!/usr/bin/env bash
# make demo: run a few real commands through agentexec in a scratch
# workspace and show what happened. Usage: testdata/demo.sh BIN
set -uo pipefail
bin=${1:?usage: testdata/demo.sh path/to/agentexec}
ws=$(mktemp -d "${TMPDIR:-/tmp}/agentexec-demo.XXXXXX")
trap 'rm -rf "$ws"' EXIT
cd "$ws"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
status() { printf '\033[2m(exit status %s)\033[0m\n' "$1"; }

echo "agentexec demo, workspace $ws ($("$bin" version))"

step "agentexec --intent 'write a file' -c 'echo hello > greeting.txt && cat greeting.txt'"
"$bin" --intent 'write a file' -c 'echo hello > greeting.txt && cat greeting.txt'; status $?

step "agentexec 'ls -l | wc -l'          # one string, as CLAUDE_CODE_SHELL_PREFIX passes it"
"$bin" 'ls -l | wc -l'; status $?

step "agentexec -- printf '%s\n' '\$HOME is not expanded'   # argv form, no shell"
"$bin" -- printf '%s\n' '$HOME is not expanded'; status $?

step "agentexec -c 'exit 3'                 # the command's status passes through"
"$bin" -c 'exit 3'; status $?

step "agentexec -c 'kill -TERM \$\$'          # killed by signal 15: 128+15"
"$bin" -c 'kill -TERM $$'; status $?

step "agentexec -- no-such-program          # agentexec's own outcome: 127"
"$bin" -- no-such-program; status $?

step "agentexec --frobnicate               # usage error: one line, 2"
"$bin" --frobnicate; status $?

cat > Makefile <<'MK'
all:
	@echo "recipe run by $$0"
MK
step "make SHELL=agentexec"
make --no-print-directory SHELL="$bin"; status $?
