package kernels

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

//go:generate go run gen_sgemm.go

// path is one set of kernels the CPU can run: a GEMM micro-kernel with its
// blocking and the vector kernels that go with it.
type path struct {
	name string
	spec *kernelSpec
	vec  *vecKernels
}

// genericPath is the portable Go code: every CPU runs it.
var genericPath = &path{name: "generic", spec: genericSpec, vec: goVec}

// active is the path every call runs. Its initial value is TDB_KERNELS when
// that names a path of this CPU, else the fastest path (cpuPaths[0]).
var active atomic.Pointer[path]

// envErr says why TDB_KERNELS was not honoured, if it was set and was not.
var envErr error

func init() {
	active.Store(cpuPaths[0])
	if v := os.Getenv("TDB_KERNELS"); v != "" {
		envErr = Use(v)
	}
}

// Paths lists the kernel paths this CPU runs, fastest first: some of
// "avx512", "avx2", "neon", then "generic" (portable Go, always present).
func Paths() []string {
	var s []string
	for _, p := range cpuPaths {
		s = append(s, p.name)
	}
	return s
}

// Use makes the named path (one of Paths) the one every later call runs:
// the GEMM of a zero Implementation and the vector kernels. It is how tests
// and benchmarks force a path, and what TDB_KERNELS sets at start-up. It is
// safe for concurrent use; calls already running finish on the old path.
func Use(name string) error {
	for _, p := range cpuPaths {
		if p.name == name {
			active.Store(p)
			return nil
		}
	}
	return fmt.Errorf("kernels: no kernel path %q on this CPU (it runs %s)", name, strings.Join(Paths(), ", "))
}

// Name says which path runs: "avx512", "avx2", "neon" or "generic". When
// TDB_KERNELS asked for a path this CPU lacks, it says so after the name.
func Name() string {
	if envErr != nil {
		return active.Load().name + " (TDB_KERNELS ignored: " + envErr.Error() + ")"
	}
	return active.Load().name
}

// defaultSpec is the GEMM micro-kernel of the active path.
func defaultSpec() *kernelSpec { return active.Load().spec }
