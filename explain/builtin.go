package explain

import (
	"cmp"
	"context"
	"maps"
	"math"
	"slices"
)

// Explainer writes an explanation of a component from its records.
type Explainer interface {
	// Method names the explainer (and its model) in stored rows.
	Method() Method
	Explain(ctx context.Context, c *Component) (string, error)
}

// Builtin is the explainer that needs no language model: it finds the
// tokens (a single token, a set of tokens, a lexical class) and the
// preceding-token context over-represented at the peak positions of the top
// records against the rest of the records it reads, choosing among
// candidates by the correlation of their binary prediction with the true
// activations, and writes the winner as a phrase (see Pattern.Phrase).
type Builtin struct {
	Vocab *Vocab
}

// BuiltinName is the explainer and judge name of the builtin method.
const BuiltinName = "builtin"

// Method implements Explainer.
func (b *Builtin) Method() Method { return Method{Explainer: BuiltinName} }

// Explain implements Explainer.
func (b *Builtin) Explain(ctx context.Context, c *Component) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	p := b.Fit(c)
	return p.Phrase(b.Vocab), nil
}

// tuning of the builtin explainer.
const (
	hotFrac       = 0.5   // a top record's positions at ≥ hotFrac × its max are "hot"
	maxCandidates = 24    // distinct hot tokens considered
	maxSet        = 16    // tokens named in one explanation
	maxAfter      = 4     // context tokens named
	minGain       = 0.005 // correlation a further token must add
	minCtxGain    = 0.02  // correlation a context must add
	minCorr       = 0.1   // below this: "no clear pattern"
)

// stat is the count and activation sum of the positions a mask selects.
type stat struct {
	n int
	s float64
}

func (a stat) add(b stat) stat { return stat{a.n + b.n, a.s + b.s} }

type pairKey struct{ prev, cur int32 }

// corrStats computes the correlation of a binary mask with activations from
// sufficient statistics: the mask's count and sum, and the totals.
type corrStats struct {
	n        int
	mean     float64
	variance float64
}

func (t corrStats) corr(m stat) float64 {
	if m.n == 0 || m.n == t.n || t.variance <= 0 {
		return 0
	}
	p := float64(m.n) / float64(t.n)
	cov := m.s/float64(t.n) - t.mean*p
	return cov / math.Sqrt(p*(1-p)*t.variance)
}

// Fit returns the best pattern of c (the empty pattern when nothing fits).
func (b *Builtin) Fit(c *Component) Pattern {
	train, _, _ := c.split()
	// Hot tokens of the top records and their predecessors.
	// Hot positions: at least hotFrac of the record's maximum in a top
	// record, or of the top maximum in any record the explainer reads. A
	// token counts once per record, and must be hot in at least two
	// records: a token seen once is as likely noise as pattern.
	top := c.trainTop()
	if len(top) == 0 || top[0].Max <= 0 {
		return Pattern{}
	}
	global := hotFrac * top[0].Max
	hot := map[int32]int{}
	var seen []int32
	for k, r := range train {
		limit := global
		if k < len(top) && r.Max > 0 {
			limit = hotFrac * r.Max
		}
		seen = seen[:0]
		for i, a := range r.Activations {
			if i < len(r.Tokens) && a >= limit && !slices.Contains(seen, r.Tokens[i]) {
				seen = append(seen, r.Tokens[i])
				hot[r.Tokens[i]]++
			}
		}
	}
	maps.DeleteFunc(hot, func(_ int32, n int) bool { return n < 2 })
	if len(hot) == 0 {
		return Pattern{}
	}
	cands := make([]int32, 0, len(hot))
	for t := range hot {
		cands = append(cands, t)
	}
	slices.SortFunc(cands, func(x, y int32) int {
		return cmp.Or(cmp.Compare(hot[y], hot[x]), cmp.Compare(x, y))
	})
	if len(cands) > maxCandidates {
		cands = cands[:maxCandidates]
	}
	isCand := make(map[int32]bool, len(cands))
	for _, t := range cands {
		isCand[t] = true
	}
	// One pass over every position the explainer may read.
	var tot corrStats
	var sum, sumSq float64
	tok := map[int32]stat{}
	pair := map[pairKey]stat{}
	var cls [nClasses]stat
	for _, r := range train {
		n := min(len(r.Tokens), len(r.Activations))
		for i := 0; i < n; i++ {
			a := float64(r.Activations[i])
			sum += a
			sumSq += a * a
			tot.n++
			t := r.Tokens[i]
			cls[b.Vocab.classOf(t)] = cls[b.Vocab.classOf(t)].add(stat{1, a})
			if !isCand[t] {
				continue
			}
			tok[t] = tok[t].add(stat{1, a})
			prev := int32(-1)
			if i > 0 {
				prev = r.Tokens[i-1]
			}
			k := pairKey{prev, t}
			pair[k] = pair[k].add(stat{1, a})
		}
	}
	if tot.n == 0 {
		return Pattern{}
	}
	tot.mean = sum / float64(tot.n)
	tot.variance = sumSq/float64(tot.n) - tot.mean*tot.mean

	// Token sets: greedy by single-token correlation.
	slices.SortFunc(cands, func(x, y int32) int {
		return cmp.Or(cmp.Compare(tot.corr(tok[y]), tot.corr(tok[x])), cmp.Compare(x, y))
	})
	var set []int32
	var setStat stat
	best := math.Inf(-1)
	for _, t := range cands {
		if len(set) == maxSet {
			break
		}
		s := setStat.add(tok[t])
		if c := tot.corr(s); len(set) == 0 || c > best+minGain {
			set, setStat, best = append(set, t), s, c
		}
	}
	pat := Pattern{Tokens: set}
	// A lexical class instead of a list.
	for c := classCapitalized; c < nClasses; c++ {
		if cc := tot.corr(cls[c]); cc > best {
			best, pat = cc, Pattern{Class: c}
		}
	}
	// A preceding-token context for a token set.
	if pat.Class == classNone {
		prevs := map[int32]stat{}
		for k, s := range pair {
			if slices.Contains(set, k.cur) && k.prev >= 0 {
				prevs[k.prev] = prevs[k.prev].add(s)
			}
		}
		order := make([]int32, 0, len(prevs))
		for q := range prevs {
			order = append(order, q)
		}
		slices.SortFunc(order, func(x, y int32) int {
			return cmp.Or(cmp.Compare(tot.corr(prevs[y]), tot.corr(prevs[x])), cmp.Compare(x, y))
		})
		var after []int32
		var ctxStat stat
		ctxBest := math.Inf(-1)
		for _, q := range order {
			if len(after) == maxAfter {
				break
			}
			s := ctxStat.add(prevs[q])
			if c := tot.corr(s); len(after) == 0 || c > ctxBest+minGain {
				after, ctxStat, ctxBest = append(after, q), s, c
			}
		}
		if len(after) > 0 && ctxBest > best+minCtxGain {
			pat.After, best = after, ctxBest
		}
	}
	if best < minCorr {
		return Pattern{}
	}
	return pat
}
