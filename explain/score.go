package explain

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"tdb/dataset"
	"tdb/store"
)

// Judge reads an explanation and makes the predictions scores compare with
// the truth. BuiltinJudge needs no model; LLMJudge asks one.
type Judge interface {
	// Name identifies the judge in scores ("builtin", "llm:MODEL").
	Name() string
	// Simulate predicts every record's per-token activations (any scale:
	// the simulation score is a correlation).
	Simulate(ctx context.Context, explanation string, recs []Record) ([][]float64, error)
	// Detect says, per record, whether the explanation fits it (whether the
	// component fires somewhere in it).
	Detect(ctx context.Context, explanation string, recs []Record) ([]bool, error)
	// Fuzz says, per record, whether the marked tokens are the ones the
	// explanation describes.
	Fuzz(ctx context.Context, explanation string, recs []Record, marked [][]bool) ([]bool, error)
}

// Scoring method names, as in --score and in Scores' JSON keys.
const (
	ScoreSimulation = "simulation"
	ScoreDetection  = "detection"
	ScoreFuzzing    = "fuzzing"
)

// ScoreMethods lists every scoring method.
var ScoreMethods = []string{ScoreSimulation, ScoreDetection, ScoreFuzzing}

// Scored runs the named scoring methods with one judge.
func Scored(ctx context.Context, j Judge, c *Component, explanation string, methods []string) (Scores, error) {
	var s Scores
	for _, m := range methods {
		var sc *Score
		var err error
		switch m {
		case ScoreSimulation:
			sc, err = SimulationScore(ctx, j, c, explanation)
			s.Simulation = sc
		case ScoreDetection:
			sc, err = DetectionScore(ctx, j, c, explanation)
			s.Detection = sc
		case ScoreFuzzing:
			sc, err = FuzzingScore(ctx, j, c, explanation)
			s.Fuzzing = sc
		default:
			return s, fmt.Errorf("explain: unknown scoring method %q (want %v)", m, ScoreMethods)
		}
		if err != nil {
			return s, fmt.Errorf("explain: %s score of %s/%d/%d: %w", m, c.Location, c.Layer, c.Index, err)
		}
	}
	return s, nil
}

// SimulationScore is ev_correlation_score: the correlation between the
// judge's simulated activations and the true ones over the held-out top
// and random records, all positions pooled. An undefined correlation
// (constant simulation or truth) scores 0 and says so in the details.
func SimulationScore(ctx context.Context, j Judge, c *Component, explanation string) (*Score, error) {
	_, top, random := c.split()
	recs := append(append([]Record{}, top...), random...)
	if len(recs) == 0 {
		return nil, nil
	}
	sim, err := j.Simulate(ctx, explanation, recs)
	if err != nil {
		return nil, err
	}
	if len(sim) != len(recs) {
		return nil, fmt.Errorf("judge %s simulated %d records, want %d", j.Name(), len(sim), len(recs))
	}
	var xs, ys []float64
	for i, r := range recs {
		if len(sim[i]) != len(r.Activations) {
			return nil, fmt.Errorf("judge %s simulated %d activations of record %d, want %d", j.Name(), len(sim[i]), i, len(r.Activations))
		}
		xs = append(xs, sim[i]...)
		for _, a := range r.Activations {
			ys = append(ys, float64(a))
		}
	}
	r, ok := Correlation(xs, ys)
	details := map[string]any{"top_records": len(top), "random_records": len(random)}
	if !ok {
		details["undefined"] = true
	}
	return newScore(j, r, details), nil
}

// Correlation is Pearson's r; ok is false when either side is constant.
func Correlation(xs, ys []float64) (r float64, ok bool) {
	n := float64(len(xs))
	if len(xs) != len(ys) || len(xs) < 2 {
		return 0, false
	}
	var mx, my float64
	for i := range xs {
		mx += xs[i]
		my += ys[i]
	}
	mx /= n
	my /= n
	var sxy, sxx, syy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx <= 0 || syy <= 0 {
		return 0, false
	}
	return sxy / math.Sqrt(sxx*syy), true
}

// lowFrac: a record is non-activating when its maximum is below lowFrac of
// the component's top maximum.
const lowFrac = 0.25

// DetectionScore is the balanced accuracy of the judge telling held-out top
// records from held-out non-activating records (shown shuffled).
func DetectionScore(ctx context.Context, j Judge, c *Component, explanation string) (*Score, error) {
	_, pos, _ := c.split()
	neg := c.lowRecords(lowFrac)
	if len(pos) == 0 || len(neg) == 0 {
		return nil, nil
	}
	recs := append(append([]Record{}, pos...), neg...)
	label := make([]bool, len(recs))
	for i := range pos {
		label[i] = true
	}
	perm := shuffle(len(recs), c, explanation)
	shown := make([]Record, len(recs))
	for i, k := range perm {
		shown[i] = recs[k]
	}
	got, err := j.Detect(ctx, explanation, shown)
	if err != nil {
		return nil, err
	}
	if len(got) != len(shown) {
		return nil, fmt.Errorf("judge %s answered %d records, want %d", j.Name(), len(got), len(shown))
	}
	var tp, fn, tn, fp int
	for i, k := range perm {
		switch {
		case label[k] && got[i]:
			tp++
		case label[k]:
			fn++
		case got[i]:
			fp++
		default:
			tn++
		}
	}
	ba := (float64(tp)/float64(tp+fn) + float64(tn)/float64(tn+fp)) / 2
	return newScore(j, ba, map[string]int{"tp": tp, "fn": fn, "tn": tn, "fp": fp}), nil
}

// FuzzingScore is the balanced accuracy of the judge telling held-out top
// records with their peak tokens (≥ half the record's maximum) marked from
// the same records with as many other tokens marked at random.
func FuzzingScore(ctx context.Context, j Judge, c *Component, explanation string) (*Score, error) {
	_, top, _ := c.split()
	rng := rand.New(rand.NewPCG(seedOf(c, explanation), 2))
	var recs []Record
	var marks [][]bool
	var label []bool
	for _, r := range top {
		if r.Max <= 0 || len(r.Activations) < 2 {
			continue
		}
		right := make([]bool, len(r.Activations))
		var others []int
		n := 0
		for i, a := range r.Activations {
			if a >= hotFrac*r.Max {
				right[i] = true
				n++
			} else {
				others = append(others, i)
			}
		}
		if len(others) < n {
			continue
		}
		wrong := make([]bool, len(r.Activations))
		for _, k := range rng.Perm(len(others))[:n] {
			wrong[others[k]] = true
		}
		recs = append(recs, r, r)
		marks = append(marks, right, wrong)
		label = append(label, true, false)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	perm := shuffle(len(recs), c, explanation)
	sr, sm := make([]Record, len(recs)), make([][]bool, len(recs))
	for i, k := range perm {
		sr[i], sm[i] = recs[k], marks[k]
	}
	got, err := j.Fuzz(ctx, explanation, sr, sm)
	if err != nil {
		return nil, err
	}
	if len(got) != len(sr) {
		return nil, fmt.Errorf("judge %s answered %d records, want %d", j.Name(), len(got), len(sr))
	}
	var tp, fn, tn, fp int
	for i, k := range perm {
		switch {
		case label[k] && got[i]:
			tp++
		case label[k]:
			fn++
		case got[i]:
			fp++
		default:
			tn++
		}
	}
	ba := (float64(tp)/float64(tp+fn) + float64(tn)/float64(tn+fp)) / 2
	return newScore(j, ba, map[string]int{"tp": tp, "fn": fn, "tn": tn, "fp": fp}), nil
}

func newScore(j Judge, v float64, details any) *Score {
	b, _ := json.Marshal(details)
	return &Score{Value: v, Judge: j.Name(), Details: b}
}

// seedOf makes the shuffles of a score a function of the component and the
// explanation, so scores are reproducible (and LLM calls cacheable).
func seedOf(c *Component, explanation string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s", c.Location, c.Layer, c.Index, explanation)
	return h.Sum64()
}

func shuffle(n int, c *Component, explanation string) []int {
	return rand.New(rand.NewPCG(seedOf(c, explanation), 1)).Perm(n)
}

// BuiltinJudge judges with the builtin simulator: an explanation in the
// builtin grammar is parsed into its pattern; any other text is read as the
// tokens it quotes (or spells). The prediction is 1 where the pattern
// matches and 0 elsewhere.
type BuiltinJudge struct {
	Vocab *Vocab
}

// Name implements Judge.
func (b *BuiltinJudge) Name() string { return BuiltinName }

func (b *BuiltinJudge) matcher(explanation string) *matcher {
	p, ok := ParsePhrase(b.Vocab, explanation)
	if !ok {
		p = freeTextPattern(b.Vocab, explanation)
	}
	return newMatcher(b.Vocab, p)
}

// Simulate implements Judge.
func (b *BuiltinJudge) Simulate(ctx context.Context, explanation string, recs []Record) ([][]float64, error) {
	m := b.matcher(explanation)
	out := make([][]float64, len(recs))
	for k, r := range recs {
		sim := make([]float64, len(r.Activations))
		for i := range sim {
			if i < len(r.Tokens) && m.match(r.Tokens, i) {
				sim[i] = 1
			}
		}
		out[k] = sim
	}
	return out, ctx.Err()
}

// Detect implements Judge: the record has a matching token.
func (b *BuiltinJudge) Detect(ctx context.Context, explanation string, recs []Record) ([]bool, error) {
	m := b.matcher(explanation)
	out := make([]bool, len(recs))
	for k, r := range recs {
		for i := range r.Tokens {
			if m.match(r.Tokens, i) {
				out[k] = true
				break
			}
		}
	}
	return out, ctx.Err()
}

// Fuzz implements Judge: at least half of the marked tokens match.
func (b *BuiltinJudge) Fuzz(ctx context.Context, explanation string, recs []Record, marked [][]bool) ([]bool, error) {
	m := b.matcher(explanation)
	out := make([]bool, len(recs))
	for k, r := range recs {
		n, hit := 0, 0
		for i, on := range marked[k] {
			if !on || i >= len(r.Tokens) {
				continue
			}
			n++
			if m.match(r.Tokens, i) {
				hit++
			}
		}
		out[k] = n > 0 && 2*hit >= n
	}
	return out, ctx.Err()
}

// ScoreExplanation reads one component of a dataset and scores any
// explanation of it with the judge (the "score this explanation" box and
// the compatibility API's /score).
func ScoreExplanation(ctx context.Context, st store.Store, m *dataset.Manifest, location string, layer, index int, j Judge, explanation string, methods []string) (Scores, error) {
	c, err := ReadComponent(ctx, st, m, location, layer, index)
	if err != nil {
		return Scores{}, err
	}
	return Scored(ctx, j, c, explanation, methods)
}
