package compat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"tdb/dataset"
	"tdb/debugger"
	"tdb/model"
	"tdb/store"
)

// get walks a decoded JSON value along a dotted path ("a.b.0.c") and fails
// when a step is missing.
func get(t *testing.T, v any, path string) any {
	t.Helper()
	cur := v
	for _, step := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[step]
			if !ok {
				t.Fatalf("%s: no %q (have %v)", path, step, keys(c))
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(step)
			if err != nil || i < 0 || i >= len(c) {
				t.Fatalf("%s: index %q of a list of %d", path, step, len(c))
			}
			cur = c[i]
		default:
			t.Fatalf("%s: %q of a %T", path, step, cur)
		}
	}
	return cur
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func num(t *testing.T, v any, path string) float64 {
	t.Helper()
	x, ok := get(t, v, path).(float64)
	if !ok {
		t.Fatalf("%s: %v is not a number", path, get(t, v, path))
	}
	return x
}

func list(t *testing.T, v any, path string) []any {
	t.Helper()
	x, ok := get(t, v, path).([]any)
	if !ok {
		t.Fatalf("%s: %v is not a list", path, get(t, v, path))
	}
	return x
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-5*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestTransport(t *testing.T) {
	f := newFixture(t)
	// preflight
	req, _ := http.NewRequest(http.MethodOptions, f.srv.URL+"/compat/batched_tdb", nil)
	req.Header.Set("Origin", "http://localhost:1234")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, h)
	}
	f.fails(t, "/no_such_route", "{}", http.StatusNotFound, "no route")
	f.fails(t, "/batched_tdb", "{not json", http.StatusBadRequest, "bad JSON")
	f.fails(t, "/neuron_record", "", http.StatusBadRequest, "empty request body")
	f.fails(t, "/neuron_record", `{"dst": "mlp_post_act"}`, http.StatusBadRequest, "layerIndex")
	getReq, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/compat/model_info", nil)
	resp, err = http.DefaultClient.Do(getReq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("GET: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestModelInfoAndDatasets(t *testing.T) {
	f := newFixture(t)
	var info map[string]any
	f.ok(t, "/model_info", "", &info) // no body, no Content-Type, like the app
	model := get(t, info, "modelName").(string)
	if model != "tiny-demo" || strings.Contains(model, "_") {
		t.Fatalf("modelName %q, want the dataset's name without underscores", model)
	}
	if get(t, info, "hasMlpAutoencoder") != true || get(t, info, "hasAttentionAutoencoder") != true {
		t.Fatalf("autoencoders not reported: %v", info)
	}
	if n := get(t, info, "mlpAutoencoderName").(string); !strings.Contains(n, "mlp-post-act") && !strings.Contains(n, "resid-delta-mlp") {
		t.Fatalf("mlpAutoencoderName %q", n)
	}
	if n := get(t, info, "attentionAutoencoderName").(string); !strings.Contains(n, "resid-delta-attn") {
		t.Fatalf("attentionAutoencoderName %q", n)
	}
	if num(t, info, "nLayers") != 2 {
		t.Fatalf("nLayers %v", info["nLayers"])
	}

	var meta []map[string]any
	f.ok(t, "/neuron_datasets_metadata", "", &meta)
	want := map[string]string{
		"mlp_post_act":                 "tiny-demo",
		"attn_write_norm":              "tiny-demo",
		"mlp_autoencoder_latent":       "tiny-demo_mlp-post-act",
		"attention_autoencoder_latent": "tiny-demo_resid-delta-attn",
	}
	if len(meta) != len(want) {
		t.Fatalf("%d datasets: %v", len(meta), meta)
	}
	for _, m := range meta {
		dst := get(t, m, "derivedScalarType").(string)
		if want[dst] != get(t, m, "shortName") || get(t, m, "userVisibleName") == "" || !strings.HasPrefix(get(t, m, "neuronDatasetPath").(string), "tdb://"+datasetName+"/") {
			t.Fatalf("dataset %v", m)
		}
	}
}

// Several served datasets of one kind each get a short name of their own
// (the first the model's, the others their dataset's), and a node page
// asking for one reads that dataset.
func TestDatasetsShortNames(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	for _, name := range []string{"run_a", "run_b", "run-b"} {
		m := &dataset.Manifest{Name: name, Model: "gpt2", Tokens: 64, Locations: []dataset.ManifestLocation{
			{Name: locNeurons, Layers: []int{0}, Components: 3072}, {Name: "ae.mlp.post_act", Layers: []int{0}, Components: 96}}}
		if err := dataset.WriteManifest(ctx, st, m); err != nil {
			t.Fatal(err)
		}
	}
	h := &Handler{opts: Options{Store: st, Datasets: []string{"run_a", "run_b", "run-b"}}}
	out, err := h.datasetsMetadata(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range out.([]datasetMetadata) {
		got = append(got, m.ShortName+" "+m.NeuronDatasetPath)
	}
	want := []string{
		"gpt2-small tdb://run_a/mlp.post_act", "gpt2-small_mlp-post-act tdb://run_a/ae.mlp.post_act",
		"run-b tdb://run_b/mlp.post_act", "run-b_mlp-post-act tdb://run_b/ae.mlp.post_act",
		"run-b-2 tdb://run-b/mlp.post_act", "run-b-2_mlp-post-act tdb://run-b/ae.mlp.post_act",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("short names:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for short, ds := range map[string]string{"gpt2-small": "run_a", "run-b": "run_b", "run-b-2": "run-b", "run-b-2_mlp-post-act": "run-b"} {
		dst := dstMLPPostAct
		if strings.Contains(short, "_") {
			dst = dstMLPLatent
		}
		_, s, err := h.resolve(ctx, dst, []string{short})
		if err != nil || s.manifest.Name != ds {
			t.Errorf("%s resolves to %v (%v), want dataset %s", short, s.manifest, err, ds)
		}
	}
}

// Without an engine the name comes from the manifest's model.
func TestModelNameWithoutEngine(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	if err := dataset.WriteManifest(ctx, st, &dataset.Manifest{Name: "gpt2_mlp", Model: "gpt2", Locations: []dataset.ManifestLocation{{Name: locNeurons, Layers: []int{0, 11}, Components: 3072}}}); err != nil {
		t.Fatal(err)
	}
	c, err := (&Handler{opts: Options{Store: st}}).catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.modelName != "gpt2-small" {
		t.Fatalf("modelName %q", c.modelName)
	}
	h := New(Options{Store: st})
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest(http.MethodPost, "/compat/model_info", nil)
	h.ServeHTTP(rec, req)
	var info map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil || info["nLayers"] != 12.0 || info["hasMlpAutoencoder"] != false {
		t.Fatalf("model_info without an engine: %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	req, _ = http.NewRequest(http.MethodPost, "/compat/batched_tdb", strings.NewReader(`{"subRequests": [{"prompt": "a", "targetTokens": [" b"]}]}`))
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "no model is loaded") {
		t.Fatalf("inference without an engine: %d %s", rec.Code, rec.Body)
	}
}

// checkSequence checks a dataset sequence against the model: token
// strings are the record's tokens, each scalar is the component's
// activation on the record's window (the engine's number), and
// normalizedScalar = max(0, scalar/max).
func checkSequence(t *testing.T, f *fixture, seq []any, rec dataset.Record, node debugger.Node, maxAct float64) {
	t.Helper()
	if len(seq) != f.window || len(rec.Tokens) != f.window {
		t.Fatalf("sequence of %d tokens, record of %d, want %d", len(seq), len(rec.Tokens), f.window)
	}
	ids := ints(rec.Tokens)
	strs := f.e.Tok.Display(ids)
	acts, err := f.e.NodeActivations(context.Background(), ids, node)
	if err != nil {
		t.Fatal(err)
	}
	for i := range seq {
		s := num(t, seq, fmt.Sprintf("%d.scalar", i))
		n := num(t, seq, fmt.Sprintf("%d.normalizedScalar", i))
		if get(t, seq, fmt.Sprintf("%d.token", i)) != strs[i] {
			t.Fatalf("token %d: %v, want %q", i, get(t, seq, fmt.Sprintf("%d.token", i)), strs[i])
		}
		if !near(s, float64(acts[i])) {
			t.Fatalf("token %d: scalar %v, the engine says %v", i, s, acts[i])
		}
		if !near(n, math.Max(0, s/maxAct)) || n > 1+1e-6 {
			t.Fatalf("token %d: normalizedScalar %v for %v / max %v", i, n, s, maxAct)
		}
	}
}

func TestNeuronRecord(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		dst   string
		node  debugger.Node
		paths []string
	}{
		{"mlp_post_act", debugger.Node{Type: debugger.MLPNeuron, Layer: 1, Index: 17}, []string{"tdb://" + datasetName + "/mlp.post_act"}},
		{"mlp_post_act", debugger.Node{Type: debugger.MLPNeuron, Layer: 0, Index: 5}, nil},
		{"mlp_autoencoder_latent", debugger.Node{Type: debugger.MLPLatent, Layer: 1, Index: 7}, []string{"tiny-demo_mlp-post-act"}},
		{"attention_autoencoder_latent", debugger.Node{Type: debugger.AttnLatent, Layer: 0, Index: 3}, nil},
	} {
		body := mustJSON(map[string]any{"dst": c.dst, "layerIndex": c.node.Layer, "activationIndex": c.node.Index, "datasets": c.paths})
		var r map[string]any
		f.ok(t, "/neuron_record", body, &r)
		if !strings.HasPrefix(get(t, r, "dataset").(string), "tdb://") {
			t.Fatalf("dataset %v", r["dataset"])
		}
		mx := num(t, r, "maxActivation")
		top, random := list(t, r, "topActivations"), list(t, r, "randomSample")
		if len(top) != 4 || len(random) != 3 {
			t.Fatalf("%s: %d top and %d random sequences, want 4 and 3", c.dst, len(top), len(random))
		}
		view, err := dataset.ReadComponent(context.Background(), f.st, datasetName, map[debugger.NodeType]string{
			debugger.MLPNeuron: locNeurons, debugger.MLPLatent: "ae.mlp.post_act", debugger.AttnLatent: "ae.resid.delta_attn"}[c.node.Type], c.node.Layer, c.node.Index)
		if err != nil {
			t.Fatal(err)
		}
		if !near(mx, float64(view.Stats.Max)) {
			t.Fatalf("maxActivation %v, dataset %v", mx, view.Stats.Max)
		}
		for i, rec := range append(view.Top, view.Random...) {
			checkSequence(t, f, append(top, random...)[i].([]any), rec, c.node, mx)
		}
	}
	f.fails(t, "/neuron_record", `{"dst": "mlp_post_act", "layerIndex": 1, "activationIndex": 9999, "datasets": []}`, http.StatusNotFound, "9999")
	f.fails(t, "/neuron_record", `{"dst": "mlp_post_act", "layerIndex": 7, "activationIndex": 1, "datasets": []}`, http.StatusNotFound, "layer 7")
	f.fails(t, "/neuron_record", `{"dst": "attn_write_norm", "layerIndex": 0, "activationIndex": 1}`, http.StatusBadRequest, "attention_head_record")
	f.fails(t, "/neuron_record", `{"dst": "bogus", "layerIndex": 0, "activationIndex": 1}`, http.StatusBadRequest, "unknown dst")
}

// checkPairItems checks the app's token-pair items against a lower triangle.
func checkPairItems(t *testing.T, items []any, tri [][]float32) {
	t.Helper()
	T := len(tri)
	if len(items) != T {
		t.Fatalf("%d items for %d tokens", len(items), T)
	}
	fields := []string{"token", "scalars", "normalizedScalars", "totalScalarIn", "normalizedTotalScalarIn", "maxScalarIn", "normalizedMaxScalarIn",
		"totalScalarOut", "normalizedTotalScalarOut", "maxScalarOut", "normalizedMaxScalarOut"}
	var mxTotalIn float64
	for j := range T {
		var in float64
		for _, v := range tri[j] {
			in += float64(v)
		}
		mxTotalIn = math.Max(mxTotalIn, in)
	}
	for j, it := range items {
		for _, fld := range fields {
			get(t, it, fld)
		}
		sc := list(t, it, "scalars")
		if len(sc) != j+1 || len(list(t, it, "normalizedScalars")) != j+1 {
			t.Fatalf("token %d: %d scalars, want %d", j, len(sc), j+1)
		}
		var in, maxIn, out, maxOut float64
		for k := range sc {
			if !near(sc[k].(float64), float64(tri[j][k])) {
				t.Fatalf("pair (%d,%d): %v, engine %v", j, k, sc[k], tri[j][k])
			}
			in += float64(tri[j][k])
			if k == 0 || float64(tri[j][k]) > maxIn {
				maxIn = float64(tri[j][k])
			}
		}
		for q := j; q < T; q++ {
			out += float64(tri[q][j])
			if q == j || float64(tri[q][j]) > maxOut {
				maxOut = float64(tri[q][j])
			}
		}
		if !near(num(t, it, "totalScalarIn"), in) || !near(num(t, it, "maxScalarIn"), maxIn) ||
			!near(num(t, it, "totalScalarOut"), out) || !near(num(t, it, "maxScalarOut"), maxOut) {
			t.Fatalf("token %d: in/out %v, want %v %v %v %v", j, it, in, maxIn, out, maxOut)
		}
		if n := num(t, it, "normalizedTotalScalarIn"); !near(n, math.Max(0, in/mxTotalIn)) {
			t.Fatalf("token %d: normalizedTotalScalarIn %v, want %v", j, n, in/mxTotalIn)
		}
		for _, fld := range fields[2:] {
			if strings.HasPrefix(fld, "normalized") && fld != "normalizedScalars" {
				if n := num(t, it, fld); n < 0 || n > 1+1e-6 {
					t.Fatalf("token %d: %s %v outside [0, 1]", j, fld, n)
				}
			}
		}
	}
}

func TestAttentionHeadRecord(t *testing.T) {
	f := newFixture(t)
	var r map[string]any
	f.ok(t, "/attention_head_record", `{"dst": "attn_write_norm", "layerIndex": 1, "activationIndex": 2, "datasets": ["tdb://`+datasetName+`/attn.heads"]}`, &r)
	get(t, r, "dataset")
	if num(t, r, "maxAttentionActivation") <= 0 {
		t.Fatalf("maxAttentionActivation %v", r["maxAttentionActivation"])
	}
	top, random := list(t, r, "mostPositiveTokenSequences"), list(t, r, "randomTokenSequences")
	if len(top) != 4 || len(random) != 3 {
		t.Fatalf("%d top and %d random sequences", len(top), len(random))
	}
	view, err := dataset.ReadComponent(context.Background(), f.st, datasetName, locHeads, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, seq := range top {
		ids := make([]int, len(view.Top[i].Tokens))
		for j, id := range view.Top[i].Tokens {
			ids[j] = int(id)
		}
		tri, err := f.e.HeadWriteNorms(context.Background(), ids, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		checkPairItems(t, seq.([]any), tri)
	}
	f.fails(t, "/attention_head_record", `{"dst": "flattened_attn_write_to_latent_summed_over_heads", "layerIndex": 0, "activationIndex": 1}`, http.StatusBadRequest, "per token")
	f.fails(t, "/attention_head_record", `{"dst": "mlp_post_act", "layerIndex": 0, "activationIndex": 1}`, http.StatusBadRequest, "neuron_record")
}

// memExplanations is a small in-memory explanation store.
type memExplanations struct{ scored map[string]float64 }

func (m memExplanations) Existing(_ context.Context, c Component) ([]Explanation, error) {
	s := 0.5
	return []Explanation{{Text: fmt.Sprintf("%s L%d #%d", c.Location, c.Layer, c.Index), Score: &s}, {Text: "unscored"}}, nil
}

func (m memExplanations) Explain(_ context.Context, c Component, v *dataset.ComponentView) ([]string, error) {
	return []string{fmt.Sprintf("%d top records", len(v.Top))}, nil
}

func (m memExplanations) Score(_ context.Context, c Component, v *dataset.ComponentView, exp string, maxSeq int) (float64, error) {
	return float64(len(exp)) / 100, nil
}

func TestExplanations(t *testing.T) {
	f := newFixture(t)
	node := `"dst": "mlp_post_act", "layerIndex": 1, "activationIndex": 3`
	var existing []any
	f.ok(t, "/existing_explanations", `{`+node+`, "explanationDatasets": [], "neuronDataset": "tiny-demo"}`, &existing)
	if existing == nil || len(existing) != 0 {
		t.Fatalf("default store: %v", existing)
	}
	var exp map[string]any
	f.ok(t, "/explain", `{`+node+`, "datasets": []}`, &exp)
	if len(list(t, exp, "explanations")) != 0 || get(t, exp, "dataset") == "" {
		t.Fatalf("default explain: %v", exp)
	}
	f.fails(t, "/score", `{`+node+`, "datasets": [], "explanation": "numbers", "maxSequences": 5}`, http.StatusNotImplemented, "no explanation scorer")

	mux := http.NewServeMux()
	mux.Handle("/compat/", New(Options{Engine: f.e, Store: f.st, Explanations: memExplanations{}}))
	g := &fixture{e: f.e, st: f.st, srv: newServer(t, mux), window: f.window}
	g.ok(t, "/existing_explanations", `{`+node+`, "explanationDatasets": [], "neuronDataset": ""}`, &existing)
	if len(existing) != 2 || get(t, existing, "0.explanation") != "mlp.post_act L1 #3" || get(t, existing, "0.score") != 0.5 ||
		get(t, existing, "1.score") != nil || !strings.HasPrefix(get(t, existing, "1.datasetName").(string), "tdb://") {
		t.Fatalf("existing: %v", existing)
	}
	g.ok(t, "/explain", `{`+node+`, "datasets": []}`, &exp)
	if get(t, exp, "explanations.0") != "4 top records" {
		t.Fatalf("explain: %v", exp)
	}
	var sc map[string]any
	g.ok(t, "/score", `{`+node+`, "datasets": [], "explanation": "numbers", "maxSequences": 5}`, &sc)
	if num(t, sc, "score") != 0.07 || get(t, sc, "datasetPath") != "tdb://"+datasetName+"/mlp.post_act" {
		t.Fatalf("score %v", sc)
	}
	g.fails(t, "/score", `{`+node+`, "datasets": []}`, http.StatusBadRequest, "explanation")

	// The app's node table asks for an attention latent's explanations under
	// its by-token-pair type: they are the latent's.
	pairs := `"dst": "flattened_attn_write_to_latent_summed_over_heads", "layerIndex": 0, "activationIndex": 5`
	g.ok(t, "/existing_explanations", `{`+pairs+`, "explanationDatasets": [], "neuronDataset": "tiny-demo_resid-delta-attn"}`, &existing)
	if len(existing) != 2 || get(t, existing, "0.explanation") != "ae.resid.delta_attn L0 #5" {
		t.Fatalf("existing explanations of an attention latent by token pair: %v", existing)
	}
	g.ok(t, "/explain", `{`+pairs+`, "datasets": ["tiny-demo_resid-delta-attn"]}`, &exp)
	if get(t, exp, "explanations.0") != "4 top records" || !strings.HasSuffix(get(t, exp, "dataset").(string), "/ae.resid.delta_attn") {
		t.Fatalf("explain an attention latent by token pair: %v", exp)
	}
	g.ok(t, "/score", `{`+pairs+`, "datasets": [], "explanation": "names", "maxSequences": 5}`, &sc)
	if num(t, sc, "score") != 0.05 {
		t.Fatalf("score an attention latent by token pair: %v", sc)
	}
}

func TestDerivedScalars(t *testing.T) {
	f := newFixture(t)
	prompt := "The capital of France is Paris"
	ids := f.e.Tok.Encode(prompt)
	for _, c := range []struct {
		dst  string
		node debugger.Node
		loc  string
	}{
		{"mlp_post_act", debugger.Node{Type: debugger.MLPNeuron, Layer: 1, Index: 40}, locNeurons},
		{"mlp_autoencoder_latent", debugger.Node{Type: debugger.MLPLatent, Layer: 1, Index: 11}, "ae.mlp.post_act"},
		{"attention_autoencoder_latent", debugger.Node{Type: debugger.AttnLatent, Layer: 0, Index: 2}, "ae.resid.delta_attn"},
	} {
		spec := map[string]any{"dst": c.dst, "layerIndex": c.node.Layer, "activationIndex": c.node.Index,
			"normalizeActivationsUsingNeuronRecord": map[string]any{"dst": c.dst, "layerIndex": c.node.Layer, "activationIndex": c.node.Index, "datasets": []string{}}}
		var r map[string]any
		f.ok(t, "/derived_scalars", mustJSON(map[string]any{"inferenceRequestSpec": map[string]any{"prompt": prompt}, "derivedScalarsRequestSpec": spec}), &r)
		strs := list(t, r, "inferenceAndTokenData.tokensAsStrings")
		acts := list(t, r, "derivedScalarsResponseData.activations")
		norms := list(t, r, "derivedScalarsResponseData.normalizedActivations")
		if len(strs) != len(ids) || len(acts) != len(ids) || len(norms) != len(ids) {
			t.Fatalf("%s: %d tokens, %d activations, %d normalized for %d tokens", c.dst, len(strs), len(acts), len(norms), len(ids))
		}
		want, err := f.e.NodeActivations(context.Background(), ids, c.node)
		if err != nil {
			t.Fatal(err)
		}
		view, err := dataset.ReadComponent(context.Background(), f.st, datasetName, c.loc, c.node.Layer, c.node.Index)
		if err != nil {
			t.Fatal(err)
		}
		nodes := list(t, r, "derivedScalarsResponseData.nodeIndices")
		if len(nodes) != len(ids) {
			t.Fatalf("%s: %d node indices for %d tokens", c.dst, len(nodes), len(ids))
		}
		for i := range ids {
			a := acts[i].(float64)
			if !near(a, float64(want[i])) || !near(norms[i].(float64), normalize(a, float64(view.Stats.Max))) {
				t.Fatalf("%s token %d: %v (normalized %v), engine %v, record max %v", c.dst, i, a, norms[i], want[i], view.Stats.Max)
			}
			n := c.node
			n.Token = i
			if got := engineNode(t, nodes[i]); got != n {
				t.Fatalf("%s token %d: node index %v, want %+v", c.dst, i, nodes[i], n)
			}
		}
	}
	f.fails(t, "/derived_scalars", `{"inferenceRequestSpec": {"prompt": "a"}, "derivedScalarsRequestSpec": {"dst": "mlp_post_act", "layerIndex": 1, "activationIndex": 100000}}`, http.StatusBadRequest, "out of range")
	f.fails(t, "/derived_scalars", `{"inferenceRequestSpec": {"prompt": ""}, "derivedScalarsRequestSpec": {"dst": "mlp_post_act", "layerIndex": 1, "activationIndex": 1}}`, http.StatusBadRequest, "prompt")
}

func TestDerivedAttentionScalars(t *testing.T) {
	f := newFixture(t)
	prompt := "When Mary and John went to the store, John gave"
	ids := f.e.Tok.Encode(prompt)
	var r map[string]any
	f.ok(t, "/derived_attention_scalars", mustJSON(map[string]any{"inferenceRequestSpec": map[string]any{"prompt": prompt},
		"derivedAttentionScalarsRequestSpec": map[string]any{"dst": "unflattened_attn_write_norm", "layerIndex": 1, "activationIndex": 3}}), &r)
	if len(list(t, r, "inferenceAndTokenData.tokensAsStrings")) != len(ids) {
		t.Fatal("tokensAsStrings")
	}
	tri, err := f.e.HeadWriteNorms(context.Background(), ids, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	checkPairItems(t, list(t, r, "derivedAttentionScalarsResponseData.tokenAndAttentionScalarsList"), tri)

	// the by-token-pair page of an attention latent
	f.ok(t, "/derived_attention_scalars", mustJSON(map[string]any{
		"inferenceRequestSpec": map[string]any{"prompt": prompt, "activationIndexForWithinLayerGrad": map[string]any{
			"activationLocationType": "online_autoencoder_latent", "tensorIndices": []any{"All", 5}, "layerIndex": 0, "passType": "forward"}},
		"derivedAttentionScalarsRequestSpec": map[string]any{"dst": "attn_write_to_latent_summed_over_heads", "layerIndex": 0, "activationIndex": 5}}), &r)
	tri, err = f.e.LatentPairAttribution(context.Background(), ids, debugger.Node{Type: debugger.AttnLatent, Layer: 0, Index: 5, Token: -1})
	if err != nil {
		t.Fatal(err)
	}
	items := list(t, r, "derivedAttentionScalarsResponseData.tokenAndAttentionScalarsList")
	for j, it := range items {
		for k, v := range list(t, it, "scalars") {
			if !near(v.(float64), float64(tri[j][k])) {
				t.Fatalf("latent pair (%d,%d): %v, engine %v", j, k, v, tri[j][k])
			}
		}
	}
}

// The node pages' logit lens (input then output tokens, prompt "a", 100 each).
func TestBatchedLogitLens(t *testing.T) {
	f := newFixture(t)
	sub := func(locType string, layer, index int, pass, dst string, loss bool) map[string]any {
		irs := map[string]any{"prompt": "a", "ablationSpecs": []any{map[string]any{"index": map[string]any{
			"activationLocationType": locType, "tensorIndices": []int{0, index}, "layerIndex": layer, "passType": pass}, "value": 1.0}}}
		if loss {
			irs["lossFnConfig"] = map[string]any{"name": "zero"}
		}
		var li any = layer
		if dst == inputDirectionDst {
			li = nil
		}
		return map[string]any{"inferenceRequestSpec": irs, "processingRequestSpecByName": map[string]any{
			"singleton": map[string]any{"dst": dst, "layerIndex": li, "activationIndex": 0, "numTopTokens": 100}}}
	}
	var r map[string]any
	f.ok(t, "/batched", mustJSON(map[string]any{"inferenceSubRequests": []any{
		sub("mlp.post_act", 1, 33, "backward", inputDirectionDst, true),
		sub("mlp.post_act", 1, 33, "forward", "mlp_post_act", false),
		sub("online_mlp_autoencoder_latent", 1, 8, "forward", "online_mlp_autoencoder_latent", false),
		sub("online_attention_autoencoder_latent", 0, 4, "forward", "online_attention_autoencoder_latent", false),
	}}), &r)
	subs := list(t, r, "inferenceSubResponses")
	if len(subs) != 4 {
		t.Fatalf("%d sub-responses", len(subs))
	}
	neuron := debugger.Node{Type: debugger.MLPNeuron, Layer: 1, Index: 33}
	inUp, inDown, _ := f.e.InputTokenLens(neuron, 100)
	outUp, outDown, _ := f.e.OutputTokenLens(neuron, 100)
	mlUp, mlDown, _ := f.e.OutputTokenLens(debugger.Node{Type: debugger.MLPLatent, Layer: 1, Index: 8}, 100)
	alUp, alDown, _ := f.e.OutputTokenLens(debugger.Node{Type: debugger.AttnLatent, Layer: 0, Index: 4}, 100)
	for i, want := range [][2][]debugger.ScoredToken{{inUp, inDown}, {outUp, outDown}, {mlUp, mlDown}, {alUp, alDown}} {
		get(t, subs[i], "inferenceResponse.inferenceAndTokenData.tokensAsStrings")
		for j, side := range []string{"top", "bottom"} {
			got := list(t, subs[i], "processingResponseDataByName.singleton.topTokens."+side)
			if len(got) != 100 {
				t.Fatalf("sub %d %s: %d tokens", i, side, len(got))
			}
			mx := math.Max(math.Abs(want[0][0].Score), math.Abs(want[1][0].Score))
			for k, g := range got {
				w := want[j][k]
				if get(t, g, "token") != w.Text || !near(num(t, g, "normalizedScalar"), w.Score/mx) {
					t.Fatalf("sub %d %s[%d]: %v, want %q %v", i, side, k, g, w.Text, w.Score/mx)
				}
			}
		}
	}
	f.fails(t, "/batched", `{"inferenceSubRequests": [{"inferenceRequestSpec": {"prompt": "a"}, "processingRequestSpecByName": {"singleton": {"dst": "bogus", "activationIndex": 0, "numTopTokens": 10}}}]}`, http.StatusBadRequest, "ablation spec")

	// An MLP latent's input tokens, top and bottom: the node table's.
	f.ok(t, "/batched", mustJSON(map[string]any{"inferenceSubRequests": []any{
		sub("online_mlp_autoencoder_latent", 1, 8, "backward", inputDirectionDst, true)}}), &r)
	resp, err := f.e.Run(context.Background(), debugger.Request{Prompt: "a", Loss: "zero", UseMLPAutoencoders: true, TopK: 1, Candidates: 1,
		Inspect: []debugger.Node{{Type: debugger.MLPLatent, Layer: 1, Index: 8, Token: 0}}})
	if err != nil {
		t.Fatal(err)
	}
	d := resp.Details[0]
	for side, want := range map[string][]debugger.ScoredToken{"top": d.InputTokens, "bottom": d.InputTokensDown} {
		got := list(t, r, "inferenceSubResponses.0.processingResponseDataByName.singleton.topTokens."+side)
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("latent input tokens %s: %d, want %d", side, len(got), len(want))
		}
		for k, g := range got {
			if get(t, g, "token") != want[k].Text {
				t.Fatalf("latent input tokens %s[%d]: %v, want %q", side, k, g, want[k].Text)
			}
		}
	}
}

// newServer starts a test server closed with the test.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// Concurrent requests share the engine and the store (run with -race).
func TestConcurrentRequests(t *testing.T) {
	f := newFixture(t)
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			var path, body string
			if i%2 == 0 {
				path, body = "/neuron_record", fmt.Sprintf(`{"dst": "mlp_post_act", "layerIndex": %d, "activationIndex": %d, "datasets": []}`, i%2, i)
			} else {
				path, body = "/derived_scalars", fmt.Sprintf(`{"inferenceRequestSpec": {"prompt": "Paris is in France"}, "derivedScalarsRequestSpec": {"dst": "mlp_post_act", "layerIndex": 1, "activationIndex": %d}}`, i)
			}
			resp, err := http.Post(f.srv.URL+"/compat"+path, "application/json", strings.NewReader(body))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s: %s", path, resp.Status)
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// GPT-2 small is reported as gpt2-small whatever the datasets are called,
// and the handler also works mounted with http.StripPrefix.
func TestGPT2SmallName(t *testing.T) {
	f := newFixture(t)
	// only the shape matters to /model_info: no weights are allocated
	e := debugger.New(&model.Model{Config: model.Presets["gpt2"]}, f.e.Tok)
	mux := http.NewServeMux()
	mux.Handle("/compat/", http.StripPrefix("/compat", New(Options{Engine: e, Store: f.st})))
	g := &fixture{e: e, st: f.st, srv: newServer(t, mux), window: f.window}
	var info map[string]any
	g.ok(t, "/model_info", "", &info)
	if info["modelName"] != "gpt2-small" || info["nLayers"] != 12.0 || info["hasMlpAutoencoder"] != true || info["mlpAutoencoderName"] != "mlp-post-act" {
		t.Fatalf("model_info: %v", info)
	}
	var meta []map[string]any
	g.ok(t, "/neuron_datasets_metadata", "", &meta)
	for _, m := range meta {
		if !strings.HasPrefix(m["shortName"].(string), "gpt2-small") {
			t.Fatalf("dataset %v", m)
		}
	}
	var r map[string]any
	g.ok(t, "/neuron_record", `{"dst": "mlp_autoencoder_latent", "layerIndex": 1, "activationIndex": 2, "datasets": ["gpt2-small_mlp-post-act"]}`, &r)
	if r["dataset"] != "tdb://"+datasetName+"/ae.mlp.post_act" {
		t.Fatalf("dataset %v", r["dataset"])
	}
}

// Model work goes through Options.Acquire; a refusal is a 503 with its message.
func TestAcquire(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	acquired, released := 0, 0
	refuse := false
	acquire := func(ctx context.Context) (func(), error) {
		mu.Lock()
		defer mu.Unlock()
		if refuse {
			return nil, errors.New("the model is busy: 8 requests waiting")
		}
		acquired++
		return func() { mu.Lock(); released++; mu.Unlock() }, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/compat/", New(Options{Engine: f.e, Store: f.st, Acquire: acquire}))
	g := &fixture{e: f.e, st: f.st, srv: newServer(t, mux), window: f.window}
	body := `{"inferenceRequestSpec": {"prompt": "Paris"}, "derivedScalarsRequestSpec": {"dst": "mlp_post_act", "layerIndex": 0, "activationIndex": 1}}`
	var r map[string]any
	g.ok(t, "/derived_scalars", body, &r)
	g.ok(t, "/model_info", "", &r) // no model work
	mu.Lock()
	if acquired != 1 || released != 1 {
		t.Fatalf("acquired %d, released %d", acquired, released)
	}
	refuse = true
	mu.Unlock()
	g.fails(t, "/derived_scalars", body, http.StatusServiceUnavailable, "busy")
}
