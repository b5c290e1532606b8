// escape tries one way out of the sandbox, named by argv[1], and prints
// "ESCAPED" when the kernel let it through or "blocked: <errno name>" when
// it did not. The test asserts on that line.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(long rc) {
	if (rc >= 0) {
		printf("ESCAPED\n");
		return 0;
	}
	printf("blocked: %s\n", strerrorname_np(errno));
	return 1;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *c = argv[1];
	if (!strcmp(c, "mount")) return report(mount("none", "/tmp", "tmpfs", 0, NULL));
	if (!strcmp(c, "remount")) return report(mount(NULL, "/usr", NULL, MS_REMOUNT | MS_BIND, NULL));
	if (!strcmp(c, "unshare-user")) return report(unshare(CLONE_NEWUSER));
	if (!strcmp(c, "unshare-mnt")) return report(unshare(CLONE_NEWNS));
	if (!strcmp(c, "clone-newuser")) {
		long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
		if (pid == 0) _exit(0);
		if (pid > 0) waitpid(pid, NULL, 0);
		return report(pid);
	}
	if (!strcmp(c, "clone-newnet")) {
		long pid = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
		if (pid == 0) _exit(0);
		if (pid > 0) waitpid(pid, NULL, 0);
		return report(pid);
	}
	if (!strcmp(c, "clone3")) {
		unsigned long long args[11] = {0};
		args[0] = CLONE_NEWUSER; /* flags */
		args[4] = SIGCHLD;       /* exit_signal */
		long pid = syscall(SYS_clone3, args, 88);
		if (pid == 0) _exit(0);
		if (pid > 0) waitpid(pid, NULL, 0);
		return report(pid);
	}
	if (!strcmp(c, "setns")) {
		int fd = open(argc > 2 ? argv[2] : "/proc/1/ns/mnt", O_RDONLY);
		if (fd < 0) return report(fd);
		return report(setns(fd, 0));
	}
	if (!strcmp(c, "ptrace")) return report(ptrace(PTRACE_ATTACH, argc > 2 ? atoi(argv[2]) : 1, 0, 0));
	if (!strcmp(c, "process_vm_readv")) {
		char buf[8];
		struct iovec l = {buf, sizeof buf}, r = {(void *)0x400000, sizeof buf};
		return report(process_vm_readv(1, &l, 1, &r, 1, 0));
	}
	if (!strcmp(c, "bpf")) {
		union bpf_attr attr;
		memset(&attr, 0, sizeof attr);
		attr.map_type = BPF_MAP_TYPE_ARRAY;
		attr.key_size = 4;
		attr.value_size = 4;
		attr.max_entries = 1;
		return report(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
	}
	if (!strcmp(c, "keyctl")) return report(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 1));
	if (!strcmp(c, "add_key")) return report(syscall(SYS_add_key, "user", "x", "y", 1, -3));
	if (!strcmp(c, "perf_event_open")) {
		struct perf_event_attr attr;
		memset(&attr, 0, sizeof attr);
		attr.type = PERF_TYPE_SOFTWARE;
		attr.size = sizeof attr;
		attr.config = PERF_COUNT_SW_CPU_CLOCK;
		return report(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
	}
	if (!strcmp(c, "userfaultfd")) return report(syscall(SYS_userfaultfd, 0));
	if (!strcmp(c, "io_uring")) {
		char params[120] = {0};
		return report(syscall(SYS_io_uring_setup, 4, params));
	}
	if (!strcmp(c, "init_module")) return report(syscall(SYS_init_module, "", 0, ""));
	if (!strcmp(c, "kexec")) return report(syscall(SYS_kexec_load, 0, 0, NULL, 0));
	if (!strcmp(c, "tiocsti")) {
		char ch = 'X';
		return report(ioctl(0, TIOCSTI, &ch));
	}
	if (!strcmp(c, "tiocsti-high")) {
		/* The same request with high bits set must not slip past. */
		char ch = 'X';
		return report(syscall(SYS_ioctl, 0, 0x100000000UL | TIOCSTI, &ch));
	}
	if (!strcmp(c, "x32")) {
		fflush(stdout);
		return report(syscall(0x40000000 | 39 /* x32 getpid */));
	}
	if (!strcmp(c, "i386")) {
		long ret;
		fflush(stdout);
		__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) /* i386 getpid */ : "memory");
		if (ret < 0) errno = -ret;
		return report(ret < 0 ? -1 : ret);
	}
	if (!strcmp(c, "euid")) {
		printf("euid=%d\n", geteuid());
		return 0;
	}
	fprintf(stderr, "unknown case %s\n", c);
	return 2;
}
