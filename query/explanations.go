package query

import (
	"context"
	"time"

	"tdb/dataset"
	"tdb/explain"
)

// DefaultExplanationsTTL is how long read explanations are served from the
// cache before they are read again. Datasets are immutable once written,
// but `tdb explain` may add (or rescore) explanations later, rewriting the
// explanation files in place; the store has no cheap change token (no
// ETag in store.Store), so the cache expires instead.
const DefaultExplanationsTTL = 30 * time.Second

// Explanation is one explanation of a component as the API serves it.
type Explanation struct {
	Explanation string `json:"explanation"`
	// Method names the explainer, then its model after the first colon
	// when there is one: "builtin", "llm:MODEL", "import:MODEL".
	Method string `json:"method"`
	// Scores has one entry per scoring method that was run (simulation,
	// detection, fuzzing), each {value, judge, details}.
	Scores  explain.Scores `json:"scores"`
	Created time.Time      `json:"created"`
}

func newExplanation(e explain.Explanation) Explanation {
	return Explanation{Explanation: e.Explanation, Method: e.Method.String(), Scores: e.Scores, Created: e.Created}
}

// ExplanationHit is one explanation found by a search by explanation text.
type ExplanationHit struct {
	Location string `json:"location"`
	Layer    int    `json:"layer"`
	Index    int    `json:"index"`
	Explanation
	// Relevance is the BM25 score of the text against the query (×1.5 when
	// the whole query appears as a phrase).
	Relevance float64 `json:"relevance"`
}

// ExplanationSearchResult is the answer of ?explanation= search.
type ExplanationSearchResult struct {
	// Query is the searched text.
	Query string           `json:"explanation"`
	Hits  []ExplanationHit `json:"hits"`
}

// stamped is a cached value with the time it was read.
type stamped struct {
	rows []explain.Row
	at   time.Time
}

func rowsSize(rows []explain.Row) int64 {
	n := int64(64)
	for _, r := range rows {
		n += 256 + int64(len(r.Explanation.Explanation)+len(r.Location)+len(r.Method.Explainer)+len(r.Method.Model))
		for _, s := range []*explain.Score{r.Scores.Simulation, r.Scores.Detection, r.Scores.Fuzzing} {
			if s != nil {
				n += 64 + int64(len(s.Judge)+len(s.Details))
			}
		}
	}
	return n
}

// freshRows returns the cached rows of key, reading them with load when
// they are missing or older than the TTL. Concurrent requests share one
// read; a negative TTL reads every time.
func (r *Reader) freshRows(ctx context.Context, key string, load func(ctx context.Context) ([]explain.Row, error)) ([]explain.Row, error) {
	if r.explTTL < 0 {
		return load(ctx)
	}
	var s *stamped
	for range 2 {
		v, err := r.cache.get(ctx, key, func(lctx context.Context) (any, int64, error) {
			rows, err := load(lctx)
			return &stamped{rows: rows, at: r.now()}, rowsSize(rows), err
		})
		if err != nil {
			return nil, err
		}
		s = v.(*stamped)
		if r.now().Sub(s.at) < r.explTTL {
			break
		}
		r.cache.removeIf(key, v)
	}
	return s.rows, nil
}

// Explanations returns the stored explanations of one component (empty
// when it has none); a dataset, location, layer or component that does not
// exist is not found.
func (r *Reader) Explanations(ctx context.Context, name, location string, layer, index int) ([]Explanation, error) {
	m, err := r.Manifest(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := checkLayer(m, location, layer); err != nil {
		return nil, err
	}
	if err := dataset.CheckComponent(m, location, layer, index); err != nil {
		return nil, err
	}
	// One cache entry per explanations file (ChunkSize components).
	rows, err := r.freshRows(ctx, "expl|"+explain.ChunkKey(name, location, layer, index), func(lctx context.Context) ([]explain.Row, error) {
		return explain.ReadChunk(lctx, r.st, name, location, layer, index)
	})
	if err != nil {
		return nil, err
	}
	out := []Explanation{}
	for _, row := range rows {
		if row.Component == index {
			out = append(out, newExplanation(row.Explanation))
		}
	}
	return out, nil
}

// SearchExplanations ranks a dataset's stored explanations by how well
// their text matches query (explain.Rank: BM25, phrase bonus, ties by
// simulation score), narrowed to a location and layer when given.
func (r *Reader) SearchExplanations(ctx context.Context, name, query string, o SearchOptions) (*ExplanationSearchResult, error) {
	m, err := r.Manifest(ctx, name)
	if err != nil {
		return nil, err
	}
	if o.Location != "" {
		if o.Layer >= 0 {
			if err := checkLayer(m, o.Location, o.Layer); err != nil {
				return nil, err
			}
		} else if _, ok := m.Location(o.Location); !ok {
			return nil, dataset.CheckComponent(m, o.Location, 0, 0)
		}
	}
	rows, err := r.freshRows(ctx, "explall|"+name, func(lctx context.Context) ([]explain.Row, error) {
		return explain.ReadAll(lctx, r.st, name)
	})
	if err != nil {
		return nil, err
	}
	if o.Location != "" || o.Layer >= 0 {
		var kept []explain.Row
		for _, row := range rows {
			if (o.Location == "" || row.Location == o.Location) && (o.Layer < 0 || row.Layer == o.Layer) {
				kept = append(kept, row)
			}
		}
		rows = kept
	}
	res := &ExplanationSearchResult{Query: query, Hits: []ExplanationHit{}}
	for _, h := range explain.Rank(rows, query, o.Limit) {
		res.Hits = append(res.Hits, ExplanationHit{Location: h.Location, Layer: h.Layer, Index: h.Component,
			Explanation: newExplanation(h.Row.Explanation), Relevance: h.Relevance})
	}
	return res, nil
}
