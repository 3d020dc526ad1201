package collate

// Bounded heaps of kept records, one top-k heap and one pool heap per
// component. Entries are small and pointer-free: the activations live in the
// accumulator's arena, the source and tokens in its window table. The root
// is the record that leaves first: for the top-k the worst-ranked record,
// for the pool the one of latest priority. A record kept by both heaps
// shares one arena slot.

// topEnt is a kept top-k record.
type topEnt struct {
	ref slotRef
	win int32
	max float32
}

// poolEnt is a kept pool record.
type poolEnt struct {
	prio uint64
	ref  slotRef
	win  int32
	max  float32
}

// topWorse reports whether x ranks after y in the top-k order (smaller
// maximum, then larger source).
func (a *LayerAccumulator) topWorse(x, y *topEnt) bool {
	if x.max != y.max {
		return x.max < y.max
	}
	return a.wins.src[y.win].Less(a.wins.src[x.win])
}

// poolLater reports whether x comes after y in the sampling order (larger
// priority, then larger source).
func (a *LayerAccumulator) poolLater(x, y *poolEnt) bool {
	if x.prio != y.prio {
		return x.prio > y.prio
	}
	return a.wins.src[y.win].Less(a.wins.src[x.win])
}

// topAdmits reports whether a new record e belongs in component c's top-k.
func (a *LayerAccumulator) topAdmits(c int, e *topEnt) bool {
	h := a.top[c]
	return a.cfg.TopK > 0 && (len(h) < a.cfg.TopK || a.topWorse(&h[0], e))
}

// poolAdmits reports whether a new record e belongs in component c's pool.
func (a *LayerAccumulator) poolAdmits(c int, e *poolEnt) bool {
	h := a.pool[c]
	return a.cfg.QuantilePool > 0 && e.prio <= a.poolThr[c] && (len(h) < a.cfg.QuantilePool || a.poolLater(&h[0], e))
}

// inTop reports whether a record that was offered to component c's top-k
// is kept there. The top-k is the best TopK of every record ever offered,
// so membership is a comparison with the root.
func (a *LayerAccumulator) inTop(c int, e *topEnt) bool {
	h := a.top[c]
	return a.cfg.TopK > 0 && (len(h) < a.cfg.TopK || !a.topWorse(e, &h[0]))
}

// inPool is inTop for the pool (the bottom QuantilePool by priority; while
// a plan is open, records above the planned threshold were never offered).
func (a *LayerAccumulator) inPool(c int, e *poolEnt) bool {
	h := a.pool[c]
	return a.cfg.QuantilePool > 0 && e.prio <= a.poolThr[c] && (len(h) < a.cfg.QuantilePool || !a.poolLater(e, &h[0]))
}

// pushTop adds e, which topAdmits, to component c's top-k and returns the
// record it evicted, if any.
func (a *LayerAccumulator) pushTop(c int, e topEnt) (topEnt, bool) {
	h := a.top[c]
	if len(h) < a.cfg.TopK {
		h = append(h, e)
		i := len(h) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !a.topWorse(&h[i], &h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
		a.top[c] = h
		if len(h) == a.cfg.TopK {
			a.topThr[c] = h[0].max
		}
		return topEnt{}, false
	}
	old := h[0]
	h[0] = e
	n, i := len(h), 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && a.topWorse(&h[r], &h[l]) {
			m = r
		}
		if !a.topWorse(&h[m], &h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	a.topThr[c] = h[0].max
	return old, true
}

// pushPool is pushTop for the pool. While a plan is open, exactly the
// records that end in the pool are admitted, so they are appended in any
// order and put in heap order once the pool is full or the plan closes.
func (a *LayerAccumulator) pushPool(c int, e poolEnt) (poolEnt, bool) {
	h := a.pool[c]
	if a.planned != nil && len(h) < a.cfg.QuantilePool {
		h = append(h, e)
		a.pool[c] = h
		if len(h) == a.cfg.QuantilePool {
			a.heapifyPool(c)
			a.poolThr[c] = h[0].prio
		}
		return poolEnt{}, false
	}
	if len(h) < a.cfg.QuantilePool {
		h = append(h, e)
		i := len(h) - 1
		for i > 0 {
			p := (i - 1) / 2
			if !a.poolLater(&h[i], &h[p]) {
				break
			}
			h[i], h[p] = h[p], h[i]
			i = p
		}
		a.pool[c] = h
		if len(h) == a.cfg.QuantilePool {
			a.poolThr[c] = h[0].prio
		}
		return poolEnt{}, false
	}
	old := h[0]
	h[0] = e
	a.siftDownPool(h, 0)
	a.poolThr[c] = h[0].prio
	return old, true
}

// heapifyPool puts component c's pool in heap order.
func (a *LayerAccumulator) heapifyPool(c int) {
	h := a.pool[c]
	for i := len(h)/2 - 1; i >= 0; i-- {
		a.siftDownPool(h, i)
	}
}

func (a *LayerAccumulator) siftDownPool(h []poolEnt, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && a.poolLater(&h[r], &h[l]) {
			m = r
		}
		if !a.poolLater(&h[m], &h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// keep offers a record of component c to both heaps and stores its
// activations (vals(c), called only if the record is kept; with vals nil the
// slot is listed in a.fills for the caller to fill) in one shared
// slot. It releases the slots of records that no heap keeps any more.
func (a *LayerAccumulator) keep(c int, win int32, mx float32, prio uint64, n int, vals func(c int) []float32) {
	t := topEnt{win: win, max: mx}
	p := poolEnt{prio: prio, win: win, max: mx}
	toTop, toPool := a.topAdmits(c, &t), a.poolAdmits(c, &p)
	if !toTop && !toPool {
		return
	}
	// Mostly-zero records of per-token components are kept sparse (a
	// window's rows are gathered for them instead of filled afterwards).
	sparse := a.kind == kindTokens
	if vals == nil && sparse && a.gather != nil && sparseWorth(int(a.winNZ[c]), n) {
		vals = a.gather
	}
	var ref slotRef
	if vals != nil {
		ref = a.acts.store(vals(c), sparse)
	} else {
		ref = a.acts.alloc(n)
		a.fills = append(a.fills, fill{c: int32(c), ref: ref})
	}
	t.ref, p.ref = ref, ref
	var oldT topEnt
	var oldP poolEnt
	var evT, evP bool
	if toTop {
		oldT, evT = a.pushTop(c, t)
	}
	if toPool {
		oldP, evP = a.pushPool(c, p)
	}
	if evT && evP && oldT.ref == oldP.ref {
		a.acts.release(oldT.ref, a.recordLen(oldT.win))
		return
	}
	if evT {
		q := poolEnt{prio: priority(a.salt, c, a.wins.src[oldT.win]), win: oldT.win}
		if !a.inPool(c, &q) {
			a.acts.release(oldT.ref, a.recordLen(oldT.win))
		}
	}
	if evP {
		q := topEnt{win: oldP.win, max: oldP.max}
		if !a.inTop(c, &q) {
			a.acts.release(oldP.ref, a.recordLen(oldP.win))
		}
	}
}
