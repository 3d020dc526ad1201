package compat

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"tdb/dataset"
	"tdb/explain"
	"tdb/store"
	"tdb/store/storetest"
)

// copyStore copies every blob of src (so a test can add explanations
// without touching the shared fixture's store).
func copyStore(t *testing.T, src store.Store) store.Store {
	t.Helper()
	dst := store.NewMemory()
	storetest.Copy(t, src, dst, "")
	return dst
}

// TestExplainStore replays the app's explanation requests against
// explanations written by package explain beside the collated dataset.
func TestExplainStore(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	st := copyStore(t, f.st)
	vocab, err := explain.GPT2Vocab()
	if err != nil {
		t.Fatal(err)
	}
	// Neuron 3 of layer 1: a builtin explanation with its simulation score
	// (a real explain job), an imported one without scores, an LLM one.
	job := &explain.Job{Store: st, Dataset: datasetName, Locations: []string{locNeurons}, Layers: []int{1}, Components: []int{3},
		Explainer: &explain.Builtin{Vocab: vocab}, Scores: []string{explain.ScoreSimulation}}
	if _, err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	if err := explain.Write(ctx, st, datasetName, []explain.Row{
		{Location: locNeurons, Layer: 1, Component: 3, Explanation: explain.Explanation{Explanation: "imported text", Method: explain.Method{Explainer: "import"}, Created: created}},
		{Location: locNeurons, Layer: 1, Component: 3, Explanation: explain.Explanation{Explanation: "a model's text", Method: explain.Method{Explainer: "llm", Model: "m"}, Created: created,
			Scores: explain.Scores{Simulation: &explain.Score{Value: 0.9, Judge: "llm:m"}}}},
	}); err != nil {
		t.Fatal(err)
	}
	stored, err := explain.Read(ctx, st, datasetName, locNeurons, 1, 3)
	if err != nil || len(stored) != 3 {
		t.Fatalf("stored %+v %v", stored, err)
	}
	var builtin explain.Explanation
	for _, e := range stored {
		if e.Method.Explainer == explain.BuiltinName {
			builtin = e
		}
	}
	if builtin.Scores.Simulation == nil {
		t.Fatalf("the job wrote no simulation score: %+v", stored)
	}

	mux := http.NewServeMux()
	mux.Handle("/compat/", New(Options{Engine: f.e, Store: st, Explanations: NewExplainStore(st)}))
	g := &fixture{e: f.e, st: st, srv: newServer(t, mux), window: f.window}
	node := `"dst": "mlp_post_act", "layerIndex": 1, "activationIndex": 3`

	// /existing_explanations: every stored explanation, best simulation
	// score first, null for the unscored one.
	var existing []any
	g.ok(t, "/existing_explanations", `{`+node+`, "explanationDatasets": [], "neuronDataset": "tiny-demo"}`, &existing)
	if len(existing) != 3 {
		t.Fatalf("existing: %v", existing)
	}
	wantText := []string{"a model's text", builtin.Explanation, "imported text"}
	wantScore := []any{0.9, builtin.Scores.Simulation.Value, nil}
	if builtin.Scores.Simulation.Value > 0.9 {
		wantText[0], wantText[1], wantScore[0], wantScore[1] = wantText[1], wantText[0], wantScore[1], wantScore[0]
	}
	for i := range existing {
		if get(t, existing, strconv.Itoa(i)+".explanation") != wantText[i] || get(t, existing, strconv.Itoa(i)+".score") != wantScore[i] || get(t, existing, strconv.Itoa(i)+".datasetName") == "" {
			t.Errorf("existing %d = %v, want %q score %v", i, existing[i], wantText[i], wantScore[i])
		}
	}
	// Another component: none stored.
	g.ok(t, "/existing_explanations", `{"dst": "mlp_post_act", "layerIndex": 1, "activationIndex": 4, "explanationDatasets": [], "neuronDataset": ""}`, &existing)
	if existing == nil || len(existing) != 0 {
		t.Errorf("unexplained: %v", existing)
	}

	// /explain: the stored ones for neuron 3...
	var exp map[string]any
	g.ok(t, "/explain", `{`+node+`, "datasets": []}`, &exp)
	if got := list(t, exp, "explanations"); len(got) != 3 || got[0] != wantText[0] || got[2] != "imported text" || get(t, exp, "dataset") == "" {
		t.Errorf("explain stored: %v", exp)
	}
	// ...and the builtin explainer on the records of those without.
	for _, c := range []struct {
		dst, loc     string
		layer, index int
	}{{"mlp_post_act", locNeurons, 1, 4}, {"mlp_autoencoder_latent", "ae.mlp.post_act", 1, 5}, {"attention_autoencoder_latent", "ae.resid.delta_attn", 0, 2}} {
		m, err := dataset.ReadManifest(ctx, st, datasetName)
		if err != nil {
			t.Fatal(err)
		}
		comp, err := explain.ReadComponent(ctx, st, m, c.loc, c.layer, c.index)
		if err != nil {
			t.Fatal(err)
		}
		want, err := (&explain.Builtin{Vocab: vocab}).Explain(ctx, comp)
		if err != nil {
			t.Fatal(err)
		}
		req := `{"dst": "` + c.dst + `", "layerIndex": ` + strconv.Itoa(c.layer) + `, "activationIndex": ` + strconv.Itoa(c.index) + `, "datasets": []}`
		g.ok(t, "/explain", req, &exp)
		if got := list(t, exp, "explanations"); len(got) != 1 || got[0] != want || want == "" {
			t.Errorf("%s: explain %v, want [%q]", c.dst, exp, want)
		}
		// /score: the builtin simulator's simulation score, the number
		// `tdb explain` stores.
		sc, err := explain.ScoreExplanation(ctx, st, m, c.loc, c.layer, c.index, &explain.BuiltinJudge{Vocab: vocab}, want, []string{explain.ScoreSimulation})
		if err != nil || sc.Simulation == nil {
			t.Fatalf("%s: %+v %v", c.dst, sc, err)
		}
		var got map[string]any
		g.ok(t, "/score", req[:len(req)-1]+`, "explanation": `+mustJSON(want)+`, "maxSequences": 0}`, &got)
		if v := num(t, got, "score"); !near(v, sc.Simulation.Value) {
			t.Errorf("%s: score %v, want %v", c.dst, v, sc.Simulation.Value)
		}
	}
	// The stored builtin explanation scores as stored.
	var sc map[string]any
	g.ok(t, "/score", `{`+node+`, "datasets": [], "explanation": `+mustJSON(builtin.Explanation)+`, "maxSequences": 0}`, &sc)
	if v := num(t, sc, "score"); !near(v, builtin.Scores.Simulation.Value) {
		t.Errorf("score %v, stored %v", v, builtin.Scores.Simulation.Value)
	}
	// maxSequences bounds the records scored: a score over one held-out
	// top record and none random is still a correlation.
	g.ok(t, "/score", `{`+node+`, "datasets": [], "explanation": `+mustJSON(builtin.Explanation)+`, "maxSequences": 1}`, &sc)
	if v := num(t, sc, "score"); v < -1 || v > 1 {
		t.Errorf("maxSequences 1: score %v", v)
	}
	// Heads: pair records are reduced per query token; a token the
	// records never hold scores 0 (no prediction: undefined correlation).
	g.ok(t, "/score", `{"dst": "attn_write_norm", "layerIndex": 0, "activationIndex": 1, "datasets": [], "explanation": "the token \" Xylophone\"", "maxSequences": 10}`, &sc)
	if v := num(t, sc, "score"); v != 0 {
		t.Errorf("head score of an absent token: %v", v)
	}
	g.fails(t, "/score", `{`+node+`, "datasets": [], "maxSequences": 3}`, http.StatusBadRequest, "explanation")
	if _, ok := NewExplainStore(nil).(NoExplanations); !ok {
		t.Error("NewExplainStore(nil) is not NoExplanations")
	}
	g.fails(t, "/explain", `{"dst": "mlp_post_act", "layerIndex": 1, "activationIndex": 99999, "datasets": []}`, http.StatusNotFound, "99999")
}
