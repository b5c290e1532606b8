package functest

import (
	"bytes"
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentexec/agentexec/sandbox"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGoCompileTestFixLoop: go test fails, sed fixes the bug, go test
// passes, all inside sandboxes that share one persistent build cache.
func TestGoCompileTestFixLoop(t *testing.T) {
	gobin, err := osexec.LookPath("go")
	if err != nil {
		t.Fatalf("the Go toolchain is needed: %v", err)
	}
	gorootOut, err := osexec.Command(gobin, "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	goroot := strings.TrimSpace(string(gorootOut))
	ws := t.TempDir()
	write(t, ws, map[string]string{
		"go.mod":      "module example.com/calc\n\ngo 1.22\n",
		"add.go":      "package calc\n\nfunc Add(a, b int) int { return a - b }\n",
		"add_test.go": "package calc\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif got := Add(2, 3); got != 5 {\n\t\tt.Fatalf(\"Add(2, 3) = %d, want 5\", got)\n\t}\n}\n",
	})
	cache := filepath.Join(t.TempDir(), "cache")
	// The Go build cache this test binary was built with already holds the
	// standard library; granting it (as a policy may grant the user's own
	// caches) keeps the test from compiling the world on a cold cache.
	// Persistence of the sandbox's own cache dir is TestRunCaches' job.
	hostCache, err := osexec.Command(filepath.Join(goroot, "bin", "go"), "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	gocache := strings.TrimSpace(string(hostCache))
	env := []string{
		"PATH=" + filepath.Join(goroot, "bin") + ":/usr/bin:/bin",
		"HOME=" + ws, "GOTOOLCHAIN=local", "GOTELEMETRY=off", "GOFLAGS=-buildvcs=false",
		"GOCACHE=" + gocache,
	}
	for _, kv := range sandbox.CacheEnv(cache) {
		if !strings.HasPrefix(kv, "GOCACHE=") {
			env = append(env, kv)
		}
	}
	step := func(script string) (sandbox.Result, string, time.Duration) {
		t.Helper()
		var out bytes.Buffer
		start := time.Now()
		res, err := sandbox.Run(context.Background(), sandbox.Spec{
			Argv: []string{"sh", "-c", script}, Env: env, Workspace: ws, CacheDir: cache, Writable: []string{gocache},
			Stdout: &out, Stderr: &out, Timeout: 5 * time.Minute,
		})
		if err != nil {
			t.Fatalf("%s: %v", script, err)
		}
		return res, out.String(), time.Since(start)
	}

	res, out, _ := step("go test ./...")
	if res.ExitCode != 1 || !strings.Contains(out, "Add(2, 3) = -1, want 5") {
		t.Fatalf("first go test: got exit %d\n%s\nwant exit 1 and the failing assertion", res.ExitCode, out)
	}
	res, out, _ = step("sed -i 's/a - b/a + b/' add.go")
	if res.ExitCode != 0 {
		t.Fatalf("sed: exit %d: %s", res.ExitCode, out)
	}
	res, out, warm := step("go test -count=1 ./...")
	if res.ExitCode != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("go test after the fix: got exit %d\n%q", res.ExitCode, out)
	}
	src, _ := os.ReadFile(filepath.Join(ws, "add.go"))
	if !strings.Contains(string(src), "a + b") {
		t.Errorf("the fix is not in the workspace on the host: %q", src)
	}
	// For the record: the same warm command without a sandbox.
	host := osexec.Command(filepath.Join(goroot, "bin", "go"), "test", "-count=1", "./...")
	host.Dir, host.Env = ws, env
	start := time.Now()
	if b, err := host.CombinedOutput(); err != nil {
		t.Fatalf("host go test: %v\n%s", err, b)
	}
	t.Logf("warm go test -count=1: %v in the sandbox, %v on the host", warm.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestMakeWithAgentexecShell builds a small C project with make -j2 and
// SHELL=agentexec, then rebuilds it, and checks the program runs.
func TestMakeWithAgentexecShell(t *testing.T) {
	if _, err := osexec.LookPath("make"); err != nil {
		t.Fatalf("make is needed: %v", err)
	}
	ws := t.TempDir()
	files := map[string]string{
		"Makefile": "OBJS = main.o a.o b.o c.o d.o\n" +
			"prog: $(OBJS)\n\tcc -o $@ $(OBJS)\n" +
			"%.o: %.c\n\tcc -c -O1 $< -o $@\n" +
			"clean:\n\trm -f prog $(OBJS)\n",
		"main.c": "#include <stdio.h>\nint a(void); int b(void); int c(void); int d(void);\nint main(void) { printf(\"%d\\n\", a() + b() + c() + d()); return 0; }\n",
	}
	for i, name := range []string{"a", "b", "c", "d"} {
		files[name+".c"] = "int " + name + "(void) { return " + string(rune('1'+i)) + "; }\n"
	}
	write(t, ws, files)
	makeIt := func(target string) time.Duration {
		t.Helper()
		cmd := osexec.Command("make", "-s", "-j2", "SHELL="+bin, target)
		cmd.Dir = ws
		cmd.Env = append(os.Environ(), "AGENTEXEC_WORKSPACE="+ws)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
		return time.Since(start)
	}
	first := makeIt("prog")
	out, err := osexec.Command(filepath.Join(ws, "prog")).Output()
	if err != nil || strings.TrimSpace(string(out)) != "10" {
		t.Fatalf("prog: got %q, %v, want 10", out, err)
	}
	makeIt("clean")
	second := makeIt("prog")
	t.Logf("make -j2 with SHELL=agentexec: first build %v, rebuild %v (6 recipes each)", first.Round(time.Millisecond), second.Round(time.Millisecond))
}
