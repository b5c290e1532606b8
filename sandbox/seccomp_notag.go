//go:build !seccomp

package sandbox

import (
	"errors"

	"github.com/opencontainers/runc/libcontainer/configs"
)

// seccompBuilt is false in a build without -tags seccomp: there is no
// libseccomp to compile the filter, so Run refuses (checkSeccomp).
const seccompBuilt = false

func libseccompVersion() (string, bool) { return "", false }

func compileSeccomp(*configs.Seccomp) ([]byte, error) {
	return nil, errors.New("built without seccomp support")
}
