package viewer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tdb/debugger"
	"tdb/explain"
	"tdb/model"
	"tdb/model/tokenizer"
	"tdb/store"
)

// testEngine is the engine of a random tiny model (seed 1) with GPT-2's
// tokenizer.
func testEngine(t *testing.T) *debugger.Engine {
	t.Helper()
	m, err := model.NewRandom(model.TinyConfig, 1)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		t.Fatal(err)
	}
	return debugger.New(m, tok)
}

func newTestServer(t *testing.T, opt Options) (*Server, *httptest.Server) {
	t.Helper()
	if opt.Engine == nil {
		opt.Engine = testEngine(t)
	}
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

type reply struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func call(t *testing.T, method, url, body string, hdr ...string) (int, reply, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var r reply
	json.Unmarshal(b, &r)
	return res.StatusCode, r, string(b)
}

const question = `{"prompt":"<|endoftext|>When Mary and John went to the store, John gave a drink to","targets":[" Mary"],"distractors":[" John"],"top_k":5}`

// The API answers exactly what the engine answers for the same request.
func TestTDBEqualsEngine(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	code, r, raw := call(t, "POST", ts.URL+"/api/v1/tdb", question)
	if code != 200 || r.Status != "success" {
		t.Fatalf("POST /api/v1/tdb: %d %s", code, raw)
	}
	var req debugger.Request
	json.Unmarshal([]byte(question), &req)
	want, err := s.opt.Engine.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(want)
	var got, exp any
	json.Unmarshal(r.Data, &got)
	json.Unmarshal(wantJSON, &exp)
	g, _ := json.Marshal(got)
	e, _ := json.Marshal(exp)
	if string(g) != string(e) {
		t.Fatalf("response differs from the engine's:\n got %.300s\nwant %.300s", g, e)
	}
	if len(want.Nodes) == 0 {
		t.Fatal("empty node table")
	}
}

func TestBadRequests(t *testing.T) {
	_, ts := newTestServer(t, Options{MaxPromptTokens: 16})
	for _, tc := range []struct{ name, body, want string }{
		{"multi-token target", `{"prompt":"Hello there","targets":[" Marybellezz"]}`, "not exactly one"},
		{"long prompt", `{"prompt":"` + strings.Repeat("hello ", 40) + `","targets":[" Mary"]}`, "too long: 41 tokens, the limit is 16"},
		{"long second prompt", `{"prompt":"hi","second_prompt":"` + strings.Repeat("hello ", 40) + `","targets":[" Mary"]}`, "second prompt is too long"},
		{"empty prompt", `{"targets":[" Mary"]}`, "prompt is empty"},
		{"unknown field", `{"prompt":"hi","targets":[" Mary"],"bogus":1}`, "unknown field"},
		{"not JSON", `{"prompt":`, "bad JSON"},
		{"bad node", `{"prompt":"Hello there","targets":[" Mary"],"ablations":[{"node":{"type":"mlp_neuron","layer":9,"index":0,"token":0}}]}`, "layer"},
		{"huge top_k", `{"prompt":"Hello there","targets":[" Mary"],"top_k":100000}`, "top_k"},
	} {
		code, r, raw := call(t, "POST", ts.URL+"/api/v1/tdb", tc.body)
		if code != 400 || r.ErrorType != "bad_request" || !strings.Contains(r.Error, tc.want) {
			t.Errorf("%s: %d %s, want 400 bad_request containing %q", tc.name, code, raw, tc.want)
		}
	}
}

// A full queue answers 503 with a message at once instead of waiting.
func TestBusy(t *testing.T) {
	s, ts := newTestServer(t, Options{Workers: 1, Queue: -1})
	release, err := s.q.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	code, r, raw := call(t, "POST", ts.URL+"/api/v1/tdb", question)
	if code != 503 || r.ErrorType != "unavailable" || !strings.Contains(r.Error, "busy") {
		t.Fatalf("busy server: %d %s", code, raw)
	}
	code, _, raw = call(t, "POST", ts.URL+"/api/v1/activations", `{"prompt":"hi there","location":"mlp.post_act","layer":0,"index":1}`)
	if code != 503 {
		t.Fatalf("busy server, activations: %d %s", code, raw)
	}
	release()
	if code, _, raw := call(t, "POST", ts.URL+"/api/v1/tdb", question); code != 200 {
		t.Fatalf("after release: %d %s", code, raw)
	}
	_, _, metrics := call(t, "GET", ts.URL+"/metrics", "")
	if !strings.Contains(metrics, "tdb_viewer_busy_total 2") || !strings.Contains(metrics, `tdb_viewer_requests_total{code="503",route="tdb"} 1`) {
		t.Fatalf("metrics do not count the refusals:\n%s", metrics)
	}
}

func TestAuthToken(t *testing.T) {
	_, ts := newTestServer(t, Options{AuthToken: "s3cret"})
	if code, _, _ := call(t, "GET", ts.URL+"/healthz", ""); code != 200 {
		t.Fatalf("/healthz needs no token, got %d", code)
	}
	for _, p := range []string{"/api/v1/model", "/tdb", "/static/app.css", "/metrics"} {
		if code, _, _ := call(t, "GET", ts.URL+p, ""); code != 401 {
			t.Errorf("%s without token: %d, want 401", p, code)
		}
		if code, _, _ := call(t, "GET", ts.URL+p, "", "Authorization", "Bearer wrong"); code != 401 {
			t.Errorf("%s with a wrong token: %d, want 401", p, code)
		}
		if code, _, _ := call(t, "GET", ts.URL+p, "", "Authorization", "Bearer s3cret"); code != 200 {
			t.Errorf("%s with the token: %d, want 200", p, code)
		}
	}
	// ?token= on a page sets a cookie and redirects to the clean URL.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(ts.URL + "/tdb?prompt=hi&token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/tdb?prompt=hi" || len(res.Cookies()) != 1 {
		t.Fatalf("token login: %d %q %v", res.StatusCode, res.Header.Get("Location"), res.Cookies())
	}
	if code, _, _ := call(t, "GET", ts.URL+"/api/v1/model", "", "Cookie", authCookie+"="+res.Cookies()[0].Value); code != 200 {
		t.Fatalf("cookie rejected: %d", code)
	}
}

func TestPagesAndInfo(t *testing.T) {
	_, ts := newTestServer(t, Options{ModelName: "random:tiny", Datasets: []string{"demo"}})
	for _, p := range []string{"/", "/tdb?prompt=x", "/c/demo/mlp.post_act/0/1", "/search", "/l/demo/mlp.post_act/0"} {
		code, _, body := call(t, "GET", ts.URL+p, "")
		if code != 200 || !strings.Contains(body, `src="/static/js/main.js"`) {
			t.Errorf("%s: %d", p, code)
		}
	}
	if code, _, body := call(t, "GET", ts.URL+"/nowhere", ""); code != 404 || !strings.Contains(body, "main.js") {
		t.Errorf("/nowhere: %d, want 404 with the app (it shows the message)", code)
	}
	if code, r, _ := call(t, "GET", ts.URL+"/api/v1/nothing-here", ""); code != 503 || !strings.Contains(r.Error, "--store") {
		t.Errorf("data API without a store: %d %q", code, r.Error)
	}
	for _, f := range []string{"/static/js/main.js", "/static/js/tdb.js", "/static/js/component.js", "/static/js/home.js", "/static/js/util.js", "/static/js/records.js", "/static/app.css"} {
		if code, _, _ := call(t, "GET", ts.URL+f, ""); code != 200 {
			t.Errorf("%s: %d", f, code)
		}
	}
	code, r, _ := call(t, "GET", ts.URL+"/api/v1/model", "")
	var info ModelInfo
	json.Unmarshal(r.Data, &info)
	if code != 200 || !info.Loaded || !info.Random || info.Config.NLayer != 2 || info.Datasets[0] != "demo" || info.MaxPromptTokens != 64 {
		t.Fatalf("model info: %d %+v", code, info)
	}
	code, r, _ = call(t, "POST", ts.URL+"/api/v1/tokenize", `{"text":" Canada!"}`)
	var tk struct{ Tokens []debugger.Token }
	json.Unmarshal(r.Data, &tk)
	if code != 200 || len(tk.Tokens) != 2 || tk.Tokens[0].Text != " Canada" {
		t.Fatalf("tokenize: %d %+v", code, tk)
	}
}

// Activations for a prompt equal the model's own forward pass.
func TestActivations(t *testing.T) {
	s, ts := newTestServer(t, Options{})
	const prompt = "When Mary and John went to the store"
	code, r, raw := call(t, "POST", ts.URL+"/api/v1/activations", `{"prompt":"`+prompt+`","location":"mlp.post_act","layer":1,"index":7}`)
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	var got ActivationsResponse
	json.Unmarshal(r.Data, &got)
	ids := s.tok.Encode(prompt)
	m := s.opt.Engine.Model
	site := model.At(model.MLPPostAct, 1)
	res, err := m.Forward(context.Background(), model.Request{Tokens: [][]int{ids}, Capture: []model.Site{site}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Activations) != len(ids) || len(got.Tokens) != len(ids) {
		t.Fatalf("%d activations for %d tokens", len(got.Activations), len(ids))
	}
	for i := range ids {
		if want := res.Acts[site].Data[i*m.DMLP+7]; got.Activations[i] != want {
			t.Fatalf("token %d: %v, model %v", i, got.Activations[i], want)
		}
	}
	code, r, raw = call(t, "POST", ts.URL+"/api/v1/activations", `{"prompt":"`+prompt+`","location":"attn.heads","layer":0,"index":3}`)
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	json.Unmarshal(r.Data, &got)
	T := len(ids)
	if !got.Pairs || len(got.Activations) != T*(T+1)/2 {
		t.Fatalf("heads: pairs %v, %d values for %d tokens", got.Pairs, len(got.Activations), T)
	}
	off := 0
	for q := range T {
		var sum float64
		for k := 0; k <= q; k++ {
			sum += float64(got.Activations[off+k])
		}
		off += q + 1
		if math.Abs(sum-1) > 1e-4 {
			t.Fatalf("attention row %d sums to %v", q, sum)
		}
	}
	for _, bad := range []string{
		`{"prompt":"hi","location":"attn.qk_probs","layer":0,"index":0}`,
		`{"prompt":"hi","location":"mlp.post_act","layer":7,"index":0}`,
		`{"prompt":"hi","location":"mlp.post_act","layer":0,"index":99999}`,
		`{"prompt":"","location":"mlp.post_act","layer":0,"index":0}`,
		`{"prompt":"hi","location":"../etc","layer":0,"index":0}`,
	} {
		if code, r, _ := call(t, "POST", ts.URL+"/api/v1/activations", bad); code != 400 || r.Error == "" {
			t.Errorf("%s: %d %q, want 400 with a message", bad, code, r.Error)
		}
	}
}

func TestMounts(t *testing.T) {
	_, ts := newTestServer(t, Options{AuthToken: "tok", Mounts: map[string]http.Handler{"/compat/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "compat "+r.Method+" "+r.URL.Path)
	})}})
	if code, _, body := call(t, "POST", ts.URL+"/compat/model_info", "", "Authorization", "Bearer tok"); code != 200 || body != "compat POST /compat/model_info" {
		t.Fatalf("mounted handler: %d %q", code, body)
	}
	if code, _, _ := call(t, "POST", ts.URL+"/compat/model_info", ""); code != 401 {
		t.Fatalf("mounted handler without the token: %d", code)
	}
	if _, err := New(Options{Mounts: map[string]http.Handler{"/api/x/": http.NotFoundHandler()}}); err == nil {
		t.Fatal("a mount under /api/ was accepted")
	}
}

// An open mount answers without the token; nothing else does, not even a
// path that climbs out of the mount.
func TestOpenMounts(t *testing.T) {
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "mounted "+r.Method+" "+r.URL.Path) })
	_, ts := newTestServer(t, Options{AuthToken: "tok", Mounts: map[string]http.Handler{"/compat/": echo, "/other/": echo}, OpenMounts: []string{"/compat/"}})
	for _, m := range []string{"POST", "OPTIONS"} {
		if code, _, body := call(t, m, ts.URL+"/compat/model_info", ""); code != 200 || body != "mounted "+m+" /compat/model_info" {
			t.Errorf("%s open mount without the token: %d %q", m, code, body)
		}
	}
	for _, p := range []string{"/other/x", "/api/v1/model", "/compat/../api/v1/model", "/compat/%2e%2e/api/v1/model", "/compat//x", "/tdb", "/metrics"} {
		if code, _, body := call(t, "GET", ts.URL+p, ""); code != 401 {
			t.Errorf("%s without the token: %d %q, want 401", p, code, body)
		}
	}
	if _, err := New(Options{OpenMounts: []string{"/api/v1/"}}); err == nil {
		t.Error("an open mount that is not a mount was accepted")
	}
}

// Without a model the session API says so (503), and the pages still load.
func TestNoModel(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	for _, p := range []string{"/api/v1/tdb", "/api/v1/activations"} {
		if code, r, _ := call(t, "POST", ts.URL+p, question); code != 503 || !strings.Contains(r.Error, "--model") {
			t.Errorf("%s without a model: %d %q", p, code, r.Error)
		}
	}
	code, r, _ := call(t, "GET", ts.URL+"/api/v1/model", "")
	var info ModelInfo
	json.Unmarshal(r.Data, &info)
	if code != 200 || info.Loaded || info.Config != nil {
		t.Fatalf("model info without a model: %d %+v", code, info)
	}
	if code, _, _ := call(t, "GET", ts.URL+"/tdb", ""); code != 200 {
		t.Fatalf("/tdb: %d", code)
	}
}

func TestExplanationsRoute(t *testing.T) {
	var got []any
	_, ts := newTestServer(t, Options{Explanations: func(ctx context.Context, dataset, location string, layer, index int) ([]explain.Explanation, error) {
		got = append(got, dataset, location, layer, index)
		if dataset == "missing" {
			return nil, store.ErrNotFound
		}
		return []explain.Explanation{{Explanation: "the word Paris"}}, nil
	}})
	code, r, raw := call(t, "GET", ts.URL+"/api/v1/explanations/demo/mlp.post_act/1/7", "")
	var xs []explain.Explanation
	json.Unmarshal(r.Data, &xs)
	if code != 200 || len(xs) != 1 || xs[0].Explanation != "the word Paris" || fmt.Sprint(got) != "[demo mlp.post_act 1 7]" {
		t.Fatalf("explanations: %d %s (asked %v)", code, raw, got)
	}
	if code, r, raw := call(t, "GET", ts.URL+"/api/v1/explanations/missing/mlp.post_act/1/7", ""); code != 200 || string(r.Data) != "[]" {
		t.Fatalf("no explanations: %d %s", code, raw)
	}
	if code, _, _ := call(t, "GET", ts.URL+"/api/v1/explanations/demo/mlp.post_act/x/7", ""); code != 400 {
		t.Fatalf("bad layer: %d", code)
	}
}
