package debugger

import (
	"context"
	"runtime"
	"testing"

	"tdb/internal/memstat"
	"tdb/kernels"
	"tdb/model"
	"tdb/model/tokenizer"
)

// benchEngine is GPT-2-small-shaped random weights with the kernels
// installed, and a request on a prompt of n tokens.
func benchEngine(b *testing.B, n int) (*Engine, Request) {
	b.Helper()
	kernels.Install()
	m, err := model.NewRandom(model.Presets["gpt2"], 1)
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := tokenizer.GPT2()
	prompt := "<|endoftext|>When Mary and John went to the store, John gave a drink to Mary. Then Paris, France. Ottawa, Canada. Berlin, Germany. Rome,"
	ids := tok.Encode(prompt)[:n]
	return New(m, tok), Request{Tokens: ids, Targets: []string{" Italy"}, Distractors: []string{" France"}, TopK: 10}
}

// BenchmarkRequest is one full TDB request (forward, backward, all metrics,
// node table k = 10) on GPT-2-small-shaped random weights, 32-token prompt.
// It reports the peak RSS beyond the weights' resident size.
func BenchmarkRequest(b *testing.B) {
	e, req := benchEngine(b, 32)
	runtime.GC()
	weights := memstat.PeakRSSMiB()
	if _, err := e.Run(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := memstat.CPUSeconds()
	for b.Loop() {
		if _, err := e.Run(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((memstat.CPUSeconds()-cpu)/float64(b.N), "cpu-s/op")
	b.ReportMetric(memstat.PeakRSSMiB()-weights, "MiB-beyond-weights")
}

// BenchmarkRequestInspect is a request on 17 tokens that also asks for the
// token views of every node of its table (about 80 nodes), as the TDB
// page does.
func BenchmarkRequestInspect(b *testing.B) {
	e, req := benchEngine(b, 17)
	resp, err := e.Run(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	for _, nr := range resp.Nodes {
		if nr.Node.Type != Embedding {
			req.Inspect = append(req.Inspect, nr.Node)
		}
	}
	cpu := memstat.CPUSeconds()
	for b.Loop() {
		if _, err := e.Run(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((memstat.CPUSeconds()-cpu)/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(len(req.Inspect)), "nodes")
}
