//go:build seccomp

package sandbox

import (
	"fmt"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// seccompBuilt says this binary can install the seccomp filter.
const seccompBuilt = true

func libseccompVersion() (string, bool) {
	maj, min, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", maj, min, micro), true
}
