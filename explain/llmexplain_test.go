package explain

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tdb/collate"
	"tdb/dataset"
	"tdb/explain/llm"
	"tdb/store"
)

// fakeModel is a local chat-completions server whose "model" follows the
// prompts literally: it explains by the most frequent marked token, and
// judges by looking for the explanation's quoted token. Every 11th request
// is refused with 429 and every 13th answered with garbage, so the client's
// retries are exercised along the way.
func fakeModel(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	marked := regexp.MustCompile(`\[\[(.*?)\]\]`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Messages []llm.Message `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) != 2 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		k := n.Add(1)
		if k%11 == 0 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		sys, user := req.Messages[0].Content, req.Messages[1].Content
		reply := ""
		lines := strings.Split(user, "\n")
		target := ""
		if m := regexp.MustCompile(`^Explanation: .*?"((?:[^"\\]|\\.)*)"`).FindStringSubmatch(lines[0]); m != nil {
			target, _ = strconv.Unquote(`"` + m[1] + `"`)
		}
		switch {
		case k%13 == 0 && sys == explainSystem:
			reply = "\n \n"
		case k%13 == 0:
			reply = "Let me think about this carefully."
		case sys == explainSystem:
			weight := map[string]int{}
			best := ""
			for _, m := range regexp.MustCompile(`\[\[(.*?)\]\]\((\d+)\)`).FindAllStringSubmatch(user, -1) {
				a, _ := strconv.Atoi(m[2])
				weight[m[1]] += a
				if weight[m[1]] > weight[best] || (weight[m[1]] == weight[best] && m[1] < best) {
					best = m[1]
				}
			}
			reply = "Explanation: the word " + strconv.Quote(best) + "."
		case sys == simulateSystem:
			var out [][]float64
			for _, l := range lines {
				_, list, ok := strings.Cut(l, " tokens): ")
				if !ok {
					continue
				}
				var toks []string
				json.Unmarshal([]byte(list), &toks)
				row := make([]float64, len(toks))
				for i, s := range toks {
					if s == target {
						row[i] = 10
					}
				}
				out = append(out, row)
			}
			b, _ := json.Marshal(out)
			reply = "```json\n" + string(b) + "\n```"
		case sys == detectSystem || sys == fuzzSystem:
			out := []int{}
			for _, l := range lines {
				num, text, ok := strings.Cut(strings.TrimPrefix(l, "Excerpt "), ": ")
				if !ok || !strings.HasPrefix(l, "Excerpt ") {
					continue
				}
				i, _ := strconv.Atoi(num)
				hit := strings.Contains(text, target)
				if sys == fuzzSystem {
					ms := marked.FindAllStringSubmatch(text, -1)
					good := 0
					for _, m := range ms {
						if m[1] == target {
							good++
						}
					}
					hit = len(ms) > 0 && 2*good >= len(ms)
				}
				if hit {
					out = append(out, i)
				}
			}
			b, _ := json.Marshal(out)
			reply = string(b)
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"role": "assistant", "content": reply}}}})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestLLMMethodEndToEnd(t *testing.T) {
	ctx := context.Background()
	v, err := GPT2Vocab()
	if err != nil {
		t.Fatal(err)
	}
	wins := corpusWindows(t, 600)
	ps := plantNeurons(t, wins)[:6] // single-token neurons
	st := store.NewMemory()
	buildPlantedDataset(t, st, "planted", wins, ps, collate.DefaultConfig())
	srv, requests := fakeModel(t)
	client := &llm.Client{URL: srv.URL + "/v1", Model: "fake-1", Backoff: time.Millisecond, Cache: st, Attempts: 8}
	job := &Job{Store: st, Dataset: "planted", Explainer: &LLMExplainer{Client: client, Vocab: v},
		Judge: &LLMJudge{Client: client, Vocab: v, Batch: 4}, Scores: ScoreMethods, Workers: 3}
	sum, err := job.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Explained != len(ps) {
		t.Fatalf("summary %+v", sum)
	}
	rows, err := ReadLayer(ctx, st, "planted", "mlp.post_act", 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dataset.ReadManifest(ctx, st, "planted")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		want := "the word " + strconv.Quote(v.Text(ps[r.Component].toks[0]))
		t.Logf("component %d: %q", r.Component, r.Explanation.Explanation)
		if r.Explanation.Explanation != want {
			t.Errorf("component %d: %q, want %q", r.Component, r.Explanation.Explanation, want)
		}
		if r.Method != (Method{Explainer: "llm", Model: "fake-1"}) {
			t.Errorf("method %+v", r.Method)
		}
		// The fake model judges as the builtin judge does (a quoted token),
		// so the scores must agree with the builtin judge's.
		c, err := ReadComponent(ctx, st, m, "mlp.post_act", 0, r.Component)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := Scored(ctx, &BuiltinJudge{Vocab: v}, c, r.Explanation.Explanation, ScoreMethods)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range [][2]*Score{{r.Scores.Simulation, ref.Simulation}, {r.Scores.Detection, ref.Detection}, {r.Scores.Fuzzing, ref.Fuzzing}} {
			if p[0] == nil || p[0].Judge != "llm:fake-1" || math.Abs(p[0].Value-p[1].Value) > 0.1 {
				t.Errorf("component %d: llm score %+v, builtin judge %.3f", r.Component, p[0], p[1].Value)
			}
		}
		if r.Scores.Simulation.Value < 0.5 {
			t.Errorf("component %d: simulation %.3f", r.Component, r.Scores.Simulation.Value)
		}
	}
	stats := client.Stats()
	if stats.Retries == 0 {
		t.Fatalf("the fake model's 429s and prose were never retried: %+v", stats)
	}
	// Nothing is paid for twice: explaining again from scratch (the stored
	// explanations deleted) is answered from the cache.
	keys, _ := st.List(ctx, Prefix("planted"))
	for _, k := range keys {
		st.Delete(ctx, k)
	}
	before := requests.Load()
	if _, err := job.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if requests.Load() != before {
		t.Fatalf("re-run made %d requests, want 0 (cache)", requests.Load()-before)
	}
	again, _ := ReadLayer(ctx, st, "planted", "mlp.post_act", 0)
	if len(again) != len(rows) || again[0].Explanation.Explanation != rows[0].Explanation.Explanation {
		t.Fatalf("cached run differs")
	}
}

func TestCleanExplanation(t *testing.T) {
	for in, want := range map[string]string{
		"Explanation: the word \" France\".": `the word " France"`,
		"\n\n  'cats'  \n more":              "cats",
		"**Explanation:** dates":             "dates",
	} {
		got, err := cleanExplanation(in)
		if err != nil || got != want {
			t.Errorf("cleanExplanation(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "  \n ", strings.Repeat("x", 400)} {
		if _, err := cleanExplanation(bad); err == nil {
			t.Errorf("cleanExplanation(%q) accepted", bad)
		}
	}
}
