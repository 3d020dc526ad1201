package autoencoder

import (
	"archive/zip"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"path"
	"strings"
	"unsafe"

	"tdb/internal/pickle"
	"tdb/model"
)

// torch.save (PyTorch >= 1.6) writes a zip archive: <prefix>/data.pkl, a
// pickle of the object in which every tensor refers to a storage by key, and
// <prefix>/data/<key>, the raw little-endian bytes of each storage, stored
// uncompressed. The prefix is the file name the object was saved under, so
// it varies; we find it from data.pkl.

// maxPickleBytes bounds data.pkl: a state dict's pickle is a few KB.
const maxPickleBytes = 64 << 20

// torchFile is an opened torch.save state dict.
type torchFile struct {
	path    string
	size    int64
	prefix  string
	records map[string]*zip.File
	dict    *pickle.Dict
}

// openTorch reads the archive's directory and unpickles its data.pkl.
func openTorch(r io.ReaderAt, size int64, name string) (*torchFile, error) {
	var magic [2]byte
	if _, err := r.ReadAt(magic[:], 0); err == nil && magic[0] == 0x80 && magic[1] == 0x02 {
		return nil, fmt.Errorf("%s: legacy (pre-zip) torch.save format is not supported: re-save it with a PyTorch of 1.6 or later", name)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: not a torch.save zip archive (truncated or corrupted?): %w", name, err)
	}
	tf := &torchFile{path: name, size: size, records: map[string]*zip.File{}}
	var pkl *zip.File
	for _, f := range zr.File {
		tf.records[f.Name] = f
		dir, base := path.Split(f.Name)
		if base == "data.pkl" && strings.Count(dir, "/") <= 1 {
			if pkl != nil {
				return nil, fmt.Errorf("%s: archive holds two data.pkl records (%s and %s)", name, pkl.Name, f.Name)
			}
			pkl, tf.prefix = f, dir
		}
	}
	if pkl == nil {
		return nil, fmt.Errorf("%s: archive has no data.pkl: not a torch.save file", name)
	}
	if _, ok := tf.records[tf.prefix+"constants.pkl"]; ok {
		return nil, fmt.Errorf("%s: a TorchScript archive, not a state dict", name)
	}
	if bo, ok := tf.records[tf.prefix+"byteorder"]; ok {
		b, err := readRecord(bo, 16)
		if err != nil {
			return nil, fmt.Errorf("%s: reading %s: %w", name, bo.Name, err)
		}
		if s := string(b); s != "little" {
			return nil, fmt.Errorf("%s: byte order %q is not supported (only little-endian)", name, s)
		}
	}
	data, err := readRecord(pkl, maxPickleBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: reading %s: %w", name, pkl.Name, err)
	}
	v, err := pickle.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", name, pkl.Name, err)
	}
	d, ok := v.(*pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("%s: holds a %s, not a state dict", name, pickle.TypeName(v))
	}
	tf.dict = d
	return tf, nil
}

// readRecord reads a small zip record whole (checking its CRC).
func readRecord(f *zip.File, limit int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("record of %d bytes is larger than the limit of %d", f.UncompressedSize64, limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

// keys lists the state dict's string keys in file order.
func (tf *torchFile) keys() []string {
	var out []string
	for _, k := range tf.dict.Keys() {
		if s, ok := k.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// value returns a non-tensor entry.
func (tf *torchFile) value(key string) (any, bool) { return tf.dict.Get(key) }

// has reports whether key holds a tensor.
func (tf *torchFile) has(key string) bool {
	v, ok := tf.dict.Get(key)
	if !ok {
		return false
	}
	_, ok = v.(*pickle.Tensor)
	return ok
}

// view checks a tensor entry without reading its data: a tensor whose
// uncompressed storage record lies inside the file and holds the view.
func (tf *torchFile) view(key string) (*pickle.Tensor, *zip.File, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s: tensor %q: %s", tf.path, key, fmt.Sprintf(format, a...))
	}
	v, ok := tf.dict.Get(key)
	if !ok {
		return nil, nil, fail("missing from the state dict (keys: %s)", strings.Join(tf.keys(), ", "))
	}
	ref, ok := v.(*pickle.Tensor)
	if !ok {
		return nil, nil, fail("is a %s, not a tensor", pickle.TypeName(v))
	}
	st := ref.Storage
	rec, ok := tf.records[tf.prefix+"data/"+st.Key]
	if !ok {
		return nil, nil, fail("its storage record data/%s is missing from the archive", st.Key)
	}
	if rec.Method != zip.Store {
		return nil, nil, fail("storage data/%s is compressed; torch.save stores storages uncompressed", st.Key)
	}
	want := uint64(st.Numel) * uint64(st.DType.Size)
	if st.Numel > math.MaxInt64/8 || rec.UncompressedSize64 != want {
		return nil, nil, fail("storage data/%s holds %d bytes but the pickle says %d elements of %s (%d bytes)",
			st.Key, rec.UncompressedSize64, st.Numel, st.DType.Name, want)
	}
	off, err := rec.DataOffset()
	if err != nil || off < 0 || rec.CompressedSize64 != want || uint64(off)+want > uint64(tf.size) {
		return nil, nil, fail("storage data/%s lies outside the file (truncated?)", st.Key)
	}
	numel := int64(1)
	for _, d := range ref.Shape {
		if d != 0 && numel > st.Numel/int64(d) {
			return nil, nil, fail("shape %v has more elements than its storage (%d)", ref.Shape, st.Numel)
		}
		numel *= int64(d)
	}
	if numel > 0 {
		// The last element the view touches must lie in the storage; each
		// step is checked before it is added, so nothing overflows.
		last := ref.Offset
		if last >= st.Numel {
			return nil, nil, fail("storage offset %d is past its storage of %d elements", ref.Offset, st.Numel)
		}
		for i, d := range ref.Shape {
			if s := ref.Stride[i]; d > 1 && s > 0 {
				if int64(d-1) > (st.Numel-1-last)/s {
					return nil, nil, fail("view (offset %d, shape %v, stride %v) reaches past its storage of %d elements",
						ref.Offset, ref.Shape, ref.Stride, st.Numel)
				}
				last += int64(d-1) * s
			}
		}
	}
	return ref, rec, nil
}

// tensor reads a tensor entry as float32, converting other element types.
func (tf *torchFile) tensor(key string) (*model.Tensor, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%s: tensor %q: %s", tf.path, key, fmt.Sprintf(format, a...))
	}
	ref, rec, err := tf.view(key)
	if err != nil {
		return nil, err
	}
	st := ref.Storage
	want := uint64(st.Numel) * uint64(st.DType.Size)
	numel := int64(1)
	for _, d := range ref.Shape {
		numel *= int64(d)
	}
	t := model.NewTensor(ref.Shape...)
	if numel == 0 {
		return t, nil
	}
	rc, err := rec.Open()
	if err != nil {
		return nil, fail("%v", err)
	}
	defer rc.Close()
	if st.DType.Name == "float32" && ref.Contiguous() && nativeLittleEndian {
		// Fast path: stream the bytes straight into the tensor, then read
		// to the end so the zip reader verifies the CRC.
		if _, err := io.CopyN(io.Discard, rc, ref.Offset*4); err != nil {
			return nil, fail("reading storage data/%s: %v", st.Key, err)
		}
		if _, err := io.ReadFull(rc, floatBytes(t.Data)); err != nil {
			return nil, fail("reading storage data/%s: %v", st.Key, err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return nil, fail("reading storage data/%s: %v", st.Key, err)
		}
		return t, nil
	}
	raw := make([]byte, want)
	if _, err := io.ReadFull(rc, raw); err != nil {
		return nil, fail("reading storage data/%s: %v", st.Key, err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, fail("reading storage data/%s: %v", st.Key, err)
	}
	gather(ref, t.Data, raw)
	return t, nil
}

// gather copies the view out of the raw storage bytes, converting to
// float32. The caller has checked that every index lies in raw.
func gather(r *pickle.Tensor, dst []float32, raw []byte) {
	size := r.Storage.DType.Size
	idx := make([]int, len(r.Shape))
	for n := range dst {
		e := r.Offset
		for i, k := range idx {
			e += int64(k) * r.Stride[i]
		}
		dst[n] = decodeElement(r.Storage.DType.Name, raw[e*int64(size):])
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < r.Shape[i] {
				break
			}
			idx[i] = 0
		}
	}
}

func decodeElement(dt string, b []byte) float32 {
	le := binary.LittleEndian
	switch dt {
	case "float32":
		return math.Float32frombits(le.Uint32(b))
	case "float64":
		return float32(math.Float64frombits(le.Uint64(b)))
	case "float16":
		return model.HalfToFloat(le.Uint16(b))
	case "bfloat16":
		return math.Float32frombits(uint32(le.Uint16(b)) << 16)
	case "int64":
		return float32(int64(le.Uint64(b)))
	case "int32":
		return float32(int32(le.Uint32(b)))
	case "int16":
		return float32(int16(le.Uint16(b)))
	case "int8":
		return float32(int8(b[0]))
	case "uint8", "bool":
		return float32(b[0])
	}
	return float32(math.NaN())
}

func floatBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), len(f)*4)
}

var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
