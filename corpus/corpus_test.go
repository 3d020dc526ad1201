package corpus

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"tdb/model/tokenizer"
)

func gpt2(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := tokenizer.GPT2()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func open(t testing.TB, spec string, opts Options) *Corpus {
	t.Helper()
	c, err := Open(context.Background(), spec, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", spec, err)
	}
	return c
}

// collect plans with tokensPerShard and reads every shard, in parallel, then
// returns the windows in shard order with the summed stats.
func collect(t testing.TB, c *Corpus, tokensPerShard int64, nCtx int) ([]Window, Stats) {
	t.Helper()
	ctx := context.Background()
	shards, err := c.Plan(ctx, tokensPerShard)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	// Shards travel as JSON: read them back from JSON like a worker does.
	raw, err := json.Marshal(shards)
	if err != nil {
		t.Fatal(err)
	}
	var got []Shard
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	out := make([][]Window, len(got))
	stats := make([]Stats, len(got))
	errs := make([]error, len(got))
	var wg sync.WaitGroup
	for i, sh := range got {
		if sh.Index != i {
			t.Fatalf("shard %d has index %d", i, sh.Index)
		}
		wg.Go(func() {
			stats[i], errs[i] = c.Windows(ctx, sh, nCtx, func(w Window) error {
				out[i] = append(out[i], w)
				return nil
			})
		})
	}
	wg.Wait()
	var all []Window
	var total Stats
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("Windows(shard %d): %v", i, errs[i])
		}
		all = append(all, out[i]...)
		total.Add(stats[i])
	}
	return all, total
}

type refDoc struct {
	id   int64
	text string
}

// flatWindows is the reference for a corpus that is one block: every
// document's tokens and <|endoftext|>, concatenated, cut every n tokens.
func flatWindows(tok *tokenizer.Tokenizer, docs []refDoc, n int) (ws []Window, dropped int) {
	type src struct {
		tok      int32
		doc, off int64
	}
	var all []src
	for _, d := range docs {
		ids := append(tok.EncodeOrdinary(d.text), tokenizer.EndOfTextID)
		for i, id := range ids {
			all = append(all, src{int32(id), d.id, int64(i)})
		}
	}
	for s := 0; s+n <= len(all); s += n {
		w := Window{Doc: all[s].doc, Offset: all[s].off}
		for _, x := range all[s : s+n] {
			w.Tokens = append(w.Tokens, x.tok)
		}
		ws = append(ws, w)
	}
	return ws, len(all) % n
}

// checkSources verifies that every window starts at the claimed token of
// the claimed document.
func checkSources(t *testing.T, tok *tokenizer.Tokenizer, ws []Window, docText func(int64) string) {
	t.Helper()
	for i, w := range ws {
		ids := append(tok.EncodeOrdinary(docText(w.Doc)), tokenizer.EndOfTextID)
		if w.Offset >= int64(len(ids)) {
			t.Fatalf("window %d: offset %d beyond the %d tokens of doc %d", i, w.Offset, len(ids), w.Doc)
		}
		n := min(int64(len(w.Tokens)), int64(len(ids))-w.Offset)
		for k := range n {
			if int(w.Tokens[k]) != ids[w.Offset+k] {
				t.Fatalf("window %d (doc %d offset %d): token %d is %d, doc has %d", i, w.Doc, w.Offset, k, w.Tokens[k], ids[w.Offset+k])
			}
		}
	}
}

var sampleDocs = []string{
	"The quick brown fox jumps over the lazy dog.",
	"When Mary and John went to the store, John gave a drink to Mary.",
	"",
	"Ünïcödé text, emoji 🎉 and <|endoftext|> as plain text.",
	strings.Repeat("A longer document with many words in it. ", 30),
	"Short.",
	"Paris, France. Ottawa, Canada. Tokyo, Japan.",
}

func writeTextCorpus(t *testing.T, dir string) {
	for i, d := range sampleDocs {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("doc%02d.txt", i)), []byte(d))
	}
}

func TestTextSingleBlockMatchesReference(t *testing.T) {
	tok := gpt2(t)
	dir := t.TempDir()
	writeTextCorpus(t, dir)
	var docs []refDoc
	for i, d := range sampleDocs {
		docs = append(docs, refDoc{int64(i), d})
	}
	for _, n := range []int{1, 7, 64} {
		c := open(t, "text:"+filepath.Join(dir, "*.txt"), Options{BlockBytes: 1 << 20})
		got, st := collect(t, c, 1<<30, n)
		want, dropped := flatWindows(tok, docs, n)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("n=%d: got %d windows, want %d; first got %+v want %+v", n, len(got), len(want), first(got), first(want))
		}
		if st.Dropped != int64(dropped) || st.Windows != int64(len(want)) || st.Docs != int64(len(docs)) {
			t.Errorf("n=%d: stats %+v, want %d windows, %d dropped, %d docs", n, st, len(want), dropped, len(docs))
		}
		if st.Tokens != st.Windows*int64(n)+st.Dropped {
			t.Errorf("n=%d: tokens %d != windows*n + dropped", n, st.Tokens)
		}
	}
	// "<|endoftext|>" inside a document is text, not the separator.
	c := open(t, filepath.Join(dir, "doc03.txt"), Options{})
	ws, _ := collect(t, c, 1000, 1)
	var eot int
	for _, w := range ws {
		if w.Tokens[0] == tokenizer.EndOfTextID {
			eot++
		}
	}
	if eot != 1 {
		t.Errorf("one document gave %d <|endoftext|> tokens, want 1 (the separator)", eot)
	}
}

func first(ws []Window) any {
	if len(ws) == 0 {
		return nil
	}
	return ws[0]
}

// TestShardingDoesNotChangeWindows reads each kind of corpus with shard sizes
// from one block per shard to one shard in all: the windows must not change.
func TestShardingDoesNotChangeWindows(t *testing.T) {
	tok := gpt2(t)
	dir := t.TempDir()
	writeTextCorpus(t, filepath.Join(dir, "txt"))
	// JSONL: two files, blank lines, a null field.
	var lines [2][]string
	var jsonDocs []refDoc
	var line int64
	for f := range 2 {
		for i := range 40 {
			text := fmt.Sprintf("Line %d of file %d. %s", i, f, sampleDocs[i%len(sampleDocs)])
			switch {
			case i%13 == 5:
				lines[f] = append(lines[f], "")
			case i%17 == 3:
				lines[f] = append(lines[f], `{"text": null}`)
			default:
				b, _ := json.Marshal(map[string]any{"id": i, "text": text})
				lines[f] = append(lines[f], string(b))
				jsonDocs = append(jsonDocs, refDoc{line, text})
			}
			line++
		}
		writeFile(t, filepath.Join(dir, "j", fmt.Sprintf("part%d.jsonl", f)), []byte(strings.Join(lines[f], "\n")+"\n"))
	}
	jsonText := func(d int64) string {
		for _, x := range jsonDocs {
			if x.id == d {
				return x.text
			}
		}
		t.Fatalf("no JSONL document %d", d)
		return ""
	}
	var pqDocs []string
	for i := range 300 {
		pqDocs = append(pqDocs, fmt.Sprintf("Row %d: %s", i, sampleDocs[i%len(sampleDocs)]))
	}
	writeParquet(t, filepath.Join(dir, "p", "a.parquet"), pqDocs[:200], 64)
	writeParquet(t, filepath.Join(dir, "p", "b.parquet"), pqDocs[200:], 1000)
	var stream []uint16
	for i := range 1000 {
		stream = append(stream, uint16(i*7%50257))
	}
	writeTokens(t, filepath.Join(dir, "t.bin"), stream)

	syn := open(t, "synthetic:ioi?docs=300&seed=3", Options{})
	tests := []struct {
		spec    string
		docText func(int64) string
	}{
		{"text:" + filepath.Join(dir, "txt", "*.txt"), func(d int64) string { return sampleDocs[d] }},
		{"jsonl:" + filepath.Join(dir, "j", "*.jsonl"), jsonText},
		{"parquet:" + filepath.Join(dir, "p", "*.parquet"), func(d int64) string { return pqDocs[d] }},
		{"synthetic:ioi?docs=300&seed=3", syn.gen.doc},
		{"tokens:" + filepath.Join(dir, "t.bin"), nil},
	}
	for _, tt := range tests {
		for _, bb := range []int64{200, 1500} {
			t.Run(fmt.Sprintf("%s/block=%d", strings.SplitN(tt.spec, ":", 2)[0], bb), func(t *testing.T) {
				c := open(t, tt.spec, Options{BlockBytes: bb})
				const n = 16
				base, baseStats := collect(t, c, 1<<40, n)
				if len(base) < 10 {
					t.Fatalf("only %d windows", len(base))
				}
				for _, per := range []int64{1, 50, 333, 2000} {
					shards, err := c.Plan(context.Background(), per)
					if err != nil {
						t.Fatal(err)
					}
					got, st := collect(t, c, per, n)
					if !reflect.DeepEqual(got, base) || st != baseStats {
						t.Fatalf("%d tokens per shard (%d shards): %d windows %+v, want %d %+v", per, len(shards), len(got), st, len(base), baseStats)
					}
				}
				per1, _ := c.Plan(context.Background(), 1)
				t.Logf("%d windows, %d blocks, stats %+v", len(base), len(per1), baseStats)
				if bb == 200 && len(per1) < 2 {
					t.Errorf("only %d blocks", len(per1))
				}
				if tt.docText != nil {
					checkSources(t, tok, base, tt.docText)
				} else {
					for i, w := range base {
						if w.Doc != 0 || w.Offset != int64(i*n) || w.Tokens[0] != int32(stream[i*n]) {
							t.Fatalf("token window %d: %+v", i, w)
						}
					}
				}
				if baseStats.Tokens != baseStats.Windows*n+baseStats.Dropped {
					t.Errorf("stats %+v: tokens != windows*n + dropped", baseStats)
				}
			})
		}
	}
}

func writeTokens(t testing.TB, path string, toks []uint16) {
	t.Helper()
	b := make([]byte, 2*len(toks))
	for i, x := range toks {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	writeFile(t, path, b)
}

func TestTokenStream(t *testing.T) {
	dir := t.TempDir()
	var stream []uint16
	for i := range 203 {
		stream = append(stream, uint16(50256-i))
	}
	p := filepath.Join(dir, "train.bin")
	writeTokens(t, p, stream)
	c := open(t, p, Options{})
	for _, per := range []int64{1, 10, 64, 100, 1000} {
		ws, st := collect(t, c, per, 10)
		if len(ws) != 20 || st.Windows != 20 || st.Dropped != 3 || st.Tokens != 203 {
			t.Fatalf("per=%d: %d windows, stats %+v; want 20 windows, 3 dropped", per, len(ws), st)
		}
		for k, w := range ws {
			if w.Offset != int64(10*k) || w.Doc != 0 {
				t.Fatalf("window %d source %d/%d", k, w.Doc, w.Offset)
			}
			for j, x := range w.Tokens {
				if x != int32(stream[10*k+j]) {
					t.Fatalf("window %d token %d = %d, want %d", k, j, x, stream[10*k+j])
				}
			}
		}
	}
	// Two files: two streams, doc = file index.
	writeTokens(t, filepath.Join(dir, "val.bin"), stream[:25])
	c = open(t, "tokens:"+filepath.Join(dir, "*.bin"), Options{})
	ws, st := collect(t, c, 7, 10)
	if len(ws) != 22 || ws[0].Doc != 0 || ws[20].Doc != 1 || ws[21].Offset != 10 || st.Dropped != 3+5 {
		t.Fatalf("two streams: %d windows, last %+v, stats %+v", len(ws), ws[len(ws)-1], st)
	}
}

func TestTokenStreamErrors(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	odd := filepath.Join(dir, "odd.bin")
	writeFile(t, odd, make([]byte, 1001))
	c := open(t, "tokens:"+odd, Options{})
	if _, err := c.Plan(ctx, 100); err == nil || !strings.Contains(err.Error(), "1001 bytes is odd") || !strings.Contains(err.Error(), odd) {
		t.Errorf("odd file: %v", err)
	}
	big := filepath.Join(dir, "big.bin")
	toks := make([]uint16, 100)
	toks[37] = 50257
	writeTokens(t, big, toks)
	c = open(t, "tokens:"+big, Options{NCtx: 16})
	// Planning reads every token (to hash it) and refuses the plan.
	_, err := c.Plan(ctx, 1000)
	if !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), "token 50257 at index 37 (byte offset 74)") {
		t.Errorf("token >= vocab at planning: %v", err)
	}
	// A plan made before the file changed: the reader refuses it too.
	writeTokens(t, big, make([]uint16, 100))
	shards, err := c.Plan(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	writeTokens(t, big, toks)
	_, err = c.Windows(ctx, shards[0], 16, func(Window) error { return nil })
	if !errors.Is(err, ErrBadData) {
		t.Errorf("token >= vocab after planning: %v", err)
	}
	empty := filepath.Join(dir, "empty.bin")
	writeFile(t, empty, nil)
	c = open(t, "tokens:"+empty, Options{})
	if _, err := c.Plan(ctx, 100); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty stream: %v", err)
	}
}

func TestJSONL(t *testing.T) {
	tok := gpt2(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "a.jsonl")
	body := "\uFEFF{\"body\": \"first\", \"n\": 1}\n\n  \n{\"body\": \"sec\\nond\"}\r\n{\"body\": null}\n{\"body\": \"last, no newline\"}"
	writeFile(t, p, []byte(body))
	c := open(t, p+"#body", Options{})
	ws, st := collect(t, c, 100, 1)
	want, _ := flatWindows(tok, []refDoc{{0, "first"}, {3, "sec\nond"}, {5, "last, no newline"}}, 1)
	if !reflect.DeepEqual(ws, want) {
		t.Fatalf("got %v\nwant %v", ws, want)
	}
	if st.Docs != 3 || st.Bytes != int64(len(body)) {
		t.Errorf("stats %+v, want 3 docs, %d bytes", st, len(body))
	}
}

func TestJSONLErrors(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	tests := []struct {
		name, body, field, want string
	}{
		{"syntax", "{\"text\": \"ok\"}\n{\"text\": \"ok\"}\n{\"text\": oops}\n", "text", ":3: bad JSON"},
		{"field", "{\"text\": \"ok\"}\n{\"body\": \"x\", \"id\": 2}\n", "text", `:2: no field "text" (the line has fields "body", "id")`},
		{"type", "{\"text\": 12}\n", "text", `:1: field "text" is not a string: "12"`},
		{"array", "[1, 2]\n", "text", ":1: not a JSON object"},
		{"truncated", "{\"text\": \"ok\"}\n{\"text\": \"no end", "text", ":2: bad JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".jsonl")
			writeFile(t, p, []byte(tt.body))
			c := open(t, "jsonl:"+p+"#"+tt.field, Options{})
			shards, err := c.Plan(ctx, 1000)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Windows(ctx, shards[0], 4, func(Window) error { return nil })
			if err == nil || !strings.Contains(err.Error(), p+tt.want) {
				t.Errorf("error %v, want it to contain %q", err, p+tt.want)
			}
		})
	}
	// A bad line deep in a later shard still names its own line number.
	var b strings.Builder
	for i := range 500 {
		if i == 431 {
			b.WriteString("{\"text\": }\n")
			continue
		}
		fmt.Fprintf(&b, "{\"text\": \"document number %d\"}\n", i)
	}
	p := filepath.Join(dir, "deep.jsonl")
	writeFile(t, p, []byte(b.String()))
	c := open(t, "jsonl:"+p, Options{BlockBytes: 256})
	shards, err := c.Plan(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	for _, sh := range shards {
		if _, err := c.Windows(ctx, sh, 4, func(Window) error { return nil }); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], p+":432: bad JSON") {
		t.Errorf("errors %q, want one naming %s:432", errs, p)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	writeFile(t, filepath.Join(dir, "empty.jsonl"), nil)
	writeFile(t, filepath.Join(dir, "blank.txt"), nil)
	tests := []struct{ spec, want string }{
		{filepath.Join(dir, "missing.txt"), filepath.Join(dir, "missing.txt") + ": no such file"},
		{"text:" + filepath.Join(dir, "*.md"), "matches no files"},
		{"jsonl:" + filepath.Join(dir, "nope", "x.jsonl"), "nope/x.jsonl"},
		{"text:" + dir, "is a directory"},
		{"jsonl:azblob://acct/c/x.jsonl", "needs a store opener"},
		{"parquet:" + filepath.Join(dir, "empty.jsonl"), "not a readable Parquet file"},
	}
	for _, tt := range tests {
		_, err := Open(ctx, tt.spec, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) error %v, want it to contain %q", tt.spec, err, tt.want)
		}
	}
	c := open(t, filepath.Join(dir, "empty.jsonl"), Options{})
	if _, err := c.Plan(ctx, 100); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty JSONL: %v", err)
	}
	if _, err := c.Plan(ctx, 0); err == nil {
		t.Error("Plan(0) gave no error")
	}
	// A file that cannot be read is named.
	locked := filepath.Join(dir, "locked.txt")
	writeFile(t, locked, []byte("secret"))
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	if f, err := os.Open(locked); err == nil { // running as root
		f.Close()
	} else {
		c := open(t, locked, Options{})
		shards, err := c.Plan(ctx, 100)
		if err == nil {
			_, err = c.Windows(ctx, shards[0], 1, func(Window) error { return nil })
		}
		if err == nil || !strings.Contains(err.Error(), locked) {
			t.Errorf("unreadable file: %v", err)
		}
	}
}

func TestBadShards(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	writeTextCorpus(t, dir)
	c := open(t, "text:"+filepath.Join(dir, "*.txt"), Options{})
	shards, err := c.Plan(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	other := open(t, "text:"+filepath.Join(dir, "doc0[0-3].txt"), Options{})
	nop := func(Window) error { return nil }
	if _, err := other.Windows(ctx, shards[0], 8, nop); err == nil || !strings.Contains(err.Error(), "was planned for corpus") {
		t.Errorf("shard of another corpus: %v", err)
	}
	bad := shards[0]
	bad.Parts = []Part{{Start: 3, End: 99}}
	if _, err := c.Windows(ctx, bad, 8, nop); err == nil || !strings.Contains(err.Error(), "beyond the 7 files") {
		t.Errorf("out-of-range part: %v", err)
	}
	bad.Parts = []Part{{Start: 5, End: 2}}
	if _, err := c.Windows(ctx, bad, 8, nop); err == nil {
		t.Error("reversed part gave no error")
	}
	if _, err := c.Windows(ctx, shards[0], 0, nop); err == nil {
		t.Error("n_ctx 0 gave no error")
	}
	stop := fmt.Errorf("stop")
	n := 0
	_, err = c.Windows(ctx, shards[0], 2, func(Window) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("callback error: %v after %d windows", err, n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Windows(cctx, shards[0], 2, nop); err == nil {
		t.Error("cancelled context gave no error")
	}
}

func TestDescribe(t *testing.T) {
	dir := t.TempDir()
	writeTextCorpus(t, dir)
	a := open(t, "text:"+filepath.Join(dir, "*.txt"), Options{})
	d := a.Describe()
	if d.Kind != Text || len(d.Files) != len(sampleDocs) || d.BlockBytes != DefaultBlockBytes || !slices.IsSorted(d.Files) {
		t.Errorf("Describe = %+v", d)
	}
	b := open(t, "text:"+filepath.Join(dir, "*.txt"), Options{BlockBytes: 1000})
	if b.Describe().Fingerprint == d.Fingerprint {
		t.Error("block size does not change the fingerprint")
	}
	if again := open(t, "text:"+filepath.Join(dir, "*.txt"), Options{}); again.Describe().Fingerprint != d.Fingerprint {
		t.Error("fingerprint is not stable")
	}
}

// TestTokenizerPipeline checks that tokenizing ahead on several goroutines
// gives exactly the inline result, and stops cleanly on a callback error.
func TestTokenizerPipeline(t *testing.T) {
	spec := "synthetic:facts?docs=400&seed=9"
	inline, ist := collect(t, open(t, spec, Options{Tokenizers: 1, BlockBytes: 3000}), 5000, 32)
	for _, n := range []int{2, 5} {
		c := open(t, spec, Options{Tokenizers: n, BlockBytes: 3000})
		got, st := collect(t, c, 5000, 32)
		if !reflect.DeepEqual(got, inline) || st != ist {
			t.Fatalf("%d tokenizers: %d windows %+v, inline %d %+v", n, len(got), st, len(inline), ist)
		}
		shards, err := c.Plan(context.Background(), 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		stop := fmt.Errorf("stop")
		calls := 0
		st, err = c.Windows(context.Background(), shards[0], 32, func(Window) error {
			calls++
			if calls == 10 {
				return stop
			}
			return nil
		})
		if err != stop || calls != 10 || st.Windows != 10 {
			t.Errorf("%d tokenizers: stop after 10 windows gave %v, %d calls, %+v", n, err, calls, st)
		}
	}
}
