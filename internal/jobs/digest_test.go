package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A file rewritten with the same size and modification time gets another
// digest, in the sampled ranges of a large file as in a small one; VerifyFiles
// fails permanently naming it, and passes for the file as submitted.
func TestDigestFilesCatchesSameSizeSameTimeEdits(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "config.json")
	big := filepath.Join(dir, "model.safetensors")
	data := make([]byte, 3*WholeHashBytes+12345)
	for i := range data {
		data[i] = byte(i * 7)
	}
	os.WriteFile(small, []byte(`{"n_layer": 2}`), 0o644)
	os.WriteFile(big, data, 0o644)
	when := time.Now().Add(-time.Hour)
	for _, f := range []string{small, big} {
		os.Chtimes(f, when, when)
	}
	want, err := DigestFiles(dir, "random:tiny", "azblob://a/b/c.pt", filepath.Join(dir, "missing"))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 2 || want[0].Path != small || want[1].Path != big || want[1].Size != int64(len(data)) || len(want[1].Hash) != 64 {
		t.Fatalf("digests %+v", want)
	}
	if err := VerifyFiles(want); err != nil {
		t.Fatalf("unchanged files: %v", err)
	}
	v1 := FilesVersion(want, dir)
	edits := []struct {
		name string
		edit func()
	}{
		{"small file", func() { os.WriteFile(small, []byte(`{"n_layer": 3}`), 0o644) }},
		{"head of the big file", func() { d := append([]byte(nil), data...); d[100]++; os.WriteFile(big, d, 0o644) }},
		{"a sampled range", func() {
			d := append([]byte(nil), data...)
			d[int64(len(d)-SampleBytes)/(SampleCount-1)*5+10]++
			os.WriteFile(big, d, 0o644)
		}},
		{"tail", func() { d := append([]byte(nil), data...); d[len(d)-1]++; os.WriteFile(big, d, 0o644) }},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			e.edit()
			for _, f := range []string{small, big} {
				os.Chtimes(f, when, when)
			}
			err := VerifyFiles(want)
			if !IsPermanent(err) || !errors.Is(err, ErrFilesChanged) || !strings.Contains(err.Error(), "sha256") {
				t.Fatalf("after editing the %s: %v", e.name, err)
			}
			now, _ := DigestFiles(dir)
			if FilesVersion(now, dir) == v1 {
				t.Fatal("same files version after an edit")
			}
			os.WriteFile(small, []byte(`{"n_layer": 2}`), 0o644)
			os.WriteFile(big, data, 0o644)
		})
	}
	os.Remove(small)
	if err := VerifyFiles(want); !IsPermanent(err) || !strings.Contains(err.Error(), "is missing here") {
		t.Fatalf("missing file: %v", err)
	}
}
