package storetest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"tdb/store"
)

// Blobs reads every blob of st under prefix, keyed by the rest of its key
// after prefix: the whole of a dataset, to compare or to copy.
func Blobs(t testing.TB, st store.Store, prefix string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	keys, err := st.List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		rc, err := st.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(k, prefix)] = b
	}
	return out
}

// Copy copies every blob under prefix from one store to another (so that a
// test can change a copy of a shared fixture).
func Copy(t testing.TB, from, to store.Store, prefix string) {
	t.Helper()
	for k, b := range Blobs(t, from, prefix) {
		if err := to.Put(context.Background(), prefix+k, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
}
