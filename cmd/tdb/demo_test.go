package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tdb/dataset"
	"tdb/store"
)

// TestDemoCollatesThenReuses: the demo collates one dataset per built-in
// corpus, and a second run finds them and collates nothing.
func TestDemoCollatesThenReuses(t *testing.T) {
	dir := testDir(t)
	storeDir := filepath.Join(dir, "data")
	code, out, errOut := runTDB(t, "demo", "--model", "random:tiny", "--docs", "40", "--store", storeDir, "--no-serve")
	if code != 0 {
		t.Fatalf("first demo: exit %d\n%s", code, errOut)
	}
	st, err := store.Open(t.Context(), storeDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range demoCorpora {
		name := "demo-random-tiny-" + c.name
		m, err := dataset.ReadManifest(t.Context(), st, name)
		if err != nil {
			t.Fatalf("dataset %s: %v", name, err)
		}
		if m.Tokens == 0 || len(m.Locations) != 2 || !strings.HasPrefix(m.Corpus, c.spec) {
			t.Errorf("dataset %s: %d tokens, locations %+v, corpus %q", name, m.Tokens, m.Locations, m.Corpus)
		}
		if !strings.Contains(out, name) {
			t.Errorf("the demo's output does not name %s:\n%s", name, out)
		}
	}
	code, _, errOut = runTDB(t, "demo", "--model", "random:tiny", "--docs", "40", "--store", storeDir, "--no-serve")
	if code != 0 || strings.Contains(errOut, "collating") || strings.Count(errOut, "already") != len(demoCorpora) {
		t.Fatalf("second demo: exit %d, want both datasets reused:\n%s", code, errOut)
	}
}

// TestDemoServes: after collation the demo serves the viewer and the query
// API on --addr until cancelled.
func TestDemoServes(t *testing.T) {
	dir := testDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- run(ctx, []string{"demo", "--model", "random:tiny", "--docs", "20", "--store", filepath.Join(dir, "data"), "--addr", addr}, &out, &errOut)
	}()
	url := fmt.Sprintf("http://%s/api/v1/datasets", addr)
	var body struct {
		Status string `json:"status"`
		Data   []struct {
			Name string `json:"name"`
		} `json:"data"`
	}
	for {
		resp, err := http.Get(url)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("demo exited with %d before serving:\n%s", code, errOut.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if body.Status != "success" || len(body.Data) != len(demoCorpora) {
		t.Errorf("GET %s: %+v, want the demo's %d datasets", url, body, len(demoCorpora))
	}
	cancel()
	<-done
}

// TestDemoOfflineNamesRandomTiny: without network and without cached
// weights the demo fails within seconds and says how to run offline.
func TestDemoOfflineNamesRandomTiny(t *testing.T) {
	dir := testDir(t)
	t.Setenv("TDB_HF_ENDPOINT", "http://127.0.0.1:1") // nothing listens there
	start := time.Now()
	code, _, errOut := runTDB(t, "demo", "--store", filepath.Join(dir, "data"), "--no-serve")
	if code == 0 || !strings.Contains(errOut, "random:tiny") {
		t.Fatalf("offline demo: exit %d, stderr:\n%s\nwant a failure naming random:tiny", code, errOut)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("offline demo took %v to fail", took)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "datasets")); err == nil {
		t.Error("offline demo wrote datasets")
	}
}

// TestDemoPortInUse: a taken --addr is a usage error before any work.
func TestDemoPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, errOut := runTDB(t, "demo", "--model", "random:tiny", "--store", t.TempDir(), "--addr", ln.Addr().String())
	if code != 2 || !strings.Contains(errOut, "--addr") {
		t.Fatalf("port in use: exit %d, stderr:\n%s", code, errOut)
	}
}
