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

// BenchmarkRequest is one full TDB request (forward, backward, all metrics,
// node table k = 10) on GPT-2-small-shaped random weights, 32-token prompt.
// It reports the peak RSS beyond the weights' resident size.
func BenchmarkRequest(b *testing.B) {
	kernels.Install()
	m, err := model.NewRandom(model.Presets["gpt2"], 1)
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := tokenizer.GPT2()
	runtime.GC()
	weights := memstat.PeakRSSMiB()
	e := New(m, tok)
	prompt := "<|endoftext|>When Mary and John went to the store, John gave a drink to Mary. Then Paris, France. Ottawa, Canada. Berlin, Germany. Rome,"
	ids := tok.Encode(prompt)[:32]
	req := Request{Tokens: ids, Targets: []string{" Italy"}, Distractors: []string{" France"}, TopK: 10}
	if _, err := e.Run(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Run(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(memstat.PeakRSSMiB()-weights, "MiB-beyond-weights")
}
