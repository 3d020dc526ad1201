package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"tdb/internal/jobs"
	"tdb/kernels"
	"tdb/model"
	"tdb/store"
	"tdb/store/storetest"
	"tdb/worker"
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
	// Component groups: a worker memory that holds about one target, so
	// every task covers shards × one of four groups: the same bytes.
	t.Run("component-groups", func(t *testing.T) { collateGolden(t, "0", "--worker-memory", goldenGroupsBudget(t)) })
}

// goldenGroupsBudget is a worker memory for the golden job that holds its
// fixed part and one target and a half, in bytes.
func goldenGroupsBudget(t *testing.T) string {
	cfg, _, err := model.RandomConfig("random:tiny")
	if err != nil {
		t.Fatal(err)
	}
	spec := jobs.JobSpec{Model: "random:tiny", Corpus: "synthetic:ioi?docs=120", Dataset: "golden", Locations: []string{"mlp.post_act", "attn.heads"},
		NCtx: 16, TopK: 4, RandomK: 3, QuantileBuckets: 10, PerBucket: 5, TokensPerShard: 600, BatchSize: 8}
	sz, err := worker.SizeJob(context.Background(), cfg, spec)
	if err != nil {
		t.Fatal(err)
	}
	tokens := int64(jobs.DefaultShardsPerPartial) * spec.TokensPerShard
	var most int64
	for _, ts := range sz.Targets {
		most = max(most, spec.TargetBytes(ts, tokens, jobs.DefaultShardsPerPartial))
	}
	return strconv.FormatInt(int64(float64(spec.FixedBytes(sz, tokens)+most*3/2)/jobs.PlanFill), 10)
}

func collateGolden(t *testing.T, shardsPerPartial string, extra ...string) {
	dir := testDir(t)
	storeDir := filepath.Join(dir, "data")
	args := append([]string{"collate", "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=120",
		"--locations", "mlp.post_act,attn.heads", "--n-ctx", "16", "--top-k", "4", "--random-k", "3",
		"--store", storeDir, "--dataset", "golden", "--workers", "2", "--tokens-per-shard", "600", "--block-bytes", "1024",
		"--shards-per-partial", shardsPerPartial}, extra...)
	code, out, errOut := runTDB(t, args...)
	if code != 0 {
		t.Fatalf("collate exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if len(extra) > 0 && !strings.Contains(errOut, "component groups") {
		t.Fatalf("%v: no component groups planned\nstderr: %s", extra, errOut)
	}
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
	if *update && shardsPerPartial == "0" && len(extra) == 0 {
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
