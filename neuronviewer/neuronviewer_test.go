package neuronviewer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"tdb/dataset"
	"tdb/model/tokenizer"
	"tdb/neuronviewer"
	"tdb/query"
	"tdb/store"
	"tdb/store/azuritetest"
)

// genFiles writes neuron-viewer files for layers × n components: records of
// real GPT-2 tokens (as strings) with random activations.
func genFiles(t *testing.T, st store.Store, tok *tokenizer.Tokenizer, layers []int, n int) map[string]*neuronviewer.File {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	words := tok.Encode(" The quick brown fox jumps over the lazy dog in Paris, and café prices rose 5% on Monday.")
	rec := func(scale float64) neuronviewer.Record {
		var r neuronviewer.Record
		for range 12 {
			id := words[rng.IntN(len(words))]
			r.Tokens = append(r.Tokens, tok.Display([]int{id})[0])
			r.Activations = append(r.Activations, scale*rng.Float64())
		}
		return r
	}
	files := map[string]*neuronviewer.File{}
	for _, l := range layers {
		for i := range n {
			f := &neuronviewer.File{Mean: rng.NormFloat64(), Variance: rng.Float64(), Skewness: rng.NormFloat64(), Kurtosis: rng.Float64() * 3,
				QuantileBoundaries: []float64{0, 0.5, 1, 2}}
			for k := range 5 {
				f.MostPositive = append(f.MostPositive, rec(10-float64(k)))
			}
			for range 3 {
				f.RandomSample = append(f.RandomSample, rec(1))
			}
			for range 3 {
				f.RandomByQuantile = append(f.RandomByQuantile, []neuronviewer.Record{rec(1), rec(1)})
			}
			b, _ := json.Marshal(f)
			key := fmt.Sprintf("%d/%d.json", l, i)
			if err := st.Put(context.Background(), key, bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
			files[key] = f
		}
	}
	return files
}

func checkImported(t *testing.T, dst store.Store, tok *tokenizer.Tokenizer, files map[string]*neuronviewer.File, layers []int, n int) {
	t.Helper()
	ctx := context.Background()
	m, err := dataset.ReadManifest(ctx, dst, "nv")
	if err != nil {
		t.Fatal(err)
	}
	if m.ImportedFrom == "" || len(m.Locations) != 1 || m.Locations[0].Components != n || !reflect.DeepEqual(m.Locations[0].Layers, layers) {
		t.Fatalf("manifest %+v", m)
	}
	api, err := query.New(dst, query.Options{Tokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		for _, i := range []int{0, n - 1} {
			f := files[fmt.Sprintf("%d/%d.json", l, i)]
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, httptest.NewRequest("GET", fmt.Sprintf("/api/v1/datasets/nv/mlp.post_act/%d/%d", l, i), nil))
			var a struct {
				Status string
				Data   query.Component
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || rec.Code != 200 {
				t.Fatalf("%d/%d: %d %v %s", l, i, rec.Code, err, rec.Body.String())
			}
			c := a.Data
			if c.Stats.Mean != f.Mean || c.Stats.Kurtosis != f.Kurtosis || len(c.Top) != 5 || len(c.Random) != 3 || len(c.Quantiles) != 3 {
				t.Fatalf("%d/%d: %+v", l, i, c.Stats)
			}
			for k, r := range c.Top {
				if !reflect.DeepEqual(r.TokenStrings, f.MostPositive[k].Tokens) {
					t.Errorf("%d/%d top %d: token strings %q, want %q", l, i, k, r.TokenStrings, f.MostPositive[k].Tokens)
				}
				for j, id := range r.Tokens {
					if id < 0 || tok.Display([]int{int(id)})[0] != f.MostPositive[k].Tokens[j] {
						t.Errorf("token %d recovered as %d", j, id)
					}
					if r.Activations[j] != float32(f.MostPositive[k].Activations[j]) {
						t.Errorf("activation differs")
					}
				}
			}
			if c.Quantiles[1].Lower != 0.5 || c.Quantiles[1].Upper != 1 {
				t.Errorf("quantile bounds %+v", c.Quantiles[1])
			}
		}
	}
	// Searchable like a collated dataset (the index was written).
	if _, err := dst.Size(ctx, dataset.IndexKey("nv", "mlp.post_act", layers[0])); err != nil {
		t.Errorf("no index: %v", err)
	}
}

func TestImportLocal(t *testing.T) {
	tok, err := tokenizer.GPT2()
	if err != nil {
		t.Fatal(err)
	}
	src, dst := store.NewMemory(), store.NewMemory()
	files := genFiles(t, src, tok, []int{0, 2}, 5)
	if _, err := neuronviewer.Import(context.Background(), src, dst, tok, neuronviewer.Options{Dataset: "nv", From: "mem"}); err != nil {
		t.Fatal(err)
	}
	checkImported(t, dst, tok, files, []int{0, 2}, 5)
	if _, err := neuronviewer.Import(context.Background(), src, dst, tok, neuronviewer.Options{Dataset: "nv"}); !errors.Is(err, neuronviewer.ErrExists) {
		t.Errorf("second import: %v", err)
	}
	bad := store.NewMemory()
	bad.Put(context.Background(), "0/0.json", bytes.NewReader([]byte(`{"most_positive_activation_records":[{"tokens":["a"],"activations":[1,2]}]}`)))
	if _, err := neuronviewer.Import(context.Background(), bad, store.NewMemory(), tok, neuronviewer.Options{Dataset: "x"}); err == nil {
		t.Error("mismatched record accepted")
	}
}

// TestImportAzureAnonymous reads the files from a public Azurite container
// with no credentials, as from the public neuron-viewer storage.
func TestImportAzureAnonymous(t *testing.T) {
	conn, endpoint := azuritetest.Start(t)
	azuritetest.CreateContainer(t, conn, "viewer", container.PublicAccessTypeContainer)
	writer, err := store.NewAzure(endpoint+"/viewer/neurons", store.AzureCredentials{ConnectionString: conn})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		t.Fatal(err)
	}
	files := genFiles(t, writer, tok, []int{1}, 4)
	for _, k := range []string{store.EnvAzureConnectionString, store.EnvAzureAccount, store.EnvAzureKey, store.EnvAzureSASToken} {
		t.Setenv(k, "")
	}
	src, err := store.Open(t.Context(), endpoint+"/viewer/neurons")
	if err != nil {
		t.Fatal(err)
	}
	dst := store.NewMemory()
	if _, err := neuronviewer.Import(t.Context(), src, dst, tok, neuronviewer.Options{Dataset: "nv", From: endpoint}); err != nil {
		t.Fatal(err)
	}
	checkImported(t, dst, tok, files, []int{1}, 4)
}
