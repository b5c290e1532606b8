// The container's PID 1 (see reaper.go for why it exists). It runs as a
// constructor, before the Go runtime starts, so a command pays for one Go
// start-up (libcontainer's init), not two. It does nothing unless this
// process is PID 1 started as AGENTEXEC_INIT_PATH.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "reaper.h"

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
				SIGWINCH, SIGALRM, SIGCONT, SIGTSTP};

static void report(int exitcode, int sig) {
	struct rusage ru;
	memset(&ru, 0, sizeof ru);
	getrusage(RUSAGE_CHILDREN, &ru);
	dprintf(3, "{\"valid\":true,\"exit\":%d,\"signal\":%d,\"maxrss_kib\":%ld,\"utime_us\":%ld,\"stime_us\":%ld}\n",
		exitcode, sig, ru.ru_maxrss,
		(long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
		(long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
	close(3);
}

static void fail(int code, const char *what, const char *detail) {
	dprintf(2, "agentexec: %s: %s\n", what, detail);
	report(code, 0);
	_exit(code);
}

// The config on fd 4: NUL-terminated fields "AXI1", tty ("0"/"1"), argc,
// argv..., nfiles, then per file: path, size, and size raw bytes.
static char *buf;
static size_t len, pos;

static const char *field(void) {
	if (pos >= len) fail(125, "sandbox init", "truncated config");
	const char *s = buf + pos;
	const char *end = memchr(s, 0, len - pos);
	if (!end) fail(125, "sandbox init", "truncated config");
	pos = (size_t)(end - buf) + 1;
	return s;
}

static long number(void) {
	const char *s = field();
	char *end;
	errno = 0;
	long n = strtol(s, &end, 10);
	if (errno || *end || n < 0) fail(125, "sandbox init", "bad number in config");
	return n;
}

static void readconfig(void) {
	size_t cap = 65536;
	buf = malloc(cap);
	if (!buf) fail(125, "sandbox init", "out of memory");
	for (;;) {
		if (len == cap) {
			if (cap > (64u << 20)) fail(125, "sandbox init", "config too large");
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf) fail(125, "sandbox init", "out of memory");
		}
		ssize_t n = read(4, buf + len, cap - len);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) fail(125, "sandbox init: reading the config", strerror(errno));
		if (n == 0) break;
		len += (size_t)n;
	}
	close(4);
}

static void mkparents(char *path) {
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = 0;
		if (mkdir(path, 0700) < 0 && errno != EEXIST) fail(125, "sandbox init: creating a directory", strerror(errno));
		*p = '/';
	}
}

static void writefile(const char *path, const char *data, size_t n) {
	char *p = strdup(path);
	if (!p) fail(125, "sandbox init", "out of memory");
	mkparents(p);
	free(p);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) fail(125, "sandbox init: writing a file", strerror(errno));
	while (n > 0) {
		ssize_t w = write(fd, data, n);
		if (w < 0 && errno == EINTR) continue;
		if (w < 0) fail(125, "sandbox init: writing a file", strerror(errno));
		data += w;
		n -= (size_t)w;
	}
	close(fd);
}

// The seccomp filter (seccomp.go) comes compiled, from agentexec, and is
// installed before anything of the config is acted on; it then holds for
// this process and everything it starts. no_new_privs is already set (by
// libcontainer's init), which is what lets an unprivileged process install
// it. Without a valid filter nothing runs.
static void install_seccomp(void) {
	long size = number();
	if (size <= 0 || size % (long)sizeof(struct sock_filter) != 0 ||
	    size / (long)sizeof(struct sock_filter) > BPF_MAXINSNS || (size_t)size > len - pos)
		fail(125, "sandbox init", "no valid seccomp filter in the config");
	struct sock_filter *insns = malloc((size_t)size);
	if (!insns) fail(125, "sandbox init", "out of memory");
	memcpy(insns, buf + pos, (size_t)size);
	pos += (size_t)size;
	struct sock_fprog prog = {.len = (unsigned short)(size / (long)sizeof(struct sock_filter)), .filter = insns};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		fail(125, "sandbox init: installing the seccomp filter", strerror(errno));
	free(insns);
}

static void reaper(void) {
	fcntl(3, F_SETFD, FD_CLOEXEC);
	fcntl(4, F_SETFD, FD_CLOEXEC);
	readconfig();
	if (strcmp(field(), "AXI2") != 0) fail(125, "sandbox init", "unknown config version");
	install_seccomp();
	int tty = strcmp(field(), "1") == 0;
	long argc = number();
	if (argc < 1 || argc > 1 << 20) fail(125, "sandbox init", "nothing to run");
	char **argv = calloc((size_t)argc + 1, sizeof *argv);
	if (!argv) fail(125, "sandbox init", "out of memory");
	for (long i = 0; i < argc; i++) argv[i] = (char *)field();
	long nfiles = number();
	for (long i = 0; i < nfiles; i++) {
		const char *path = field();
		long size = number();
		if ((size_t)size > len - pos) fail(125, "sandbox init", "truncated config");
		writefile(path, buf + pos, (size_t)size);
		pos += (size_t)size;
	}

	// Block what we forward and SIGCHLD: they are taken with sigwaitinfo,
	// so none is lost between fork and the loop.
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++) sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, &old);
	// In the background group of its own terminal, PID 1 must not be
	// stopped for touching it.
	signal(SIGTTOU, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);

	pid_t pid = fork();
	if (pid < 0) fail(126, "sandbox init: fork", strerror(errno));
	if (pid == 0) {
		if (tty) {
			setpgid(0, 0);
			tcsetpgrp(0, getpid());
		} else {
			setsid();
		}
		// Everything back to defaults, as a shell would start it.
		for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execvp(argv[0], argv);
		int code = (errno == ENOENT) ? 127 : 126;
		dprintf(2, "agentexec: %s: %s\n", argv[0], code == 127 ? "command not found" : strerror(errno));
		_exit(code);
	}

	int status = 0;
	const struct timespec tick = {0, 200 * 1000 * 1000};
	for (int done = 0; !done;) {
		siginfo_t si;
		int s = sigtimedwait(&set, &si, &tick);
		if (s < 0) {
			// When agentexec dies, nothing reads the status pipe any more,
			// and its write end reports an error: the command must not
			// outlive agentexec (a parent-death signal would follow the
			// thread that started us, not the process, so it cannot be used).
			struct pollfd pf = {.fd = 3, .events = 0};
			if (poll(&pf, 1, 0) == 1 && (pf.revents & (POLLERR | POLLHUP | POLLNVAL))) {
				kill(-1, SIGKILL);
				_exit(137);
			}
			continue;
		}
		if (s != SIGCHLD) {
			if (kill(-pid, s) < 0) kill(pid, s);
			continue;
		}
		for (;;) {
			int st;
			pid_t w = waitpid(-1, &st, WNOHANG);
			if (w <= 0) break;
			if (w == pid) {
				status = st;
				done = 1;
			}
		}
	}
	// The command is done: nothing it started may outlive it.
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {
	}
	if (WIFSIGNALED(status)) {
		report(128 + WTERMSIG(status), WTERMSIG(status));
		_exit(128 + WTERMSIG(status));
	}
	report(WEXITSTATUS(status), 0);
	_exit(WEXITSTATUS(status));
}

__attribute__((constructor)) static void agentexec_reaper_init(int argc, char **argv) {
	if (argc == 1 && argv && argv[0] && strcmp(argv[0], AGENTEXEC_INIT_PATH) == 0 && getpid() == 1) reaper();
}
