package sandbox

import (
	"context"
	"testing"
	"time"
)

// BenchmarkRunTrue times sandbox.Run of `true` and reports the mean of
// each phase (validate, prepare, create, start, wait, destroy) as its own
// metric, so the benchmark output shows where the time goes.
func BenchmarkRunTrue(b *testing.B) {
	if skipContainers != "" {
		b.Skip(skipContainers)
	}
	ws := b.TempDir()
	sums := map[string]time.Duration{}
	var order []string
	b.ResetTimer()
	for b.Loop() {
		res, err := Run(context.Background(), Spec{Argv: []string{"true"}, Env: testEnv, Workspace: ws})
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("Run: %v exit %d", err, res.ExitCode)
		}
		for _, p := range res.Phases {
			if _, ok := sums[p.Name]; !ok {
				order = append(order, p.Name)
			}
			sums[p.Name] += p.Duration
		}
	}
	for _, name := range order {
		b.ReportMetric(float64(sums[name].Microseconds())/1000/float64(b.N), name+"-ms/op")
	}
}
