package explain

import "tdb/dataset"

// Record is one window of one component: token ids and the component's
// activation at each token.
type Record struct {
	Tokens      []int32   `json:"tokens"`
	Activations []float32 `json:"activations"`
	// Max is the record's maximum activation (the ranking key).
	Max float32 `json:"max_activation"`
}

// Component is what an explainer and a scorer see of one component.
type Component struct {
	Location string `json:"location"`
	Layer    int    `json:"layer"`
	Index    int    `json:"index"`
	// Top holds the top records, best first.
	Top []Record `json:"top"`
	// Random is a uniform random sample of records.
	Random []Record `json:"random"`
	// Quantiles[b] samples the records whose maximum falls in quantile
	// bucket b (bucket 0 the lowest).
	Quantiles [][]Record `json:"quantiles"`
}

// FromView converts a collated component. Pair (attention-head) records
// become one activation per query token: the maximum over its keys.
func FromView(v *dataset.ComponentView) *Component {
	c := &Component{Location: v.Location, Layer: v.Layer, Index: v.Index}
	conv := func(rs []dataset.Record) []Record {
		out := make([]Record, len(rs))
		for i, r := range rs {
			out[i] = Record{Tokens: r.Tokens, Activations: r.Activations, Max: r.MaxActivation}
			if v.Pairs {
				out[i].Activations = rowMax(r.Activations, len(r.Tokens))
			}
		}
		return out
	}
	c.Top = conv(v.Top)
	c.Random = conv(v.Random)
	for _, q := range v.Quantiles {
		c.Quantiles = append(c.Quantiles, conv(q))
	}
	return c
}

// rowMax reduces a lower-triangle [query, key] matrix (query i has keys
// 0..i) to the maximum of each query's row.
func rowMax(tri []float32, n int) []float32 {
	out := make([]float32, n)
	k := 0
	for i := 0; i < n; i++ {
		m := float32(0)
		for j := 0; j <= i && k < len(tri); j++ {
			if j == 0 || tri[k] > m {
				m = tri[k]
			}
			k++
		}
		out[i] = m
	}
	return out
}

// split returns the records an explainer may read (even-rank top, random
// and quantile records) and the held-out records scores use (odd-rank top
// and random records).
func (c *Component) split() (train, heldTop, heldRandom []Record) {
	for i, r := range c.Top {
		if i%2 == 0 {
			train = append(train, r)
		} else {
			heldTop = append(heldTop, r)
		}
	}
	for i, r := range c.Random {
		if i%2 == 0 {
			train = append(train, r)
		} else {
			heldRandom = append(heldRandom, r)
		}
	}
	for _, q := range c.Quantiles {
		for i := 0; i < len(q); i += 2 {
			train = append(train, q[i])
		}
	}
	return train, heldTop, heldRandom
}

// trainTop returns the even-rank top records (the explainer's positives).
func (c *Component) trainTop() []Record {
	var out []Record
	for i := 0; i < len(c.Top); i += 2 {
		out = append(out, c.Top[i])
	}
	return out
}

// lowRecords returns held-out non-activating records for detection: the
// odd-rank quantile and random records whose maximum is below frac of the
// top record's maximum; when there are none (a component that is never
// quiet), the odd-rank records of the lower half of the quantile buckets.
func (c *Component) lowRecords(frac float32) []Record {
	if len(c.Top) == 0 {
		return nil
	}
	limit := frac * c.Top[0].Max
	var out []Record
	for _, q := range c.Quantiles {
		for i, r := range q {
			if i%2 == 1 && r.Max < limit {
				out = append(out, r)
			}
		}
	}
	for i, r := range c.Random {
		if i%2 == 1 && r.Max < limit {
			out = append(out, r)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, q := range c.Quantiles[:len(c.Quantiles)/2] {
		for i := 1; i < len(q); i += 2 {
			out = append(out, q[i])
		}
	}
	return out
}

// argmax returns the index of the largest value (the first on ties).
func argmax(xs []float32) int {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return best
}
