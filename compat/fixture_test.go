package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tdb/autoencoder"
	"tdb/autoencoder/saetest"
	"tdb/collate"
	"tdb/dataset"
	"tdb/debugger"
	"tdb/model"
	"tdb/model/tokenizer"
	"tdb/store"
)

// fixture is a real server: a small random GPT-2 with two autoencoders, a
// dataset collated from it in the test, mounted at /compat as tdb serve does.
type fixture struct {
	e      *debugger.Engine
	st     store.Store
	srv    *httptest.Server
	window int
}

const datasetName = "tiny_demo"

var (
	fixtureOnce sync.Once
	shared      *fixture
	fixtureErr  error
)

// writeSAE writes a random SAELens autoencoder and loads it.
func writeSAE(dir string, in, lat int, cfg map[string]any, seed uint64) (*autoencoder.Autoencoder, error) {
	if err := saetest.Random(in, lat, seed, 0.05).Write(dir, cfg); err != nil {
		return nil, err
	}
	return autoencoder.Load(context.Background(), dir, autoencoder.Options{})
}

var corpusTexts = []string{
	"The quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun.",
	"Paris is the capital of France, and Ottawa is the capital of Canada. Berlin is in Germany.",
	"When Mary and John went to the store, John gave a drink to Mary because she was thirsty.",
	"Numbers like 1, 2, 3 and 4 are followed by 5, 6, 7 and then 8, 9, 10 in order.",
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fixtureOnce.Do(func() { shared, fixtureErr = buildFixture() })
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return shared
}

func buildFixture() (*fixture, error) {
	ctx := context.Background()
	m, err := model.NewRandom(model.TinyConfig, 1)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "compat-test-*")
	if err != nil {
		return nil, err
	}
	mlpDir, attnDir := filepath.Join(dir, "mlp"), filepath.Join(dir, "attn")
	_ = os.MkdirAll(mlpDir, 0o755)
	_ = os.MkdirAll(attnDir, 0o755)
	mlpAE, err := writeSAE(mlpDir, m.DMLP, 96, map[string]any{"architecture": "standard"}, 1)
	if err != nil {
		return nil, err
	}
	attnAE, err := writeSAE(attnDir, m.DModel, 48, map[string]any{"architecture": "standard"}, 2)
	if err != nil {
		return nil, err
	}
	e := debugger.New(m, tok)
	if err := e.AddAutoencoder(mlpAE, 1, model.MLPPostAct); err != nil {
		return nil, err
	}
	if err := e.AddAutoencoder(attnAE, 0, model.ResidDeltaAtt); err != nil {
		return nil, err
	}

	// collate: neurons and heads of both layers, the two autoencoders' latents
	cfg := collate.Config{TopK: 4, RandomK: 3, QuantileBuckets: 2, PerBucket: 2, QuantilePool: 6, Seed: 1}
	L, H, C := m.NLayer, m.NHead, m.DMLP
	const W = 12
	neurons, heads := make([]*collate.LayerAccumulator, L), make([]*collate.LayerAccumulator, L)
	for l := range L {
		if neurons[l], err = collate.NewLayerAccumulator(locNeurons, l, C, cfg); err != nil {
			return nil, err
		}
		if heads[l], err = collate.NewLayerAccumulator(locHeads, l, H, cfg); err != nil {
			return nil, err
		}
	}
	mlpLat, err := collate.NewLayerAccumulator("ae.mlp.post_act", 1, mlpAE.NLatents, cfg)
	if err != nil {
		return nil, err
	}
	attnLat, err := collate.NewLayerAccumulator("ae.resid.delta_attn", 0, attnAE.NLatents, cfg)
	if err != nil {
		return nil, err
	}
	var tokens int64
	for doc, text := range corpusTexts {
		ids := tok.Encode(text)
		for off := 0; off+W <= len(ids); off += W {
			win := ids[off : off+W]
			tokens += W
			src := dataset.Source{Doc: int64(doc), Offset: int64(off)}
			t32 := make([]int32, W)
			for i, id := range win {
				t32[i] = int32(id)
			}
			var capture []model.Site
			for l := range L {
				capture = append(capture, model.At(model.MLPPostAct, l))
			}
			ms, err := mlpAE.Splice(1, model.MLPPostAct)
			if err != nil {
				return nil, err
			}
			as, err := attnAE.Splice(0, model.ResidDeltaAtt)
			if err != nil {
				return nil, err
			}
			fwd, err := m.Forward(ctx, model.Request{Tokens: [][]int{win}, Capture: capture, Hooks: []model.Hook{ms.Hook(), as.Hook()}})
			if err != nil {
				return nil, err
			}
			for l := range L {
				if err := neurons[l].AddWindow(src, t32, fwd.Acts[model.At(model.MLPPostAct, l)].Data); err != nil {
					return nil, err
				}
				scores := make([]float32, W*W*H)
				for h := range H {
					tri, err := e.HeadWriteNorms(ctx, win, l, h)
					if err != nil {
						return nil, err
					}
					for q := range W {
						for k := 0; k <= q; k++ {
							scores[(q*W+k)*H+h] = tri[q][k]
						}
					}
				}
				if err := heads[l].AddPairWindow(src, t32, scores, nil); err != nil {
					return nil, err
				}
			}
			if err := mlpLat.AddWindow(src, t32, ms.Latents.Data); err != nil {
				return nil, err
			}
			if err := attnLat.AddWindow(src, t32, as.Latents.Data); err != nil {
				return nil, err
			}
		}
	}
	st := store.NewMemory()
	for _, a := range append(append(neurons, heads...), mlpLat, attnLat) {
		if err := collate.WriteLayer(ctx, st, datasetName, a, 0); err != nil {
			return nil, err
		}
	}
	layers := []int{0, 1}
	if err := dataset.WriteManifest(ctx, st, &dataset.Manifest{Name: datasetName, Model: "random:tiny", NCtx: W, Tokens: tokens, Settings: dataset.Settings(cfg),
		Autoencoders: []string{mlpDir, attnDir},
		Locations: []dataset.ManifestLocation{
			{Name: locNeurons, Layers: layers, Components: C},
			{Name: locHeads, Layers: layers, Components: H, Pairs: true},
			{Name: "ae.mlp.post_act", Layers: []int{1}, Components: mlpAE.NLatents},
			{Name: "ae.resid.delta_attn", Layers: []int{0}, Components: attnAE.NLatents},
		}}); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/compat/", New(Options{Engine: e, Store: st}))
	return &fixture{e: e, st: st, srv: httptest.NewServer(mux), window: W}, nil
}

// post sends a body to /compat+path like the app (a JSON body, or none).
func (f *fixture) post(t *testing.T, path, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/compat"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "http://localhost:1234")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// ok posts and decodes a 200 answer into v, checking the CORS header.
func (f *fixture) ok(t *testing.T, path, body string, v any) {
	t.Helper()
	code, hd, b := f.post(t, path, body)
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", path, code, b)
	}
	if hd.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("%s: no CORS header on success", path)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v in %s", path, err, b)
	}
}

// fails posts and checks an error answer: the status, CORS, {"message"}.
func (f *fixture) fails(t *testing.T, path, body string, code int, wantInMessage string) {
	t.Helper()
	got, hd, b := f.post(t, path, body)
	if got != code {
		t.Fatalf("%s: status %d, want %d (%s)", path, got, code, b)
	}
	if hd.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("%s: error %d without the CORS header", path, code)
	}
	var e map[string]any
	if err := json.Unmarshal(b, &e); err != nil || len(e) != 1 {
		t.Fatalf("%s: error body %s is not {\"message\": ...}", path, b)
	}
	msg, _ := e["message"].(string)
	if !strings.Contains(msg, wantInMessage) {
		t.Fatalf("%s: message %q does not mention %q", path, msg, wantInMessage)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
