package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"tdb/kernels"
	"tdb/store"
	"tdb/store/storetest"
)

var update = flag.Bool("update", false, "rewrite the golden dataset hashes in testdata/golden")

// goldenFile is where the hashes of the golden dataset live. The model's
// GEMM kernel and collate's summary loop use fused multiply-adds on CPUs
// that have them (collate/doc.go, Determinism), so a dataset is
// byte-identical only on the same kernel path: the golden hashes are kept per
// architecture and kernel, and a path without a golden file skips.
func goldenFile() string {
	return filepath.Join("testdata", "golden", "collate-"+runtime.GOARCH+"-"+kernels.Name()+".json")
}

// TestCollateGolden collates a small dataset through the real embedded
// pipeline (embedded NATS, coordinator, two workers, a local store) and
// compares the sha256 of every file under datasets/<name>/ with the hashes
// recorded by an earlier version of the code: a refactoring must not change
// one byte of what is written. Regenerate with go test -run TestCollateGolden
// -update (only when a change of the dataset is intended).
func TestCollateGolden(t *testing.T) {
	// One shard per partial (the automatic grouping of a small job), and
	// consecutive shards run into one partial: the same bytes.
	for _, group := range []string{"0", "3"} {
		t.Run("shards-per-partial="+group, func(t *testing.T) { collateGolden(t, group) })
	}
}

func collateGolden(t *testing.T, shardsPerPartial string) {
	dir := testDir(t)
	storeDir := filepath.Join(dir, "data")
	collateDataset(t, "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=120",
		"--locations", "mlp.post_act,attn.heads", "--n-ctx", "16", "--top-k", "4", "--random-k", "3",
		"--store", storeDir, "--dataset", "golden", "--workers", "2", "--tokens-per-shard", "600", "--block-bytes", "1024",
		"--shards-per-partial", shardsPerPartial)
	st, err := store.NewLocal(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rel, b := range storetest.Blobs(t, st, "datasets/golden/") {
		if rel == "manifest.json" {
			// created_by names the job, whose id includes the store (a
			// temporary folder here): hash the manifest without it.
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "created_by")
			if b, err = json.Marshal(m); err != nil {
				t.Fatal(err)
			}
		}
		sum := sha256.Sum256(b)
		got[rel] = hex.EncodeToString(sum[:])
	}
	if len(got) < 5 { // manifest + records and stats of at least two layers
		t.Fatalf("dataset has only %d files: %v", len(got), got)
	}
	file := goldenFile()
	if *update && shardsPerPartial == "0" {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d files)", file, len(got))
		return
	}
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		t.Skipf("no golden hashes for this kernel path (%s); record them with -update on a trusted version", file)
	}
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]string
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var names []string
	for k := range want {
		names = append(names, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		switch {
		case want[k] == "":
			t.Errorf("%s: written now, not in the golden dataset", k)
		case got[k] == "":
			t.Errorf("%s: in the golden dataset, not written now", k)
		case got[k] != want[k]:
			t.Errorf("%s: sha256 %s, golden %s", k, got[k], want[k])
		}
	}
}
