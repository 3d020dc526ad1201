//go:build !unix

package memstat

// CPUSeconds is 0 where getrusage does not exist.
func CPUSeconds() float64 { return 0 }
