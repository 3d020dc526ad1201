package collate

import (
	"math"

	"tdb/dataset"
)

// rec is a kept record plus its sampling priority.
type rec struct {
	dataset.Record
	prio uint64
}

// better reports whether a ranks before b in the top-k order: larger max
// activation first, then smaller source. It is a strict total order on
// records with distinct sources.
func better(a, b *dataset.Record) bool {
	if a.MaxActivation != b.MaxActivation {
		return a.MaxActivation > b.MaxActivation
	}
	return a.Source.Less(b.Source)
}

// earlier reports whether a comes before b in priority order (the sampling
// order): smaller priority first, then smaller source.
func earlier(a, b *rec) bool {
	if a.prio != b.prio {
		return a.prio < b.prio
	}
	return a.Source.Less(b.Source)
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
func priority(salt uint64, component int, src dataset.Source) uint64 {
	return priorityOf(priorityBase(salt, component), src)
}

// priorityBase is the part of priority that depends on the component only
// (accumulators keep it per component).
func priorityBase(salt uint64, component int) uint64 {
	return mix64(salt ^ uint64(component)*0xd6e8feb86659fd93)
}

func priorityOf(base uint64, src dataset.Source) uint64 {
	return mix64(mix64(base^uint64(src.Doc)) ^ uint64(src.Offset)*0x9e3779b97f4a7c15)
}

var negInf32 = float32(math.Inf(-1))
