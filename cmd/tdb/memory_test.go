package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// --worker-memory takes human sizes; a bad one, or one that cannot hold a
// single target with the model, is a usage error before anything runs,
// and the second names the budget that would do.
func TestCollateWorkerMemoryRefused(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TDB_CACHE_DIR", filepath.Join(dir, "cache"))
	base := []string{"collate", "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=20", "--store", filepath.Join(dir, "data"),
		"--nats-dir", filepath.Join(dir, "nats")}
	for _, tc := range []struct{ value, want string }{
		{"24XB", `unknown unit "XB"`},
		{"-1GB", "--worker-memory"},
		{"1MB", "is too small: give at least"},
	} {
		code, _, errOut := runTDB(t, append(base, "--worker-memory", tc.value)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("--worker-memory %s: exit %d, stderr %q; want exit 2 and %q", tc.value, code, errOut, tc.want)
		}
	}
}
