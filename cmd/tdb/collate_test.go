package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The main job on embedded defaults: one command, no set-up; then tdb top
// and tdb jobs read what it did.
func TestCollateEmbeddedThenTopAndJobs(t *testing.T) {
	dir := testDir(t)
	storeDir := filepath.Join(dir, "data")
	code, out, errOut := runTDB(t, "collate", "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=300",
		"--locations", "mlp.post_act,attn.heads", "--n-ctx", "32", "--top-k", "5", "--store", storeDir,
		"--dataset", "demo", "--workers", "2", "--tokens-per-shard", "1000", "--block-bytes", "2048")
	if code != 0 {
		t.Fatalf("collate exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if !strings.Contains(out, "dataset demo written") || !strings.Contains(errOut, "RANDOM") || !strings.Contains(errOut, "done: shards") {
		t.Fatalf("collate output:\nstdout: %s\nstderr: %s", out, errOut)
	}

	code, out, errOut = runTDB(t, "top", "--store", storeDir, "--dataset", "demo", "--location", "mlp.post_act", "--layer", "1", "--index", "7", "-k", "3", "--json")
	if code != 0 {
		t.Fatalf("top exit %d: %s", code, errOut)
	}
	var top struct {
		Top []struct {
			MaxActivation float64 `json:"max_activation"`
			Source        struct {
				Doc    *int64 `json:"doc"`
				Offset *int64 `json:"offset"`
			} `json:"source"`
			Tokens      []int     `json:"tokens"`
			Activations []float64 `json:"activations"`
		} `json:"top"`
		Random []json.RawMessage `json:"random"`
		Stats  map[string]any    `json:"stats"`
	}
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatalf("top --json: %v\n%s", err, out)
	}
	if len(top.Top) != 3 || len(top.Random) == 0 {
		t.Fatalf("top has %d records, random %d", len(top.Top), len(top.Random))
	}
	for i, r := range top.Top {
		if len(r.Tokens) != 32 || len(r.Activations) != 32 || r.Source.Doc == nil || r.Source.Offset == nil {
			t.Fatalf("record %d malformed: %+v", i, r)
		}
		mx := r.Activations[0]
		for _, a := range r.Activations {
			mx = max(mx, a)
		}
		if float32(mx) != float32(r.MaxActivation) {
			t.Errorf("record %d: max_activation %g, max of activations %g", i, r.MaxActivation, mx)
		}
		if i > 0 && r.MaxActivation > top.Top[i-1].MaxActivation {
			t.Errorf("top records not in descending order at %d", i)
		}
	}
	for _, k := range []string{"mean", "variance", "skewness", "kurtosis", "max", "frac_nonzero"} {
		if _, ok := top.Stats[k]; !ok {
			t.Errorf("stats lack %q: %v", k, top.Stats)
		}
	}
	// Heads: lower-triangle records.
	code, out, errOut = runTDB(t, "top", "--store", storeDir, "--dataset", "demo", "--location", "attn.heads", "--layer", "0", "--index", "1", "--json")
	if code != 0 {
		t.Fatalf("top heads exit %d: %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &top); err != nil || len(top.Top) == 0 || len(top.Top[0].Activations) != 32*33/2 {
		t.Fatalf("head records: %v %s", err, out[:min(len(out), 300)])
	}
	// top --json is the query API's component answer.
	code, out, errOut = runTDB(t, "top", "--store", storeDir, "--dataset", "demo", "--location", "mlp.post_act", "--layer", "1", "--index", "7", "--json")
	if code != 0 {
		t.Fatalf("top exit %d: %s", code, errOut)
	}
	var viaAPI struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	testQueryServer(t, storeDir, "/api/v1/datasets/demo/mlp.post_act/1/7", &viaAPI)
	var a, b any
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(viaAPI.Data, &b); err != nil || !reflect.DeepEqual(a, b) {
		t.Errorf("tdb top --json differs from the API's answer (%v)", err)
	}
	// tdb export: one JSON line per component, gzipped.
	exp := filepath.Join(dir, "layer1.jsonl.gz")
	if code, _, errOut = runTDB(t, "export", "--store", storeDir, "--dataset", "demo", "--location", "mlp.post_act", "--layer", "1", "--out", exp); code != 0 {
		t.Fatalf("export exit %d: %s", code, errOut)
	}
	f, err := os.Open(exp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 64<<20)
	lines := 0
	for sc.Scan() {
		var c struct{ Index int }
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil || c.Index != lines {
			t.Fatalf("export line %d: %v (index %d)", lines, err, c.Index)
		}
		lines++
	}
	if sc.Err() != nil || lines == 0 {
		t.Fatalf("export: %d lines, %v", lines, sc.Err())
	}
	// Readable table.
	code, out, _ = runTDB(t, "top", "--store", storeDir, "--dataset", "demo", "--layer", "0", "--index", "0", "-k", "2")
	if code != 0 || !strings.Contains(out, "top records:") || !strings.Contains(out, "[[") {
		t.Fatalf("top table (exit %d):\n%s", code, out)
	}

	code, out, errOut = runTDB(t, "jobs", "list", "--json")
	if code != 0 {
		t.Fatalf("jobs list exit %d: %s", code, errOut)
	}
	var jobs []struct{ ID, Status string }
	if err := json.Unmarshal([]byte(out), &jobs); err != nil || len(jobs) != 1 || jobs[0].Status != "done" {
		t.Fatalf("jobs list: %v %s", err, out)
	}
	code, out, _ = runTDB(t, "jobs", "status", jobs[0].ID)
	if code != 0 || !strings.Contains(out, "done: shards") {
		t.Fatalf("jobs status (exit %d): %s", code, out)
	}
	// Running the same command again finds the job done.
	code, out, errOut = runTDB(t, "collate", "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=300",
		"--locations", "mlp.post_act,attn.heads", "--n-ctx", "32", "--top-k", "5", "--store", storeDir,
		"--dataset", "demo", "--workers", "2", "--tokens-per-shard", "1000", "--block-bytes", "2048")
	if code != 0 || !strings.Contains(out, "dataset demo written") {
		t.Fatalf("second collate (exit %d): %s %s", code, out, errOut)
	}
}

func TestCollateBadInput(t *testing.T) {
	dir := testDir(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown location", []string{"--locations", "mlp.post_akt"}, 2, `unknown location "mlp.post_akt"`},
		{"layer out of range", []string{"--layers", "7"}, 2, "layer 7 is out of range"},
		{"bad corpus spec", []string{"--corpus", "synthetic:nope"}, 2, "unknown synthetic corpus"},
		{"bad preset", []string{"--model", "random:gpt5"}, 2, "unknown preset"},
		{"missing corpus", []string{"--corpus", filepath.Join(dir, "missing.txt")}, 2, "missing.txt"},
		{"n-ctx 0", []string{"--n-ctx", "0"}, 2, "--n-ctx must be at least 1"},
		{"batch 0", []string{"--batch", "0"}, 2, "--batch must be at least 1"},
		// Validated before submitting, with exit code 2 (item 9 of issue 10).
		{"n-ctx beyond the model", []string{"--n-ctx", "100000"}, 2, "context length 100000 is outside"},
		{"top-k out of range", []string{"--top-k", "100000000"}, 2, "top-k 100000000 out of range"},
		{"truncated model", []string{"--model", truncatedModel(t, dir)}, 2, "--model"},
		{"not an autoencoder", []string{"--autoencoder", notAnAutoencoder(t, dir) + "@0"}, 2, "--autoencoder"},
		{"missing autoencoder", []string{"--autoencoder", filepath.Join(dir, "nope.pt") + "@0"}, 2, "nope.pt"},
		{"bad dataset name", []string{"--dataset", "a/b"}, 2, `dataset name "a/b"`},
		{"bad autoencoder", []string{"--autoencoder", "x.pt"}, 2, "PATH@LAYER"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"collate", "--model", "random:tiny", "--store", filepath.Join(dir, "data"), "--dataset", "x"}, tc.args...)
			code, _, errOut := runTDB(t, args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nwant %q", code, tc.code, errOut, tc.want)
			}
		})
	}
	code, _, errOut := runTDB(t, "top", "--store", filepath.Join(dir, "data"), "--dataset", "nothing")
	if code != 2 || !strings.Contains(errOut, `no such dataset "nothing" in file://`) || strings.Count(errOut, "file://") != 1 {
		t.Fatalf("top of a missing dataset: exit %d, %s", code, errOut)
	}
}

// testQueryServer runs tdb query on a free port over storeDir, GETs path
// into v, checks /healthz and /metrics, and stops the server.
func testQueryServer(t *testing.T, storeDir, path string, v any) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() { done <- run(ctx, []string{"query", "--store", storeDir, "--addr", addr}, &out, &errb) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("tdb query exit %d: %s", code, errb.String())
		}
	}()
	base := "http://" + addr
	for i := 0; ; i++ {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 100 {
			t.Fatalf("tdb query did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
	mresp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, m := range []string{"tdb_query_requests_total", "tdb_query_request_seconds", "tdb_query_cache_hits_total", "tdb_query_store_read_bytes_total"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// truncatedModel saves a tiny random model and cuts its weights file short.
func truncatedModel(t *testing.T, dir string) string {
	t.Helper()
	md := filepath.Join(dir, "truncated")
	saveRandomModel(t, md, 1)
	path := filepath.Join(md, "model.safetensors")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	return md
}

func notAnAutoencoder(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "notes.pt")
	if err := os.WriteFile(path, []byte("just some notes, not a checkpoint\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
