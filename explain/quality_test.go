package explain

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"tdb/collate"
	"tdb/corpus"
	"tdb/dataset"
	"tdb/model/tokenizer"
	"tdb/store"
)

// planted is a neuron whose activations the test plants: it fires on tok
// (any of them), after prev when set; none fires nowhere in particular.
type planted struct {
	kind string // "token", "bigram", "class", "none"
	toks []int32
	prev int32
}

func (p planted) fires(toks []int32, i int) bool {
	if p.kind == "none" || !slices.Contains(p.toks, toks[i]) {
		return false
	}
	return p.kind != "bigram" || (i > 0 && toks[i-1] == p.prev)
}

// corpusWindows reads the built-in synthetic corpora (IOI and facts) into
// 64-token windows with unique sources.
func corpusWindows(t testing.TB, docs int) []corpus.Window {
	t.Helper()
	ctx := context.Background()
	var out []corpus.Window
	for k, spec := range []string{"synthetic:ioi", "synthetic:facts"} {
		c, err := corpus.Open(ctx, fmt.Sprintf("%s?docs=%d&seed=3", spec, docs), corpus.Options{Tokenizers: 1})
		if err != nil {
			t.Fatal(err)
		}
		shards, err := c.Plan(ctx, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range shards {
			if _, err := c.Windows(ctx, sh, 64, func(w corpus.Window) error {
				w.Doc += int64(k) << 40
				out = append(out, w)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// plantNeurons picks patterns that occur in the windows: single tokens,
// bigrams whose second token also occurs in other contexts, the class of
// IOI names, and neurons with no pattern.
func plantNeurons(t testing.TB, wins []corpus.Window) []planted {
	tok, err := tokenizer.GPT2()
	if err != nil {
		t.Fatal(err)
	}
	one := func(s string) int32 {
		id, err := tok.SingleToken(s)
		if err != nil {
			t.Fatal(err)
		}
		return int32(id)
	}
	// Bigrams (a, b) where b follows other tokens too, at least as often.
	uni := map[int32]int{}
	bi := map[[2]int32]int{}
	for _, w := range wins {
		for i, x := range w.Tokens {
			uni[x]++
			if i > 0 {
				bi[[2]int32{w.Tokens[i-1], x}]++
			}
		}
	}
	// Single tokens in 2%..20% of the windows (so that records without
	// them exist), words of at least three letters.
	inWin := map[int32]int{}
	for _, w := range wins {
		seen := map[int32]bool{}
		for _, x := range w.Tokens {
			if !seen[x] {
				seen[x] = true
				inWin[x]++
			}
		}
	}
	var singles []int32
	for x, n := range inWin {
		txt := strings.TrimSpace(tok.Decode([]int{int(x)}))
		if n >= len(wins)/50 && n <= len(wins)/5 && len(txt) >= 3 && classify(txt) == classNone {
			singles = append(singles, x)
		}
	}
	slices.Sort(singles)
	rng := rand.New(rand.NewPCG(5, 5))
	rng.Shuffle(len(singles), func(i, j int) { singles[i], singles[j] = singles[j], singles[i] })
	var ps []planted
	used := map[int32]bool{}
	for _, x := range singles[:10] {
		used[x] = true
		ps = append(ps, planted{kind: "token", toks: []int32{x}})
	}
	var pairs [][2]int32
	for k, n := range bi {
		if n >= 30 && uni[k[1]] >= 3*n && tok.Decode([]int{int(k[1])}) != "," {
			pairs = append(pairs, k)
		}
	}
	slices.SortFunc(pairs, func(a, b [2]int32) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	rng.Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
	for _, p := range pairs {
		if len(ps) == 20 {
			break
		}
		if used[p[1]] || inWin[p[1]] > len(wins)/3 {
			continue
		}
		used[p[1]] = true
		ps = append(ps, planted{kind: "bigram", toks: []int32{p[1]}, prev: p[0]})
	}
	var names []int32
	for _, n := range []string{"Mary", "John", "Tom", "James", "Michael", "David", "Robert", "William", "Sarah", "Lisa",
		"Kate", "Anna", "Emma", "Alice", "Jane", "Lucy", "Paul", "Mark", "Peter", "Jack", "Adam", "Henry", "Sam", "Ben"} {
		names = append(names, one(" "+n))
	}
	ps = append(ps, planted{kind: "class", toks: names}, planted{kind: "class", toks: names})
	for range 4 {
		ps = append(ps, planted{kind: "none"})
	}
	return ps
}

// buildPlantedDataset collates planted activations over the windows into a
// dataset on st, straight through a collate.LayerAccumulator (the planted
// activations stand in for a model's).
func buildPlantedDataset(t testing.TB, st store.Store, name string, wins []corpus.Window, ps []planted, cfg collate.Config) {
	t.Helper()
	ctx := context.Background()
	C := len(ps)
	acc, err := collate.NewLayerAccumulator("mlp.post_act", 0, C, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	acts := make([]float32, 64*C)
	for _, w := range wins {
		for i := range w.Tokens {
			for c, p := range ps {
				a := float32(rng.NormFloat64()) * 0.15
				if p.kind == "none" {
					a = float32(rng.ExpFloat64()) * 0.5
				} else if p.fires(w.Tokens, i) {
					a += 3 + float32(rng.Float64())
				}
				acts[i*C+c] = a
			}
		}
		if err := acc.AddWindow(dataset.Source{Doc: w.Doc, Offset: w.Offset}, w.Tokens, acts); err != nil {
			t.Fatal(err)
		}
	}
	if err := collate.WriteLayer(ctx, st, name, acc, 0); err != nil {
		t.Fatal(err)
	}
	m := &dataset.Manifest{Name: name, Model: "planted", Corpus: "synthetic:ioi+facts", NCtx: 64,
		Locations: []dataset.ManifestLocation{{Name: "mlp.post_act", Layers: []int{0}, Components: C}}, Settings: dataset.Settings(cfg)}
	if err := dataset.WriteManifest(ctx, st, m); err != nil {
		t.Fatal(err)
	}
}

// names reports whether the explanation names the planted pattern.
func names(v *Vocab, p planted, text string) bool {
	pat, ok := ParsePhrase(v, text)
	if !ok {
		return false
	}
	switch p.kind {
	case "token":
		return len(pat.Tokens) >= 1 && pat.Tokens[0] == p.toks[0] && len(pat.Tokens) <= 2
	case "bigram":
		return len(pat.Tokens) >= 1 && pat.Tokens[0] == p.toks[0] && slices.Contains(pat.After, p.prev)
	case "class":
		if pat.Class == classCapitalized {
			return true
		}
		n := 0
		for _, x := range pat.Tokens {
			if slices.Contains(p.toks, x) {
				n++
			}
		}
		return len(pat.Tokens) >= 3 && n == len(pat.Tokens)
	}
	return false
}

func TestQualityPlantedNeurons(t *testing.T) {
	if testing.Short() {
		t.Skip("collates a planted corpus")
	}
	ctx := context.Background()
	v, err := GPT2Vocab()
	if err != nil {
		t.Fatal(err)
	}
	wins := corpusWindows(t, 3000)
	ps := plantNeurons(t, wins)
	st := store.NewMemory()
	buildPlantedDataset(t, st, "planted", wins, ps, collate.DefaultConfig())

	job := &Job{Store: st, Dataset: "planted", Explainer: &Builtin{Vocab: v}, Scores: ScoreMethods, Workers: 2}
	sum, err := job.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Explained != len(ps) {
		t.Fatalf("explained %d components, want %d", sum.Explained, len(ps))
	}
	rows, err := ReadLayer(ctx, st, "planted", "mlp.post_act", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(ps) {
		t.Fatalf("stored %d rows, want %d", len(rows), len(ps))
	}
	m, err := dataset.ReadManifest(ctx, st, "planted")
	if err != nil {
		t.Fatal(err)
	}
	comps := map[int]*Component{}
	if err := EachComponent(ctx, st, m, "mlp.post_act", 0, nil, func(c *Component) error { comps[c.Index] = c; return nil }); err != nil {
		t.Fatal(err)
	}
	judge := &BuiltinJudge{Vocab: v}
	var planted, named, beats, pairs int
	for _, r := range rows {
		p := ps[r.Component]
		sim := r.Scores.Simulation
		if sim == nil || r.Scores.Detection == nil || r.Scores.Fuzzing == nil {
			t.Fatalf("component %d: missing scores %+v", r.Component, r.Scores)
		}
		t.Logf("%-6s #%2d sim %.3f det %.3f fuzz %.3f  %s", p.kind, r.Component, sim.Value, r.Scores.Detection.Value, r.Scores.Fuzzing.Value, r.Explanation.Explanation)
		if p.kind == "none" {
			if sim.Value > 0.2 {
				t.Errorf("no-pattern neuron %d scores %.3f (%q), want low", r.Component, sim.Value, r.Explanation.Explanation)
			}
			continue
		}
		planted++
		if names(v, p, r.Explanation.Explanation) {
			named++
		}
		// Shuffled explanations: every other planted neuron's explanation.
		for _, o := range rows {
			if o.Component == r.Component || ps[o.Component].kind == "none" || o.Explanation.Explanation == r.Explanation.Explanation {
				continue
			}
			s, err := SimulationScore(ctx, judge, comps[r.Component], o.Explanation.Explanation)
			if err != nil {
				t.Fatal(err)
			}
			pairs++
			if sim.Value > s.Value {
				beats++
			}
		}
	}
	t.Logf("named %d/%d planted neurons; own explanation beats a shuffled one in %d/%d pairs", named, planted, beats, pairs)
	if float64(named) < 0.9*float64(planted) {
		t.Errorf("named %d of %d planted neurons, want ≥ 90%%", named, planted)
	}
	if float64(beats) < 0.95*float64(pairs) {
		t.Errorf("own explanation beats shuffled in %d of %d pairs, want ≥ 95%%", beats, pairs)
	}

	// Scoring any text: the planted token scores high, another low.
	tokenNeuron := 0
	good, err := ScoreExplanation(ctx, st, m, "mlp.post_act", 0, tokenNeuron, judge, "the token "+quoteTok(v, ps[tokenNeuron].toks[0]), []string{ScoreSimulation})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := ScoreExplanation(ctx, st, m, "mlp.post_act", 0, tokenNeuron, judge, "cooking recipes", []string{ScoreSimulation})
	if err != nil {
		t.Fatal(err)
	}
	if good.Simulation.Value < 0.8 || bad.Simulation.Value > 0.1 || good.Detection != nil {
		t.Fatalf("scoring text: good %+v, bad %+v", good.Simulation, bad.Simulation)
	}

	// Resumable: a second run explains nothing new.
	again, err := job.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.Explained != 0 || again.Skipped != len(ps) {
		t.Fatalf("second run: %+v, want everything skipped", again)
	}
}
