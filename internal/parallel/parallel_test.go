package parallel

import (
	"runtime"
	"sync"
	"testing"
)

func TestRowsCoversEachRowOnce(t *testing.T) {
	for _, c := range []struct{ n, minRows int }{{0, 1}, {1, 1}, {7, 1}, {1000, 1}, {1000, 300}, {1000, 5000}, {33, 0}} {
		var mu sync.Mutex
		seen := make([]int, c.n)
		calls := 0
		Rows(c.n, c.minRows, func(lo, hi int) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if c.minRows > 1 && hi-lo < c.minRows && hi != c.n {
				t.Errorf("n %d minRows %d: chunk [%d, %d) is smaller than minRows", c.n, c.minRows, lo, hi)
			}
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		for i, k := range seen {
			if k != 1 {
				t.Fatalf("n %d minRows %d: row %d ran %d times", c.n, c.minRows, i, k)
			}
		}
		if max := runtime.GOMAXPROCS(0); calls > max || (c.n > 0 && calls == 0) {
			t.Fatalf("n %d: %d chunks with GOMAXPROCS %d", c.n, calls, max)
		}
	}
}
