package collate

import (
	"fmt"
	"slices"

	"tdb/dataset"
)

// Component returns the collated view of component c (finalizing the
// quantile buckets). It does not change the accumulator.
func (a *LayerAccumulator) Component(c int) (*dataset.ComponentView, error) {
	if c < 0 || c >= a.components {
		return nil, fmt.Errorf("collate: %s layer %d has no component %d (it has %d)", a.location, a.layer, c, a.components)
	}
	if err := a.openPlan(); err != nil {
		return nil, err
	}
	a.flushSketch()
	v := &dataset.ComponentView{Location: a.location, Layer: a.layer, Index: c, Pairs: a.kind == kindPairs}
	top := make([]rec, len(a.top[c]))
	for i, e := range a.top[c] {
		top[i] = a.view(e.win, e.max, e.ref, 0)
	}
	slices.SortFunc(top, order(func(x, y *rec) bool { return better(&x.Record, &y.Record) }))
	for _, r := range top {
		v.Top = append(v.Top, r.Record)
	}
	pool := make([]rec, len(a.pool[c]))
	for i, e := range a.pool[c] {
		pool[i] = a.view(e.win, e.max, e.ref, e.prio)
	}
	slices.SortFunc(pool, order(earlier))
	for _, r := range pool[:min(len(pool), a.cfg.RandomK)] {
		v.Random = append(v.Random, r.Record)
	}
	v.Stats = a.stats(c)
	if nb := a.cfg.QuantileBuckets; nb > 0 && len(v.Stats.QuantileBoundaries) > 0 {
		v.Quantiles = make([][]dataset.Record, nb)
		for _, r := range pool {
			b := bucketOf(v.Stats.QuantileBoundaries, r.MaxActivation)
			if len(v.Quantiles[b]) < a.cfg.PerBucket {
				v.Quantiles[b] = append(v.Quantiles[b], r.Record)
			}
		}
	}
	return v, nil
}

// view returns a kept record as a rec with its own copy of the activations
// (arena slots are reused) and the window table's tokens.
func (a *LayerAccumulator) view(w int32, mx float32, ref slotRef, prio uint64) rec {
	return rec{Record: dataset.Record{Source: a.wins.src[w], MaxActivation: mx, Tokens: a.wins.tokens(w),
		Activations: slices.Clone(a.acts.get(ref, a.recordLen(w)))}, prio: prio}
}

// order turns a strict total order into a sort comparison.
func order(before func(x, y *rec) bool) func(x, y rec) int {
	return func(x, y rec) int {
		switch {
		case before(&x, &y):
			return -1
		case before(&y, &x):
			return 1
		}
		return 0
	}
}
