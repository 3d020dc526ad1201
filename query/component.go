package query

import (
	"tdb/dataset"
	"tdb/model/tokenizer"
)

// Component is the JSON of one component (GET .../{layer}/{index} and
// tdb top --json).
type Component struct {
	Dataset  string `json:"dataset,omitempty"`
	Location string `json:"location"`
	Layer    int    `json:"layer"`
	Index    int    `json:"index"`
	// Pairs marks attention-head records: activations are the lower
	// triangle of [query, key], row by row.
	Pairs     bool       `json:"pairs"`
	Stats     Stats      `json:"stats"`
	Top       []Record   `json:"top"`
	Random    []Record   `json:"random"`
	Quantiles []Quantile `json:"quantiles"`
}

// Stats are a component's statistics plus the histogram's bin edges.
type Stats struct {
	dataset.Stats
	// HistogramEdges has len(Histogram)+1 edges; the infinite ends are
	// ±MaxFloat64 (JSON has no infinity).
	HistogramEdges []float64 `json:"histogram_edges"`
}

// Record is one record with its rank in its list and display strings.
type Record struct {
	Rank          int            `json:"rank"`
	MaxActivation float32        `json:"max_activation"`
	Source        dataset.Source `json:"source"`
	Tokens        []int32        `json:"tokens"`
	// TokenStrings are the tokens decoded one by one; a UTF-8 character
	// split across tokens shows as U+FFFD.
	TokenStrings []string  `json:"token_strings"`
	Activations  []float32 `json:"activations"`
	// ActivationsLayout is "tokens" (one per token) or "lower_triangle"
	// (heads: query i, keys 0..i, row by row).
	ActivationsLayout string `json:"activations_layout"`
}

// Quantile is the sample of one activation-quantile bucket: records whose
// maximum is in [Lower, Upper).
type Quantile struct {
	Bucket  int      `json:"bucket"`
	Lower   float32  `json:"lower"`
	Upper   float32  `json:"upper"`
	Records []Record `json:"records"`
}

// Strings decodes tokens for display; a nil Strings leaves token_strings
// empty.
type Strings func(ids []int32) []string

// TokenStrings returns a Strings backed by a table of every token's display
// string (built once; lookups allocate nothing but the slice).
func TokenStrings(tok *tokenizer.Tokenizer) Strings {
	table := make([]string, tokenizer.VocabSize)
	for id := range table {
		table[id] = tok.Display([]int{id})[0]
	}
	return func(ids []int32) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			if id >= 0 && int(id) < len(table) {
				out[i] = table[id]
			} else {
				out[i] = "\uFFFD"
			}
		}
		return out
	}
}

// NewComponent converts a dataset view to its JSON; k > 0 keeps at most k
// top records.
func NewComponent(v *dataset.ComponentView, str Strings, k int) *Component {
	layout := "tokens"
	if v.Pairs {
		layout = "lower_triangle"
	}
	recs := func(in []dataset.Record) []Record {
		out := make([]Record, len(in))
		for i, r := range in {
			out[i] = Record{Rank: i, MaxActivation: r.MaxActivation, Source: r.Source, Tokens: r.Tokens,
				Activations: r.Activations, ActivationsLayout: layout, TokenStrings: []string{}}
			if r.Tokens == nil {
				out[i].Tokens = []int32{}
			}
			if r.Activations == nil {
				out[i].Activations = []float32{}
			}
			if str != nil {
				out[i].TokenStrings = str(r.Tokens)
			}
		}
		return out
	}
	top := v.Top
	if k > 0 && len(top) > k {
		top = top[:k]
	}
	c := &Component{Location: v.Location, Layer: v.Layer, Index: v.Index, Pairs: v.Pairs,
		Stats: Stats{Stats: v.Stats, HistogramEdges: dataset.HistogramEdgesJSON()},
		Top:   recs(top), Random: recs(v.Random), Quantiles: []Quantile{}}
	if c.Stats.QuantileBoundaries == nil {
		c.Stats.QuantileBoundaries = []float32{}
	}
	if c.Stats.Histogram == nil {
		c.Stats.Histogram = []int64{}
	}
	qb := v.Stats.QuantileBoundaries
	for b, rs := range v.Quantiles {
		q := Quantile{Bucket: b, Records: recs(rs)}
		if b+1 < len(qb) {
			q.Lower, q.Upper = qb[b], qb[b+1]
		}
		c.Quantiles = append(c.Quantiles, q)
	}
	return c
}
