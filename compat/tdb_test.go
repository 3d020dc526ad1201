package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tdb/debugger"
	"tdb/internal/memstat"
	"tdb/kernels"
	"tdb/model"
	"tdb/model/tokenizer"
)

const (
	leftPrompt  = "<|endoftext|>Paris, France. Ottawa,"
	rightPrompt = "<|endoftext|>London, England. Ottawa,"
)

func tdbSub(prompt string, ablations, trace any) map[string]any {
	s := map[string]any{"prompt": prompt, "targetTokens": []string{" Canada"}, "distractorTokens": []string{" Germany"},
		"componentTypeForMlp": "neuron", "componentTypeForAttention": "attention_head", "topAndBottomKForNodeTable": 4,
		"hideEarlyLayersWhenAblating": false, "nodeAblations": ablations}
	if ablations == nil {
		s["nodeAblations"] = []any{}
	}
	if trace != nil {
		s["upstreamNodeToTrace"] = trace
	}
	return s
}

// engineNode converts a decoded node index back to an engine node.
func engineNode(t *testing.T, ix any) debugger.Node {
	t.Helper()
	m := ix.(map[string]any)
	ti := m["tensorIndices"].([]any)
	at := func(i int) int { return int(ti[i].(float64)) }
	switch m["nodeType"] {
	case "layer":
		if m["layerIndex"] != nil || len(ti) != 1 {
			t.Fatalf("embedding node %v", m)
		}
		return debugger.Node{Type: debugger.Embedding, Token: at(0)}
	case "attention_head":
		return debugger.Node{Type: debugger.AttnHead, Layer: int(m["layerIndex"].(float64)), Token: at(0), KeyToken: at(1), Index: at(2)}
	}
	return debugger.Node{Type: debugger.NodeType(m["nodeType"].(string)), Layer: int(m["layerIndex"].(float64)), Token: at(0), Index: at(1)}
}

// rawNodeIndices returns a processing result's nodeIndices as JSON text
// (what the app compares), checking the key order.
func rawNodeIndices(t *testing.T, raw []byte, sub int, name string) string {
	t.Helper()
	var r struct {
		InferenceSubResponses []struct {
			ProcessingResponseDataByName map[string]struct {
				NodeIndices []json.RawMessage `json:"nodeIndices"`
			} `json:"processingResponseDataByName"`
		} `json:"inferenceSubResponses"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, ix := range r.InferenceSubResponses[sub].ProcessingResponseDataByName[name].NodeIndices {
		dec := json.NewDecoder(bytes.NewReader(ix))
		var order []string
		depth := 0
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch tok {
			case json.Delim('{'), json.Delim('['):
				depth++
			case json.Delim('}'), json.Delim(']'):
				depth--
			default:
				if s, ok := tok.(string); ok && depth == 1 && len(order) < 4 && (len(order) == 0 || order[len(order)-1] != s) {
					if s == "nodeType" || s == "tensorIndices" || s == "layerIndex" || s == "passType" {
						order = append(order, s)
					}
				}
			}
		}
		if fmt.Sprint(order) != "[nodeType tensorIndices layerIndex passType]" {
			t.Fatalf("%s node index %s: keys %v", name, ix, order)
		}
		buf.Write(ix)
		buf.WriteByte('\n')
	}
	return buf.String()
}

var tokenLists = []string{"upvotedOutputTokens", "inputTokensThatUpvoteMlp", "inputTokensThatUpvoteAttnQ", "inputTokensThatUpvoteAttnK"}

// checkTdb checks every field the app reads in every sub-response against
// the engine's answer to the same question.
func checkTdb(t *testing.T, f *fixture, raw []byte, lastRequest debugger.Request, runs []string) {
	t.Helper()
	var r any
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	subs := list(t, r, "inferenceSubResponses")
	if len(subs) != len(runs) {
		t.Fatalf("%d sub-responses for %d sub-requests", len(subs), len(runs))
	}
	all := lastRequest
	all.Candidates = f.e.Model.Vocab // every token's logit
	want, err := f.e.Run(context.Background(), all)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]debugger.NodeRow{}
	for _, nr := range want.Nodes {
		byName[nr.Node.Name()] = nr
	}
	runOf := map[string]debugger.Run{}
	for _, run := range want.Runs {
		runOf[run.Label] = run
	}
	pairs, err := f.e.AttentionPairEffects(context.Background(), lastRequest)
	if err != nil {
		t.Fatal(err)
	}
	first := rawNodeIndices(t, raw, 0, "topKComponents")
	for i, sub := range subs {
		run := runOf[runs[i]]
		T := len(run.Tokens)
		td := "inferenceResponse.inferenceAndTokenData."
		num(t, sub, td+"inferenceTime")
		if lastRequest.Trace == nil {
			if !near(num(t, sub, td+"loss"), run.Loss) {
				t.Fatalf("sub %d: loss %v, engine %v", i, get(t, sub, td+"loss"), run.Loss)
			}
		} else if !near(num(t, sub, td+"activationValueForBackwardPass"), run.Loss) {
			t.Fatalf("sub %d: traced value %v, engine %v", i, get(t, sub, td+"activationValueForBackwardPass"), run.Loss)
		}
		ints, strs := list(t, sub, td+"tokensAsInts"), list(t, sub, td+"tokensAsStrings")
		for j, tk := range run.Tokens {
			if int(ints[j].(float64)) != tk.ID || strs[j] != tk.Text {
				t.Fatalf("sub %d token %d: %v %v, engine %v", i, j, ints[j], strs[j], tk)
			}
		}
		p := "processingResponseDataByName."
		// node table
		idx := list(t, sub, p+"topKComponents.nodeIndices")
		if len(idx) != len(want.Nodes) && lastRequest.Ablations == nil {
			t.Fatalf("sub %d: %d nodes, engine table %d", i, len(idx), len(want.Nodes))
		}
		if got := rawNodeIndices(t, raw, i, "topKComponents"); got != first {
			t.Fatalf("sub %d's nodeIndices differ from sub 0's:\n%s\nvs\n%s", i, got, first)
		}
		for _, name := range append(tokenLists, "tokenPairAttribution") {
			if got := rawNodeIndices(t, raw, i, name); got != first {
				t.Fatalf("sub %d: %s nodeIndices differ from topKComponents'", i, name)
			}
		}
		for _, col := range debugger.Columns {
			vals := list(t, sub, p+"topKComponents.activationsByGroupId."+col)
			if len(vals) != len(idx) {
				t.Fatalf("sub %d: %d %s values for %d nodes", i, len(vals), col, len(idx))
			}
			for j, ix := range idx {
				n := engineNode(t, ix)
				if n.Token < 0 || n.Token >= T {
					t.Fatalf("node %v: tensorIndices[0] is not a token position", ix)
				}
				nr, ok := byName[n.Name()]
				if !ok {
					t.Fatalf("node %s is not in the engine's table", n.Name())
				}
				if w := pick(nr.Metrics[col], runs[i]); !near(vals[j].(float64), w) {
					t.Fatalf("sub %d %s %s: %v, engine %v", i, n.Name(), col, vals[j], w)
				}
			}
		}
		// token views: at most three non-null lists per node, each {top, bottom} of {token, scalar}
		nonNull := make([]int, len(idx))
		if len(idx) < 8 {
			t.Fatalf("only %d nodes in the table", len(idx))
		}
		for _, name := range tokenLists[:2] {
			n := 0
			for _, x := range list(t, sub, p+name+".topTokensList") {
				if x != nil {
					n++
				}
			}
			if n == 0 {
				t.Fatalf("sub %d: every %s list is null", i, name)
			}
		}
		for _, name := range tokenLists {
			tl := list(t, sub, p+name+".topTokensList")
			if len(tl) != len(idx) {
				t.Fatalf("%s: %d lists for %d nodes", name, len(tl), len(idx))
			}
			for j, x := range tl {
				if x == nil {
					continue
				}
				nonNull[j]++
				for _, side := range []string{"top", "bottom"} {
					for k := range list(t, x, side) {
						get(t, x, fmt.Sprintf("%s.%d.token", side, k))
						num(t, x, fmt.Sprintf("%s.%d.scalar", side, k))
					}
				}
			}
		}
		for j, c := range nonNull {
			if c > 3 {
				t.Fatalf("node %v has %d token lists", idx[j], c)
			}
		}
		for j, x := range list(t, sub, p+"tokenPairAttribution.topTokensAttendedToList") {
			if x != nil && len(list(t, x, "tokenIndices")) != len(list(t, x, "attributions")) {
				t.Fatalf("token pair attribution %d: %v", j, x)
			}
		}
		// logits
		lidx := list(t, sub, p+"topOutputTokenLogits.nodeIndices")
		logits := list(t, sub, p+"topOutputTokenLogits.activationsByGroupId.logits")
		lstr := list(t, sub, p+"topOutputTokenLogits.vocabTokenStringsForIndices")
		if len(lidx) < 100 || len(logits) != len(lidx) || len(lstr) != len(lidx) {
			t.Fatalf("logits: %d indices, %d logits, %d strings", len(lidx), len(logits), len(lstr))
		}
		if got := rawNodeIndices(t, raw, i, "topOutputTokenLogits"); got != rawNodeIndices(t, raw, 0, "topOutputTokenLogits") {
			t.Fatalf("sub %d: logit nodeIndices differ from sub 0's", i)
		}
		all := map[int]float64{}
		for _, c := range run.Candidates.Top {
			all[c.ID] = c.Logit
		}
		for j, ix := range lidx {
			id := int(get(t, ix, "tensorIndices.0").(float64))
			if get(t, ix, "nodeType") != "vocab_token" || !near(logits[j].(float64), all[id]) || lstr[j] != f.e.Tok.Display([]int{id})[0] {
				t.Fatalf("logit %d: %v %v %v, engine %v", j, ix, logits[j], lstr[j], all[id])
			}
		}
		if runs[i] == "main" && int(get(t, lidx[0], "tensorIndices.0").(float64)) != run.Candidates.Top[0].ID {
			t.Fatalf("first logit is not the top candidate")
		}
		// the lowest candidate and the target and distractor are listed too
		listed := map[int]bool{}
		for _, ix := range lidx {
			listed[int(get(t, ix, "tensorIndices.0").(float64))] = true
		}
		extra := []debugger.Candidate{run.Candidates.Top[len(run.Candidates.Top)-1]}
		extra = append(extra, run.Candidates.Pinned...)
		if len(run.Candidates.Pinned) != 2 {
			t.Fatalf("pinned candidates %+v, want the target and the distractor", run.Candidates.Pinned)
		}
		for _, c := range extra {
			if !listed[c.ID] {
				t.Fatalf("logits lack %q (%s)", c.Text, c.Role)
			}
		}
		// token display sums
		sums := p + "componentSumsForTokenDisplay.intermediateSumActivationsByDstByGroupId.act_times_grad."
		emb, mlp := list(t, sub, sums+"token_attribution.value"), list(t, sub, sums+"mlp_act_times_grad.value")
		attn := list(t, sub, sums+"unflattened_attn_act_times_grad.value")
		if len(emb) != T || len(mlp) != T || len(attn) != T {
			t.Fatalf("token display: %d %d %d values for %d tokens", len(emb), len(mlp), len(attn), T)
		}
		ri := 0
		for k, run := range want.Runs {
			if run.Label == runs[i] {
				ri = k
			}
		}
		for q := range T {
			if !near(emb[q].(float64), run.TokenEffects.Embedding[q]) {
				t.Fatalf("token %d: embedding sum %v, engine %v", q, emb[q], run.TokenEffects.Embedding[q])
			}
			wantMLP := run.TokenEffects.MLP[q]
			if lastRequest.UseMLPAutoencoders && !lastRequest.UseAttnAutoencoders {
				wantMLP += run.TokenEffects.Latents[q]
			}
			if !near(mlp[q].(float64), wantMLP) {
				t.Fatalf("token %d: MLP sum %v, engine %v", q, mlp[q], wantMLP)
			}
			row, ok := attn[q].([]any)
			if !ok || len(row) != T {
				t.Fatalf("unflattened attention row %d: %v", q, attn[q])
			}
			var sum float64
			for k, v := range row {
				sum += v.(float64)
				if !near(v.(float64), pairs[ri][q][k]) {
					t.Fatalf("pair (%d,%d): %v, engine %v", q, k, v, pairs[ri][q][k])
				}
			}
			if !near(sum, run.TokenEffects.AttentionFrom[q]) {
				t.Fatalf("token %d: attention row sum %v, engine attended-from %v", q, sum, run.TokenEffects.AttentionFrom[q])
			}
		}
	}
}

func TestBatchedTdbOnePrompt(t *testing.T) {
	f := newFixture(t)
	body := mustJSON(map[string]any{"subRequests": []any{tdbSub(leftPrompt, nil, nil)}})
	code, hd, raw := f.post(t, "/batched_tdb", body)
	if code != http.StatusOK || hd.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("%d %s", code, raw)
	}
	req := debugger.Request{Prompt: leftPrompt, Targets: []string{" Canada"}, Distractors: []string{" Germany"}, TopK: 4}
	checkTdb(t, f, raw, req, []string{"main"})
}

func ablation(nodeType string, layer int, indices ...int) map[string]any {
	return map[string]any{"nodeIndex": map[string]any{"nodeType": nodeType, "tensorIndices": indices, "layerIndex": layer, "passType": "forward"}, "value": 0}
}

func TestBatchedTdbAblatedAndBaseline(t *testing.T) {
	f := newFixture(t)
	T := len(f.e.Tok.Encode(leftPrompt))
	abl := []any{ablation("attention_head", 1, T-1, 0, 2), ablation("mlp_neuron", 0, T-2, 7)}
	body := mustJSON(map[string]any{"subRequests": []any{tdbSub(leftPrompt, abl, nil), tdbSub(leftPrompt, nil, nil)}})
	_, _, raw := f.post(t, "/batched_tdb", body)
	req := debugger.Request{Prompt: leftPrompt, Targets: []string{" Canada"}, Distractors: []string{" Germany"}, TopK: 4,
		Ablations: []debugger.Ablation{{Node: debugger.Node{Type: debugger.AttnHead, Layer: 1, Token: T - 1, KeyToken: 0, Index: 2}},
			{Node: debugger.Node{Type: debugger.MLPNeuron, Layer: 0, Token: T - 2, Index: 7, KeyToken: -1}}}}
	checkTdb(t, f, raw, req, []string{"main", "baseline"})
	var r any
	_ = json.Unmarshal(raw, &r)
	if num(t, r, "inferenceSubResponses.0.inferenceResponse.inferenceAndTokenData.loss") == num(t, r, "inferenceSubResponses.1.inferenceResponse.inferenceAndTokenData.loss") {
		t.Fatal("the ablation did not change the loss")
	}
}

func TestBatchedTdbTwoPrompts(t *testing.T) {
	f := newFixture(t)
	if len(f.e.Tok.Encode(leftPrompt)) != len(f.e.Tok.Encode(rightPrompt)) {
		t.Fatal("test prompts differ in length")
	}
	abl := []any{ablation("mlp_neuron", 1, 2, 30)}
	body := mustJSON(map[string]any{"subRequests": []any{tdbSub(leftPrompt, abl, nil), tdbSub(rightPrompt, abl, nil)}})
	_, _, raw := f.post(t, "/batched_tdb", body)
	req := debugger.Request{Prompt: leftPrompt, SecondPrompt: rightPrompt, Targets: []string{" Canada"}, Distractors: []string{" Germany"}, TopK: 4,
		Ablations: []debugger.Ablation{{Node: debugger.Node{Type: debugger.MLPNeuron, Layer: 1, Token: 2, Index: 30, KeyToken: -1}}}}
	checkTdb(t, f, raw, req, []string{"main", "right"})

	f.fails(t, "/batched_tdb", mustJSON(map[string]any{"subRequests": []any{tdbSub(leftPrompt, nil, nil), tdbSub("<|endoftext|>Paris is in France, and Ottawa is in", nil, nil)}}),
		http.StatusBadRequest, "equal token length")
	bad := tdbSub(leftPrompt, nil, nil)
	bad["targetTokens"] = []string{" Canadanada"}
	f.fails(t, "/batched_tdb", mustJSON(map[string]any{"subRequests": []any{bad}}), http.StatusBadRequest, "Canadanada")
	bad = tdbSub(leftPrompt, nil, nil)
	bad["distractorTokens"] = []string{" Ger many"}
	f.fails(t, "/batched_tdb", mustJSON(map[string]any{"subRequests": []any{bad}}), http.StatusBadRequest, "not exactly one")
	// Two prompts whose answers differ: each side has its own tokens of interest.
	other := tdbSub(rightPrompt, abl, nil)
	other["targetTokens"], other["distractorTokens"] = []string{" England"}, []string{" Canada"}
	_, _, raw = f.post(t, "/batched_tdb", mustJSON(map[string]any{"subRequests": []any{tdbSub(leftPrompt, abl, nil), other}}))
	req.SecondTargets, req.SecondDistractors = []string{" England"}, []string{" Canada"}
	checkTdb(t, f, raw, req, []string{"main", "right"})
	// An ablated run and its baseline share them.
	baseline := tdbSub(leftPrompt, nil, nil)
	baseline["targetTokens"] = []string{" Italy"}
	f.fails(t, "/batched_tdb", mustJSON(map[string]any{"subRequests": []any{tdbSub(leftPrompt, abl, nil), baseline}}), http.StatusBadRequest, "share target")
	f.fails(t, "/batched_tdb", `{"subRequests": []}`, http.StatusBadRequest, "subRequests")
	// An embedding row comes back as the app got it: nodeType "layer", no layer.
	embedding := map[string]any{"nodeIndex": map[string]any{"nodeType": "layer", "layerIndex": nil, "tensorIndices": []any{2}, "passType": "forward"}, "value": 0}
	f.fails(t, "/batched_tdb", mustJSON(map[string]any{"subRequests": []any{tdbSub(leftPrompt, []any{embedding}, nil)}}), http.StatusBadRequest, "embedding nodes (nodeType layer) cannot be ablated")
	f.fails(t, "/batched_tdb", mustJSON(map[string]any{"subRequests": []any{tdbSub(leftPrompt, []any{ablation("mlp_neuron", 5, 0, 1)}, nil)}}), http.StatusBadRequest, "layer 5")
}

func TestBatchedTdbTrace(t *testing.T) {
	f := newFixture(t)
	T := len(f.e.Tok.Encode(leftPrompt))
	trace := map[string]any{"nodeIndex": map[string]any{"nodeType": "attention_head", "tensorIndices": []int{T - 1, 1, 3}, "layerIndex": 1, "passType": "forward"}, "attentionTraceType": "K"}
	body := mustJSON(map[string]any{"subRequests": []any{tdbSub(leftPrompt, nil, trace)}})
	_, _, raw := f.post(t, "/batched_tdb", body)
	req := debugger.Request{Prompt: leftPrompt, Targets: []string{" Canada"}, Distractors: []string{" Germany"}, TopK: 4,
		Trace: &debugger.Trace{Node: debugger.Node{Type: debugger.AttnHead, Layer: 1, Token: T - 1, KeyToken: 1, Index: 3}, Path: "k"}}
	checkTdb(t, f, raw, req, []string{"main"})
}

func TestBatchedTdbLatents(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ mlp, attn string }{{"autoencoder_latent", "attention_head"}, {"autoencoder_latent", "autoencoder_latent"}} {
		s := tdbSub(leftPrompt, nil, nil)
		s["componentTypeForMlp"], s["componentTypeForAttention"] = c.mlp, c.attn
		_, _, raw := f.post(t, "/batched_tdb", mustJSON(map[string]any{"subRequests": []any{s}}))
		req := debugger.Request{Prompt: leftPrompt, Targets: []string{" Canada"}, Distractors: []string{" Germany"}, TopK: 4,
			UseMLPAutoencoders: true, UseAttnAutoencoders: c.attn == "autoencoder_latent"}
		checkTdb(t, f, raw, req, []string{"main"})
		var r any
		_ = json.Unmarshal(raw, &r)
		types := map[any]int{}
		for _, ix := range list(t, r, "inferenceSubResponses.0.processingResponseDataByName.topKComponents.nodeIndices") {
			types[get(t, ix, "nodeType")]++
		}
		if types["mlp_autoencoder_latent"] == 0 {
			t.Fatalf("%v: node types %v", c, types)
		}
		for _, ix := range list(t, r, "inferenceSubResponses.0.processingResponseDataByName.topKComponents.nodeIndices") {
			if get(t, ix, "nodeType") == "mlp_neuron" && get(t, ix, "layerIndex") == 1.0 {
				t.Fatalf("neuron %v listed in a layer whose neurons the autoencoder replaces", ix)
			}
		}
	}
}

func TestBatchedTdbHideEarlyLayers(t *testing.T) {
	f := newFixture(t)
	s := tdbSub(leftPrompt, []any{ablation("mlp_neuron", 1, 3, 9)}, nil)
	s["hideEarlyLayersWhenAblating"] = true
	base := tdbSub(leftPrompt, nil, nil)
	base["hideEarlyLayersWhenAblating"] = true
	var r any
	f.ok(t, "/batched_tdb", mustJSON(map[string]any{"subRequests": []any{s, base}}), &r)
	idx := list(t, r, "inferenceSubResponses.1.processingResponseDataByName.topKComponents.nodeIndices")
	if len(idx) == 0 {
		t.Fatal("no nodes left")
	}
	for _, ix := range idx {
		if l := get(t, ix, "layerIndex"); l == nil || l.(float64) < 1 {
			t.Fatalf("node %v shown though early layers are hidden", ix)
		}
	}
}

// BenchmarkBatchedTdb times one TDB page request ([ablated, baseline]) on the
// test model, through HTTP.
func BenchmarkBatchedTdb(b *testing.B) {
	f, err := buildFixture()
	if err != nil {
		b.Fatal(err)
	}
	defer f.srv.Close()
	body := mustJSON(map[string]any{"subRequests": []any{tdbSub(leftPrompt, []any{ablation("mlp_neuron", 0, 2, 7)}, nil), tdbSub(leftPrompt, nil, nil)}})
	benchPost(b, f.srv.URL+"/compat/batched_tdb", body)
}

// benchPost times posting body to url, reporting CPU seconds per call too
// (the machine may be shared).
func benchPost(b *testing.B, url, body string) {
	cpu := memstat.CPUSeconds()
	for b.Loop() {
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
	b.ReportMetric((memstat.CPUSeconds()-cpu)/float64(b.N), "cpu-s/op")
}

// The generic "autoencoder_latent" node type resolves to the layer's autoencoder.
func TestBatchedTdbGenericLatentAblation(t *testing.T) {
	f := newFixture(t)
	for _, layer := range []int{0, 1} { // layer 0 has the attention autoencoder, layer 1 the MLP one
		s := tdbSub(leftPrompt, []any{ablation("autoencoder_latent", layer, 2, 5)}, nil)
		s["componentTypeForMlp"], s["componentTypeForAttention"] = "autoencoder_latent", "autoencoder_latent"
		_, _, raw := f.post(t, "/batched_tdb", mustJSON(map[string]any{"subRequests": []any{s}}))
		typ := map[int]debugger.NodeType{0: debugger.AttnLatent, 1: debugger.MLPLatent}[layer]
		req := debugger.Request{Prompt: leftPrompt, Targets: []string{" Canada"}, Distractors: []string{" Germany"}, TopK: 4,
			UseMLPAutoencoders: true, UseAttnAutoencoders: true, Ablations: []debugger.Ablation{{Node: debugger.Node{Type: typ, Layer: layer, Token: 2, Index: 5, KeyToken: -1}}}}
		checkTdb(t, f, raw, req, []string{"main"})
	}
}

// BenchmarkBatchedTdbGPT2Small times one TDB page request (one prompt of 17
// tokens, k = 10) on GPT-2-small-shaped random weights with the kernels
// installed, as tdb serve runs it.
func BenchmarkBatchedTdbGPT2Small(b *testing.B) {
	kernels.Install()
	m, err := model.NewRandom(model.Presets["gpt2"], 1)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{Engine: debugger.New(m, tok)}))
	defer srv.Close()
	prompt := "<|endoftext|>Paris is the capital of France, and Ottawa is the capital of Canada. Berlin"
	if n := len(tok.Encode(prompt)); n != 17 {
		b.Fatalf("prompt has %d tokens, want 17", n)
	}
	s := tdbSub(prompt, nil, nil)
	s["topAndBottomKForNodeTable"] = 10
	body := mustJSON(map[string]any{"subRequests": []any{s}})
	benchPost(b, srv.URL+"/batched_tdb", body)
}
