package autoencoder

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"tdb/model"
	"tdb/store/azuritetest"
)

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Name
		blob string
		loc  model.Location
	}{
		{"mlp_post_act_v4/5", Name{"mlp_post_act", true, 5}, "sparse-autoencoder/gpt2-small/mlp_post_act_v4/autoencoders/5.pt", model.MLPPostAct},
		{"gpt2-small/resid_delta_attn/3", Name{"resid_delta_attn", false, 3}, "sparse-autoencoder/gpt2-small/resid_delta_attn/autoencoders/3.pt", model.ResidDeltaAtt},
		{"resid_delta_mlp_v4/11", Name{"resid_delta_mlp", true, 11}, "sparse-autoencoder/gpt2-small/resid_delta_mlp_v4/autoencoders/11.pt", model.ResidDeltaMLP},
		{" resid_delta_mlp/0 ", Name{"resid_delta_mlp", false, 0}, "sparse-autoencoder/gpt2-small/resid_delta_mlp/autoencoders/0.pt", model.ResidDeltaMLP},
	} {
		n, err := ParseName(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if n != tc.want || n.Blob() != tc.blob || n.Location() != tc.loc {
			t.Fatalf("%q: %+v %s %s", tc.in, n, n.Blob(), n.Location())
		}
		if back, err := ParseName(n.String()); err != nil || back != n {
			t.Fatalf("%q does not round-trip: %q", tc.in, n.String())
		}
	}
	for _, bad := range []string{"", "mlp_post_act", "mlp_post_act/12", "mlp_post_act/-1", "mlp_pre_act/1", "gpt2-medium/mlp_post_act/1", "mlp_post_act_v5/1", "a/b/c/d"} {
		if _, err := ParseName(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

// TestPullFromAzurite serves autoencoders from the blob emulator under the
// public layout, in a container that allows anonymous reads, and pulls them
// through the anonymous client.
func TestPullFromAzurite(t *testing.T) {
	conn, endpoint := azuritetest.Start(t)
	ctx := context.Background()
	admin := azuritetest.CreateContainer(t, conn, blobContainer, container.PublicAccessTypeBlob)
	files := map[string][]byte{}
	w := randomWeights(31, 24, 48)
	w.activation, w.k, w.postact = "TopK", 4, "ReLU"
	files["mlp_post_act_v4/2"] = encodePT(w, ptOptions{})
	if dir := filepath.Join("..", "..", "shared", "fixtures", "hf-gpt2", "tiny"); fileExists(filepath.Join(dir, "sae_relu.pt")) {
		b, err := os.ReadFile(filepath.Join(dir, "sae_relu.pt"))
		if err != nil {
			t.Fatal(err)
		}
		files["resid_delta_attn/1"] = b
	}
	for name, data := range files {
		n, _ := ParseName(name)
		if _, err := admin.UploadBuffer(ctx, blobContainer, n.Blob(), data, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(envEndpoint, endpoint)
	t.Setenv("TDB_CACHE_DIR", t.TempDir())

	for name, data := range files {
		var progress bytes.Buffer
		path, err := Pull(ctx, name, &progress)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: cached file differs from the blob (%v)", name, err)
		}
		if !strings.Contains(progress.String(), "100%") || !strings.Contains(progress.String(), name) {
			t.Fatalf("progress output %q", progress.String())
		}
		n, _ := ParseName(name)
		if path != cachePath(n) {
			t.Fatalf("pulled to %s, want %s", path, cachePath(n))
		}
		a, err := Open(ctx, name, -1, Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Location != n.Location() || a.Layer != n.Layer {
			t.Fatalf("%s opened as %s/%d", name, a.Location, a.Layer)
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Fatalf("cache folder holds %d entries, want only the file (no leftover .part)", len(entries))
		}
	}

	// Cached files are used without the network.
	t.Setenv(envEndpoint, "http://127.0.0.1:1/nowhere")
	if _, err := Open(ctx, "mlp_post_act_v4", 2, Options{}, nil); err != nil {
		t.Fatalf("cached pull went to the network: %v", err)
	}
	t.Setenv(envEndpoint, endpoint)

	if _, err := Pull(ctx, "resid_delta_mlp/7", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing blob: %v", err)
	}
	if _, err := Open(ctx, "mlp_post_act_v4/2", 3, Options{}, nil); err == nil {
		t.Fatal("layer mismatch accepted")
	}
	if _, err := Open(ctx, "./nothing.pt", -1, Options{}, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestPullPrivateContainer proves the pull is anonymous: the same layout in
// a container without public access is refused with a clear error.
func TestPullPrivateContainer(t *testing.T) {
	conn, endpoint := azuritetest.Start(t)
	ctx := context.Background()
	admin := azuritetest.CreateContainer(t, conn, blobContainer, "")
	n, _ := ParseName("mlp_post_act/0")
	if _, err := admin.UploadBuffer(ctx, blobContainer, n.Blob(), encodePT(randomWeights(1, 4, 4), ptOptions{}), nil); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envEndpoint, endpoint)
	t.Setenv("TDB_CACHE_DIR", t.TempDir())
	_, err := Pull(ctx, n.String(), nil)
	if err == nil || !strings.Contains(err.Error(), "anonymous read refused") {
		t.Fatalf("private container: %v", err)
	}
	if _, statErr := os.Stat(cachePath(n)); statErr == nil {
		t.Fatal("a refused download left a file in the cache")
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
