package memstat

import (
	"runtime"
	"testing"
)

func TestPeakGrowsWithAllocation(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("VmHWM is Linux-only")
	}
	before := PeakRSSMiB()
	if before <= 0 {
		t.Fatalf("peak RSS %g MiB", before)
	}
	buf := make([]byte, 256<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	if after := PeakRSSMiB(); after < before+200 {
		t.Errorf("peak RSS %g -> %g MiB after touching 256 MiB", before, after)
	}
	runtime.KeepAlive(buf)
}
