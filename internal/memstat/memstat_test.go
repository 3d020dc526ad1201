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

func TestCPUSecondsGrowWithWork(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("getrusage is checked on Linux")
	}
	before := CPUSeconds()
	x := 1.0
	for i := 0; i < 200_000_000; i++ {
		x = x*1.0000001 + 1e-9
	}
	if after := CPUSeconds(); after <= before || x == 0 {
		t.Errorf("CPU seconds %g -> %g after a busy loop", before, after)
	}
}
