package corpus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"tdb/store"
)

// memOpener serves "mem://test/KEY" from st.
func memOpener(st store.Store) Opener {
	return func(_ context.Context, url string) (store.Store, string, error) {
		key, ok := strings.CutPrefix(url, "mem://test/")
		if !ok {
			return nil, "", fmt.Errorf("unknown store in %q", url)
		}
		return st, key, nil
	}
}

// TestStoreMatchesLocal reads the same files from a directory and from a
// store: the windows must be identical.
func TestStoreMatchesLocal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeTextCorpus(t, filepath.Join(dir, "txt"))
	var jl bytes.Buffer
	for i := range 60 {
		fmt.Fprintf(&jl, "{\"text\": %q}\n", fmt.Sprintf("Document %d: %s", i, sampleDocs[i%len(sampleDocs)]))
	}
	writeFile(t, filepath.Join(dir, "j", "a.jsonl"), jl.Bytes())
	writeFile(t, filepath.Join(dir, "j", "b.jsonl"), jl.Bytes())
	var docs []string
	for i := range 100 {
		docs = append(docs, fmt.Sprintf("Parquet row %d. %s", i, sampleDocs[i%len(sampleDocs)]))
	}
	writeParquet(t, filepath.Join(dir, "p", "x.parquet"), docs, 30)
	var stream []uint16
	for i := range 777 {
		stream = append(stream, uint16(i))
	}
	writeTokens(t, filepath.Join(dir, "tok", "s.bin"), stream)

	st := store.NewMemory()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		return st.Put(ctx, "corpora/"+filepath.ToSlash(rel), bytes.NewReader(b))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ kind, glob string }{
		{"text", "txt/*.txt"}, {"jsonl", "j/*.jsonl"}, {"parquet", "p/x.parquet"}, {"tokens", "tok/s.bin"},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			opts := Options{BlockBytes: 500, Opener: memOpener(st)}
			local := open(t, tt.kind+":"+filepath.Join(dir, tt.glob), opts)
			remote := open(t, tt.kind+":mem://test/corpora/"+tt.glob, opts)
			want, wst := collect(t, local, 300, 32)
			got, gst := collect(t, remote, 300, 32)
			if len(want) == 0 || !reflect.DeepEqual(got, want) || gst != wst {
				t.Fatalf("store: %d windows %+v; local: %d windows %+v", len(got), gst, len(want), wst)
			}
			if f := remote.Describe().Files[0]; !strings.HasPrefix(f, "mem://") {
				t.Errorf("remote file described as %q", f)
			}
		})
	}
	for spec, want := range map[string]string{
		"jsonl:mem://test/corpora/j/missing.jsonl": "mem://corpora/j/missing.jsonl",
		"jsonl:mem://test/corpora/j/*.json":        "matches no blobs",
		"jsonl:mem://other/x.jsonl":                "unknown store",
	} {
		_, err := Open(ctx, spec, Options{Opener: memOpener(st)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) error %v, want %q", spec, err, want)
		}
	}
	if _, err := Open(ctx, "jsonl:mem://test/nope.jsonl", Options{Opener: memOpener(st)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing blob: %v does not wrap store.ErrNotFound", err)
	}
}
