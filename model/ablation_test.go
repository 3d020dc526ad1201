package model

import (
	"context"
	"fmt"
	"testing"
)

func TestParityAblations(t *testing.T) {
	forEachFixture(t, func(t *testing.T, fixture string) {
		{
			ref, m := loadFixture(t, fixture)
			cfg := m.Config
			B, T := len(ref.tokens), len(ref.tokens[0])
			cases := []struct {
				key string
				iv  Intervention
			}{}
			for _, ln := range [][2]int{{0, 100}, {1, 7}} {
				iv := Intervention{Site: At(MLPPostAct, ln[0])}
				for r := range B * T {
					iv.Index = append(iv.Index, r*cfg.DMLP+ln[1])
				}
				cases = append(cases, struct {
					key string
					iv  Intervention
				}{fmt.Sprintf("ablate.neuron.%d.%d.logits_last", ln[0], ln[1]), iv})
			}
			for _, lh := range [][2]int{{0, 0}, {1, 2}} {
				if lh[1] >= cfg.NHead {
					continue
				}
				iv := Intervention{Site: At(AttnQKProbs, lh[0])}
				for r := range B * T { // every query row of the head: all keys
					for k := range T {
						iv.Index = append(iv.Index, (r*T+k)*cfg.NHead+lh[1])
					}
				}
				cases = append(cases, struct {
					key string
					iv  Intervention
				}{fmt.Sprintf("ablate.head.%d.%d.logits_last", lh[0], lh[1]), iv})
			}
			base, err := m.Forward(context.Background(), Request{Tokens: ref.tokens, Capture: []Site{At(Logits, NoLayer)}})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cases {
				res, err := m.Forward(context.Background(), Request{Tokens: ref.tokens, Capture: []Site{At(Logits, NoLayer)}, Interventions: []Intervention{c.iv}})
				if err != nil {
					t.Fatal(err)
				}
				V := cfg.Vocab
				last := make([]float32, 0, B*V)
				changed := false
				for b := range B {
					row := res.Acts[At(Logits, NoLayer)].Data[(b*T+T-1)*V : (b*T+T)*V]
					last = append(last, row...)
					for i, v := range row {
						if v != base.Acts[At(Logits, NoLayer)].Data[(b*T+T-1)*V+i] {
							changed = true
						}
					}
				}
				if !changed {
					t.Errorf("%s: ablation changed nothing", c.key)
				}
				compare(t, c.key, last, ref.get(t, c.key).Data)
			}
		}
	})
}
