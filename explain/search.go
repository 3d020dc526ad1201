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
	if limit <= 0 {
		limit = 50
	}
	q := terms(query)
	if len(q) == 0 {
		return []Hit{}
	}
	docs := make([][]string, len(rows))
	df := map[string]int{}
	total := 0
	for i, r := range rows {
		docs[i] = terms(r.Explanation.Explanation)
		total += len(docs[i])
		seen := map[string]bool{}
		for _, t := range docs[i] {
			if !seen[t] {
				seen[t] = true
				df[t]++
			}
		}
	}
	n := float64(len(rows))
	avg := max(float64(total)/max(n, 1), 1)
	const k1, b = 1.2, 0.75
	phrase := strings.Join(q, " ")
	hits := []Hit{}
	for i, r := range rows {
		tf := map[string]int{}
		for _, t := range docs[i] {
			tf[t]++
		}
		var s float64
		for _, t := range q {
			f := float64(tf[t])
			if f == 0 {
				continue
			}
			idf := math.Log(1 + (n-float64(df[t])+0.5)/(float64(df[t])+0.5))
			s += idf * f * (k1 + 1) / (f + k1*(1-b+b*float64(len(docs[i]))/avg))
		}
		if s == 0 {
			continue
		}
		if len(q) > 1 && strings.Contains(strings.Join(docs[i], " "), phrase) {
			s *= 1.5
		}
		hits = append(hits, Hit{Row: r, Relevance: s})
	}
	sim := func(h Hit) float64 {
		if h.Scores.Simulation == nil {
			return math.Inf(-1)
		}
		return h.Scores.Simulation.Value
	}
	slices.SortStableFunc(hits, func(x, y Hit) int {
		return cmp.Or(cmp.Compare(y.Relevance, x.Relevance), cmp.Compare(sim(y), sim(x)),
			cmp.Compare(x.Location, y.Location), cmp.Compare(x.Layer, y.Layer), cmp.Compare(x.Component, y.Component))
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	return hits
}
