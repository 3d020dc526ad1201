package collate

import "math"

// Source says where a window came from: the corpus document and the token
// offset of the window's first token within it (for a token stream: the
// index of that token in the stream). Sources are unique within a dataset.
type Source struct {
	Doc    int64 `json:"doc"`
	Offset int64 `json:"offset"`
}

// less orders sources (document, then offset).
func (s Source) less(o Source) bool {
	if s.Doc != o.Doc {
		return s.Doc < o.Doc
	}
	return s.Offset < o.Offset
}

// cmp orders sources for sorting.
func (s Source) cmp(o Source) int {
	switch {
	case s.less(o):
		return -1
	case o.less(s):
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

// rec is a kept record plus its sampling priority.
type rec struct {
	Record
	prio uint64
}

// better reports whether a ranks before b in the top-k order: larger max
// activation first, then smaller source. It is a strict total order on
// records with distinct sources.
func better(a, b *Record) bool {
	if a.MaxActivation != b.MaxActivation {
		return a.MaxActivation > b.MaxActivation
	}
	return a.Source.less(b.Source)
}

// earlier reports whether a comes before b in priority order (the sampling
// order): smaller priority first, then smaller source.
func earlier(a, b *rec) bool {
	if a.prio != b.prio {
		return a.prio < b.prio
	}
	return a.Source.less(b.Source)
}

// mix64 is the splitmix64 finalizer: a fast bijective 64-bit mixer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// salt derives the per-(seed, location, layer) key of the sampling hash so
// that layers and locations sample independently.
func salt(seed uint64, location string, layer int) uint64 {
	// FNV-1a over the location, then mixed with seed and layer.
	h := uint64(14695981039346656037)
	for i := 0; i < len(location); i++ {
		h ^= uint64(location[i])
		h *= 1099511628211
	}
	return mix64(h ^ mix64(seed+0x9e3779b97f4a7c15) ^ mix64(uint64(int64(layer))+0x632be59bd9b4e019))
}

// priority is the sampling priority of a component's record. It depends
// only on the job's seed, the location, layer, component and source.
func priority(salt uint64, component int, src Source) uint64 {
	return priorityOf(priorityBase(salt, component), src)
}

// priorityBase is the part of priority that depends on the component only
// (accumulators keep it per component).
func priorityBase(salt uint64, component int) uint64 {
	return mix64(salt ^ uint64(component)*0xd6e8feb86659fd93)
}

func priorityOf(base uint64, src Source) uint64 {
	return mix64(mix64(base^uint64(src.Doc)) ^ uint64(src.Offset)*0x9e3779b97f4a7c15)
}

var negInf32 = float32(math.Inf(-1))
