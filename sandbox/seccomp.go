package sandbox

import (
	"sync"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// deniedSyscalls fail with EPERM inside every sandbox. Each group is an
// attack a command could otherwise try even with no capabilities left: a
// user namespace hands back a full capability set, the mount API rewrites
// the view, ptrace and process_vm_* reach other processes, and the rest are
// kernel attack surface that no build needs.
var deniedSyscalls = []string{
	// namespaces (clone with namespace flags is handled below)
	"unshare", "setns",
	// the mount API
	"mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
	"move_mount", "open_tree", "mount_setattr",
	// other processes
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
	// kernel attack surface
	"bpf", "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load",
	"perf_event_open", "init_module", "finit_module", "delete_module",
	"userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"open_by_handle_at", "name_to_handle_at", "lookup_dcookie", "quotactl", "quotactl_fd",
	"acct", "swapon", "swapoff", "reboot", "syslog", "iopl", "ioperm", "vhangup",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "uselib", "nfsservctl",
	"fanotify_init",
}

// nsCloneFlags are the clone(2) flags that create namespaces.
var nsCloneFlags = []uint64{
	unix.CLONE_NEWNS, unix.CLONE_NEWUTS, unix.CLONE_NEWIPC, unix.CLONE_NEWUSER,
	unix.CLONE_NEWPID, unix.CLONE_NEWNET, unix.CLONE_NEWCGROUP,
}

// seccompFilter is seccompConfig compiled to BPF, once per process; Prewarm
// starts it in the background. The container's PID 1 (reaper.c) installs
// it, so libcontainer's init neither decodes the 63 rules nor compiles them
// for every container, on the way to the command.
var compiledSeccomp = sync.OnceValues(func() ([]byte, error) { return compileSeccomp(seccompConfig()) })

// seccompFilter is what Run sends; a test swaps it to check the refusal.
var seccompFilter = compiledSeccomp

func errnoPtr(e unix.Errno) *uint { v := uint(e); return &v }

// seccompConfig is a deny-list filter for the native ABI only. libseccomp
// kills any syscall made through an architecture the filter does not name,
// so i386 (int 0x80) and x32 (the __X32_SYSCALL_BIT numbers) are refused.
func seccompConfig() *configs.Seccomp {
	sc := &configs.Seccomp{
		DefaultAction: configs.Allow,
		Architectures: []string{"amd64"},
	}
	eperm := errnoPtr(unix.EPERM)
	for _, name := range deniedSyscalls {
		sc.Syscalls = append(sc.Syscalls, &configs.Syscall{Name: name, Action: configs.Errno, ErrnoRet: eperm})
	}
	for _, f := range nsCloneFlags {
		sc.Syscalls = append(sc.Syscalls, &configs.Syscall{Name: "clone", Action: configs.Errno, ErrnoRet: eperm,
			Args: []*configs.Arg{{Index: 0, Value: f, ValueTwo: f, Op: configs.MaskEqualTo}}})
	}
	// clone3 passes its flags in memory, out of seccomp's reach: ENOSYS
	// makes libc and Go fall back to clone, whose flags are checked above.
	sc.Syscalls = append(sc.Syscalls, &configs.Syscall{Name: "clone3", Action: configs.Errno, ErrnoRet: errnoPtr(unix.ENOSYS)})
	// TIOCSTI pushes input into a terminal; TIOCLINUX can too on a VT.
	for _, req := range []uint64{unix.TIOCSTI, unix.TIOCLINUX} {
		sc.Syscalls = append(sc.Syscalls, &configs.Syscall{Name: "ioctl", Action: configs.Errno, ErrnoRet: eperm,
			Args: []*configs.Arg{{Index: 1, Value: 0xffffffff, ValueTwo: req, Op: configs.MaskEqualTo}}})
	}
	return sc
}
