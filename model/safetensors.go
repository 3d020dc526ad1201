package model

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"unsafe"
)

// The safetensors format: an 8-byte little-endian header length, a JSON
// header mapping names to {dtype, shape, data_offsets}, then the raw data.
// We read tensor by tensor straight into their final float32 slices, so a
// checkpoint never needs twice its size in memory.

// TensorInfo describes one tensor of a safetensors file.
type TensorInfo struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// SafetensorsFile is an open safetensors file.
type SafetensorsFile struct {
	Path     string
	Tensors  map[string]TensorInfo
	Metadata map[string]string
	f        *os.File
	dataOff  int64
	size     int64
}

const maxHeader = 100 << 20

// OpenSafetensors reads the header of a safetensors file and checks that every
// tensor lies inside the file and that no two tensors share bytes. A
// malformed header is an error wrapping ErrInvalid.
func OpenSafetensors(path string) (*SafetensorsFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	sf, err := parseSafetensorsHeader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, invalid(fmt.Errorf("%s: %w", path, err))
	}
	sf.Path, sf.f = path, f
	return sf, nil
}

func parseSafetensorsHeader(r io.ReaderAt, size int64) (*SafetensorsFile, error) {
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("not a safetensors file (too short): %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n == 0 || n > maxHeader || int64(n)+8 > size {
		return nil, fmt.Errorf("not a safetensors file (header length %d, file size %d)", n, size)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("bad header JSON: %w", err)
	}
	sf := &SafetensorsFile{Tensors: map[string]TensorInfo{}, dataOff: 8 + int64(n), size: size}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &sf.Metadata); err != nil {
				return nil, fmt.Errorf("bad __metadata__: %w", err)
			}
			continue
		}
		var ti TensorInfo
		if err := json.Unmarshal(msg, &ti); err != nil {
			return nil, fmt.Errorf("tensor %q: bad header entry: %w", name, err)
		}
		width := dtypeSize(ti.DType)
		if width == 0 {
			return nil, fmt.Errorf("tensor %q: unsupported dtype %q", name, ti.DType)
		}
		// Count elements without overflowing: no tensor holds more bytes
		// than the file.
		elems := int64(1)
		for _, d := range ti.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %q: negative dimension in shape %v", name, ti.Shape)
			}
			if d > 0 && elems > size/int64(width)/int64(d) {
				return nil, fmt.Errorf("tensor %q: shape %v of %s holds more bytes than the %d-byte file", name, ti.Shape, ti.DType, size)
			}
			elems *= int64(d)
		}
		start, end := ti.Offsets[0], ti.Offsets[1]
		if start < 0 || end < start || end > size || end-start != elems*int64(width) {
			return nil, fmt.Errorf("tensor %q: data offsets %v do not match shape %v of %s", name, ti.Offsets, ti.Shape, ti.DType)
		}
		if sf.dataOff+end > size {
			return nil, fmt.Errorf("tensor %q: data ends at byte %d but the file has only %d bytes (truncated file?)", name, sf.dataOff+end, size)
		}
		sf.Tensors[name] = ti
	}
	if err := checkOverlaps(sf.Tensors); err != nil {
		return nil, err
	}
	return sf, nil
}

// checkOverlaps rejects tensors whose byte ranges overlap: a writer never
// produces them, and reading them would alias one tensor's bytes as another.
func checkOverlaps(tensors map[string]TensorInfo) error {
	type span struct {
		name       string
		start, end int64
	}
	var spans []span
	for name, ti := range tensors {
		if ti.Offsets[1] > ti.Offsets[0] { // empty tensors occupy no bytes
			spans = append(spans, span{name, ti.Offsets[0], ti.Offsets[1]})
		}
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.start != b.start {
			return cmp.Compare(a.start, b.start)
		}
		return strings.Compare(a.name, b.name)
	})
	for i := 1; i < len(spans); i++ {
		if p, c := spans[i-1], spans[i]; c.start < p.end {
			return fmt.Errorf("tensors %q (bytes %d..%d) and %q (bytes %d..%d) overlap", p.name, p.start, p.end, c.name, c.start, c.end)
		}
	}
	return nil
}

func dtypeSize(dt string) int {
	switch dt {
	case "F32", "I32":
		return 4
	case "F16", "BF16":
		return 2
	case "I64", "F64":
		return 8
	}
	return 0
}

// Close closes the file.
func (s *SafetensorsFile) Close() error { return s.f.Close() }

// Names returns the tensor names, sorted.
func (s *SafetensorsFile) Names() []string {
	names := make([]string, 0, len(s.Tensors))
	for n := range s.Tensors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Float32 reads a tensor as float32 (F32, F16, BF16, F64, I64, I32 converted).
func (s *SafetensorsFile) Float32(name string) (*Tensor, error) {
	ti, ok := s.Tensors[name]
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q not found", s.Path, name)
	}
	t := NewTensor(ti.Shape...)
	if err := s.readInto(name, ti, t.Data); err != nil {
		return nil, err
	}
	return t, nil
}

func (s *SafetensorsFile) readInto(name string, ti TensorInfo, dst []float32) error {
	off := s.dataOff + ti.Offsets[0]
	n := len(dst)
	fail := func(err error) error {
		return fmt.Errorf("%s: reading tensor %q: %w", s.Path, name, err)
	}
	if ti.DType == "F32" && nativeLittleEndian {
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), n*4)
		if _, err := s.f.ReadAt(b, off); err != nil {
			return fail(err)
		}
		return nil
	}
	width := dtypeSize(ti.DType)
	const chunk = 1 << 16
	buf := make([]byte, chunk*width)
	for i := 0; i < n; i += chunk {
		m := min(chunk, n-i)
		b := buf[:m*width]
		if _, err := s.f.ReadAt(b, off+int64(i*width)); err != nil {
			return fail(err)
		}
		for j := range m {
			dst[i+j] = decodeElem(ti.DType, b[j*width:])
		}
	}
	return nil
}

func decodeElem(dt string, b []byte) float32 {
	switch dt {
	case "F32":
		return math.Float32frombits(binary.LittleEndian.Uint32(b))
	case "F16":
		return HalfToFloat(binary.LittleEndian.Uint16(b))
	case "BF16":
		return math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16)
	case "F64":
		return float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
	case "I64":
		return float32(int64(binary.LittleEndian.Uint64(b)))
	case "I32":
		return float32(int32(binary.LittleEndian.Uint32(b)))
	}
	return float32(math.NaN())
}

// HalfToFloat converts IEEE 754 binary16 to float32.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalise
		e := uint32(127 - 15 + 1)
		for frac&0x400 == 0 {
			frac <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (frac&0x3ff)<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// NamedTensor is a tensor to write.
type NamedTensor struct {
	Name string
	*Tensor
}

// WriteSafetensors writes float32 tensors (in the given order) to path
// atomically: a temporary file renamed into place.
func WriteSafetensors(path string, tensors []NamedTensor, metadata map[string]string) error {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range tensors {
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("writing %s: duplicate tensor %q", path, t.Name)
		}
		n := int64(len(t.Data)) * 4
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = TensorInfo{DType: "F32", Shape: shape, Offsets: [2]int64{off, off + n}}
		off += n
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hdr)%8 != 0 { // keep the data 8-byte aligned, as the reference writer does
		hdr = append(hdr, ' ')
	}
	tmp, err := os.CreateTemp(dirOf(path), ".tmp-*.safetensors")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	w := newBufWriter(tmp)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	w.Write(lenBuf[:])
	w.Write(hdr)
	var b [4]byte
	for _, t := range tensors {
		for _, v := range t.Data {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			w.Write(b[:])
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
