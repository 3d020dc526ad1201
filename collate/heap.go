package collate

// Bounded heaps of kept records. The root is the record that leaves first:
// for the top-k the worst-ranked record, for the pool the latest priority.

// worse is the top-k heap order: a leaves before b.
func worse(a, b *rec) bool { return better(&b.Record, &a.Record) }

// later is the pool heap order: a leaves before b.
func later(a, b *rec) bool { return earlier(b, a) }

func siftUp(h []rec, i int, before func(a, b *rec) bool) {
	for i > 0 {
		p := (i - 1) / 2
		if !before(&h[i], &h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func siftDown(h []rec, i int, before func(a, b *rec) bool) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && before(&h[r], &h[l]) {
			m = r
		}
		if !before(&h[m], &h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// offer inserts r into the bounded heap h of capacity k if it belongs there
// and reports whether it did. With dedup, a record whose source is already
// kept is ignored, so merging the same record twice changes nothing; windows
// fed by AddWindow skip that scan (their sources are unique by contract).
func offer(h []rec, k int, r rec, before func(a, b *rec) bool, dedup bool) ([]rec, bool) {
	if k == 0 {
		return h, false
	}
	if len(h) == k && !before(&h[0], &r) {
		return h, false
	}
	if dedup {
		for i := range h {
			if h[i].Source == r.Source {
				return h, false
			}
		}
	}
	if len(h) < k {
		h = append(h, r)
		siftUp(h, len(h)-1, before)
		return h, true
	}
	h[0] = r
	siftDown(h, 0, before)
	return h, true
}
