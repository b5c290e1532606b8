//go:build seccomp

package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runc/libcontainer/configs"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// seccompBuilt says this binary can install the seccomp filter.
const seccompBuilt = true

func libseccompVersion() (string, bool) {
	maj, min, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", maj, min, micro), true
}

// compileSeccomp turns sc into the classic BPF program the kernel takes,
// the way libcontainer's init would (runc's InitSeccomp and matchCall): the
// same libseccomp calls, rule for rule, and no -ENOSYS stub, which runc
// adds only to filters whose default is not to allow.
func compileSeccomp(sc *configs.Seccomp) ([]byte, error) {
	if sc.DefaultAction != configs.Allow || len(sc.Flags) > 0 || sc.DefaultErrnoRet != nil {
		return nil, errors.New("only an allow-by-default filter without flags is supported")
	}
	filter, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		return nil, fmt.Errorf("creating seccomp filter: %w", err)
	}
	defer filter.Release()
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	for _, name := range sc.Architectures {
		arch, err := libseccomp.GetArchFromString(name)
		if err != nil {
			return nil, fmt.Errorf("seccomp architecture %q: %w", name, err)
		}
		if arch == native {
			continue // in every new filter already
		}
		if err := filter.AddArch(arch); err != nil {
			return nil, fmt.Errorf("adding seccomp architecture %q: %w", name, err)
		}
	}
	if len(sc.Syscalls) > 32 {
		_ = filter.SetOptimize(2) // a binary tree; older libseccomp lacks it
	}
	for _, call := range sc.Syscalls {
		if call.Action != configs.Errno || call.ErrnoRet == nil {
			return nil, fmt.Errorf("seccomp rule for %s: only errno actions are supported", call.Name)
		}
		act := libseccomp.ActErrno.SetReturnCode(int16(*call.ErrnoRet))
		nr, err := libseccomp.GetSyscallFromName(call.Name)
		if err != nil {
			// Unknown to this libseccomp, as runc: nothing to deny.
			continue
		}
		if len(call.Args) == 0 {
			if err := filter.AddRule(nr, act); err != nil {
				return nil, fmt.Errorf("seccomp rule for %s: %w", call.Name, err)
			}
			continue
		}
		var conds []libseccomp.ScmpCondition
		seen := map[uint]bool{}
		for _, a := range call.Args {
			if a.Op != configs.MaskEqualTo || seen[a.Index] {
				return nil, fmt.Errorf("seccomp rule for %s: only one masked-equal test per argument is supported", call.Name)
			}
			seen[a.Index] = true
			c, err := libseccomp.MakeCondition(a.Index, libseccomp.CompareMaskedEqual, a.Value, a.ValueTwo)
			if err != nil {
				return nil, fmt.Errorf("seccomp rule for %s: %w", call.Name, err)
			}
			conds = append(conds, c)
		}
		if err := filter.AddRuleConditional(nr, act, conds); err != nil {
			return nil, fmt.Errorf("seccomp rule for %s: %w", call.Name, err)
		}
	}
	// ExportBPFMem needs libseccomp 2.6; a memory file works with all.
	fd, err := unix.MemfdCreate("seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("compiling seccomp filter: %w", err)
	}
	f := os.NewFile(uintptr(fd), "seccomp")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("compiling seccomp filter: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("compiling seccomp filter: %w", err)
	}
	prog, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("compiling seccomp filter: %w", err)
	}
	return prog, nil
}
