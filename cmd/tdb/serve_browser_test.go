package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"tdb/internal/syncbuf"
	"tdb/model"
)

// browserDeps finds Debian's chromium and viewer/e2e/node_modules. Outside
// CI a missing piece skips the test; in CI (CI=true) it fails it.
func browserDeps(t *testing.T) (chromium, e2eDir string) {
	t.Helper()
	chromium = os.Getenv("TDB_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	e2eDir, _ = filepath.Abs(filepath.Join("..", "..", "viewer", "e2e"))
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, "chromium at "+chromium+" (apt-get install -y chromium, or set TDB_CHROMIUM)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "playwright-core (npm ci --prefix viewer/e2e)")
	}
	if len(missing) > 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser test dependencies missing in CI: %s", strings.Join(missing, "; "))
		}
		t.Skipf("browser test skipped, missing: %s", strings.Join(missing, "; "))
	}
	return chromium, e2eDir
}

// queryMounted says tdb serve mounts the query service (layer tables and
// search).
const queryMounted = true

// TestBrowser runs the web app in Debian's chromium: tdb serve with a random
// tiny model and a dataset collated here, checked against tdb debug --json
// and tdb top --json for the same questions (viewer/e2e/browser.mjs).
func TestBrowser(t *testing.T) {
	chromium, e2eDir := browserDeps(t)
	if testing.Short() {
		t.Skip("browser test in -short mode")
	}
	dir := testDir(t)
	storeDir := filepath.Join(dir, "data")
	collateDataset(t, "--model", "random:tiny", "--corpus", "synthetic:ioi?docs=200",
		"--locations", "mlp.post_act,attn.heads", "--n-ctx", "24", "--top-k", "8", "--store", storeDir,
		"--dataset", "demo", "--workers", "1")

	const prompt = "<|endoftext|>When Mary and John went to the store, John gave a drink to"
	debugJSON := func(extra ...string) map[string]any {
		t.Helper()
		args := append([]string{"debug", "--model", "random:tiny", "--prompt", prompt, "--target", " Mary", "--distractor", " John", "--top", "20", "--json"}, extra...)
		code, out, errOut := runTDB(t, args...)
		if code != 0 {
			t.Fatalf("tdb %v: exit %d: %s", args, code, errOut)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	base := debugJSON()
	// Deterministic picks from the baseline table: the first layer-0 MLP
	// neuron (ablated: it changes everything downstream) and the first head
	// with a key token (traced through Q).
	var ablate, trace string
	for _, n := range base["nodes"].([]any) {
		name := n.(map[string]any)["name"].(string)
		if ablate == "" && strings.HasPrefix(name, "mlp_L0_") {
			ablate = name
		}
		if trace == "" && strings.HasPrefix(name, "attn_L") && strings.Contains(name, ">") {
			trace = name
		}
	}
	if ablate == "" || trace == "" {
		t.Fatalf("baseline table lacks an MLP neuron or a head pair: %v / %v", ablate, trace)
	}
	ablated := debugJSON("--ablate", ablate)
	traced := debugJSON("--trace", trace+":q")
	tracedK := debugJSON("--trace", trace+":k")
	tracedV := debugJSON("--trace", trace+":v")
	// Token views of two rows, as the page's detail rows show them.
	inspected := debugJSON("--inspect", ablate, "--inspect", trace)
	const second = "<|endoftext|>When Mary and John went to the store, Mary gave a drink to"
	twoPrompts := debugJSON("--second-prompt", second)
	// An MLP autoencoder on layer 1: the page's switch splices its latents in.
	aeDir := saeFolder(t, model.TinyConfig.DMLP, nil)
	withAE := debugJSON("--mlp-autoencoders", aeDir+"@1")
	// An attention autoencoder on layer 0 (resid.delta_attn).
	attnAEDir := saeFolder(t, model.TinyConfig.DModel, nil)
	withAttnAE := debugJSON("--attn-autoencoders", attnAEDir+"@resid.delta_attn/0")
	code, topOut, errOut := runTDB(t, "top", "--store", storeDir, "--dataset", "demo", "--location", "mlp.post_act", "--layer", "1", "--index", "7", "--json")
	if code != 0 {
		t.Fatalf("top: %s", errOut)
	}
	var top, headTop map[string]any
	if err := json.Unmarshal([]byte(topOut), &top); err != nil {
		t.Fatal(err)
	}
	code, topOut, errOut = runTDB(t, "top", "--store", storeDir, "--dataset", "demo", "--location", "attn.heads", "--layer", "1", "--index", "2", "--json")
	if code != 0 {
		t.Fatalf("top: %s", errOut)
	}
	if err := json.Unmarshal([]byte(topOut), &headTop); err != nil {
		t.Fatal(err)
	}

	// An explanation of the component the page is checked on (tdb explain's builtin explainer).
	if code, _, errOut := runTDB(t, "explain", "--store", storeDir, "--dataset", "demo", "--locations", "mlp.post_act", "--layers", "1", "--components", "7"); code != 0 {
		t.Fatalf("explain: %s", errOut)
	}
	code, showOut, errOut := runTDB(t, "explain", "show", "--store", storeDir, "--dataset", "demo", "--location", "mlp.post_act", "--layer", "1", "--index", "7", "--json")
	if code != 0 {
		t.Fatalf("explain show: %s", errOut)
	}
	var shown struct {
		Data []struct {
			Explanation string `json:"explanation"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(showOut), &shown); err != nil || len(shown.Data) != 1 {
		t.Fatalf("explain show --json: %v %s", err, showOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var sout, serr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--model", "random:tiny", "--store", storeDir, "--dataset", "demo", "--addr", "127.0.0.1:0", "--max-prompt-tokens", "64", "--mlp-autoencoders", aeDir + "@1", "--attn-autoencoders", attnAEDir + "@resid.delta_attn/0"}, &sout, &serr)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("tdb serve did not stop")
		}
	}()
	urlRE := regexp.MustCompile(`listening on (http://\S+)`)
	var base0 string
	for deadline := time.Now().Add(30 * time.Second); base0 == ""; time.Sleep(20 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(sout.String()); m != nil {
			base0 = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("tdb serve did not start: %s %s", sout.String(), serr.String())
		}
	}

	// The original front end's API is mounted at /compat on the same server.
	cres, err := http.Post(base0+"/compat/model_info", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(cres.Body)
	cres.Body.Close()
	if cres.StatusCode != 200 || !strings.Contains(string(body), `"modelName"`) {
		t.Fatalf("/compat/model_info: %d %s", cres.StatusCode, body)
	}

	shots := os.Getenv("TDB_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(e2eDir, "screenshots")
	}
	input := map[string]any{
		"base": base0, "chromium": chromium, "screenshots": shots, "profile": filepath.Join(dir, "chromium-profile"),
		"prompt": prompt, "target": " Mary", "distractor": " John", "maxPromptTokens": 64, "query": queryMounted,
		"expected": base, "ablate": ablate, "ablated": ablated, "trace": trace, "traced": traced, "tracedK": tracedK, "tracedV": tracedV, "inspected": inspected, "withAttnAE": withAttnAE, "second": second, "twoPrompts": twoPrompts, "withAE": withAE,
		"component": map[string]any{"dataset": "demo", "location": "mlp.post_act", "layer": 1, "index": 7, "top": top["top"], "components": 256, "explanation": shown.Data[0].Explanation, "headTop": headTop["top"]},
	}
	in, _ := json.Marshal(input)
	inPath := filepath.Join(dir, "input.json")
	if err := os.WriteFile(inPath, in, 0o644); err != nil {
		t.Fatal(err)
	}
	nctx, ncancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer ncancel()
	cmd := exec.CommandContext(nctx, "node", "browser.mjs", inPath)
	cmd.Dir = e2eDir
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	t.Logf("browser.mjs output:\n%s", out.String())
	if err != nil {
		t.Fatalf("browser test failed: %v\n%s\nserver log:\n%s", err, stderr.String(), serr.String())
	}
	var res struct {
		RenderMs []float64 `json:"render_ms"`
		DOMMs    []float64 `json:"dom_ms"`
		Resort   []float64 `json:"resort_ms"`
		ResortN  int       `json:"resort_rows"`
		Long     []float64 `json:"long_ms"`
		LongRows int       `json:"long_rows"`
		Rows     int       `json:"rows"`
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "RESULT ") {
			json.Unmarshal([]byte(strings.TrimPrefix(line, "RESULT ")), &res)
		}
	}
	// One /metrics for the viewer's and the query service's series.
	mres, err := http.Get(base0 + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mres.Body)
	mres.Body.Close()
	for _, m := range []string{`tdb_viewer_requests_total{code="200",route="tdb"}`, "tdb_query_requests_total", "go_goroutines"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if len(res.RenderMs) == 0 {
		t.Fatalf("no timing result from browser.mjs")
	}
	fmt.Printf("viewer: response → painted TDB page (node table up to %d rows): %v ms (DOM built in %v ms)\n", res.Rows, res.RenderMs, res.DOMMs)
	fmt.Printf("viewer: 64-token prompt, top-k 10 (%d rows, 64-token heatmaps), response → painted page: %v ms\n", res.LongRows, res.Long)
	fmt.Printf("viewer: re-sorting the %d-row Left/Diff/Right table, render → paint: %v ms\n", res.ResortN, res.Resort)
}
