package explain

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"tdb/store"
	"tdb/store/azuritetest"
)

// publicFile writes a file in the neuron-explainer form (two explanations,
// the second better) or, for odd components, the flat form.
func publicFile(layer, index int) string {
	if index%2 == 1 {
		return fmt.Sprintf(`{"explanation": "flat explanation %d/%d", "score": 0.%d}`+"\n", layer, index, index)
	}
	return fmt.Sprintf(`{"dataclass_name": "NeuronSimulationResults", "neuron_id": {"layer_index": %d, "neuron_index": %d}, "scored_explanations": [`+
		`{"explanation": "worse %d/%d", "scored_simulation": {"ev_correlation_score": 0.1, "rsquared_score": 0.01, "scored_sequence_simulations": [{"true_activations": [0, 1]}]}},`+
		`{"explanation": "words about layer %d neuron %d", "scored_simulation": {"ev_correlation_score": 0.5%d, "rsquared_score": 0.2, "absolute_dev_explained_score": 0.3}}]}`+"\n",
		layer, index, layer, index, layer, index, index)
}

func checkImported(t *testing.T, st store.Store, layers, comps []int, missing int, sum ImportSummary) {
	t.Helper()
	ctx := context.Background()
	if sum.Imported != len(layers)*len(comps)-missing || sum.Missing != missing {
		t.Fatalf("summary %+v", sum)
	}
	for _, l := range layers {
		for _, c := range comps {
			got, err := Read(ctx, st, "gpt2-public", "mlp.post_act", l, c)
			if err != nil {
				t.Fatal(err)
			}
			if c == 4 {
				if len(got) != 0 {
					t.Fatalf("missing file imported: %+v", got)
				}
				continue
			}
			if len(got) != 1 || got[0].Method != (Method{Explainer: "import", Model: "gpt-4"}) {
				t.Fatalf("%d/%d: %+v", l, c, got)
			}
			s := got[0].Scores.Simulation
			if c%2 == 1 {
				if got[0].Explanation != fmt.Sprintf("flat explanation %d/%d", l, c) || s == nil || s.Value != float64(c)/10 {
					t.Fatalf("%d/%d: %+v %+v", l, c, got[0], s)
				}
				continue
			}
			if got[0].Explanation != fmt.Sprintf("words about layer %d neuron %d", l, c) || s == nil || s.Judge != "import" ||
				s.Value != 0.5+float64(c)/100 || string(s.Details) != `{"absolute_dev_explained_score":0.3,"rsquared_score":0.2}` {
				t.Fatalf("%d/%d: %+v %+v", l, c, got[0], s)
			}
		}
	}
}

func TestImportFromStore(t *testing.T) {
	ctx := context.Background()
	src := store.NewMemory()
	for l := range 2 {
		for c := range 6 {
			if c == 4 {
				continue // missing at the source
			}
			src.Put(ctx, fmt.Sprintf("%d/%d.jsonl", l, c), strings.NewReader(publicFile(l, c)))
		}
	}
	dst := store.NewMemory()
	im := &Import{Source: src, Store: dst, Dataset: "gpt2-public", Location: "mlp.post_act", Layers: []int{0, 1}, Components: []int{0, 1, 2, 3, 4, 5}, Model: "gpt-4"}
	sum, err := im.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkImported(t, dst, []int{0, 1}, []int{0, 1, 2, 3, 4, 5}, 2, sum)

	src.Put(ctx, "0/0.jsonl", strings.NewReader("{not json\n"))
	if _, err := im.Run(ctx); err == nil || !strings.Contains(err.Error(), "0/0.jsonl") {
		t.Fatalf("bad JSON: %v", err)
	}
	src.Put(ctx, "0/0.jsonl", strings.NewReader(`{"other": 1}`))
	if _, err := im.Run(ctx); err == nil || !strings.Contains(err.Error(), "no explanation") {
		t.Fatalf("line without explanation: %v", err)
	}
}

// TestImportFromAzurite reads files in the public layout anonymously from a
// public container of the blob emulator.
func TestImportFromAzurite(t *testing.T) {
	conn, endpoint := azuritetest.Start(t)
	ctx := context.Background()
	admin := azuritetest.CreateContainer(t, conn, "openaipublic", container.PublicAccessTypeContainer)
	for l := range 3 {
		for c := range 6 {
			if c == 4 {
				continue
			}
			name := fmt.Sprintf("neuron-explainer/data/explanations/%d/%d.jsonl", l, c)
			if _, err := admin.UploadBuffer(ctx, "openaipublic", name, []byte(publicFile(l, c)), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	src, err := store.NewAzure(endpoint+"/openaipublic/neuron-explainer/data/explanations", store.AzureCredentials{})
	if err != nil {
		t.Fatal(err)
	}
	dst := store.NewMemory()
	var progress strings.Builder
	im := &Import{Source: src, Store: dst, Dataset: "gpt2-public", Location: "mlp.post_act", Layers: []int{0, 2}, Components: []int{0, 1, 2, 3, 4, 5}, Model: "gpt-4", Progress: &progress}
	sum, err := im.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkImported(t, dst, []int{0, 2}, []int{0, 1, 2, 3, 4, 5}, 2, sum)
	if !strings.Contains(progress.String(), "layer 2: 5 explanations imported") {
		t.Fatalf("progress %q", progress.String())
	}
}

func TestParseIndexList(t *testing.T) {
	got, err := ParseIndexList("3, 0-2,2,10-11")
	if err != nil || !reflect.DeepEqual(got, []int{0, 1, 2, 3, 10, 11}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"a", "3-1", "-1", "1-", "0-99999999"} {
		if _, err := ParseIndexList(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseExplanationsJSONL(f *testing.F) {
	f.Add([]byte(publicFile(0, 0)))
	f.Add([]byte(publicFile(0, 1)))
	f.Add([]byte(`{"explanation": "x", "scored_simulation": {"ev_correlation_score": null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ex, err := ParseExplanationsJSONL(data)
		if err == nil && len(strings.TrimSpace(string(data))) > 0 && len(ex) == 0 {
			t.Fatalf("no error and no explanations for %q", data)
		}
	})
}
