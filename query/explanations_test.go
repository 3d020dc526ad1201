package query

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tdb/explain"
	"tdb/store"
)

// writeExplanations explains components 3 and 7 of mlp.post_act layer 1
// with the builtin explainer (simulation and detection scores) through a
// real explain job, and adds an LLM-style explanation of component 7 and
// one of head 2, written with explain.Write.
func writeExplanations(t *testing.T, st store.Store, name string) {
	t.Helper()
	ctx := context.Background()
	v, err := explain.GPT2Vocab()
	if err != nil {
		t.Fatal(err)
	}
	job := &explain.Job{Store: st, Dataset: name, Locations: []string{"mlp.post_act"}, Layers: []int{1}, Components: []int{3, 7},
		Explainer: &explain.Builtin{Vocab: v}, Scores: []string{explain.ScoreSimulation, explain.ScoreDetection}}
	sum, err := job.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Explained != 2 {
		t.Fatalf("explain job: %+v", sum)
	}
	created := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	rows := []explain.Row{
		{Location: "mlp.post_act", Layer: 1, Component: 7, Explanation: explain.Explanation{Explanation: "the word cake after give",
			Method: explain.Method{Explainer: "llm", Model: "test-model"}, Created: created,
			Scores: explain.Scores{Simulation: &explain.Score{Value: 0.42, Judge: "llm:test-model"}}}},
		{Location: "attn.heads", Layer: 0, Component: 2, Explanation: explain.Explanation{Explanation: "capital cities such as Paris",
			Method: explain.Method{Explainer: "import"}, Created: created}},
	}
	if err := explain.Write(ctx, st, name, rows); err != nil {
		t.Fatal(err)
	}
}

// clock is a test clock the reader reads concurrently.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *clock                   { c := &clock{}; c.ns.Store(time.Now().UnixNano()); return c }
func explPath(loc string, layer, i int) string {
	return fmt.Sprintf("/api/v1/datasets/demo/%s/%d/%d/explanations", loc, layer, i)
}

func TestExplanations(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	makeDataset(t, mem, "demo", 40, 8, 300, 1)
	writeExplanations(t, mem, "demo")
	api := newAPI(t, mem, testOpts(t))
	clk := newClock()
	api.r.now = clk.now

	t.Run("component", func(t *testing.T) {
		want, err := explain.Read(ctx, mem, "demo", "mlp.post_act", 1, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != 2 {
			t.Fatalf("stored: %+v", want)
		}
		code, a, _ := get(t, api, explPath("mlp.post_act", 1, 7))
		if code != 200 || a.Status != "success" {
			t.Fatalf("%d %+v", code, a)
		}
		var raw []map[string]json.RawMessage
		if err := json.Unmarshal(a.Data, &raw); err != nil {
			t.Fatal(err)
		}
		var got []Explanation
		if err := json.Unmarshal(a.Data, &got); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || len(raw) != 2 {
			t.Fatalf("got %s", a.Data)
		}
		for i, g := range got {
			w := want[i]
			if g.Explanation != w.Explanation || g.Method != w.Method.String() || !g.Created.Equal(w.Created) {
				t.Errorf("explanation %d = %+v, want %+v", i, g, w)
			}
			var keys []string
			var sc map[string]json.RawMessage
			if err := json.Unmarshal(raw[i]["scores"], &sc); err != nil {
				t.Fatal(err)
			}
			for k := range sc {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			switch g.Method {
			case "builtin":
				// Builtin: the two methods the job ran, nothing else.
				if !slices.Equal(keys, []string{"detection", "simulation"}) || g.Scores.Simulation.Judge != "builtin" ||
					g.Scores.Simulation.Value != w.Scores.Simulation.Value || g.Scores.Detection.Value != w.Scores.Detection.Value {
					t.Errorf("builtin scores %s, want %+v", raw[i]["scores"], w.Scores)
				}
				if !strings.Contains(g.Explanation, `"`) {
					t.Errorf("builtin explanation %q names no token", g.Explanation)
				}
			case "llm:test-model":
				if !slices.Equal(keys, []string{"simulation"}) || g.Scores.Simulation.Value != 0.42 || g.Explanation != "the word cake after give" {
					t.Errorf("llm explanation %+v scores %s", g, raw[i]["scores"])
				}
			default:
				t.Errorf("method %q", g.Method)
			}
		}
		var head []Explanation
		getData(t, api, explPath("attn.heads", 0, 2), &head)
		if len(head) != 1 || head[0].Method != "import" || head[0].Scores.Simulation != nil {
			t.Errorf("head 2: %+v", head)
		}
		// A component without explanations: an empty list, not an error.
		code, a, _ = get(t, api, explPath("mlp.post_act", 1, 8))
		if code != 200 || string(a.Data) != "[]" {
			t.Errorf("unexplained component: %d %s", code, a.Data)
		}
	})

	t.Run("errors", func(t *testing.T) {
		checkErrors(t, api, []errorCase{
			{"/api/v1/datasets/nope/mlp.post_act/1/7/explanations", "not_found", 404, "nope"},
			{explPath("mlp.pre_act", 1, 7), "not_found", 404, "mlp.pre_act"},
			{explPath("mlp.post_act", 5, 7), "not_found", 404, "layer 5"},
			{explPath("mlp.post_act", 1, 40), "not_found", 404, "0..39"},
			{"/api/v1/datasets/demo/mlp.post_act/1/x/explanations", "bad_request", 400, "index"},
			{"/api/v1/datasets/..%2Fx/mlp.post_act/1/7/explanations", "bad_request", 400, "dataset"},
			{"/api/v1/datasets/demo/search?explanation=cake&token=%20Paris", "bad_request", 400, "exactly one"},
			{"/api/v1/datasets/demo/search?explanation=", "bad_request", 400, "empty"},
			{"/api/v1/datasets/demo/search?explanation=" + strings.Repeat("a", 300), "bad_request", 400, "at most 256"},
			{"/api/v1/datasets/demo/search?explanation=cake&location=mlp.pre_act", "not_found", 404, "mlp.pre_act"},
			{"/api/v1/datasets/nope/search?explanation=cake", "not_found", 404, "nope"},
		})
	})

	t.Run("search", func(t *testing.T) {
		var res ExplanationSearchResult
		getData(t, api, "/api/v1/datasets/demo/search?explanation=cake%20after%20give", &res)
		if res.Query != "cake after give" || len(res.Hits) != 1 {
			t.Fatalf("search: %+v", res)
		}
		h := res.Hits[0]
		if h.Location != "mlp.post_act" || h.Layer != 1 || h.Index != 7 || h.Method != "llm:test-model" || h.Relevance <= 0 || h.Scores.Simulation.Value != 0.42 {
			t.Errorf("hit %+v", h)
		}
		// A builtin explanation is found by its own words, ranked by
		// relevance; the location filter removes the head.
		stored, err := explain.Read(ctx, mem, "demo", "mlp.post_act", 1, 3)
		if err != nil || len(stored) != 1 {
			t.Fatalf("stored %+v %v", stored, err)
		}
		text := stored[0].Explanation
		getData(t, api, "/api/v1/datasets/demo/search?explanation="+url.QueryEscape(text)+"&location=mlp.post_act&limit=200", &res)
		found := false
		for i, h := range res.Hits {
			if i > 0 && h.Relevance > res.Hits[i-1].Relevance {
				t.Errorf("hits not ranked: %+v", res.Hits)
			}
			if h.Location != "mlp.post_act" {
				t.Errorf("location filter: %+v", h)
			}
			found = found || (h.Index == 3 && h.Explanation.Explanation == text)
		}
		if !found || res.Hits[0].Explanation.Explanation != text {
			t.Errorf("search %q: %+v", text, res.Hits)
		}
		getData(t, api, "/api/v1/datasets/demo/search?explanation=Paris%20capital", &res)
		if len(res.Hits) != 1 || res.Hits[0].Location != "attn.heads" || res.Hits[0].Index != 2 {
			t.Errorf("Paris: %+v", res.Hits)
		}
		getData(t, api, "/api/v1/datasets/demo/search?explanation=Paris&location=attn.heads&layer=0", &res)
		if len(res.Hits) != 1 {
			t.Errorf("Paris in attn.heads layer 0: %+v", res.Hits)
		}
		getData(t, api, "/api/v1/datasets/demo/search?explanation=Paris&location=mlp.post_act", &res)
		if len(res.Hits) != 0 {
			t.Errorf("Paris in mlp.post_act: %+v", res.Hits)
		}
	})

	t.Run("added later", func(t *testing.T) {
		// Cached: an explanation written now is not seen before the TTL ends...
		var got []Explanation
		getData(t, api, explPath("mlp.post_act", 1, 8), &got)
		var res ExplanationSearchResult
		getData(t, api, "/api/v1/datasets/demo/search?explanation=zebra", &res)
		if len(got) != 0 || len(res.Hits) != 0 {
			t.Fatalf("before: %+v %+v", got, res)
		}
		row := explain.Row{Location: "mlp.post_act", Layer: 1, Component: 8, Explanation: explain.Explanation{
			Explanation: "stripes of a zebra", Method: explain.Method{Explainer: "builtin"}, Created: time.Now().UTC()}}
		if err := explain.Write(ctx, mem, "demo", []explain.Row{row}); err != nil {
			t.Fatal(err)
		}
		clk.advance(DefaultExplanationsTTL / 2)
		getData(t, api, explPath("mlp.post_act", 1, 8), &got)
		getData(t, api, "/api/v1/datasets/demo/search?explanation=zebra", &res)
		if len(got) != 0 || len(res.Hits) != 0 {
			t.Errorf("within the TTL: %+v %+v", got, res)
		}
		// ...and is seen after it.
		clk.advance(DefaultExplanationsTTL)
		getData(t, api, explPath("mlp.post_act", 1, 8), &got)
		getData(t, api, "/api/v1/datasets/demo/search?explanation=zebra", &res)
		if len(got) != 1 || got[0].Explanation != "stripes of a zebra" || len(res.Hits) != 1 || res.Hits[0].Index != 8 {
			t.Errorf("after the TTL: %+v %+v", got, res)
		}
		// With a negative TTL every request reads the store.
		opts := testOpts(t)
		opts.ExplanationsTTL = -1
		fresh := newAPI(t, mem, opts)
		getData(t, fresh, explPath("mlp.post_act", 1, 9), &got)
		row.Component = 9
		if err := explain.Write(ctx, mem, "demo", []explain.Row{row}); err != nil {
			t.Fatal(err)
		}
		getData(t, fresh, explPath("mlp.post_act", 1, 9), &got)
		if len(got) != 1 {
			t.Errorf("uncached: %+v", got)
		}
	})
}

// TestExplanationsConcurrent: concurrent reads and searches while the
// cache expires under them (-race), every answer right.
func TestExplanationsConcurrent(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	makeDataset(t, mem, "demo", 40, 8, 200, 6)
	writeExplanations(t, mem, "demo")
	want, err := explain.Read(ctx, mem, "demo", "mlp.post_act", 1, 7)
	if err != nil {
		t.Fatal(err)
	}
	opts := testOpts(t)
	opts.CacheBytes = 64 << 10
	api := newAPI(t, mem, opts)
	clk := newClock()
	api.r.now = clk.now
	srv := httptest.NewServer(api)
	defer srv.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				if g == 0 {
					clk.advance(DefaultExplanationsTTL / 3)
				}
				path := explPath("mlp.post_act", 1, 7)
				if i%2 == 1 {
					path = "/api/v1/datasets/demo/search?explanation=cake"
				}
				a, status, err := fetch(srv.URL + path)
				if err != nil || status != 200 {
					t.Errorf("%s: %d %v", path, status, err)
					return
				}
				if i%2 == 1 {
					var res ExplanationSearchResult
					if err := json.Unmarshal(a.Data, &res); err != nil || len(res.Hits) != 1 || res.Hits[0].Index != 7 {
						t.Errorf("search: %s", a.Data)
						return
					}
					continue
				}
				var got []Explanation
				if err := json.Unmarshal(a.Data, &got); err != nil || len(got) != len(want) || got[0].Explanation != want[0].Explanation {
					t.Errorf("explanations: %s", a.Data)
					return
				}
			}
		}()
	}
	wg.Wait()
}
