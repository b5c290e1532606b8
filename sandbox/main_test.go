package sandbox

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	MaybeInit()
	if os.Geteuid() != 0 {
		fmt.Println("sandbox tests: not root; the container tests need root (they run as root in CI)")
	}
	os.Exit(m.Run())
}
