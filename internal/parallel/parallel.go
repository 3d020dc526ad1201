// Package parallel is the one parallel-for of tdb's CPU code: contiguous
// chunks of a row range, one goroutine per core, for loops whose rows are
// independent (GEMM tiles, per-token activations).
package parallel

import (
	"runtime"
	"sync"
)

// Rows runs fn over [0, n) split into at most GOMAXPROCS contiguous chunks
// of at least minRows rows each (so that small loops, where a goroutine
// costs more than it saves, run inline), and returns when all are done.
func Rows(n, minRows int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/max(minRows, 1)))
	if workers <= 1 || n <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}
