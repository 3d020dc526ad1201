package collate

import (
	"encoding/binary"
	"math"
	"slices"
	"unsafe"

	"tdb/dataset"
)

// Kept records are stored without pointers so that a worker keeping
// hundreds of millions of activations costs the garbage collector nothing
// to scan and AddWindow allocates nothing per record:
//
//   - a window table holds every window's source and tokens once
//     (records refer to a window by index);
//   - an arena holds record activations in large chunks; slots freed by
//     evicted records are reused by the next records of the same length.

// windowTable holds the sources and tokens of the windows records refer to.
type windowTable struct {
	src   []dataset.Source
	start []int64 // window i's tokens are toks[start[i]:start[i+1]]
	toks  []int32
	// index finds a window by source; built on first merge (AddWindow's
	// sources are unique by contract and need no lookup).
	index map[dataset.Source]int32
	// live is the number of windows referenced at the last compaction.
	live int
}

func (t *windowTable) len() int { return len(t.src) }

// add appends a window and returns its index.
func (t *windowTable) add(src dataset.Source, tokens []int32) int32 {
	if len(t.start) == 0 {
		t.start = append(t.start, 0)
	}
	i := int32(len(t.src))
	t.src = append(t.src, src)
	t.toks = append(t.toks, tokens...)
	t.start = append(t.start, int64(len(t.toks)))
	if t.index != nil {
		t.index[src] = i
	}
	return i
}

// tokens returns window i's tokens; the slice must not be modified (it is
// shared by every record of the window and never rewritten in place).
func (t *windowTable) tokens(i int32) []int32 {
	return t.toks[t.start[i]:t.start[i+1]:t.start[i+1]]
}

func (t *windowTable) ntok(i int32) int { return int(t.start[i+1] - t.start[i]) }

// lookup returns the index of the window with source src, if present.
func (t *windowTable) lookup(src dataset.Source) (int32, bool) {
	if t.index == nil {
		t.index = make(map[dataset.Source]int32, len(t.src))
		for i, s := range t.src {
			t.index[s] = int32(i)
		}
	}
	i, ok := t.index[src]
	return i, ok
}

// compact keeps the windows whose keep flag is set, in their order, and
// returns the new index of every old window (-1 for dropped ones).
func (t *windowTable) compact(keep []bool) []int32 {
	remap := make([]int32, len(t.src))
	var nt windowTable
	nt.start = make([]int64, 1, len(t.src)/2+1)
	for i := range t.src {
		if !keep[i] {
			remap[i] = -1
			continue
		}
		remap[i] = nt.add(t.src[i], t.tokens(int32(i)))
	}
	nt.live = len(nt.src)
	*t = nt
	return remap
}

// slotRef addresses a record's activations: chunk index << 32 | offset,
// with sparseSlot set for a slot that holds the record sparse: the count
// nz of values that are not +0 (as uint32 bits), their nz positions (as
// uint32 bits), then their nz values, 1+2nz float32s in all.
type slotRef uint64

// sparseSlot marks a sparse slot.
const sparseSlot slotRef = 1 << 63

// sparseWorth reports whether a record of n values of which nz are not +0
// is kept sparse: when that takes at most half the dense slot.
func sparseWorth(nz, n int) bool { return 2*(1+2*nz) <= n }

// Arena chunk sizes in float32 values: the first chunk is small (tests and
// tiny models make many accumulators), later ones double up to the cap.
const (
	arenaFirstChunk = 1 << 12
	arenaMaxChunk   = 1 << 22 // 16 MiB
)

// arena stores fixed-length runs of float32 values in pointer-free chunks.
// Freed runs are kept on per-length free lists and reused.
type arena struct {
	chunks [][]float32
	used   int // values used in the last chunk
	// The common record length has its own free list; others use the map.
	freeLen  int
	freeList []slotRef
	free     map[int][]slotRef
	inUse    int64 // values in live slots
}

// alloc returns a slot of n values (contents undefined).
func (ar *arena) alloc(n int) slotRef {
	if ar.freeLen == 0 {
		ar.freeLen = n
	}
	if n == ar.freeLen {
		if k := len(ar.freeList); k > 0 {
			r := ar.freeList[k-1]
			ar.freeList = ar.freeList[:k-1]
			ar.inUse += int64(n)
			return r
		}
	} else if l := ar.free[n]; len(l) > 0 {
		r := l[len(l)-1]
		ar.free[n] = l[:len(l)-1]
		ar.inUse += int64(n)
		return r
	}
	if len(ar.chunks) == 0 || ar.used+n > len(ar.chunks[len(ar.chunks)-1]) {
		size := arenaFirstChunk
		if k := len(ar.chunks); k > 0 {
			size = min(2*len(ar.chunks[k-1]), arenaMaxChunk)
		}
		ar.chunks = append(ar.chunks, make([]float32, max(size, n)))
		ar.used = 0
	}
	r := slotRef(uint64(len(ar.chunks)-1)<<32 | uint64(ar.used))
	ar.used += n
	ar.inUse += int64(n)
	return r
}

// get returns the n values of dense slot r (or the raw 1+2nz values of a
// sparse one).
func (ar *arena) get(r slotRef, n int) []float32 {
	r &^= sparseSlot
	off := int(uint32(r))
	return ar.chunks[r>>32][off : off+n : off+n]
}

// slotLen is the length of slot r of a record of n values.
func (ar *arena) slotLen(r slotRef, n int) int {
	if r&sparseSlot == 0 {
		return n
	}
	return 1 + 2*int(math.Float32bits(ar.get(r, 1)[0]))
}

// store keeps vals in a new slot, sparse when sparseWorth (sparse says
// whether sparse slots may be used at all).
func (ar *arena) store(vals []float32, sparse bool) slotRef {
	n := len(vals)
	if sparse {
		if nz := nonzeros(vals); sparseWorth(nz, n) {
			r := ar.alloc(1 + 2*nz)
			s := ar.get(r, 1+2*nz)
			s[0] = math.Float32frombits(uint32(nz))
			k := 0
			for i, v := range vals {
				if math.Float32bits(v) != 0 {
					s[1+k] = math.Float32frombits(uint32(i))
					s[1+nz+k] = v
					k++
				}
			}
			return r | sparseSlot
		}
	}
	r := ar.alloc(n)
	copy(ar.get(r, n), vals)
	return r
}

// values returns the n values of slot r: the slot itself if dense, else
// expanded into *buf (valid until the next call with buf).
func (ar *arena) values(r slotRef, n int, buf *[]float32) []float32 {
	if r&sparseSlot == 0 {
		return ar.get(r, n)
	}
	s := ar.get(r, 1)
	nz := int(math.Float32bits(s[0]))
	s = ar.get(r, 1+2*nz)
	*buf = slices.Grow((*buf)[:0], n)[:n]
	d := *buf
	clear(d)
	for k := range nz {
		d[math.Float32bits(s[1+k])] = s[1+nz+k]
	}
	return d
}

// release returns slot r of a record of n values to the free lists.
func (ar *arena) release(r slotRef, n int) {
	n = ar.slotLen(r, n)
	r &^= sparseSlot
	ar.inUse -= int64(n)
	if n == ar.freeLen {
		ar.freeList = append(ar.freeList, r)
		return
	}
	if ar.free == nil {
		ar.free = map[int][]slotRef{}
	}
	ar.free[n] = append(ar.free[n], r)
}

// littleEndian reports whether float32 slices can be copied to and from
// the little-endian partial encoding as raw bytes.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// word is a 4-byte value of the partial encoding (tokens, activations).
type word interface{ ~float32 | ~int32 }

// appendWords appends vs as little-endian 4-byte words.
func appendWords[T word](b []byte, vs []T) []byte {
	if len(vs) == 0 {
		return b
	}
	if littleEndian {
		return append(b, unsafe.Slice((*byte)(unsafe.Pointer(&vs[0])), 4*len(vs))...)
	}
	b = slices.Grow(b, 4*len(vs))
	for i := range vs {
		b = binary.LittleEndian.AppendUint32(b, *(*uint32)(unsafe.Pointer(&vs[i])))
	}
	return b
}

// readWords fills dst from len(dst) little-endian 4-byte words in src.
func readWords[T word](dst []T, src []byte) {
	if len(dst) == 0 {
		return
	}
	if littleEndian {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)), src)
		return
	}
	for i := range dst {
		*(*uint32)(unsafe.Pointer(&dst[i])) = binary.LittleEndian.Uint32(src[4*i:])
	}
}
