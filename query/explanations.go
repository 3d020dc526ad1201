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
	val any
	at  time.Time
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

// fresh returns the cached value of key, loading it (value and size) when
// it is missing or older than the TTL. Concurrent requests share one load;
// a negative TTL loads every time.
func (r *Reader) fresh(ctx context.Context, key string, load func(ctx context.Context) (any, int64, error)) (any, error) {
	if r.explTTL < 0 {
		v, _, err := load(ctx)
		return v, err
	}
	var s *stamped
	for range 2 {
		v, err := r.cache.get(ctx, key, func(lctx context.Context) (any, int64, error) {
			val, size, err := load(lctx)
			return &stamped{val: val, at: r.now()}, size, err
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
	return s.val, nil
}

// Explanations returns the stored explanations of one component (empty
// when it has none); a dataset, location, layer or component that does not
// exist is not found.
func (r *Reader) Explanations(ctx context.Context, name, location string, layer, index int) ([]Explanation, error) {
	if _, err := r.componentManifest(ctx, name, location, layer, index); err != nil {
		return nil, err
	}
	// One cache entry per explanations file (ChunkSize components).
	v, err := r.fresh(ctx, "expl|"+explain.ChunkKey(name, location, layer, index), func(lctx context.Context) (any, int64, error) {
		rows, err := explain.ReadChunk(lctx, r.st, name, location, layer, index)
		return rows, rowsSize(rows), err
	})
	if err != nil {
		return nil, err
	}
	out := []Explanation{}
	for _, row := range v.([]explain.Row) {
		if row.Component == index {
			out = append(out, newExplanation(row.Explanation))
		}
	}
	return out, nil
}

// SearchExplanations ranks a dataset's stored explanations by how well
// their text matches query (explain.Index: BM25 with the whole dataset's
// term statistics, phrase bonus, ties by simulation score), narrowed to a
// location and layer when given.
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
	// One cache entry per dataset: every explanation, indexed for ranking.
	v, err := r.fresh(ctx, "explall|"+name, func(lctx context.Context) (any, int64, error) {
		rows, err := explain.ReadAll(lctx, r.st, name)
		if err != nil {
			return nil, 0, err
		}
		x := explain.NewIndex(rows)
		return x, rowsSize(rows) + x.Bytes, nil
	})
	if err != nil {
		return nil, err
	}
	var keep func(*explain.Row) bool
	if o.Location != "" || o.Layer >= 0 {
		keep = func(row *explain.Row) bool {
			return (o.Location == "" || row.Location == o.Location) && (o.Layer < 0 || row.Layer == o.Layer)
		}
	}
	res := &ExplanationSearchResult{Query: query, Hits: []ExplanationHit{}}
	for _, h := range v.(*explain.Index).Rank(query, o.Limit, keep) {
		res.Hits = append(res.Hits, ExplanationHit{Location: h.Location, Layer: h.Layer, Index: h.Component,
			Explanation: newExplanation(h.Row.Explanation), Relevance: h.Relevance})
	}
	return res, nil
}
