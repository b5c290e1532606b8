// Command proctime times whole-process runs of one or more commands,
// interleaved so that machine noise hits them alike, and prints the median,
// p95 and the ratio of each median to the first command's (the baseline).
//
//	go run ./testdata/bench/proctime -n 200 -warmup 20 -- 'bash -c true' 'bin/agentexec -c true'
//
// Each argument after -- is one command, split on spaces (no quoting), run
// directly without a shell. Output is one line per command, machine-greppable:
//
//	bench: NAME median=1.23ms p95=1.50ms ratio=1.00 runs=200
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 200, "measured runs per command")
	warm := flag.Int("warmup", 20, "unmeasured warm-up runs per command")
	names := flag.String("names", "", "comma-separated labels for the commands (default: the commands)")
	flag.Parse()
	cmds := flag.Args()
	if len(cmds) == 0 {
		fmt.Fprintln(os.Stderr, "proctime: no command given")
		os.Exit(2)
	}
	labels := cmds
	if *names != "" {
		labels = strings.Split(*names, ",")
		if len(labels) != len(cmds) {
			fmt.Fprintln(os.Stderr, "proctime: -names must have one label per command")
			os.Exit(2)
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proctime:", err)
		os.Exit(1)
	}
	once := func(c string) time.Duration {
		f := strings.Fields(c)
		cmd := exec.Command(f[0], f[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
		t := time.Now()
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "proctime: %s: %v\n", c, err)
			os.Exit(1)
		}
		return time.Since(t)
	}
	for i := 0; i < *warm; i++ {
		for _, c := range cmds {
			once(c)
		}
	}
	times := make([][]time.Duration, len(cmds))
	for i := 0; i < *n; i++ {
		for j, c := range cmds {
			times[j] = append(times[j], once(c))
		}
	}
	var base time.Duration
	for j := range cmds {
		ts := times[j]
		sort.Slice(ts, func(a, b int) bool { return ts[a] < ts[b] })
		med := ts[len(ts)/2]
		p95 := ts[(len(ts)*95)/100]
		if j == 0 {
			base = med
		}
		fmt.Printf("bench: %-40s median=%.2fms p95=%.2fms ratio=%.2f runs=%d\n",
			labels[j], ms(med), ms(p95), float64(med)/float64(base), len(ts))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
