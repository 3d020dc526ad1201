//go:build unix

package memstat

import "syscall"

// CPUSeconds is the process's user plus system CPU time so far, so that
// benchmarks can report CPU cost apart from wall time on a shared machine;
// 0 where getrusage fails.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
