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

// Submitting to a cluster (--nats), a hub name of OpenAI's GPT-2 is sized
// from its known shape without downloading it: a budget too small for one
// GPT-2 XL layer is refused before any connection (the hub and the NATS
// URL here are unreachable).
func TestCollateWorkerMemoryKnownShapeOnCluster(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TDB_CACHE_DIR", filepath.Join(dir, "cache"))
	t.Setenv("TDB_HF_ENDPOINT", "http://127.0.0.1:1")
	code, _, errOut := runTDB(t, "collate", "--model", "gpt2-xl", "--corpus", "synthetic:ioi?docs=20", "--store", filepath.Join(dir, "data"),
		"--nats", "nats://127.0.0.1:1", "--worker-memory", "2GB")
	if code != 2 || !strings.Contains(errOut, "is too small: give at least") {
		t.Fatalf("gpt2-xl on a cluster with --worker-memory 2GB: exit %d, stderr %q; want exit 2 and the budget that would do", code, errOut)
	}
}
