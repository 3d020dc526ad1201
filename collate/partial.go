package collate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"

	"tdb/dataset"
)

// A partial is one accumulator in a compact, deterministic binary form (the
// same state always gives the same bytes). Layout, little-endian, integers as
// (zig-zag) varints unless noted:
//
//	"TDBPART2"
//	header: location, layer, components, TopK, RandomK, QuantileBuckets,
//	        PerBucket, QuantilePool, Seed (8 bytes), kind, live count,
//	        records, exact count, has-exact flag
//	windows: n, then per window (sorted by source) doc, offset, token
//	        count; then every window's tokens as raw int32s
//	per component: shift, 4 live sums (float64), 64 live histogram counts,
//	        [4 exact sums, 64 merged histogram counts], nonzero, min, max,
//	        smallest record max, sketch (code deltas and counts),
//	        records: n, then per record (by window) the window index delta,
//	        flags (1 top, 2 pool, 3 both; +4 sparse), max (float32) and the
//	        activations as raw float32s (as many as the window's tokens, or
//	        T(T+1)/2 for pair records), or, sparse, the count of values
//	        that are not +0 and per value its distance from the previous
//	        one's position and the float32 (flagSparse)
//
// A record kept by both the top-k and the pool is stored once. Record
// priorities are not stored: they are recomputed from the seed.
const partialMagic = "TDBPART2"

// encodeChunk is how much the encoder buffers before writing.
const encodeChunk = 1 << 20

// Encode writes the accumulator as a partial.
func (a *LayerAccumulator) Encode(w io.Writer) error {
	if err := a.openPlan(); err != nil {
		return err
	}
	a.flushSketch()
	e := &encoder{w: w}
	e.bytes([]byte(partialMagic))
	e.str(a.location)
	e.uvarint(uint64(a.layer))
	e.uvarint(uint64(a.components))
	for _, v := range []int{a.cfg.TopK, a.cfg.RandomK, a.cfg.QuantileBuckets, a.cfg.PerBucket, a.cfg.QuantilePool} {
		e.uvarint(uint64(v))
	}
	e.u64(a.cfg.Seed)
	e.uvarint(uint64(a.kind))
	e.uvarint(uint64(a.count))
	e.uvarint(uint64(a.records))
	e.uvarint(uint64(a.exactCount))
	e.flag(a.exact != nil)

	// The window table: every window of a kept record, sorted by source.
	used := make([]bool, a.wins.len())
	for c := 0; c < a.components; c++ {
		for _, r := range a.top[c] {
			used[r.win] = true
		}
		for _, r := range a.pool[c] {
			used[r.win] = true
		}
	}
	var ids []int32
	for i, u := range used {
		if u {
			ids = append(ids, int32(i))
		}
	}
	slices.SortFunc(ids, func(x, y int32) int { return a.wins.src[x].Compare(a.wins.src[y]) })
	index := make([]int32, a.wins.len())
	e.uvarint(uint64(len(ids)))
	for i, w := range ids {
		index[w] = int32(i)
		s := a.wins.src[w]
		e.varint(s.Doc)
		e.varint(s.Offset)
		e.uvarint(uint64(a.wins.ntok(w)))
	}
	for _, w := range ids {
		e.buf = appendWords(e.buf, a.wins.tokens(w))
		e.maybeFlush()
	}

	var recs []encRec
	for c := 0; c < a.components; c++ {
		e.f32(a.shift[c])
		for _, v := range a.liveSums(c) {
			e.f64(v)
		}
		for _, v := range a.hist[c*histStride : c*histStride+histLive] {
			e.uvarint(uint64(v))
		}
		if a.exact != nil {
			for _, f := range a.exact[c] {
				e.bigFloat(f)
			}
			for _, v := range a.histTotal[c*histLive : (c+1)*histLive] {
				e.uvarint(uint64(v))
			}
		}
		e.uvarint(uint64(a.nonzero[c]))
		e.f32(a.minAct[c])
		e.f32(a.maxAct[c])
		e.f32(a.minRec[c])
		sk := &a.sketch[c]
		e.uvarint(uint64(len(sk.codes)))
		prev := uint16(0)
		for i, code := range sk.codes {
			e.uvarint(uint64(code - prev))
			e.uvarint(sk.counts[i])
			prev = code
		}
		// Records in window order (heap order depends on history); a
		// record in both heaps shares its slot and is written once.
		recs = recs[:0]
		for _, r := range a.top[c] {
			recs = append(recs, encRec{win: index[r.win], old: r.win, max: r.max, ref: r.ref, flags: 1})
		}
		for _, r := range a.pool[c] {
			recs = append(recs, encRec{win: index[r.win], old: r.win, max: r.max, ref: r.ref, flags: 2})
		}
		slices.SortFunc(recs, func(x, y encRec) int { return int(x.win) - int(y.win) })
		n := 0
		for i := range recs {
			if n > 0 && recs[n-1].win == recs[i].win {
				recs[n-1].flags |= recs[i].flags
				continue
			}
			recs[n] = recs[i]
			n++
		}
		e.uvarint(uint64(n))
		prevWin := int32(-1)
		for _, r := range recs[:n] {
			e.uvarint(uint64(r.win - prevWin))
			prevWin = r.win
			vals := a.acts.values(r.ref, a.recordLen(r.old), &a.expand)
			nz := nonzeros(vals)
			if sparseBytes(nz) < 4*len(vals) {
				e.buf = append(e.buf, r.flags|flagSparse)
				e.f32(r.max)
				e.sparse(vals, nz)
			} else {
				e.buf = append(e.buf, r.flags)
				e.f32(r.max)
				e.buf = appendWords(e.buf, vals)
			}
			e.maybeFlush()
		}
		e.maybeFlush()
	}
	e.flush()
	if e.err != nil {
		return fmt.Errorf("collate: encoding %s layer %d: %w", a.location, a.layer, e.err)
	}
	return nil
}

// flagSparse marks a record written as its nonzero values: their count,
// then per value the position's distance from the previous one (the first
// from -1) and the float32. Records are written sparse when that is
// shorter than the dense run (sparseBytes), a function of the values only,
// so the same state still gives the same bytes.
const flagSparse = 4

// sparseBytes bounds the bytes of a sparse record of nz nonzero values
// (distances under 128 take one byte; the count a few).
func sparseBytes(nz int) int { return 5*nz + 3 }

// nonzeros counts the values whose bits are not those of +0 (a -0 is
// kept as a value).
func nonzeros(vals []float32) int {
	n := 0
	for _, v := range vals {
		if math.Float32bits(v) != 0 {
			n++
		}
	}
	return n
}

// sparse writes vals's nz nonzero values as (distance, value) pairs. Zeros
// read back as +0, so a -0 is written as a value.
func (e *encoder) sparse(vals []float32, nz int) {
	e.uvarint(uint64(nz))
	prev := -1
	for i, v := range vals {
		if math.Float32bits(v) != 0 {
			e.uvarint(uint64(i - prev))
			e.f32(v)
			prev = i
		}
	}
}

// encRec is a record on its way into a partial.
type encRec struct {
	win, old int32 // index in the written table, in the accumulator's
	max      float32
	ref      slotRef
	flags    byte
}

// MarshalBinary returns the partial's bytes.
func (a *LayerAccumulator) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	if err := a.Encode(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encoder appends to a buffer that it writes out in large pieces.
type encoder struct {
	w   io.Writer
	buf []byte
	err error
}

func (e *encoder) maybeFlush() {
	if len(e.buf) >= encodeChunk {
		e.flush()
	}
}

func (e *encoder) flush() {
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

func (e *encoder) bytes(b []byte)   { e.buf = append(e.buf, b...) }
func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) u64(v uint64)     { e.buf = binary.LittleEndian.AppendUint64(e.buf, v) }
func (e *encoder) f64(v float64)    { e.u64(math.Float64bits(v)) }
func (e *encoder) f32(v float32) {
	e.buf = binary.LittleEndian.AppendUint32(e.buf, math.Float32bits(v))
}
func (e *encoder) str(s string) { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) flag(b bool) {
	if b {
		e.uvarint(1)
	} else {
		e.uvarint(0)
	}
}

// bigFloat writes an exact value canonically: sign (0 zero, 1 positive,
// 2 negative), then the odd integer mantissa m and exponent x with value
// m·2^x.
func (e *encoder) bigFloat(f *big.Float) {
	if f == nil || f.Sign() == 0 {
		e.uvarint(0)
		return
	}
	if f.Sign() > 0 {
		e.uvarint(1)
	} else {
		e.uvarint(2)
	}
	bits := int(f.MinPrec())
	mant := new(big.Float)
	exp := f.MantExp(mant) // f = mant·2^exp, 0.5 <= |mant| < 1
	mant.SetMantExp(mant, bits)
	m, _ := mant.Int(nil)
	m.Abs(m)
	e.varint(int64(exp - bits))
	mb := m.Bytes()
	e.uvarint(uint64(len(mb)))
	e.bytes(mb)
}

// ErrCorruptPartial is wrapped by DecodePartial's errors about bad bytes.
var ErrCorruptPartial = errors.New("collate: corrupt partial")

// minComponentBytes is the least a component takes in a partial.
const minComponentBytes = 4 + 32 + histLive + 1 + 12 + 2

// DecodePartial parses a partial written by Encode. It never panics on bad
// input and allocates no more than a small multiple of len(data).
func DecodePartial(data []byte) (*LayerAccumulator, error) {
	d := &decoder{b: data}
	a, err := d.partial()
	if err != nil {
		return nil, fmt.Errorf("%w: %v (at byte %d of %d)", ErrCorruptPartial, err, len(data)-len(d.b), len(data))
	}
	return a, nil
}

func (d *decoder) partial() (*LayerAccumulator, error) {
	if string(d.take(len(partialMagic))) != partialMagic {
		return nil, errors.New("not a tdb partial of this version (bad magic)")
	}
	loc := d.str(256)
	layer := d.int(1 << 16)
	comps := d.int(len(d.b) / minComponentBytes)
	var cfg Config
	for _, p := range []*int{&cfg.TopK, &cfg.RandomK, &cfg.QuantileBuckets, &cfg.PerBucket, &cfg.QuantilePool} {
		*p = d.int(maxTopK)
	}
	cfg.Seed = d.u64()
	kind := uint8(d.int(int(kindPairs)))
	count := int64(d.int(math.MaxInt64))
	records := int64(d.int(math.MaxInt64))
	exactCount := int64(d.int(math.MaxInt64))
	hasExact := d.int(1) == 1
	if d.err != nil {
		return nil, d.err
	}
	if comps == 0 {
		return nil, errors.New("zero components")
	}
	a, err := NewLayerAccumulator(loc, layer, comps, cfg)
	if err != nil {
		return nil, err
	}
	a.kind, a.count, a.records, a.exactCount = kind, count, records, exactCount
	a.shiftSet = count > 0

	nw := d.int(len(d.b) / 3)
	var total int
	for i := 0; i < nw && d.err == nil; i++ {
		src := dataset.Source{Doc: d.varint(), Offset: d.varint()}
		n := d.int(min(len(d.b)/4, maxValues))
		if i > 0 && !a.wins.src[i-1].Less(src) {
			return nil, errors.New("window table not sorted")
		}
		if n == 0 || (kind == kindPairs && n*(n+1)/2 > maxValues) {
			d.fail("bad window length")
		}
		total += n
		if total > len(d.b)/4 {
			d.fail("window tokens exceed the data")
		}
		a.wins.src = append(a.wins.src, src)
		a.wins.start = append(a.wins.start, int64(total))
	}
	if d.err != nil {
		return nil, d.err
	}
	a.wins.start = append([]int64{0}, a.wins.start...)
	a.wins.toks = make([]int32, total)
	readWords(a.wins.toks, d.take(4*total))
	a.wins.live = nw
	if nw > 0 && kind == kindUnset {
		return nil, errors.New("records of unknown kind")
	}
	if hasExact {
		a.exact = make([]powerSums, comps)
		a.histTotal = make([]int64, histLive*comps)
	}
	for c := 0; c < comps && d.err == nil; c++ {
		a.shift[c] = d.f32()
		var sums [4]float64
		for i := range sums {
			sums[i] = d.f64()
		}
		a.setLiveSums(c, &sums)
		for i := range histLive {
			a.hist[c*histStride+i] = uint32(d.int(math.MaxUint32))
		}
		if hasExact {
			for i := range 4 {
				a.exact[c][i] = d.bigFloat()
			}
			for i := range histLive {
				a.histTotal[c*histLive+i] = int64(d.int(math.MaxInt64))
			}
		}
		a.nonzero[c] = int64(d.int(math.MaxInt64))
		a.minAct[c], a.maxAct[c], a.minRec[c] = d.f32(), d.f32(), d.f32()
		ns := d.int(min(len(d.b)/2, sketchCodes))
		sk := &a.sketch[c]
		sk.codes, sk.counts = make([]uint16, ns), make([]uint64, ns)
		code := 0
		for i := range ns {
			delta := d.int(sketchCodes)
			if i > 0 && delta == 0 {
				d.fail("sketch codes not increasing")
			}
			code += delta
			if code >= sketchCodes {
				d.fail("sketch code out of range")
				break
			}
			sk.codes[i], sk.counts[i] = uint16(code), uint64(d.int(math.MaxInt64))
		}
		d.records(a, c, nw)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return a, nil
}

// records reads component c's records into its heaps and checks that they
// are what an accumulator can hold: at most TopK top and QuantilePool pool
// records, and a record kept by one heap only does not belong in the other
// (the heaps' membership tests rely on it).
func (d *decoder) records(a *LayerAccumulator, c, nw int) {
	cfg := a.cfg
	n := d.int(cfg.TopK + cfg.QuantilePool)
	w := -1
	only := d.only[:0]
	for range n {
		delta := d.int(nw)
		flags := d.int(3 | flagSparse)
		mx := d.f32()
		if d.err != nil {
			return
		}
		w += delta
		if delta == 0 || w >= nw || flags == 0 {
			d.fail("bad record")
			return
		}
		win := int32(w)
		L := a.recordLen(win)
		var ref slotRef
		if flags&flagSparse != 0 {
			flags &^= flagSparse
			nz := d.int(min(L, len(d.b)/5))
			if d.err != nil {
				return
			}
			a.expand = slices.Grow(a.expand[:0], L)[:L]
			dst := a.expand
			clear(dst)
			pos := -1
			for range nz {
				step := d.int(L)
				pos += step
				v := d.f32()
				if d.err == nil && (step == 0 || pos >= L || math.Float32bits(v) == 0) {
					d.fail("bad sparse record")
				}
				if d.err != nil {
					return
				}
				dst[pos] = v
			}
			if flags == 0 {
				d.fail("bad record")
				return
			}
			ref = a.acts.store(dst, a.kind == kindTokens)
		} else {
			vals := d.take(4 * L)
			if d.err != nil {
				return
			}
			ref = a.acts.alloc(L)
			readWords(a.acts.get(ref, L), vals)
		}
		if flags&1 != 0 {
			if len(a.top[c]) == cfg.TopK {
				d.fail("too many top records")
				return
			}
			a.pushTop(c, topEnt{ref: ref, win: win, max: mx})
		}
		if flags&2 != 0 {
			if len(a.pool[c]) == cfg.QuantilePool {
				d.fail("too many pool records")
				return
			}
			a.pushPool(c, poolEnt{prio: priority(a.salt, c, a.wins.src[win]), ref: ref, win: win, max: mx})
		}
		if flags != 3 {
			only = append(only, onlyRec{win: win, flags: flags, max: mx})
		}
	}
	d.only = only
	for _, r := range only {
		if r.flags == 1 && a.inPool(c, &poolEnt{prio: priority(a.salt, c, a.wins.src[r.win]), win: r.win}) {
			d.fail("top record missing from the pool")
			return
		}
		if r.flags == 2 && a.inTop(c, &topEnt{win: r.win, max: r.max}) {
			d.fail("pool record missing from the top-k")
			return
		}
	}
}

// onlyRec is a decoded record kept by one heap only.
type onlyRec struct {
	win   int32
	flags int
	max   float32
}

type decoder struct {
	b    []byte
	err  error
	only []onlyRec
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("unexpected end of data")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads a uvarint that must be at most limit.
func (d *decoder) int(limit int) int {
	v := d.uvarint()
	if v > uint64(limit) {
		d.fail(fmt.Sprintf("value %d exceeds limit %d", v, limit))
		return 0
	}
	return int(v)
}

func (d *decoder) u64() uint64 {
	b := d.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (d *decoder) f64() float64 { return math.Float64frombits(d.u64()) }

func (d *decoder) f32() float32 {
	b := d.take(4)
	if b == nil {
		return 0
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(b))
}

func (d *decoder) str(limit int) string { return string(d.take(d.int(limit))) }

func (d *decoder) bigFloat() *big.Float {
	f := newExact()
	sign := d.int(2)
	if sign == 0 || d.err != nil {
		return f
	}
	exp := d.varint()
	mb := d.take(d.int(exactPrec / 8))
	if d.err != nil {
		return f
	}
	if exp < -1<<20 || exp > 1<<20 || len(mb) == 0 || mb[0] == 0 || mb[len(mb)-1]&1 == 0 {
		d.fail("bad exact sum")
		return f
	}
	f.SetInt(new(big.Int).SetBytes(mb))
	f.SetMantExp(f, int(exp))
	if sign == 2 {
		f.Neg(f)
	}
	return f
}
