package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tdb/model"
)

// runTDB runs the command in-process (bounded at two minutes) and returns
// exit code, stdout and stderr.
func runTDB(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// testDir is a temporary folder whose cache/ is the command's cache
// ($TDB_CACHE_DIR), so that the models, jobs and embedded NATS data of a
// test are its own.
func testDir(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("TDB_CACHE_DIR", filepath.Join(dir, "cache"))
	return dir
}

// smallModel is the small-vocab fixture copied into model/testdata (present on a fresh clone).
func smallModel(t *testing.T) string {
	dir := filepath.Join("..", "..", "model", "testdata", "small-vocab")
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err != nil {
		t.Fatalf("fixture missing: %v", err)
	}
	return dir
}

func TestRunWritesActivationsAndGradients(t *testing.T) {
	dir := smallModel(t)
	out := filepath.Join(t.TempDir(), "acts.safetensors")
	code, stdout, stderr := runTDB(t, "run", "--model", dir, "--tokens", "1,2,3,4", "--tokens", "5,6",
		"--locations", "mlp.post_act,attn.qk_probs/1,resid.post_emb,logits", "--target", "#17", "--distractor", "#42", "--freeze-ln-f", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "top 10 next tokens") || !strings.Contains(stdout, "wrote") {
		t.Errorf("output:\n%s", stdout)
	}
	sf, err := model.OpenSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	want := map[string][]int{
		"mlp.post_act/0": {2, 4, 128}, "mlp.post_act/1": {2, 4, 128}, "attn.qk_probs/1": {2, 4, 4, 2},
		"resid.post_emb": {2, 4, 32}, "logits": {2, 4, 512}, "grad/mlp.post_act/0": {2, 4, 128}, "grad/resid.post_emb": {2, 4, 32},
	}
	for name, shape := range want {
		ti, ok := sf.Tensors[name]
		if !ok {
			t.Errorf("%s missing (have %v)", name, sf.Names())
			continue
		}
		if !slices.Equal(ti.Shape, shape) {
			t.Errorf("%s: shape %v, want %v", name, ti.Shape, shape)
		}
	}
	g, _ := sf.Float32("grad/resid.post_emb")
	nonzero := 0
	for _, v := range g.Data {
		if v != 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		t.Error("gradients are all zero")
	}
}

func TestBadInputExitCodes(t *testing.T) {
	dir := smallModel(t)
	bad := filepath.Join(t.TempDir(), "bert")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "config.json"), []byte(`{"model_type":"bert"}`), 0o644)
	os.WriteFile(filepath.Join(bad, "model.safetensors"), []byte("x"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--model", dir, "--tokens", "1,2", "--locations", "mlp.bogus"}, 2, "unknown location"},
		{[]string{"run", "--model", dir, "--tokens", "1,2", "--locations", "mlp.post_act/5"}, 2, "out of range"},
		{[]string{"run", "--model", dir, "--tokens", "1,999"}, 2, "outside the vocabulary"},
		{[]string{"run", "--model", dir, "--tokens", strings.Repeat("1,", 40) + "1"}, 2, "context"},
		{[]string{"run", "--model", dir, "--prompt", ""}, 2, "empty"},
		{[]string{"run", "--model", dir}, 2, "--prompt or --tokens"},
		{[]string{"run", "--model", bad, "--tokens", "1"}, 2, `model_type "bert"`},
		{[]string{"run", "--model", dir, "--tokens", "1", "--target", "Canada is", "--distractor", "#3"}, 2, "not exactly one"},
		{[]string{"debug", "--model", "random:tiny", "--prompt", "Hi there", "--target", " nope nope"}, 2, "not exactly one"},
		{[]string{"debug", "--model", "random:tiny", "--prompt", "Hi there", "--target", " Canada", "--ablate", "mlp_X"}, 2, "bad node"},
		{[]string{"model", "random", "--config", "gpt5", "--out", t.TempDir()}, 2, "unknown --config"},
		{[]string{"nope"}, 2, "unknown command"},
	} {
		code, _, stderr := runTDB(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", c.args, code, c.code, stderr, c.want)
		}
	}
}

func TestDebugJSON(t *testing.T) {
	code, stdout, stderr := runTDB(t, "debug", "--model", "random:tiny", "--prompt", "<|endoftext|>Paris, France. Ottawa,",
		"--target", " Canada", "--distractor", " Germany", "--top", "3", "--ablate", "mlp_L1_7@6=0.5", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "RANDOM") {
		t.Error("random weights not announced")
	}
	var resp struct {
		Runs []struct {
			Label string  `json:"label"`
			Loss  float64 `json:"loss"`
		} `json:"runs"`
		Nodes []struct {
			Name    string `json:"name"`
			Metrics map[string]struct {
				Value float64  `json:"value"`
				Diff  *float64 `json:"diff"`
			} `json:"metrics"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(stdout), &resp); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if len(resp.Runs) != 2 || resp.Runs[1].Label != "baseline" || len(resp.Nodes) < 3 {
		t.Fatalf("response: %+v", resp)
	}
	for _, n := range resp.Nodes {
		if len(n.Metrics) != 4 || n.Metrics["act_times_grad"].Diff == nil {
			t.Errorf("%s: metrics %+v", n.Name, n.Metrics)
		}
	}
}

func TestModelRandomThenRun(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runTDB(t, "model", "random", "--config", "tiny", "--seed", "3", "--out", dir)
	if code != 0 || !strings.Contains(stderr, "RANDOM") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, stdout, stderr := runTDB(t, "run", "--model", dir, "--prompt", "Hello world")
	if code != 0 || !strings.Contains(stderr, "RANDOM") || !strings.Contains(stdout, `"Hello"`) {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
}
