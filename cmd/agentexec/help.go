package main

// usageText is `agentexec --help`: the manual of the shell-compatible front
// door, in the shape Usage / Options / prose / Examples.
const usageText = `Usage:
    agentexec [OPTIONS] -c 'COMMAND' [NAME [ARGS...]]
    agentexec [OPTIONS] 'COMMAND'
    agentexec [OPTIONS] SCRIPT-FILE [ARGS...]
    agentexec [OPTIONS] [-s [ARGS...]] < SCRIPT
    agentexec [CONTEXT-OPTIONS] -- PROGRAM [ARGS...]
    agentexec
    agentexec policy|audit|cred|doctor|version|help [...]

agentexec runs an AI agent's shell commands under a least-privilege
policy, in a sandbox, with short-lived credentials, and records each one in
a signed audit log. Point an agent, make, npm or a CI runner at it instead
of bash: it takes bash's command line and passes stdin, stdout, stderr,
signals and the exit status through unchanged.

Forms:
    -c 'COMMAND' [NAME [ARGS...]]
            Run COMMAND as 'bash -c' does: $0 is NAME, $1... are ARGS.
            For SHELL=agentexec in make, npm's script-shell, Node's
            spawn({shell}) and Python's subprocess(shell=True).
    'COMMAND'
            Exactly one operand that is not an existing file: a whole
            command line (CLAUDE_CODE_SHELL_PREFIX passes commands so).
    SCRIPT-FILE [ARGS...]
            An operand that names an existing file runs it as a script,
            as 'bash SCRIPT-FILE' does.
    -s [ARGS...], or no operand with stdin not a terminal
            Read the whole script from stdin, then run it. Its commands
            read an empty stdin (bash -s would let them read the rest of
            the script).
    -- PROGRAM [ARGS...]
            Run PROGRAM with ARGS directly, without a shell.
    (no operand, stdin a terminal)
            A governed interactive session: each line is judged and run
            like any other command; cd and exit are kept by the session.
    SUBCOMMAND
            policy, audit, cred, doctor, version and help own their names;
            a program of the same name needs '--' (agentexec -- doctor).

Shell options (passed to bash, in bash's spelling):
    -l, --login        run bash as a login shell
    -i                 run bash as an interactive shell
    -e, -u, -x, ...    any option of bash's 'set' (abefhkmnptuvxBCEHPT),
                       also combined (-ec, -lc, -xc) and with + to unset
    -o NAME, +o NAME   set or unset a 'set -o' option (pipefail, ...)
    -O NAME, +O NAME   set or unset a 'shopt' option
    --norc, --noprofile, --posix
                       as in bash

Context options (each also read from its environment variable):
    --intent TEXT      why the agent runs this command     AGENTEXEC_INTENT
    --agent NAME       which agent asks                    AGENTEXEC_AGENT
    --session ID       the agent's session                 AGENTEXEC_SESSION
    --policy FILE      the policy to apply                 AGENTEXEC_POLICY
    --workspace DIR    the directory the command may write AGENTEXEC_WORKSPACE

Other options:
    --help             print this manual
    --version          print the version

The command's environment is agentexec's own, unchanged, except that the
context variables above carry the values in effect, so that a nested
agentexec (make inside make) runs in the same context.

The command gets a pseudo-terminal when agentexec's stdin and stdout are
both terminals, agentexec is in the terminal's foreground, and no other
agentexec is using that terminal. Otherwise its stdio are agentexec's own
files, and it runs in a new session without a controlling terminal.
SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGWINCH are passed on to the
command's process group.

Exit status:
    the command's own status, or 128+N when signal N killed it;
    2     usage error: the command line given to agentexec is wrong
    125   agentexec could not run the command (configuration, sandbox,
          credentials or audit failed): nothing ran
    126   denied by policy or approval: nothing ran; or, as in a shell,
          the program is not executable
    127   the program was not found

Messages from agentexec itself go to stderr as one line each, starting
with "agentexec: ".

Examples:
    agentexec -c 'go test ./... && git status'
    agentexec --intent 'run the unit tests' -- go test ./...
    make SHELL=$(command -v agentexec)
    npm config set script-shell "$(command -v agentexec)"
    CLAUDE_CODE_SHELL_PREFIX=$(command -v agentexec) claude
    echo 'echo hi' | agentexec
`
