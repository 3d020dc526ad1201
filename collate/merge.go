package collate

import "fmt"

// Merge folds o into a; o must not be used afterwards. Both must describe the
// same location, layer, component count and Config. The result does not
// depend on the order in which partials are merged.
func (a *LayerAccumulator) Merge(o *LayerAccumulator) error {
	if a.location != o.location || a.layer != o.layer || a.components != o.components {
		return fmt.Errorf("collate: cannot merge %s layer %d (%d components) into %s layer %d (%d components)",
			o.location, o.layer, o.components, a.location, a.layer, a.components)
	}
	if a.cfg != o.cfg {
		return fmt.Errorf("collate: cannot merge %s layer %d: settings differ (%+v vs %+v)", a.location, a.layer, o.cfg, a.cfg)
	}
	if err := a.openPlan(); err != nil {
		return err
	}
	if err := o.openPlan(); err != nil {
		return err
	}
	if o.kind != kindUnset {
		if err := a.setKind(o.kind); err != nil {
			return err
		}
	}
	a.flushLive()
	o.flushLive()
	a.flushSketch()
	o.flushSketch()
	a.exactCount += o.exactCount
	a.records += o.records
	// o's windows enter a's table when one of their records is kept.
	remap := make([]int32, o.wins.len())
	for i := range remap {
		remap[i] = -1
	}
	existed := make([]bool, o.wins.len())
	window := func(ow int32) (int32, bool) {
		if w := remap[ow]; w >= 0 {
			return w, existed[ow]
		}
		w, ok := a.wins.lookup(o.wins.src[ow])
		if !ok {
			w = a.wins.add(o.wins.src[ow], o.wins.tokens(ow))
		}
		remap[ow], existed[ow] = w, ok
		return w, ok
	}
	for c := 0; c < a.components; c++ {
		a.exact[c].add(&o.exact[c])
		a.nonzero[c] += o.nonzero[c]
		a.minAct[c] = min(a.minAct[c], o.minAct[c])
		a.maxAct[c] = max(a.maxAct[c], o.maxAct[c])
		a.minRec[c] = min(a.minRec[c], o.minRec[c])
		a.sketch[c].merge(&o.sketch[c])
		// Every record o keeps is offered once to both heaps: the merged
		// top-k (pool) is the top-k (pool) of the union.
		for _, e := range o.top[c] {
			a.mergeRecord(c, o, e.win, e.max, e.ref, window)
		}
		for _, e := range o.pool[c] {
			if !o.inTop(c, &topEnt{win: e.win, max: e.max}) {
				a.mergeRecord(c, o, e.win, e.max, e.ref, window)
			}
		}
	}
	for i, v := range o.histTotal {
		a.histTotal[i] += v
	}
	a.maybeCompact()
	return nil
}

// mergeRecord offers o's record (window ow, maximum mx, activations in slot
// ref of o's arena) of component c to a. A record whose source a already
// keeps is ignored, so merging the same partial twice changes nothing.
func (a *LayerAccumulator) mergeRecord(c int, o *LayerAccumulator, ow int32, mx float32, ref slotRef, window func(int32) (int32, bool)) {
	src := o.wins.src[ow]
	var prio uint64
	enterPool := false
	if a.cfg.QuantilePool > 0 {
		prio = priorityOf(a.prioBase[c], src)
		enterPool = prio <= a.poolThr[c]
	}
	if !(a.cfg.TopK > 0 && mx >= a.topThr[c]) && !enterPool {
		return
	}
	w, existed := window(ow)
	if existed && a.holds(c, w) {
		return
	}
	n := o.recordLen(ow)
	a.keep(c, w, mx, prio, n, func(int) []float32 { return o.acts.get(ref, n) })
}

// holds reports whether component c keeps a record of window w.
func (a *LayerAccumulator) holds(c int, w int32) bool {
	for _, e := range a.top[c] {
		if e.win == w {
			return true
		}
	}
	for _, e := range a.pool[c] {
		if e.win == w {
			return true
		}
	}
	return false
}
