//go:build !seccomp

package sandbox

// seccompBuilt is false in a build without -tags seccomp: libcontainer
// would refuse the filter, so Run refuses first.
const seccompBuilt = false

func libseccompVersion() (string, bool) { return "", false }
