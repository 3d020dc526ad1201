package model

import (
	"context"
	"fmt"
	"testing"
)

// logitDiffSeed is d(Σ_b logits[b,last,target] − logits[b,last,distractor])/dlogits.
func logitDiffSeed(c Config, lengths []int, T, target, distractor int) map[Site]*Tensor {
	seed := NewTensor(len(lengths), T, c.Vocab)
	for b, n := range lengths {
		row := seed.Data[(b*T+n-1)*c.Vocab:]
		row[target]++
		row[distractor]--
	}
	return map[Site]*Tensor{At(Logits, NoLayer): seed}
}

func TestParityGradients(t *testing.T) {
	forEachFixture(t, func(t *testing.T, fixture string) {
		{
			ref, m := loadFixture(t, fixture)
			cfg := m.Config
			res, err := m.Forward(context.Background(), Request{Tokens: ref.tokens, Capture: []Site{At(Logits, NoLayer)}, Backward: true})
			if err != nil {
				t.Fatal(err)
			}
			grads, err := res.Backward(logitDiffSeed(cfg, res.Lengths, res.T, ref.target, ref.distractor), BackwardOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checked := 0
			for l := range cfg.NLayer {
				for _, n := range hfNames {
					key := fmt.Sprintf("grad.%s.%d", n, l)
					compare(t, key, gather(cfg, grads, hfSites(n, l)), fromHF(cfg, n, ref.get(t, key)).Data)
					checked++
				}
			}
			compare(t, "grad.ln_f", grads[At(LnFOut, NoLayer)].Data, ref.get(t, "grad.ln_f").Data)
			if checked != 11*cfg.NLayer {
				t.Fatalf("checked %d gradients", checked)
			}
		}
	})
}
