package corpus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchDocs are ~1 MiB of varied English-like text.
func benchDocs(b *testing.B) []string {
	g := open(b, "synthetic:ioi?docs=1", Options{})
	f := open(b, "synthetic:facts?docs=1", Options{})
	var docs []string
	size := 0
	for i := int64(0); size < 1<<20; i++ {
		var sb strings.Builder
		for k := range int64(8) {
			sb.WriteString(g.gen.make(randFor(i*16 + k)))
			sb.WriteString(" ")
			sb.WriteString(f.gen.make(randFor(i*16 + 8 + k)))
			sb.WriteString("\n")
		}
		sb.WriteString(sampleDocs[i%int64(len(sampleDocs))])
		docs = append(docs, sb.String())
		size += sb.Len()
	}
	return docs
}

func randFor(i int64) *rand.Rand { return rand.New(rand.NewPCG(99, uint64(i))) }

func benchWindows(b *testing.B, c *Corpus, nCtx int) {
	ctx := context.Background()
	shards, err := c.Plan(ctx, 1<<40)
	if err != nil {
		b.Fatal(err)
	}
	var st Stats
	b.ResetTimer()
	for b.Loop() {
		st = Stats{}
		for _, sh := range shards {
			s, err := c.Windows(ctx, sh, nCtx, func(Window) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			st.Add(s)
		}
	}
	b.SetBytes(st.Bytes)
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(st.Windows)/sec, "windows/s")
	b.ReportMetric(float64(st.Tokens)/sec, "tokens/s")
}

func BenchmarkWindows(b *testing.B) {
	docs := benchDocs(b)
	dir := b.TempDir()
	var jl bytes.Buffer
	for i, d := range docs {
		writeFile(b, filepath.Join(dir, "txt", fmt.Sprintf("%05d.txt", i)), []byte(d))
		line, _ := json.Marshal(map[string]string{"text": d})
		jl.Write(line)
		jl.WriteByte('\n')
	}
	writeFile(b, filepath.Join(dir, "c.jsonl"), jl.Bytes())
	writeParquet(b, filepath.Join(dir, "c.parquet"), docs, 1000)
	toks := make([]uint16, 1<<20)
	for i := range toks {
		toks[i] = uint16(i % 50257)
	}
	writeTokens(b, filepath.Join(dir, "c.bin"), toks)
	for _, spec := range []string{
		"text:" + filepath.Join(dir, "txt", "*.txt"),
		"jsonl:" + filepath.Join(dir, "c.jsonl"),
		"parquet:" + filepath.Join(dir, "c.parquet"),
		"synthetic:ioi?docs=10000",
		"tokens:" + filepath.Join(dir, "c.bin"),
	} {
		b.Run(strings.SplitN(spec, ":", 2)[0], func(b *testing.B) {
			benchWindows(b, open(b, spec, Options{}), 64)
		})
	}
}

func BenchmarkPlanJSONL(b *testing.B) {
	dir := b.TempDir()
	var jl bytes.Buffer
	for jl.Len() < 16<<20 {
		fmt.Fprintf(&jl, "{\"text\": %q}\n", sampleDocs[jl.Len()%len(sampleDocs)])
	}
	writeFile(b, filepath.Join(dir, "c.jsonl"), jl.Bytes())
	c := open(b, "jsonl:"+filepath.Join(dir, "c.jsonl"), Options{})
	b.SetBytes(int64(jl.Len()))
	for b.Loop() {
		if _, err := c.Plan(context.Background(), 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenizers shows how tokenizing ahead scales with goroutines.
func BenchmarkTokenizers(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			benchWindows(b, open(b, "synthetic:ioi?docs=10000", Options{Tokenizers: n}), 64)
		})
	}
}

// BenchmarkPlan measures planning (which now reads every block to hash it)
// on a local corpus of TDB_BENCH_PLAN_MB MiB per kind (default 64).
func BenchmarkPlan(b *testing.B) {
	mb := 64
	if s := os.Getenv("TDB_BENCH_PLAN_MB"); s != "" {
		fmt.Sscan(s, &mb)
	}
	size := mb << 20
	dir := b.TempDir()
	docs := benchDocs(b)
	var jl bytes.Buffer
	var pq []string
	for i := 0; jl.Len() < size; i++ {
		line, _ := json.Marshal(map[string]string{"text": docs[i%len(docs)]})
		jl.Write(line)
		jl.WriteByte('\n')
		pq = append(pq, docs[i%len(docs)])
	}
	writeFile(b, filepath.Join(dir, "c.jsonl"), jl.Bytes())
	writeParquet(b, filepath.Join(dir, "c.parquet"), pq, 10000)
	for i, n := 0, 0; n < size; i++ {
		d := docs[i%len(docs)]
		writeFile(b, filepath.Join(dir, "txt", fmt.Sprintf("%06d.txt", i)), []byte(d))
		n += len(d)
	}
	toks := make([]uint16, size/2)
	for i := range toks {
		toks[i] = uint16(i % 50257)
	}
	writeTokens(b, filepath.Join(dir, "c.bin"), toks)
	for _, spec := range []string{
		"text:" + filepath.Join(dir, "txt", "*.txt"),
		"jsonl:" + filepath.Join(dir, "c.jsonl"),
		"parquet:" + filepath.Join(dir, "c.parquet"),
		"tokens:" + filepath.Join(dir, "c.bin"),
	} {
		b.Run(strings.SplitN(spec, ":", 2)[0], func(b *testing.B) {
			c := open(b, spec, Options{})
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := c.Plan(context.Background(), 1<<17); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
