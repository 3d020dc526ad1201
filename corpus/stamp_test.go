package corpus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// An edit that keeps a file's size and modification time (touch -d after
// editing, a copy that preserves times) is caught by the block hashes: the
// shard reading the edited block fails with ErrChanged before delivering
// any of its windows, while the shards of unchanged blocks still read.
func TestSameSizeSameTimeEditFailsShard(t *testing.T) {
	ctx := context.Background()
	line := func(word string, i int) string {
		return fmt.Sprintf(`{"text": "The %s sat on the mat %04d."}`+"\n", word, i)
	}
	var cats, dogs strings.Builder
	for i := range 200 {
		cats.WriteString(line("cat", i))
		if i == 150 {
			dogs.WriteString(line("dog", i))
		} else {
			dogs.WriteString(line("cat", i))
		}
	}
	var catDocs, dogDocs []string
	for i := range 200 {
		catDocs = append(catDocs, fmt.Sprintf("The cat sat on the mat %04d.", i))
		d := catDocs[i]
		if i == 150 {
			d = fmt.Sprintf("The dog sat on the mat %04d.", i)
		}
		dogDocs = append(dogDocs, d)
	}
	toks := make([]uint16, 4000)
	for i := range toks {
		toks[i] = uint16(i % 1000)
	}
	edited := slices.Clone(toks)
	// A token of shard 2's part that the last window of shard 1 (starting at
	// 1992, 24 tokens) also reads.
	edited[2010] = 9
	cases := []struct {
		name, spec     string
		write, edit    func(path string)
		tokensPerShard int64
		nCtx           int
	}{
		{"jsonl", "jsonl:%s", func(p string) { writeFile(t, p, []byte(cats.String())) }, func(p string) { writeFile(t, p, []byte(dogs.String())) }, 500, 4},
		{"text", "text:%s/*.txt", func(p string) {
			for i := range 20 {
				writeFile(t, filepath.Join(p, fmt.Sprintf("%02d.txt", i)), []byte(strings.Repeat("The cat sat on the mat. ", 40)))
			}
		}, func(p string) {
			writeFile(t, filepath.Join(p, "13.txt"), []byte(strings.Repeat("The dog sat on the mat. ", 40)))
		}, 500, 4},
		{"tokens", "tokens:%s", func(p string) { writeTokens(t, p, toks) }, func(p string) { writeTokens(t, p, edited) }, 1000, 24},
		{"parquet", "parquet:%s", func(p string) { writeParquet(t, p, catDocs, 50) }, func(p string) { writeParquet(t, p, dogDocs, 50) }, 500, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "corpus")
			tc.write(path)
			opts := Options{BlockBytes: 1024, NCtx: tc.nCtx}
			if tc.name == "text" {
				opts.BlockBytes = 2048
			}
			c := open(t, fmt.Sprintf(tc.spec, path), opts)
			shards, err := c.Plan(ctx, tc.tokensPerShard)
			if err != nil {
				t.Fatal(err)
			}
			if len(shards) < 3 {
				t.Fatalf("%d shards: want several", len(shards))
			}
			for _, sh := range shards {
				for _, p := range sh.Parts {
					if len(p.Hash) != 16 {
						t.Fatalf("shard %d part %+v: no block hash", sh.Index, p)
					}
				}
			}
			// Keep every file's size and modification time.
			files, _ := filepath.Glob(path + "*")
			if tc.name == "text" {
				files, _ = filepath.Glob(filepath.Join(path, "*.txt"))
			}
			before := map[string]os.FileInfo{}
			for _, f := range files {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				before[f] = fi
			}
			tc.edit(path)
			for f, fi := range before {
				if err := os.Chtimes(f, fi.ModTime(), fi.ModTime()); err != nil {
					t.Fatal(err)
				}
				now, _ := os.Stat(f)
				if now.Size() != fi.Size() {
					t.Fatalf("%s: the edit changed the size %d -> %d", f, fi.Size(), now.Size())
				}
			}
			failed := 0
			for _, sh := range shards {
				n := 0
				_, err := c.Windows(ctx, sh, tc.nCtx, func(Window) error { n++; return nil })
				switch {
				case err == nil:
				case errors.Is(err, ErrChanged) && strings.Contains(err.Error(), "corpus changed since the job was planned"):
					failed++
					if len(sh.Parts) == 1 && n != 0 {
						t.Errorf("shard %d delivered %d windows of a changed block", sh.Index, n)
					}
				default:
					t.Fatalf("shard %d: %v", sh.Index, err)
				}
			}
			want := 1
			if tc.name == "tokens" {
				want = 2 // the overhang of shard 1 and the part of shard 2
			}
			if failed != want {
				t.Fatalf("%d of %d shards failed; want %d", failed, len(shards), want)
			}
		})
	}
}

// On Linux the content stamp moves when a file is edited and its size and
// modification time are restored (the status change time moves).
func TestContentStampSeesRestoredTimes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the status change time is read on Linux")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.jsonl")
	writeFile(t, path, []byte(`{"text": "cat"}`+"\n"))
	fi, _ := os.Stat(path)
	c := open(t, "jsonl:"+path, Options{})
	s1, err := c.ContentStamp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := c.ContentStamp(ctx); s != s1 {
		t.Fatal("unstable content stamp")
	}
	time.Sleep(20 * time.Millisecond)
	writeFile(t, path, []byte(`{"text": "dog"}`+"\n"))
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if s2, _ := c.ContentStamp(ctx); s2 == s1 {
		t.Fatal("same content stamp after an edit that restored size and modification time")
	}
}

// CheckTokens finds an id beyond the vocabulary in a whole window, ignores
// the tail that no window reads, and reads nothing over its byte budget.
func TestCheckTokens(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.bin")
	toks := make([]uint16, 1000) // 62 windows of 16, a tail of 8
	toks[995] = 60000
	writeTokens(t, path, toks)
	c := open(t, "tokens:"+path, Options{NCtx: 16})
	if ok, err := c.CheckTokens(ctx, 1<<20); !ok || err != nil {
		t.Fatalf("a bad id in the tail: %v %v", ok, err)
	}
	toks[990] = 0
	toks[500] = 50257
	writeTokens(t, path, toks)
	if _, err := c.CheckTokens(ctx, 1<<20); !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), "token 50257 at index 500 (byte offset 1000)") {
		t.Fatalf("a bad id in a window: %v", err)
	}
	if ok, err := c.CheckTokens(ctx, 1000); ok || err != nil {
		t.Fatalf("over the budget: %v %v; want not checked", ok, err)
	}
	if ok, err := open(t, "synthetic:ioi?docs=3", Options{}).CheckTokens(ctx, 0); !ok || err != nil {
		t.Fatalf("synthetic: %v %v", ok, err)
	}
}
