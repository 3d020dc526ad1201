package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tdb import neuron-viewer from a folder, then tdb top reads the result.
func TestImportNeuronViewerThenTop(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "nv")
	rec := `{"tokens":[" The"," capital"," of"," France"],"activations":[0.1,0.5,0.2,%s]}`
	for i, top := range []string{"3.5", "2.25"} {
		body := `{"most_positive_activation_records":[` + strings.Replace(rec, "%s", top, 1) + `],` +
			`"random_sample":[` + strings.Replace(rec, "%s", "0", 1) + `],"random_sample_by_quantile":[[],[]],` +
			`"quantile_boundaries":[0,1,4],"mean":0.25,"variance":0.5,"skewness":1.5,"kurtosis":4}`
		if err := os.MkdirAll(filepath.Join(src, "3"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "3", []string{"0.json", "1.json"}[i]), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	storeDir := filepath.Join(dir, "data")
	code, out, errOut := runTDB(t, "import", "neuron-viewer", "--from", src, "--store", storeDir, "--dataset", "imported")
	if code != 0 || !strings.Contains(out, "dataset imported written") {
		t.Fatalf("import exit %d: %s %s", code, out, errOut)
	}
	code, out, errOut = runTDB(t, "top", "--store", storeDir, "--dataset", "imported", "--layer", "3", "--index", "1", "--json")
	if code != 0 {
		t.Fatalf("top exit %d: %s", code, errOut)
	}
	var c struct {
		Top []struct {
			MaxActivation float32  `json:"max_activation"`
			Tokens        []int32  `json:"tokens"`
			TokenStrings  []string `json:"token_strings"`
		} `json:"top"`
		Stats struct {
			Mean float64 `json:"mean"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Top) != 1 || c.Top[0].MaxActivation != 2.25 || c.Stats.Mean != 0.25 ||
		strings.Join(c.Top[0].TokenStrings, "") != " The capital of France" || c.Top[0].Tokens[3] != 4881 {
		t.Errorf("imported component: %+v", c)
	}
	if code, _, errOut = runTDB(t, "import", "neuron-viewer", "--from", src, "--store", storeDir, "--dataset", "imported"); code == 0 || !strings.Contains(errOut, "exists") {
		t.Errorf("second import: exit %d %s", code, errOut)
	}
	if code, _, _ = runTDB(t, "import", "neuron-viewer", "--dataset", "x"); code != 2 {
		t.Errorf("missing --from: exit %d", code)
	}
}
