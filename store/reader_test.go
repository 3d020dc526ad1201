package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
)

// countingStore counts ranged reads, to check that prefetched ranges are served from memory.
type countingStore struct {
	Store
	ranges int
}

func (c *countingStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	c.ranges++
	return c.Store.GetRange(ctx, key, off, n)
}

func TestReader(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	mem := NewMemory()
	if err := mem.Put(ctx, "a/blob", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Store: mem}
	r, err := NewReader(ctx, st, "a/blob")
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != int64(len(data)) {
		t.Fatalf("size %d", r.Size())
	}
	for _, c := range []struct {
		off, n int64
		eof    bool
	}{{0, 10, false}, {9990, 10, false}, {9995, 10, true}, {5000, 0, false}} {
		p := make([]byte, c.n)
		n, err := r.ReadAt(p, c.off)
		want := data[c.off:min(c.off+c.n, int64(len(data)))]
		if !bytes.Equal(p[:n], want) || (err == io.EOF) != c.eof || err != nil && err != io.EOF {
			t.Errorf("ReadAt(%d, %d) = %d, %v", c.off, c.n, n, err)
		}
	}
	if _, err := r.ReadAt(make([]byte, 1), 10000); err != io.EOF {
		t.Errorf("read at the end: %v", err)
	}
	before := st.ranges
	if err := r.Prefetch(8000, 5000); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 100)
	if n, err := r.ReadAt(p, 9000); err != nil || n != 100 || !bytes.Equal(p, data[9000:9100]) {
		t.Fatalf("prefetched read: %d %v", n, err)
	}
	if st.ranges != before+1 {
		t.Errorf("%d ranged reads for a prefetch and a read inside it, want 1", st.ranges-before)
	}
	// a window replaces what was prefetched: a read in the old range fetches
	if err := r.PrefetchWindow(0, 1000); err != nil {
		t.Fatal(err)
	}
	before = st.ranges
	if n, err := r.ReadAt(p, 500); err != nil || n != 100 || !bytes.Equal(p, data[500:600]) {
		t.Fatalf("read in the window: %d %v", n, err)
	}
	if n, err := r.ReadAt(p, 9000); err != nil || n != 100 || !bytes.Equal(p, data[9000:9100]) {
		t.Fatalf("read outside the window: %d %v", n, err)
	}
	if st.ranges != before+1 {
		t.Errorf("%d ranged reads for one read in the window and one outside it, want 1", st.ranges-before)
	}
	// Read + Seek walk the whole blob
	if _, err := r.Seek(-100, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(rest, data[9900:]) {
		t.Fatalf("read to the end: %d bytes, %v", len(rest), err)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("negative seek accepted")
	}
	if _, err := NewReader(ctx, st, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing blob: %v", err)
	}
}
