package compat

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"

	"tdb/dataset"
	"tdb/explain"
	"tdb/store"
)

// ExplainStore answers the app's explanation routes from package explain:
// /existing_explanations lists the explanations stored beside the dataset
// (datasets/<name>/explanations/, written by `tdb explain` or imported)
// with their simulation score; /explain returns the stored explanations,
// or, for a component that has none, runs the builtin explainer on its
// records (not written back: `tdb explain` owns the files); /score scores
// any explanation with the builtin simulator (simulation correlation,
// ev_correlation_score, over the held-out records).
type ExplainStore struct {
	Store store.Store
	// Vocab is the datasets' token vocabulary (nil: GPT-2's, loaded on
	// first use).
	Vocab *explain.Vocab
}

// NewExplainStore returns the explanation routes' backend over the store
// that holds the datasets, for Options.Explanations (tdb serve wires it in
// one line); a nil store (no --store) gives NoExplanations.
func NewExplainStore(st store.Store) Explanations {
	if st == nil {
		return NoExplanations{}
	}
	return &ExplainStore{Store: st}
}

func (s *ExplainStore) vocab() (*explain.Vocab, error) {
	if s.Vocab != nil {
		return s.Vocab, nil
	}
	v, err := explain.GPT2Vocab()
	if err != nil {
		return nil, fmt.Errorf("loading the GPT-2 vocabulary for the explainer: %w", err)
	}
	return v, nil
}

// stored returns a component's stored explanations, best simulation score
// first (unscored last, then by method).
func (s *ExplainStore) stored(ctx context.Context, c Component) ([]explain.Explanation, error) {
	exps, err := explain.Read(ctx, s.Store, c.Dataset, c.Location, c.Layer, c.Index)
	if err != nil {
		return nil, err
	}
	sim := func(e explain.Explanation) float64 {
		if e.Scores.Simulation == nil {
			return -2 // below any correlation
		}
		return e.Scores.Simulation.Value
	}
	slices.SortStableFunc(exps, func(a, b explain.Explanation) int { return cmp.Compare(sim(b), sim(a)) })
	return exps, nil
}

// Existing implements Explanations: the stored explanations with their
// simulation score (null when the simulation score was not run).
func (s *ExplainStore) Existing(ctx context.Context, c Component) ([]Explanation, error) {
	exps, err := s.stored(ctx, c)
	if err != nil {
		return nil, err
	}
	out := make([]Explanation, 0, len(exps))
	for _, e := range exps {
		x := Explanation{Text: e.Explanation}
		if e.Scores.Simulation != nil {
			v := e.Scores.Simulation.Value
			x.Score = &v
		}
		out = append(out, x)
	}
	return out, nil
}

// Explain implements Explanations: the stored explanations (best first),
// else the builtin explainer's explanation of the component's records.
func (s *ExplainStore) Explain(ctx context.Context, c Component, view *dataset.ComponentView) ([]string, error) {
	exps, err := s.stored(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(exps) > 0 {
		out := make([]string, len(exps))
		for i, e := range exps {
			out[i] = e.Explanation
		}
		return out, nil
	}
	v, err := s.vocab()
	if err != nil {
		return nil, err
	}
	text, err := (&explain.Builtin{Vocab: v}).Explain(ctx, explain.FromView(view))
	if err != nil {
		return nil, err
	}
	return []string{text}, nil
}

// Score implements Explanations: the simulation score of explanation by
// the builtin simulator. maxSequences > 0 bounds the held-out records
// scored (about half top, half random records).
func (s *ExplainStore) Score(ctx context.Context, c Component, view *dataset.ComponentView, explanation string, maxSequences int) (float64, error) {
	v, err := s.vocab()
	if err != nil {
		return 0, err
	}
	comp := explain.FromView(view)
	if maxSequences > 0 {
		// The scorer holds out the odd-rank records: keep 2n records to
		// hold out n.
		top := (maxSequences + 1) / 2
		comp.Top = comp.Top[:min(len(comp.Top), 2*top)]
		comp.Random = comp.Random[:min(len(comp.Random), 2*(maxSequences-top))]
	}
	sc, err := explain.SimulationScore(ctx, &explain.BuiltinJudge{Vocab: v}, comp, explanation)
	if err != nil {
		return 0, err
	}
	if sc == nil {
		return 0, errStatus{http.StatusUnprocessableEntity, fmt.Errorf("%s layer %d component %d of %s has too few records to score an explanation on", c.Location, c.Layer, c.Index, c.Dataset)}
	}
	return sc.Value, nil
}
