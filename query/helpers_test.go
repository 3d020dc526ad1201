package query

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"tdb/collate"
	"tdb/dataset"
	"tdb/store"
)

// makeDataset collates synthetic windows with the real accumulators and
// writes a dataset: mlp.post_act at layers 0 and 1 (C components, T
// tokens) and attn.heads at layer 0 (4 heads).
func makeDataset(t testing.TB, st store.Store, name string, C, T, windows int, seed uint64) *dataset.Manifest {
	t.Helper()
	ctx := context.Background()
	cfg := collate.Config{TopK: 6, RandomK: 4, QuantileBuckets: 3, PerBucket: 2, QuantilePool: 24, Seed: 1}
	rng := rand.New(rand.NewPCG(seed, 7))
	m := &dataset.Manifest{Name: name, Model: "gpt2", Corpus: "synthetic:test", Tokens: int64(windows * T), NCtx: T,
		Settings: dataset.Settings(cfg), ComponentsPerRowGroup: 8, CreatedBy: "query test"}
	wins := make([][]int32, windows)
	for w := range wins {
		wins[w] = make([]int32, T)
		for i := range wins[w] {
			wins[w][i] = int32(rng.IntN(2000))
		}
	}
	for _, layer := range []int{0, 1} {
		acc, err := collate.NewLayerAccumulator("mlp.post_act", layer, C, cfg)
		if err != nil {
			t.Fatal(err)
		}
		acts := make([]float32, T*C)
		for w, toks := range wins {
			for i := range acts {
				tok, c := toks[i/C], i%C
				// Component c likes tokens ≡ c (mod 50); plus noise.
				v := float32(rng.NormFloat64()) * 0.3
				if int(tok)%50 == c%50 {
					v += 3 + float32(c)/float32(C)
				}
				acts[i] = float32(math.Max(float64(v), -0.2))
			}
			if err := acc.AddWindow(dataset.Source{Doc: int64(w), Offset: int64(w % 3)}, toks, acts); err != nil {
				t.Fatal(err)
			}
		}
		if err := collate.WriteLayer(ctx, st, name, acc, 8); err != nil {
			t.Fatal(err)
		}
		if layer == 0 {
			m.Locations = append(m.Locations, dataset.ManifestLocation{Name: "mlp.post_act", Components: C})
		}
		m.Locations[0].Layers = append(m.Locations[0].Layers, layer)
	}
	const H = 4
	acc, err := collate.NewLayerAccumulator("attn.heads", 0, H, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for w, toks := range wins[:min(len(wins), 40)] {
		vals := make([]float32, T*T*H)
		for i := range vals {
			vals[i] = rng.Float32()
		}
		if err := acc.AddPairWindow(dataset.Source{Doc: int64(w), Offset: int64(w % 3)}, toks, vals, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := collate.WriteLayer(ctx, st, name, acc, 8); err != nil {
		t.Fatal(err)
	}
	m.Locations = append(m.Locations, dataset.ManifestLocation{Name: "attn.heads", Layers: []int{0}, Components: H, Pairs: true})
	if err := dataset.WriteManifest(ctx, st, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// answer is a decoded envelope.
type answer struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func get(t testing.TB, h http.Handler, path string, hdr ...string) (int, answer, http.Header) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	var a answer
	if rec.Header().Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("GET %s: %d, not JSON: %v: %q", path, rec.Code, err, body)
		}
	} else {
		a.Data = body
	}
	return rec.Code, a, rec.Header()
}

// getData GETs path, requires success and decodes data into v.
func getData(t testing.TB, h http.Handler, path string, v any) {
	t.Helper()
	code, a, _ := get(t, h, path)
	if code != 200 || a.Status != "success" {
		t.Fatalf("GET %s: %d %s %s: %s", path, code, a.Status, a.ErrorType, a.Error)
	}
	if err := json.Unmarshal(a.Data, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func newAPI(t testing.TB, st store.Store, opts Options) *API {
	t.Helper()
	a, err := New(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// marshal re-encodes an answer as the API sends it.
func (a answer) marshal() ([]byte, error) {
	return json.Marshal(envelope{Status: a.Status, Data: a.Data, ErrorType: a.ErrorType, Error: a.Error})
}

// fetch GETs url from a running server and decodes the envelope.
func fetch(url string) (a answer, status int, err error) {
	resp, err := http.Get(url)
	if err != nil {
		return a, 0, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&a)
	return a, resp.StatusCode, err
}

// errorCase is a request that must fail: the HTTP status, the error type
// and a part of the message.
type errorCase struct {
	path, typ string
	code      int
	msg       string
}

// checkErrors GETs every case and checks its error envelope.
func checkErrors(t *testing.T, h http.Handler, cases []errorCase) {
	t.Helper()
	for _, tc := range cases {
		code, a, _ := get(t, h, tc.path)
		if code != tc.code || a.Status != "error" || a.ErrorType != tc.typ || !strings.Contains(a.Error, tc.msg) {
			t.Errorf("GET %s: %d %s %q, want %d %s containing %q", tc.path, code, a.ErrorType, a.Error, tc.code, tc.typ, tc.msg)
		}
	}
}
