package dataset

import "math"

// Source says where a window came from: the corpus document and the token
// offset of the window's first token within it (for a token stream: the
// index of that token in the stream). Sources are unique within a dataset.
type Source struct {
	Doc    int64 `json:"doc"`
	Offset int64 `json:"offset"`
}

// Less orders sources (document, then offset); ties between equal maximum
// activations are broken by it.
func (s Source) Less(o Source) bool {
	if s.Doc != o.Doc {
		return s.Doc < o.Doc
	}
	return s.Offset < o.Offset
}

// Compare is Less as a sort comparison (-1, 0, +1).
func (s Source) Compare(o Source) int {
	switch {
	case s.Less(o):
		return -1
	case o.Less(s):
		return 1
	}
	return 0
}

// Record is one window of one component: its tokens, the component's
// activation at every token (for pair components the lower triangle of the
// [query, key] matrix row by row: query i, keys 0..i) and the maximum
// activation that ranks it.
type Record struct {
	Source        Source    `json:"source"`
	MaxActivation float32   `json:"max_activation"`
	Tokens        []int32   `json:"tokens"`
	Activations   []float32 `json:"activations"`
}

// Stats describes every activation of one component.
type Stats struct {
	Count       int64   `json:"count"`
	Mean        float64 `json:"mean"`
	Variance    float64 `json:"variance"`
	Skewness    float64 `json:"skewness"`
	Kurtosis    float64 `json:"kurtosis"`
	Max         float32 `json:"max"`
	Min         float32 `json:"min"`
	FracNonzero float64 `json:"frac_nonzero"`
	// QuantileBoundaries are the quantile buckets+1 boundaries of the record
	// maximum buckets; empty when there are no records.
	QuantileBoundaries []float32 `json:"quantile_boundaries"`
	// Histogram holds HistogramBins counts; see HistogramEdges.
	Histogram []int64 `json:"histogram"`
}

// ComponentView is everything collated for one component.
type ComponentView struct {
	Location string `json:"location"`
	Layer    int    `json:"layer"`
	Index    int    `json:"index"`
	// Pairs marks attention-head style records (lower-triangle activations).
	Pairs bool `json:"pairs,omitempty"`
	// Top holds the top records, best first.
	Top []Record `json:"top"`
	// Random is a uniform random sample; any prefix is a uniform sample too.
	Random []Record `json:"random"`
	// Quantiles[b] is a uniform sample of the records whose maximum falls in
	// bucket b, [Stats.QuantileBoundaries[b], Stats.QuantileBoundaries[b+1]).
	Quantiles [][]Record `json:"quantiles"`
	Stats     Stats      `json:"stats"`
}

// The activation histogram has fixed, data-independent bins so that
// histograms of different shards add up exactly. Bins are by magnitude on a
// half-octave log scale from 2^-8 to 2^8, mirrored for negative values, with
// exact zero in a bin of its own:
//
//	magnitude bin m (0..31) holds |x| in [E_m, E_m+1), where
//	E_0 = 0 (exclusive), E_m = 2^(m/2-8) · (1 + (m%2)/2), E_32 = +Inf;
//	so the lowest bin is (0, 1.5·2^-8) and the highest [192, +Inf).
//
// The written histogram has 65 counts in ascending value order: 32 negative
// bins (m = 31 down to 0), the zero bin, 32 positive bins (m = 0 up to 31).
const (
	// HistogramMagnitudes is the number of magnitude bins per sign.
	HistogramMagnitudes = 32
	// HistogramBins is the number of bins in a written histogram.
	HistogramBins = 2*HistogramMagnitudes + 1
)

// histogramEdge returns the magnitude edge E_m.
func histogramEdge(m int) float64 {
	switch {
	case m <= 0:
		return 0
	case m >= HistogramMagnitudes:
		return math.Inf(1)
	}
	return math.Ldexp(1+0.5*float64(m%2), m/2-8)
}

// HistogramEdges returns the 66 edges of the 65 written histogram bins in
// ascending order. Bin i holds the values between edges i and i+1; the zero
// bin (index 32) has both edges 0 and holds exact zeros only.
func HistogramEdges() []float64 {
	edges := make([]float64, 0, HistogramBins+1)
	for m := HistogramMagnitudes; m >= 1; m-- {
		edges = append(edges, -histogramEdge(m))
	}
	edges = append(edges, 0, 0)
	for m := 1; m <= HistogramMagnitudes; m++ {
		edges = append(edges, histogramEdge(m))
	}
	return edges
}

// HistogramEdgesJSON returns HistogramEdges with the infinite ends as
// ±MaxFloat64 so that they survive JSON.
func HistogramEdgesJSON() []float64 {
	e := HistogramEdges()
	e[0], e[len(e)-1] = -math.MaxFloat64, math.MaxFloat64
	return e
}
