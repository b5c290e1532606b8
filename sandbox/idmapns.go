package sandbox

/*
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// The child only holds its user namespace open until it is killed. It
// starts with every signal blocked, so no Go signal handler ever runs in it,
// and makes raw system calls only (none of which fails, so errno, which
// it would share with the calling thread, is never written). If agentexec
// dies first, so does it.
static int agentexec_userns_hold(void *arg) {
	pid_t parent = (pid_t)(long)arg;
	syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (syscall(SYS_getppid) != parent) syscall(SYS_exit, 0);
	for (;;) syscall(SYS_pause);
	return 0;
}

// agentexec_userns_child starts a process in a new user namespace and
// returns its pid, or -errno. It shares this process's memory (CLONE_VM:
// no page tables to copy or tear down) but touches only the stack given
// here, which the caller unmaps after reaping it.
static int agentexec_userns_child(void *stack, size_t size) {
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int pid = clone(agentexec_userns_hold, (char *)stack + size, CLONE_VM | CLONE_NEWUSER | SIGCHLD, (void *)(long)getpid());
	int err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return pid < 0 ? -err : pid;
}
*/
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// idmapUserns makes the user namespace that the idmapped mounts of a root
// caller take their mapping from (identity.go). libcontainer would make it
// itself by starting a copy of this 20 MB binary under ptrace, which costs
// a fork, an exec and a kill per command (about 2 ms); a bare clone of a
// process that only pauses gives the same namespace in a fraction of that.
// The caller closes the returned file once the container is started; its
// /proc/self/fd path is what the mounts name (libcontainer opens it in this
// process).
func idmapUserns(uidMap, gidMap []configs.IDMap) (*os.File, error) {
	// Outside the Go heap: the child runs on it while Go's runtime does not
	// know it exists.
	stack, err := unix.Mmap(-1, 0, 64<<10, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_STACK)
	if err != nil {
		return nil, fmt.Errorf("starting the id-mapping namespace: %w", err)
	}
	pid := int(C.agentexec_userns_child(unsafe.Pointer(&stack[0]), C.size_t(len(stack))))
	if pid < 0 {
		_ = unix.Munmap(stack)
		return nil, fmt.Errorf("starting the id-mapping namespace: %w", unix.Errno(-pid))
	}
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		for {
			if _, err := unix.Wait4(pid, nil, 0, nil); err != unix.EINTR {
				break
			}
		}
		_ = unix.Munmap(stack)
	}()
	proc := "/proc/" + strconv.Itoa(pid)
	// Root in the parent namespace may write both maps without denying
	// setgroups first.
	if err := os.WriteFile(proc+"/uid_map", []byte(formatIDMap(uidMap)), 0); err != nil {
		return nil, fmt.Errorf("writing the id-mapping namespace's uid map: %w", err)
	}
	if err := os.WriteFile(proc+"/gid_map", []byte(formatIDMap(gidMap)), 0); err != nil {
		return nil, fmt.Errorf("writing the id-mapping namespace's gid map: %w", err)
	}
	f, err := os.Open(proc + "/ns/user")
	if err != nil {
		return nil, fmt.Errorf("opening the id-mapping namespace: %w", err)
	}
	return f, nil
}

func formatIDMap(m []configs.IDMap) string {
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	return b.String()
}

// fdPath names an open file of this process in a way that still works from
// libcontainer's mount thread, which has joined the container's mount
// namespace but still sees the host's /proc.
func fdPath(f *os.File) string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
}
