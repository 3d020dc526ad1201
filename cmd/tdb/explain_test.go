package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tdb/dataset"
	"tdb/explain"
	"tdb/store"
)

// tdb collate on embedded defaults, then tdb explain over the whole
// dataset (MLP neurons and attention heads), resumed, shown and searched.
func TestExplainCollatedDataset(t *testing.T) {
	dir := testDir(t)
	storeDir := filepath.Join(dir, "data")
	collateDataset(t, "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=300",
		"--locations", "mlp.post_act,attn.heads", "--n-ctx", "32", "--top-k", "8", "--store", storeDir,
		"--dataset", "demo", "--workers", "2", "--tokens-per-shard", "2000", "--block-bytes", "2048")
	st, _ := store.Open(context.Background(), storeDir)
	m, err := dataset.ReadManifest(context.Background(), st, "demo")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, l := range m.Locations {
		total += len(l.Layers) * l.Components
	}

	code, out, errOut := runTDB(t, "explain", "--store", storeDir, "--dataset", "demo", "--layers", "0",
		"--score", "simulation,detection,fuzzing", "--workers", "2", "--json")
	if code != 0 {
		t.Fatalf("explain exit %d: %s", code, errOut)
	}
	var sum struct {
		Explained, Skipped, Tasks int
		Method, Judge             string
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	perLayer := 0
	for _, l := range m.Locations {
		perLayer += l.Components
	}
	if sum.Explained != perLayer || sum.Skipped != 0 || sum.Method != "builtin" || sum.Judge != "builtin" {
		t.Fatalf("layer 0: %+v, want %d explained", sum, perLayer)
	}
	if !strings.Contains(errOut, "explain: task") {
		t.Fatalf("no progress on stderr: %q", errOut)
	}
	// The rest of the dataset; layer 0 is skipped (resumable).
	code, out, errOut = runTDB(t, "explain", "--store", storeDir, "--dataset", "demo", "--json")
	if code != 0 {
		t.Fatalf("explain exit %d: %s", code, errOut)
	}
	json.Unmarshal([]byte(out), &sum)
	if sum.Explained != total-perLayer || sum.Skipped != perLayer {
		t.Fatalf("second run %+v, want %d explained and %d skipped", sum, total-perLayer, perLayer)
	}

	code, out, errOut = runTDB(t, "explain", "show", "--store", storeDir, "--dataset", "demo", "--location", "mlp.post_act", "--layer", "0", "--index", "3", "--json")
	if code != 0 {
		t.Fatalf("show exit %d: %s", code, errOut)
	}
	var shown struct {
		Data []struct {
			Explanation string
			Method      struct{ Explainer string }
			Scores      map[string]struct {
				Value float64
				Judge string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil || len(shown.Data) != 1 {
		t.Fatalf("show: %v %s", err, out)
	}
	e := shown.Data[0]
	if e.Explanation == "" || e.Method.Explainer != "builtin" || len(e.Scores) != 3 || e.Scores["fuzzing"].Judge != "builtin" {
		t.Fatalf("shown %+v", e)
	}
	code, out, _ = runTDB(t, "explain", "show", "--store", storeDir, "--dataset", "demo", "--location", "attn.heads", "--layer", "1", "--index", "0")
	if code != 0 || !strings.Contains(out, "builtin") || !strings.Contains(out, "SIMULATION") {
		t.Fatalf("show text: %d %s", code, out)
	}
	// Search for a word of a stored explanation.
	word := ""
	for _, w := range strings.FieldsFunc(e.Explanation, func(r rune) bool { return r == '"' || r == ' ' || r == ',' }) {
		if len(w) >= 3 && w != "the" && w != "token" && w != "after" && w != "one" {
			word = w
			break
		}
	}
	if word != "" {
		code, out, errOut = runTDB(t, "explain", "search", "--store", storeDir, "--dataset", "demo", "--query", word, "--json")
		if code != 0 || !strings.Contains(out, `"relevance"`) {
			t.Fatalf("search %q: %d %s %s", word, code, out, errOut)
		}
	}

	for _, args := range [][]string{
		{"explain", "--store", storeDir},
		{"explain", "--store", storeDir, "--dataset", "demo", "--method", "magic"},
		{"explain", "--store", storeDir, "--dataset", "demo", "--score", "accuracy"},
		{"explain", "--store", storeDir, "--dataset", "demo", "--method", "llm"},
		{"explain", "--store", storeDir, "--dataset", "demo", "--layers", "9-1"},
		{"explain", "--store", storeDir, "--dataset", "nope"},
		{"explain", "import", "--store", storeDir, "--dataset", "nope"},
		{"explain", "search", "--store", storeDir, "--dataset", "demo"},
	} {
		if code, _, errOut := runTDB(t, args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d (%s), want 2 with a message", args, code, errOut)
		}
	}
}

// tdb explain --nats submits to a running tdb coordinator and tdb worker
// (separate services on one NATS server), follows the job to the end, and
// stores what the embedded mode stores; --detach returns the job id.
func TestExplainDistributed(t *testing.T) {
	dir := testDir(t)
	storeDir := filepath.Join(dir, "data")
	collateDataset(t, "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=100",
		"--locations", "mlp.post_act", "--n-ctx", "32", "--top-k", "8", "--store", storeDir,
		"--dataset", "demo", "--workers", "1", "--tokens-per-shard", "2000")
	emb := startNATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	var services sync.WaitGroup
	for _, args := range [][]string{
		{"coordinator", "--nats", emb.URL(), "--store", storeDir, "--metrics-addr", "", "--sweep", "200ms"},
		{"worker", "--nats", emb.URL(), "--store", storeDir, "--metrics-addr", "", "--name", "w1"},
	} {
		services.Add(1)
		go func() {
			defer services.Done()
			var out, errb bytes.Buffer
			if code := run(ctx, args, &out, &errb); code != 0 && ctx.Err() == nil {
				t.Errorf("%v: exit %d: %s", args, code, errb.String())
			}
		}()
	}
	defer func() { cancel(); services.Wait() }()

	code, out, errOut := runTDB(t, "explain", "--nats", emb.URL(), "--store", storeDir, "--dataset", "demo", "--layers", "1", "--json")
	if code != 0 {
		t.Fatalf("explain --nats exit %d: %s", code, errOut)
	}
	var sum struct {
		Explained, Skipped, Tasks int
		Job                       string
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	st, _ := store.Open(context.Background(), storeDir)
	m, err := dataset.ReadManifest(context.Background(), st, "demo")
	if err != nil {
		t.Fatal(err)
	}
	n := m.Locations[0].Components
	if sum.Explained != n || sum.Skipped != 0 || sum.Tasks != (n+explain.ChunkSize-1)/explain.ChunkSize || sum.Job == "" {
		t.Fatalf("summary %+v, want %d explained", sum, n)
	}
	rows, err := explain.ReadLayer(context.Background(), st, "demo", "mlp.post_act", 1)
	if err != nil || len(rows) != n {
		t.Fatalf("layer 1: %d rows (%v), want %d", len(rows), err, n)
	}
	if !strings.Contains(errOut, "explain: task") {
		t.Fatalf("no progress on stderr: %q", errOut)
	}
	// --detach prints the job id and returns; the rerun skips everything.
	code, out, errOut = runTDB(t, "explain", "--nats", emb.URL(), "--store", storeDir, "--dataset", "demo", "--layers", "1", "--detach")
	if code != 0 || strings.TrimSpace(out) != sum.Job {
		t.Fatalf("--detach: exit %d, stdout %q (want %s), stderr %s", code, out, sum.Job, errOut)
	}
}
