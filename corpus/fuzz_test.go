package corpus

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"tdb/store"
)

func FuzzParseJSONLine(f *testing.F) {
	for _, s := range []string{
		`{"text": "hello"}`, `{"text": null}`, `{"text": 3}`, `[]`, ``, `   `, `{"text": "a\u00e9\ud83c"}`,
		`{"a": {"text": "x"}, "text": "y"}`, `{"text": "x"} trailing`, `{"text": "\xff\xfe"}`, `"text"`, `null`,
	} {
		f.Add([]byte(s), "text")
	}
	f.Fuzz(func(t *testing.T, line []byte, field string) {
		text, ok, err := parseJSONLine(line, field)
		if err != nil && ok {
			t.Fatalf("error %v with ok", err)
		}
		if ok {
			// A document must round-trip as the field of a JSON object.
			var obj map[string]any
			if json.Unmarshal(bytes.TrimSpace(line), &obj) != nil {
				t.Fatalf("accepted %q, which is not a JSON object", line)
			}
			if s, _ := obj[field].(string); s != text {
				t.Fatalf("field %q = %q, parsed %q", field, obj[field], text)
			}
		}
	})
}

// FuzzJSONLCorpus feeds arbitrary bytes as a JSONL file through Plan and
// Windows: an error naming file:line or windows whose sources check out,
// never a panic.
func FuzzJSONLCorpus(f *testing.F) {
	f.Add([]byte("{\"text\": \"a b c\"}\n{\"text\": \"d\"}\n"), int64(8))
	f.Add([]byte("\n\n{\"text\": null}\r\n{\"text\": \"x\"}"), int64(1))
	f.Add([]byte("{\"text\": \"x\"}\n{bad\n"), int64(100))
	f.Add([]byte("\xef\xbb\xbf{\"text\": \"\xff\"}"), int64(3))
	tok := gpt2(f)
	f.Fuzz(func(t *testing.T, data []byte, block int64) {
		if block < 1 || block > 1<<20 {
			block = 16
		}
		ctx := context.Background()
		st := store.NewMemory()
		if err := st.Put(ctx, "c.jsonl", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		c, err := Open(ctx, "jsonl:mem://test/c.jsonl", Options{Opener: memOpener(st), BlockBytes: block, Tokenizer: tok})
		if err != nil {
			t.Fatal(err)
		}
		shards, err := c.Plan(ctx, 7)
		if err != nil {
			if len(data) != 0 {
				t.Fatalf("plan of %d bytes: %v", len(data), err)
			}
			return
		}
		lines := int64(bytes.Count(data, []byte("\n")))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
		for _, sh := range shards {
			_, err := c.Windows(ctx, sh, 3, func(w Window) error {
				if w.Doc < 0 || w.Doc >= lines || len(w.Tokens) != 3 {
					t.Fatalf("window %+v outside %d lines", w, lines)
				}
				return nil
			})
			if err != nil && !strings.Contains(err.Error(), "mem://c.jsonl:") {
				t.Fatalf("error without file:line: %v", err)
			}
		}
	})
}

// FuzzTokenStream checks the token reader against a direct decoding of the
// bytes: windows at multiples of nCtx, odd sizes and large ids rejected.
func FuzzTokenStream(f *testing.F) {
	f.Add([]byte{1, 0, 2, 0, 3, 0, 4, 0, 5, 0}, uint8(2), uint16(3))
	f.Add([]byte{1, 0, 2}, uint8(1), uint16(1))
	f.Add([]byte{0xff, 0xff, 0, 0}, uint8(1), uint16(5))
	f.Fuzz(func(t *testing.T, data []byte, n uint8, per uint16) {
		nCtx := int(n%16) + 1
		ctx := context.Background()
		st := store.NewMemory()
		if err := st.Put(ctx, "t.bin", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		c, err := Open(ctx, "tokens:mem://test/t.bin", Options{Opener: memOpener(st), NCtx: nCtx})
		if err != nil {
			t.Fatal(err)
		}
		shards, err := c.Plan(ctx, int64(per%64)+1)
		total := len(data) / 2
		whole := total / nCtx * nCtx
		badAt := -1
		for i := range whole {
			if binary.LittleEndian.Uint16(data[2*i:]) >= 50257 {
				badAt = i
				break
			}
		}
		switch {
		case len(data)%2 != 0:
			if err == nil || !strings.Contains(err.Error(), "is odd") {
				t.Fatalf("odd size %d: %v", len(data), err)
			}
			return
		case len(data) == 0:
			if err == nil {
				t.Fatal("empty stream planned")
			}
			return
		case badAt >= 0:
			// Planning reads every token of a window.
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("at index %d ", badAt)) {
				t.Fatalf("bad token at %d: plan error %v", badAt, err)
			}
			return
		case err != nil:
			t.Fatal(err)
		}
		var got []Window
		var sum Stats
		var firstErr error
		for _, sh := range shards {
			s, err := c.Windows(ctx, sh, nCtx, func(w Window) error { got = append(got, w); return nil })
			sum.Add(s)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}
		if badAt >= 0 {
			if firstErr == nil || !strings.Contains(firstErr.Error(), "is not below the vocabulary size") {
				t.Fatalf("bad token at %d: %v", badAt, firstErr)
			}
			return
		}
		if firstErr != nil {
			t.Fatal(firstErr)
		}
		if len(got) != total/nCtx || sum.Dropped != int64(total-whole) || sum.Tokens != int64(total) {
			t.Fatalf("%d tokens, n=%d: %d windows, stats %+v", total, nCtx, len(got), sum)
		}
		for k, w := range got {
			if w.Offset != int64(k*nCtx) {
				t.Fatalf("window %d at %d", k, w.Offset)
			}
			for j, x := range w.Tokens {
				if want := binary.LittleEndian.Uint16(data[2*(k*nCtx+j):]); x != int32(want) {
					t.Fatalf("window %d token %d = %d, want %d", k, j, x, want)
				}
			}
		}
	})
}

// FuzzShardParts feeds arbitrary parts (shards come over the network) to
// every reader: errors, never panics.
func FuzzShardParts(f *testing.F) {
	f.Add(0, int64(0), int64(5), int64(0), int64(1))
	f.Add(1, int64(3), int64(2), int64(9), int64(0))
	f.Add(0, int64(1<<40), int64(1<<41), int64(0), int64(0))
	dir := f.TempDir()
	var jl bytes.Buffer
	for i := range 20 {
		jl.WriteString(`{"text": "row ` + strings.Repeat("x", i) + `"}` + "\n")
	}
	writeFile(f, dir+"/a.jsonl", jl.Bytes())
	writeFile(f, dir+"/b.txt", []byte("some text"))
	writeTokens(f, dir+"/c.bin", []uint16{1, 2, 3, 4, 5, 6, 7})
	writeParquet(f, dir+"/d.parquet", []string{"a", "b", nullDoc, "c"}, 2)
	var cs []*Corpus
	for _, spec := range []string{"jsonl:" + dir + "/a.jsonl", "text:" + dir + "/b.txt", "tokens:" + dir + "/c.bin", "parquet:" + dir + "/d.parquet", "synthetic:ioi?docs=10"} {
		cs = append(cs, open(f, spec, Options{}))
	}
	f.Fuzz(func(t *testing.T, file int, start, end, doc, line int64) {
		for _, c := range cs {
			sh := Shard{Corpus: c.fingerprint, Parts: []Part{{File: file, Start: start, End: end, Doc: doc, Line: line}}}
			if end-start > 1<<20 && c.spec.Kind == Synthetic {
				continue // valid but slow
			}
			_, _ = c.Windows(context.Background(), sh, 2, func(Window) error { return nil })
		}
	})
}
