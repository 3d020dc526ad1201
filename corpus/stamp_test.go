package corpus

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A file that changes between planning and reading fails the shard with
// ErrChanged (never mixes content), and changes the corpus's content stamp.
func TestChangedFileFailsShard(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.jsonl")
	if err := os.WriteFile(path, []byte(strings.Repeat(`{"text": "The cat sat on the mat."}`+"\n", 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, "jsonl:"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stamp1, err := c.ContentStamp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shards, err := c.Plan(ctx, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(shards[0].Files) != 1 || shards[0].Files[0].Size == 0 {
		t.Fatalf("shard stamps %+v", shards[0].Files)
	}
	count := func() (int, error) {
		n := 0
		_, err := c.Windows(ctx, shards[0], 4, func(Window) error { n++; return nil })
		return n, err
	}
	if n, err := count(); err != nil || n == 0 {
		t.Fatalf("unchanged corpus: %d windows, %v", n, err)
	}
	// Same size, new content and time.
	later := time.Now().Add(2 * time.Second)
	if err := os.WriteFile(path, []byte(strings.Repeat(`{"text": "The dog sat on the rug."}`+"\n", 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	_, err = count()
	if !errors.Is(err, ErrChanged) || !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), "corpus changed since the job was planned") {
		t.Fatalf("changed file: %v", err)
	}
	stamp2, err := c.ContentStamp(ctx)
	if err != nil || stamp2 == stamp1 {
		t.Fatalf("content stamp %q -> %q (%v): want a new one", stamp1, stamp2, err)
	}
}
