// Package memstat reads the process's memory high-water mark, so benchmarks
// and tdb bench report peak memory the same way. It imports only the
// standard library.
package memstat

import (
	"os"
	"strconv"
	"strings"
)

// PeakRSSMiB is the peak resident set size (VmHWM) in MiB; 0 where
// /proc/self/status does not exist (not Linux).
func PeakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
