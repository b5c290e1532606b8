package osthread

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// f never runs on the main thread, and its thread is gone afterwards.
func TestRunOwnThreadThenGone(t *testing.T) {
	var mu sync.Mutex
	var tids []int
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Run(func() {
				mu.Lock()
				tids = append(tids, unix.Gettid())
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, tid := range tids {
		if tid == os.Getpid() {
			t.Fatal("f ran on the main thread")
		}
		if seen[tid] {
			t.Fatalf("thread %d ran f twice: it was reused", tid)
		}
		seen[tid] = true
	}
	// The threads exit just after their goroutines; give them a moment.
	deadline := time.Now().Add(5 * time.Second)
	for _, tid := range tids {
		for {
			_, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid))
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("thread %d still exists after Run", tid)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
