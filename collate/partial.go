package collate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"
)

// A partial is one accumulator in a compact, deterministic binary form (the
// same state always gives the same bytes). Layout, little-endian, integers as
// (zig-zag) varints:
//
//	"TDBPART1"
//	header: location, layer, components, TopK, RandomK, QuantileBuckets,
//	        PerBucket, QuantilePool, Seed (8 bytes), kind, live count,
//	        records, exact count, has-exact flag
//	windows: n, then per window (sorted by source) doc, offset, tokens
//	per component: shift, 4 live sums (float64), 64 live histogram counts,
//	        [4 exact sums, 64 merged histogram counts], nonzero, min, max,
//	        smallest record max, sketch (code deltas and counts),
//	        top records, pool records (window index, max, activations)
//
// Record priorities are not stored: they are recomputed from the seed.
const partialMagic = "TDBPART1"

// Encode writes the accumulator as a partial.
func (a *LayerAccumulator) Encode(w io.Writer) error {
	a.flushSketch()
	bw := bufio.NewWriterSize(w, 1<<16)
	e := &encoder{w: bw}
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

	// The window table: every distinct source of a kept record.
	wins := map[Source][]int32{}
	for c := 0; c < a.components; c++ {
		for _, h := range [][]rec{a.top[c], a.pool[c]} {
			for _, r := range h {
				wins[r.Source] = r.Tokens
			}
		}
	}
	srcs := make([]Source, 0, len(wins))
	for s := range wins {
		srcs = append(srcs, s)
	}
	slices.SortFunc(srcs, func(x, y Source) int {
		if x.less(y) {
			return -1
		} else if y.less(x) {
			return 1
		}
		return 0
	})
	index := make(map[Source]int, len(srcs))
	e.uvarint(uint64(len(srcs)))
	for i, s := range srcs {
		index[s] = i
		e.varint(s.Doc)
		e.varint(s.Offset)
		toks := wins[s]
		e.uvarint(uint64(len(toks)))
		for _, t := range toks {
			e.varint(int64(t))
		}
	}

	for c := 0; c < a.components; c++ {
		e.f32(a.shift[c])
		for _, v := range a.sums[4*c : 4*c+4] {
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
		for _, h := range [][]rec{a.top[c], a.pool[c]} {
			// Heap order depends on insertion history; write a canonical order.
			h = slices.Clone(h)
			slices.SortFunc(h, order(func(x, y *rec) bool { return x.Source.less(y.Source) }))
			e.uvarint(uint64(len(h)))
			for _, r := range h {
				e.uvarint(uint64(index[r.Source]))
				e.f32(r.MaxActivation)
				e.uvarint(uint64(len(r.Activations)))
				for _, v := range r.Activations {
					e.f32(v)
				}
			}
		}
	}
	if e.err != nil {
		return fmt.Errorf("collate: encoding %s layer %d: %w", a.location, a.layer, e.err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("collate: encoding %s layer %d: %w", a.location, a.layer, err)
	}
	return nil
}

// MarshalBinary returns the partial's bytes.
func (a *LayerAccumulator) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	if err := a.Encode(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type encoder struct {
	w   *bufio.Writer
	buf [binary.MaxVarintLen64]byte
	err error
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}
func (e *encoder) uvarint(v uint64) { e.bytes(binary.AppendUvarint(e.buf[:0], v)) }
func (e *encoder) varint(v int64)   { e.bytes(binary.AppendVarint(e.buf[:0], v)) }
func (e *encoder) u64(v uint64)     { e.bytes(binary.LittleEndian.AppendUint64(e.buf[:0], v)) }
func (e *encoder) f64(v float64)    { e.u64(math.Float64bits(v)) }
func (e *encoder) f32(v float32) {
	e.bytes(binary.LittleEndian.AppendUint32(e.buf[:0], math.Float32bits(v)))
}
func (e *encoder) str(s string) { e.uvarint(uint64(len(s))); e.bytes([]byte(s)) }
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
const minComponentBytes = 4 + 32 + histLive + 1 + 12 + 3

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
		return nil, errors.New("not a tdb partial (bad magic)")
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
	wins := make([]Source, nw)
	toks := make([][]int32, nw)
	for i := range wins {
		wins[i] = Source{Doc: d.varint(), Offset: d.varint()}
		if i > 0 && !wins[i-1].less(wins[i]) {
			return nil, errors.New("window table not sorted")
		}
		n := d.int(min(len(d.b), maxValues))
		toks[i] = make([]int32, n)
		for j := range toks[i] {
			v := d.varint()
			if v < math.MinInt32 || v > math.MaxInt32 {
				d.fail("token out of range")
			}
			toks[i][j] = int32(v)
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	if hasExact {
		a.exact = make([]powerSums, comps)
		a.histTotal = make([]int64, histLive*comps)
	}
	for c := 0; c < comps && d.err == nil; c++ {
		a.shift[c] = d.f32()
		for i := range 4 {
			a.sums[4*c+i] = d.f64()
		}
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
		for _, which := range []int{0, 1} {
			limit := cfg.TopK
			if which == 1 {
				limit = cfg.QuantilePool
			}
			n := d.int(limit)
			for range n {
				w := d.int(max(nw-1, 0))
				if d.err != nil || nw == 0 {
					d.fail("record without window")
					break
				}
				r := rec{Record: Record{Source: wins[w], Tokens: toks[w], MaxActivation: d.f32()}}
				r.prio = priority(a.salt, c, r.Source)
				na := d.int(min(len(d.b)/4, maxValues))
				r.Activations = make([]float32, na)
				for i := range r.Activations {
					r.Activations[i] = d.f32()
				}
				if d.err != nil {
					break
				}
				var ok bool
				if which == 0 {
					a.top[c], ok = offer(a.top[c], cfg.TopK, r, worse, true)
				} else {
					a.pool[c], ok = offer(a.pool[c], cfg.QuantilePool, r, later, true)
				}
				if !ok {
					d.fail("duplicate record")
				}
			}
		}
		if len(a.top[c]) == cfg.TopK && cfg.TopK > 0 {
			a.topThr[c] = a.top[c][0].MaxActivation
		}
		if len(a.pool[c]) == cfg.QuantilePool && cfg.QuantilePool > 0 {
			a.poolThr[c] = a.pool[c][0].prio
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return a, nil
}

type decoder struct {
	b   []byte
	err error
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
