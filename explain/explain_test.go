package explain

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"tdb/collate"
	"tdb/dataset"
	"tdb/store"
)

func testVocab() *Vocab {
	return NewVocab([]string{" France", " Paris", " Lyon", " Mary", " John", " Tom", " the", ",", "\n", " 42", " a \" quote", " after", "Then"})
}

func TestPhraseRoundTrip(t *testing.T) {
	v := testVocab()
	for _, tc := range []struct {
		p    Pattern
		want string
	}{
		{Pattern{Tokens: []int32{0}}, `the token " France"`},
		{Pattern{Tokens: []int32{0}, After: []int32{1}}, `" France" after " Paris"`},
		{Pattern{Tokens: []int32{0}, After: []int32{1, 2}}, `" France" after " Paris" or " Lyon"`},
		{Pattern{Tokens: []int32{3, 4, 5}}, `one of " Mary", " John", " Tom"`},
		{Pattern{Tokens: []int32{3, 4}, After: []int32{6}}, `one of " Mary", " John" after " the"`},
		{Pattern{Tokens: []int32{10}, After: []int32{11}}, `" a \" quote" after " after"`},
		{Pattern{Class: classCapitalized}, `a capitalized word`},
		{Pattern{Class: classNumber, After: []int32{6}}, `a number after " the"`},
		{Pattern{}, `no clear pattern`},
	} {
		got := tc.p.Phrase(v)
		if got != tc.want {
			t.Errorf("Phrase(%+v) = %q, want %q", tc.p, got, tc.want)
		}
		back, ok := ParsePhrase(v, got)
		if !ok || !reflect.DeepEqual(back, tc.p) {
			t.Errorf("ParsePhrase(%q) = %+v, %v; want %+v", got, back, ok, tc.p)
		}
	}
	for _, bad := range []string{"", "the token France", `one of " Nowhere"`, `" France" after`, "fires on French things", `the token " France",`} {
		if p, ok := ParsePhrase(v, bad); ok {
			t.Errorf("ParsePhrase(%q) = %+v, want not ok", bad, p)
		}
	}
}

func TestClassify(t *testing.T) {
	for s, want := range map[string]tokenClass{" Mary": classCapitalized, "Then": classCapitalized, " 42": classNumber, ",": classPunct,
		"\n\n": classNewline, " the": classNone, " A": classNone, " x2": classNone, "": classNone} {
		if got := classify(s); got != want {
			t.Errorf("classify(%q) = %d, want %d", s, got, want)
		}
	}
}

func TestFreeTextSimulation(t *testing.T) {
	v := testVocab()
	j := &BuiltinJudge{Vocab: v}
	rec := Record{Tokens: []int32{6, 0, 7, 1, 3}, Activations: make([]float32, 5)}
	for text, want := range map[string][]float64{
		`mentions of "France" and 'Paris'`:   {0, 1, 0, 1, 0},
		"the country France":                 {0, 1, 0, 0, 0},
		`the token " Mary"`:                  {0, 0, 0, 0, 1},
		`" Paris" after ","`:                 {0, 0, 0, 1, 0},
		"something about cooking":            {0, 0, 0, 0, 0},
		`capital cities like “Paris”, Lyons`: {0, 0, 0, 1, 0},
	} {
		got, err := j.Simulate(context.Background(), text, []Record{rec})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[0], want) {
			t.Errorf("simulate %q = %v, want %v", text, got[0], want)
		}
	}
}

func TestCorrelation(t *testing.T) {
	r, ok := Correlation([]float64{1, 2, 3, 4}, []float64{2, 4, 6, 8})
	if !ok || r < 0.999999 {
		t.Fatalf("r = %v, %v", r, ok)
	}
	r, ok = Correlation([]float64{1, 2, 3, 4}, []float64{4, 3, 2, 1})
	if !ok || r > -0.999999 {
		t.Fatalf("r = %v, %v", r, ok)
	}
	if _, ok := Correlation([]float64{1, 1, 1}, []float64{1, 2, 3}); ok {
		t.Fatal("constant input must be undefined")
	}
	// corrStats must agree with Correlation on a binary mask.
	acts := []float64{0.1, 3, 0.2, 2.5, -0.1, 0}
	mask := []float64{0, 1, 0, 1, 1, 0}
	want, _ := Correlation(mask, acts)
	var cs corrStats
	var sum, sq float64
	var m stat
	for i, a := range acts {
		sum += a
		sq += a * a
		if mask[i] == 1 {
			m = m.add(stat{1, a})
		}
	}
	cs.n = len(acts)
	cs.mean = sum / 6
	cs.variance = sq/6 - cs.mean*cs.mean
	if got := cs.corr(m); got-want > 1e-12 || want-got > 1e-12 {
		t.Fatalf("corrStats %v, Correlation %v", got, want)
	}
}

func TestStorageRoundTripMergeAndSearch(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sim := &Score{Value: 0.5, Judge: "builtin", Details: json.RawMessage(`{"top_records":16}`)}
	rows := []Row{
		{Location: "mlp.post_act", Layer: 3, Component: 7, Explanation: Explanation{Explanation: `the token " France"`, Method: Method{Explainer: "builtin"}, Scores: Scores{Simulation: sim}, Created: t0}},
		{Location: "mlp.post_act", Layer: 3, Component: 7, Explanation: Explanation{Explanation: "countries in Europe", Method: Method{Explainer: "llm", Model: "m1"}, Created: t0}},
		{Location: "mlp.post_act", Layer: 3, Component: 2000, Explanation: Explanation{Explanation: "French cooking terms", Method: Method{Explainer: "builtin"}, Created: t0}},
		{Location: "attn.heads", Layer: 0, Component: 1, Explanation: Explanation{Explanation: "attends to France from Paris", Method: Method{Explainer: "builtin"}, Created: t0}},
	}
	if err := Write(ctx, st, "demo", rows); err != nil {
		t.Fatal(err)
	}
	got, err := Read(ctx, st, "demo", "mlp.post_act", 3, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Method.Explainer != "builtin" || got[1].Method.Model != "m1" || !got[0].Created.Equal(t0) {
		t.Fatalf("Read = %+v", got)
	}
	if got[0].Scores.Simulation == nil || got[0].Scores.Simulation.Value != 0.5 || got[0].Scores.Detection != nil || string(got[0].Scores.Simulation.Details) != `{"top_records":16}` {
		t.Fatalf("scores = %+v", got[0].Scores)
	}
	b, _ := json.Marshal(got[0])
	var generic map[string]any
	json.Unmarshal(b, &generic)
	if _, ok := generic["scores"].(map[string]any)["detection"]; ok {
		t.Fatalf("a method not run must be absent: %s", b)
	}
	for _, k := range []string{"explanation", "method", "scores"} {
		if _, ok := generic[k]; !ok {
			t.Fatalf("JSON lacks %q: %s", k, b)
		}
	}
	keys, _ := st.List(ctx, "datasets/demo/explanations/")
	want := []string{
		"datasets/demo/explanations/attn.heads/layer=0/components=0-1024.parquet",
		"datasets/demo/explanations/mlp.post_act/layer=3/components=0-1024.parquet",
		"datasets/demo/explanations/mlp.post_act/layer=3/components=1024-2048.parquet",
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	// Merge: same component and method replaces, others stay.
	upd := rows[0]
	upd.Explanation.Explanation = `" France" after " Paris"`
	if err := Write(ctx, st, "demo", []Row{upd}); err != nil {
		t.Fatal(err)
	}
	got, _ = Read(ctx, st, "demo", "mlp.post_act", 3, 7)
	if len(got) != 2 || got[0].Explanation != `" France" after " Paris"` || got[1].Explanation != "countries in Europe" {
		t.Fatalf("after merge: %+v", got)
	}
	none, err := Read(ctx, st, "demo", "mlp.post_act", 3, 8)
	if err != nil || len(none) != 0 || none == nil {
		t.Fatalf("component without explanations: %v, %v", none, err)
	}
	if _, err := Read(ctx, st, "../x", "mlp.post_act", 3, 8); err == nil {
		t.Fatal("bad dataset name accepted")
	}
	done, err := Done(ctx, st, "demo", "mlp.post_act", 3, Method{Explainer: "builtin"})
	if err != nil || !reflect.DeepEqual(done, map[int]bool{7: true, 2000: true}) {
		t.Fatalf("Done = %v, %v", done, err)
	}

	hits, err := Search(ctx, st, "demo", "France", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 2 {
		t.Fatalf("hits %+v", hits)
	}
	// The short explanation ranks above the longer one (BM25 length norm).
	if hits[0].Component != 7 || hits[1].Location != "attn.heads" {
		t.Fatalf("ranking %+v", hits)
	}
	hits, _ = Search(ctx, st, "demo", "french COOKING", 10)
	if len(hits) != 1 || hits[0].Component != 2000 {
		t.Fatalf("hits %+v", hits)
	}
	if hits, _ := Search(ctx, st, "demo", "  ", 10); len(hits) != 0 {
		t.Fatalf("empty query: %+v", hits)
	}
}

func TestEachComponentMatchesReadComponent(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	wins := corpusWindows(t, 200)
	ps := plantNeurons(t, wins)
	cfg := collate.DefaultConfig()
	buildPlantedDataset(t, st, "d", wins, ps, cfg)
	m, err := dataset.ReadManifest(ctx, st, "d")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = EachComponent(ctx, st, m, "mlp.post_act", 0, func(c int) bool { return c%3 == 0 }, func(c *Component) error {
		one, err := ReadComponent(ctx, st, m, "mlp.post_act", 0, c.Index)
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(one, c) {
			t.Errorf("component %d differs between EachComponent and ReadComponent", c.Index)
		}
		if len(c.Top) != cfg.TopK || len(c.Random) != cfg.RandomK {
			t.Errorf("component %d: %d top, %d random", c.Index, len(c.Top), len(c.Random))
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != (len(ps)+2)/3 {
		t.Fatalf("visited %d components", n)
	}
	// One ranged read per row group (plus the footer), not one per page.
	cs := &countingStore{Store: st}
	if err := EachComponent(ctx, cs, m, "mlp.post_act", 0, nil, func(*Component) error { return nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("ranges %d", cs.ranges.Load())
	if n := cs.ranges.Load(); n > 4 {
		t.Fatalf("%d ranged reads for a one-row-group layer", n)
	}
	if err := EachComponent(ctx, st, m, "mlp.post_act", 5, nil, nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing layer: %v", err)
	}
}

func TestRowMax(t *testing.T) {
	// 3 tokens: rows [a00], [a10 a11], [a20 a21 a22]
	got := rowMax([]float32{1, 5, 2, -1, 0, 3}, 3)
	if !reflect.DeepEqual(got, []float32{1, 5, 3}) {
		t.Fatalf("rowMax = %v", got)
	}
}

// FuzzParsePhrase: explanations come from models and files; parsing never
// panics, and a parsed phrase writes back to text that parses the same.
func FuzzParsePhrase(f *testing.F) {
	v := testVocab()
	for _, s := range []string{`the token " France"`, `" France" after " Paris" or " Lyon"`, `one of " Mary", " John"`, `a number after ","`, "no clear pattern", `"\x"`, `one of "`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := ParsePhrase(v, s)
		freeTextPattern(v, s)
		if !ok {
			return
		}
		back, ok := ParsePhrase(v, p.Phrase(v))
		if !ok || !reflect.DeepEqual(back, p) {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, p, p.Phrase(v), back, ok)
		}
	})
}

func TestJSONShapes(t *testing.T) {
	h := Hit{Row: Row{Location: "mlp.post_act", Layer: 1, Component: 2, Explanation: Explanation{Explanation: "x", Method: Method{Explainer: "builtin"},
		Scores: Scores{Detection: &Score{Value: 0.5, Judge: "builtin"}}}}, Relevance: 1.5}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"location":"mlp.post_act","layer":1,"component":2,"explanation":"x","method":{"explainer":"builtin"},"scores":{"detection":{"value":0.5,"judge":"builtin"}},"created":"0001-01-01T00:00:00Z","relevance":1.5}`
	if string(b) != want {
		t.Fatalf("hit JSON\n%s\nwant\n%s", b, want)
	}
}

func TestPlan(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	m := &dataset.Manifest{Name: "d", Locations: []dataset.ManifestLocation{
		{Name: "mlp.post_act", Layers: []int{0, 1}, Components: 3000},
		{Name: "attn.heads", Layers: []int{0, 1}, Components: 12, Pairs: true}}}
	if err := dataset.WriteManifest(ctx, st, m); err != nil {
		t.Fatal(err)
	}
	plan := func(j Job) ([]Task, error) {
		j.Store, j.Dataset = st, "d"
		_, tasks, err := j.Plan(ctx)
		return tasks, err
	}
	tasks, err := plan(Job{})
	if err != nil || len(tasks) != 2*3+2 || tasks[2] != (Task{"mlp.post_act", 0, 2048, 3000}) || tasks[6] != (Task{"attn.heads", 0, 0, 12}) {
		t.Fatalf("all: %v, %v", tasks, err)
	}
	tasks, err = plan(Job{Layers: []int{1}, Components: []int{5, 2000}})
	want := []Task{{"mlp.post_act", 1, 0, 1024}, {"mlp.post_act", 1, 1024, 2048}, {"attn.heads", 1, 0, 12}}
	if err != nil || !reflect.DeepEqual(tasks, want) {
		t.Fatalf("filtered: %v, %v", tasks, err)
	}
	for _, bad := range []Job{{Components: []int{5000}}, {Layers: []int{7}}, {Locations: []string{"resid"}}, {Locations: []string{"attn.heads"}, Components: []int{20}}} {
		if _, err := plan(bad); err == nil {
			t.Errorf("%+v planned", bad)
		}
	}
	j := Job{Store: st, Dataset: "nope"}
	if _, _, err := j.Plan(ctx); !errors.Is(err, dataset.ErrNoDataset) {
		t.Fatalf("missing dataset: %v", err)
	}
}

type countingStore struct {
	store.Store
	ranges atomic.Int64
}

func (c *countingStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	c.ranges.Add(1)
	return c.Store.GetRange(ctx, key, off, n)
}
