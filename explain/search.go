package explain

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strings"

	"tdb/store"
)

// Hit is one search result: a stored explanation and its relevance.
type Hit struct {
	Row
	Relevance float64 `json:"relevance"`
}

// Search ranks a dataset's explanations by how well their text matches
// query: BM25 over lower-cased word terms, a bonus when the whole query
// appears as a phrase, ties broken by simulation score and then by
// component. It returns at most limit hits (limit ≤ 0: 50).
func Search(ctx context.Context, st store.Store, dataset, query string, limit int) ([]Hit, error) {
	rows, err := ReadAll(ctx, st, dataset)
	if err != nil {
		return nil, err
	}
	return Rank(rows, query, limit), nil
}

// Rank is Search over rows already read.
func Rank(rows []Row, query string, limit int) []Hit {
	return NewIndex(rows).Rank(query, limit, nil)
}

// Index holds explanations prepared for ranking by text (each row's terms,
// postings and the collection's statistics), so that a server answering
// many searches over the same rows tokenizes them once. It is read-only
// once built and safe for concurrent use.
type Index struct {
	rows     []Row
	joined   []string // each row's terms joined by spaces (phrase matches)
	lens     []int32
	postings map[string][]posting
	avg      float64
	// Bytes estimates the index's memory (rows excluded).
	Bytes int64
}

type posting struct{ row, tf int32 }

// NewIndex indexes rows.
func NewIndex(rows []Row) *Index {
	x := &Index{rows: rows, joined: make([]string, len(rows)), lens: make([]int32, len(rows)), postings: map[string][]posting{}}
	total := 0
	for i, r := range rows {
		ts := terms(r.Explanation.Explanation)
		x.joined[i] = strings.Join(ts, " ")
		x.lens[i] = int32(len(ts))
		total += len(ts)
		tf := map[string]int32{}
		for _, t := range ts {
			tf[t]++
		}
		for _, t := range ts {
			if n, ok := tf[t]; ok {
				x.postings[t] = append(x.postings[t], posting{int32(i), n})
				delete(tf, t)
			}
		}
		x.Bytes += int64(len(x.joined[i])) + 16 + 4 + 8*int64(len(ts))
	}
	for t := range x.postings {
		x.Bytes += int64(len(t)) + 48
	}
	x.avg = max(float64(total)/max(float64(len(rows)), 1), 1)
	return x
}

// Rank ranks the indexed rows that keep accepts (nil: all) against query
// (BM25 with the statistics of every indexed row, ×1.5 when a query of
// several words appears as a phrase; ties by simulation score, then
// location, layer and component) and returns at most limit hits (limit ≤
// 0: 50).
func (x *Index) Rank(query string, limit int, keep func(*Row) bool) []Hit {
	if limit <= 0 {
		limit = 50
	}
	q := terms(query)
	if len(q) == 0 {
		return []Hit{}
	}
	n := float64(len(x.rows))
	const k1, b = 1.2, 0.75
	// Dense accumulators: a query can match every row.
	score := make([]float64, len(x.rows))
	var touched []int32
	for _, t := range q {
		ps := x.postings[t]
		if len(ps) == 0 {
			continue
		}
		df := float64(len(ps))
		idf := math.Log(1 + (n-df+0.5)/(df+0.5))
		for _, p := range ps {
			f := float64(p.tf)
			if score[p.row] == 0 {
				touched = append(touched, p.row)
			}
			score[p.row] += idf * f * (k1 + 1) / (f + k1*(1-b+b*float64(x.lens[p.row])/x.avg))
		}
	}
	phrase := strings.Join(q, " ")
	type cand struct {
		row      int32
		rel, sim float64
	}
	cands := make([]cand, 0, len(touched))
	for _, i := range touched {
		s := score[i]
		r := &x.rows[i]
		if s == 0 || keep != nil && !keep(r) {
			continue
		}
		if len(q) > 1 && strings.Contains(x.joined[i], phrase) {
			s *= 1.5
		}
		sim := math.Inf(-1)
		if r.Scores.Simulation != nil {
			sim = r.Scores.Simulation.Value
		}
		cands = append(cands, cand{i, s, sim})
	}
	// Comparisons run lazily: most candidates differ in relevance.
	slices.SortFunc(cands, func(a, b cand) int {
		if c := cmp.Compare(b.rel, a.rel); c != 0 {
			return c
		}
		if c := cmp.Compare(b.sim, a.sim); c != 0 {
			return c
		}
		x, y := &x.rows[a.row], &x.rows[b.row]
		return cmp.Or(cmp.Compare(x.Location, y.Location), cmp.Compare(x.Layer, y.Layer), cmp.Compare(x.Component, y.Component),
			cmp.Compare(x.Method.String(), y.Method.String()))
	})
	hits := make([]Hit, 0, min(limit, len(cands)))
	for _, c := range cands[:min(limit, len(cands))] {
		hits = append(hits, Hit{Row: x.rows[c.row], Relevance: c.rel})
	}
	return hits
}
