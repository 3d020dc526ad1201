package query

import (
	"bytes"
	"testing"

	"tdb/store"
	"tdb/store/azuritetest"
)

// TestAzure serves a dataset written to Azure Blob (Azurite) with ranged
// reads and compares every answer kind with the same dataset in memory.
func TestAzure(t *testing.T) {
	conn, endpoint := azuritetest.Start(t)
	az, err := store.NewAzure(endpoint+"/query/tenant", store.AzureCredentials{ConnectionString: conn})
	if err != nil {
		t.Fatal(err)
	}
	mem := store.NewMemory()
	makeDataset(t, az, "demo", 24, 6, 100, 9)
	makeDataset(t, mem, "demo", 24, 6, 100, 9)
	onAzure, inMem := newAPI(t, az, testOpts(t)), newAPI(t, mem, testOpts(t))
	for _, p := range []string{
		"/api/v1/datasets",
		"/api/v1/datasets/demo/mlp.post_act/1/5",
		"/api/v1/datasets/demo/attn.heads/0/2?k=1",
		"/api/v1/datasets/demo/mlp.post_act/0?sort=max",
		"/api/v1/datasets/demo/search?token=%23100",
		"/api/v1/datasets/demo/mlp.post_act/0/export",
	} {
		c1, a1, _ := get(t, onAzure, p)
		c2, a2, _ := get(t, inMem, p)
		if c1 != 200 || c2 != 200 || !bytes.Equal(a1.Data, a2.Data) {
			t.Errorf("%s: azure %d, memory %d, answers equal %v (%s)", p, c1, c2, bytes.Equal(a1.Data, a2.Data), a1.Error)
		}
	}
}
