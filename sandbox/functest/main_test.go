package functest

import (
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"

	"github.com/agentexec/agentexec/sandbox"
)

// bin is the agentexec binary: $AGENTEXEC_BIN, or one built here with the
// same tags `make build` uses.
var bin string

func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	if os.Geteuid() != 0 {
		fmt.Println("functest: skipping: the sandbox tests need root (CI runs them as root)")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	bin = os.Getenv("AGENTEXEC_BIN")
	if bin == "" {
		dir, err := os.MkdirTemp("", "agentexec-functest-")
		if err != nil {
			fmt.Println(err)
			return 1
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o755)
		bin = filepath.Join(dir, "agentexec")
		build := osexec.Command("go", "build", "-tags", "seccomp", "-o", bin, "../../cmd/agentexec")
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Printf("functest: building agentexec: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}
