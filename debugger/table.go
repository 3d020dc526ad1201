package debugger

import (
	"container/heap"
	"fmt"
	"math"
)

// ranked is a bounded heap keeping the k largest (value, -index) pairs.
type ranked struct {
	idx []int
	val []float64
}

func (h *ranked) Len() int { return len(h.idx) }
func (h *ranked) Less(i, j int) bool {
	if h.val[i] != h.val[j] {
		return h.val[i] < h.val[j]
	}
	return h.idx[i] > h.idx[j]
}
func (h *ranked) Swap(i, j int) {
	h.idx[i], h.idx[j] = h.idx[j], h.idx[i]
	h.val[i], h.val[j] = h.val[j], h.val[i]
}
func (h *ranked) Push(x any) {
	p := x.([2]float64)
	h.idx = append(h.idx, int(p[0]))
	h.val = append(h.val, p[1])
}
func (h *ranked) Pop() any {
	n := len(h.idx) - 1
	p := [2]float64{float64(h.idx[n]), h.val[n]}
	h.idx, h.val = h.idx[:n], h.val[:n]
	return p
}

// topK returns the indices of the k largest values (ties: lower index first), best first.
func topK(s nodeSpace, k int, value func(i int) float64) []int {
	h := &ranked{}
	for i := range s.total {
		v := value(i)
		if math.IsNaN(v) || !s.valid(i) {
			continue
		}
		if h.Len() < k {
			heap.Push(h, [2]float64{float64(i), v})
		} else if v > h.val[0] || v == h.val[0] && i < h.idx[0] {
			h.idx[0], h.val[0] = i, v
			heap.Fix(h, 0)
		}
	}
	out := make([]int, h.Len())
	for j := len(out) - 1; j >= 0; j-- {
		out[j] = int(heap.Pop(h).([2]float64)[0])
	}
	return out
}

// table builds the node table: top-k and bottom-k of each column (and of
// each column's difference when comparing), their union, all numbers.
func (e *Engine) table(p *prepared, s nodeSpace, rows []*metrics) []NodeRow {
	k := p.req.TopK
	main := rows[0]
	// Diff compares with the baseline when there are ablations, else with
	// the second prompt (rows: main, [baseline], [right]).
	var other *metrics
	if len(rows) > 1 {
		other = rows[1]
	}
	reasons := map[int][]string{}
	var order []int
	add := func(ids []int, why string) {
		for _, i := range ids {
			if _, ok := reasons[i]; !ok {
				order = append(order, i)
			}
			reasons[i] = append(reasons[i], why)
		}
	}
	for _, col := range Columns {
		vals := main.column(col)
		add(topK(s, k, func(i int) float64 { return float64(vals[i]) }), "top "+col)
		add(topK(s, k, func(i int) float64 { return -float64(vals[i]) }), "bottom "+col)
		if other != nil {
			ov := other.column(col)
			add(topK(s, k, func(i int) float64 { return float64(vals[i] - ov[i]) }), "top diff "+col)
			add(topK(s, k, func(i int) float64 { return float64(ov[i] - vals[i]) }), "bottom diff "+col)
		}
	}
	out := make([]NodeRow, 0, len(order))
	for _, i := range order {
		n := s.node(i)
		nr := NodeRow{Node: n, Name: n.Name(), Metrics: map[string]Values{}, Reason: reasons[i]}
		for _, col := range Columns {
			v := Values{Value: float64(main.column(col)[i])}
			for r := 1; r < len(rows); r++ {
				x := float64(rows[r].column(col)[i])
				if p.rows[r].label == "baseline" {
					v.Baseline = &x
				} else {
					v.Right = &x
				}
			}
			if other != nil {
				d := float64(main.column(col)[i] - other.column(col)[i])
				v.Diff = &d
			}
			nr.Metrics[col] = v
		}
		out = append(out, nr)
	}
	return out
}

// String renders a node row compactly (for logs and tests).
func (r NodeRow) String() string {
	return fmt.Sprintf("%s act=%.4g write=%.4g axg=%.4g direct=%.4g", r.Name, r.Metrics[ColActivation].Value,
		r.Metrics[ColWriteNorm].Value, r.Metrics[ColActTimesGrad].Value, r.Metrics[ColDirectEffect].Value)
}
