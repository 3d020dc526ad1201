package debugger

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"tdb/kernels"
	"tdb/model"
	"tdb/model/tokenizer"
)

func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

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
	weights := peakRSSMiB()
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
	b.ReportMetric(peakRSSMiB()-weights, "MiB-beyond-weights")
}
