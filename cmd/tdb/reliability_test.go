package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"tdb/coordinator"
	"tdb/dataset"
	"tdb/internal/natsx"
	"tdb/model"
	"tdb/store"
)

func writeCorpus(t *testing.T, path string, docs int, mtime time.Time) {
	t.Helper()
	var b strings.Builder
	for i := range docs {
		b.WriteString(`{"text": "Document number ` + strings.Repeat("x", i%5) + ` is about cats and dogs and birds."}` + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

var writtenRe = regexp.MustCompile(`dataset (\S+) written to \S+: (\d+) tokens`)

// collateDataset runs tdb collate with args, which must succeed, and
// returns the name of the dataset it wrote.
func collateDataset(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runTDB(t, append([]string{"collate"}, args...)...)
	m := writtenRe.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	return m[1]
}

// saveRandomModel writes a small random GPT-2 (two layers, GPT-2's
// vocabulary) drawn from seed to the folder dir.
func saveRandomModel(t *testing.T, dir string, seed uint64) {
	t.Helper()
	m, err := model.NewRandom(model.Config{NLayer: 2, NHead: 2, DModel: 32, DMLP: 128, NCtx: 64, Vocab: 50257, Eps: 1e-5}, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
}

// A finished job is reused only for the same store, the same corpus
// content and a dataset that is still there: another store, a deleted
// dataset or a changed corpus computes again (each used to print
// "written" without writing anything, or reuse stale data).
func TestCollateNeverReportsStaleDatasets(t *testing.T) {
	dir := testDir(t)
	corpusPath := filepath.Join(dir, "docs.jsonl")
	writeCorpus(t, corpusPath, 60, time.Now().Add(-time.Hour))
	collate := func(storeDir string, extra ...string) (string, string) {
		t.Helper()
		args := append([]string{"collate", "--model", "random:tiny", "--corpus", "jsonl:" + corpusPath, "--n-ctx", "16",
			"--top-k", "3", "--store", storeDir, "--workers", "1", "--tokens-per-shard", "400"}, extra...)
		code, out, errOut := runTDB(t, args...)
		if code != 0 {
			t.Fatalf("collate exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		return out, errOut
	}
	hasManifest := func(storeDir, name string) bool {
		st, err := store.NewLocal(storeDir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = dataset.ReadManifest(context.Background(), st, name)
		return err == nil
	}
	storeA, storeB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	collate(storeA, "--dataset", "d")
	if !hasManifest(storeA, "d") {
		t.Fatal("no dataset in store a")
	}
	// 1. Same command, another store.
	collate(storeB, "--dataset", "d")
	if !hasManifest(storeB, "d") {
		t.Fatal(`"written" to store b, but store b has no dataset`)
	}
	// 4. The dataset deleted from the store: the done job runs again.
	if err := os.RemoveAll(filepath.Join(storeA, "datasets", "d")); err != nil {
		t.Fatal(err)
	}
	_, errOut := collate(storeA, "--dataset", "d")
	if !hasManifest(storeA, "d") || !strings.Contains(errOut, "running it again") {
		t.Fatalf("after deleting the dataset: manifest %v, stderr:\n%s", hasManifest(storeA, "d"), errOut)
	}
	// 2. The corpus changed at the same path: a new job with the new content.
	out1, _ := collate(storeA)
	writeCorpus(t, corpusPath, 120, time.Now())
	out2, _ := collate(storeA)
	m1, m2 := writtenRe.FindStringSubmatch(out1), writtenRe.FindStringSubmatch(out2)
	if m1 == nil || m2 == nil {
		t.Fatalf("outputs:\n%s\n%s", out1, out2)
	}
	if m1[1] == m2[1] || m1[2] == m2[2] {
		t.Fatalf("after the corpus changed: dataset %s with %s tokens, before %s with %s: want a new dataset with the new content", m2[1], m2[2], m1[1], m1[2])
	}
}

// startNATS runs a NATS server with JetStream on a TCP port.
func startNATS(t *testing.T) *natsx.Embedded {
	t.Helper()
	emb, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	return emb
}

// 13. With --nats and no coordinator, tdb collate says so within seconds.
func TestCollateSaysWhenNoCoordinator(t *testing.T) {
	emb := startNATS(t)
	old := noCoordinatorAfter
	noCoordinatorAfter = 500 * time.Millisecond
	defer func() { noCoordinatorAfter = old }()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	run(ctx, []string{"collate", "--nats", emb.URL(), "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=20",
		"--store", filepath.Join(t.TempDir(), "data"), "--dataset", "x"}, &out, &errb)
	if !strings.Contains(errb.String(), "no coordinator has picked up job") || !strings.Contains(errb.String(), "tdb coordinator") {
		t.Fatalf("stderr:\n%s", errb.String())
	}
}

// 3. tdb collate --nats --store X against a coordinator writing to Y is
// refused (exit 2) naming Y, instead of printing "written to X".
func TestCollateRefusesAnotherStoreThanTheCoordinators(t *testing.T) {
	emb := startNATS(t)
	coordStore, err := store.NewLocal(filepath.Join(t.TempDir(), "coord"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		coordinator.Run(ctx, coordinator.Config{Dial: natsx.RetryDialer(emb.URL(), nil), Store: coordStore})
	}()
	defer func() { cancel(); <-done }()
	code, _, errOut := 0, "", ""
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, errOut = runTDB(t, "collate", "--nats", emb.URL(), "--detach", "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=20",
			"--store", filepath.Join(t.TempDir(), "mine"), "--dataset", "x")
		if code == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // the coordinator is not elected yet
	}
	if code != 2 || !strings.Contains(errOut, "writes datasets to "+coordStore.String()) {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

// 6. A second tdb collate on the same cache does not start a second server
// on the JetStream folder: it says another one runs, with its PID.
func TestCollateSecondRunOnSameCacheRefused(t *testing.T) {
	dir := testDir(t)
	first, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: filepath.Join(dir, "cache", "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Shutdown()
	code, _, errOut := runTDB(t, "collate", "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=20",
		"--store", filepath.Join(dir, "data"), "--dataset", "x")
	if code == 0 || !strings.Contains(errOut, fmt.Sprintf("PID %d", os.Getpid())) || !strings.Contains(errOut, "tdb worker --nats "+first.URL()) {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

// 2. New weights in the same model folder are a new job, not the finished
// one reused: with newer modification times, and with the sizes and times
// of the old ones (a copy that preserves times), since the spec holds the
// files' sampled content hashes, not only sizes and times.
func TestCollateNewWeightsAreANewJob(t *testing.T) {
	for _, sameSizeAndTime := range []bool{false, true} {
		t.Run(fmt.Sprintf("same size and time %v", sameSizeAndTime), func(t *testing.T) {
			dir := testDir(t)
			md := filepath.Join(dir, "model")
			// save writes weights drawn from seed, modified at when, and
			// returns the files' sizes.
			save := func(seed uint64, when time.Time) map[string]int64 {
				saveRandomModel(t, md, seed)
				sizes := map[string]int64{}
				for _, f := range []string{"model.safetensors", "config.json"} {
					p := filepath.Join(md, f)
					if err := os.Chtimes(p, when, when); err != nil {
						t.Fatal(err)
					}
					fi, err := os.Stat(p)
					if err != nil {
						t.Fatal(err)
					}
					sizes[f] = fi.Size()
				}
				return sizes
			}
			collate := func() string {
				return collateDataset(t, "--model", md, "--corpus", "synthetic:ioi?docs=30", "--n-ctx", "16",
					"--store", filepath.Join(dir, "data"), "--workers", "1")
			}
			when := time.Now().Add(-time.Hour)
			sizes := save(1, when)
			first := collate()
			if !sameSizeAndTime {
				when = time.Now().Add(2 * time.Second)
			}
			if now := save(2, when); sameSizeAndTime && !maps.Equal(now, sizes) {
				t.Fatalf("sizes %v, were %v", now, sizes)
			}
			if second := collate(); second == first {
				t.Fatalf("new weights reused dataset %s", first)
			}
		})
	}
}
