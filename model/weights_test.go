package model

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func smallVocab(t testing.TB) (Config, string) {
	dir := filepath.Join("testdata", "small-vocab")
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

// rewrite copies a safetensors file, letting edit change each tensor's
// dtype, shape and bytes, or drop it (return false).
func rewrite(t *testing.T, src, dst string, edit func(name string, ti *TensorInfo, data *[]byte) bool) {
	t.Helper()
	sf, err := OpenSafetensors(src)
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	header := map[string]any{}
	var body []byte
	for _, name := range sf.Names() {
		ti := sf.Tensors[name]
		data := make([]byte, ti.Offsets[1]-ti.Offsets[0])
		if _, err := sf.f.ReadAt(data, sf.dataOff+ti.Offsets[0]); err != nil {
			t.Fatal(err)
		}
		if !edit(name, &ti, &data) {
			continue
		}
		ti.Offsets = [2]int64{int64(len(body)), int64(len(body) + len(data))}
		body = append(body, data...)
		header[name] = ti
	}
	hdr, _ := json.Marshal(header)
	var out bytes.Buffer
	binary.Write(&out, binary.LittleEndian, uint64(len(hdr)))
	out.Write(hdr)
	out.Write(body)
	if err := os.WriteFile(dst, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadHalfPrecision(t *testing.T) {
	cfg, dir := smallVocab(t)
	ref, err := loadFile(cfg, filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range []string{"F16", "BF16"} {
		path := filepath.Join(t.TempDir(), "m.safetensors")
		rewrite(t, filepath.Join(dir, "model.safetensors"), path, func(name string, ti *TensorInfo, data *[]byte) bool {
			out := make([]byte, len(*data)/2)
			for i := range len(*data) / 4 {
				f := math.Float32frombits(binary.LittleEndian.Uint32((*data)[i*4:]))
				var h uint16
				if dt == "BF16" {
					h = uint16(math.Float32bits(f) >> 16) // truncation
				} else {
					h = floatToHalf(f)
				}
				binary.LittleEndian.PutUint16(out[i*2:], h)
			}
			ti.DType, *data = dt, out
			return true
		})
		m, err := loadFile(cfg, path)
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		tol := map[string]float64{"F16": 1e-3, "BF16": 8e-3}[dt]
		for i, v := range ref.WTE {
			if d := math.Abs(float64(m.WTE[i] - v)); d > tol*math.Max(1, math.Abs(float64(v))) {
				t.Fatalf("%s: wte[%d] = %g, float32 %g", dt, i, m.WTE[i], v)
			}
		}
		res, err := m.Forward(context.Background(), Request{Tokens: [][]int{{1, 2, 3}}, Capture: []Site{At(Logits, NoLayer)}})
		if err != nil || len(res.Acts[At(Logits, NoLayer)].Data) != 3*cfg.Vocab {
			t.Fatalf("%s: forward: %v", dt, err)
		}
	}
}

// floatToHalf rounds to nearest binary16 (normal range only; test helper).
func floatToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case exp <= 0:
		return sign
	case exp >= 31:
		return sign | 0x7c00
	}
	h := sign | uint16(exp)<<10 | uint16(mant>>13)
	if mant&0x1000 != 0 {
		h++
	}
	return h
}

func TestHalfToFloat(t *testing.T) {
	for _, c := range []struct {
		h uint16
		f float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.960464477539063e-08}, {0x0000, 0}, {0x3555, 0.333251953125}} {
		if got := HalfToFloat(c.h); got != c.f {
			t.Errorf("half %#x = %g, want %g", c.h, got, c.f)
		}
	}
	if !math.IsInf(float64(HalfToFloat(0x7c00)), 1) || !math.IsNaN(float64(HalfToFloat(0x7e00))) {
		t.Error("inf/nan")
	}
}

func TestLoadErrorsNameTensorAndFile(t *testing.T) {
	cfg, dir := smallVocab(t)
	src := filepath.Join(dir, "model.safetensors")
	cases := []struct {
		name string
		edit func(name string, ti *TensorInfo, data *[]byte) bool
		want []string
	}{
		{"missing", func(n string, _ *TensorInfo, _ *[]byte) bool { return n != "transformer.h.1.mlp.c_fc.bias" }, []string{"h.1.mlp.c_fc.bias", "missing"}},
		{"misshapen", func(n string, ti *TensorInfo, _ *[]byte) bool {
			if n == "transformer.h.0.attn.c_proj.weight" {
				ti.Shape = []int{16, 64}
			}
			return true
		}, []string{"transformer.h.0.attn.c_proj.weight", "[16 64]"}},
		{"dtype", func(n string, ti *TensorInfo, _ *[]byte) bool {
			if n == "transformer.ln_f.bias" {
				ti.DType = "U8"
			}
			return true
		}, []string{"transformer.ln_f.bias", "U8"}},
	}
	for _, c := range cases {
		path := filepath.Join(t.TempDir(), "model.safetensors")
		rewrite(t, src, path, c.edit)
		_, err := loadFile(cfg, path)
		if err == nil {
			t.Fatalf("%s: loaded", c.name)
		}
		for _, w := range append(c.want, path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	// truncated: cut the file in the middle of the data
	b, _ := os.ReadFile(src)
	path := filepath.Join(t.TempDir(), "model.safetensors")
	os.WriteFile(path, b[:len(b)-1000], 0o644)
	if _, err := loadFile(cfg, path); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated file: %v", err)
	}
	os.WriteFile(path, []byte("not a checkpoint"), 0o644)
	if _, err := loadFile(cfg, path); err == nil || !strings.Contains(err.Error(), "not a safetensors file") {
		t.Errorf("garbage file: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`{"model_type":"llama","n_layer":2}`, `model_type "llama"`},
		{`{"model_type":"gpt2","n_layer":2,"n_head":3,"n_embd":32,"n_positions":8,"vocab_size":10}`, "not a multiple"},
		{`{"model_type":"gpt2","activation_function":"relu","n_layer":1,"n_head":1,"n_embd":4,"n_positions":4,"vocab_size":4}`, "relu"},
		{`{"model_type":"gpt2","n_layer":0,"n_head":1,"n_embd":4,"n_positions":4,"vocab_size":4}`, "positive"},
		{`{`, "not JSON"},
	} {
		if _, err := parseConfig([]byte(c.json)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.json, err, c.want)
		}
	}
	cfg, err := parseConfig([]byte(`{"model_type":"gpt2","n_layer":12,"n_head":12,"n_embd":768,"n_inner":null,"n_positions":1024,"vocab_size":50257,"layer_norm_epsilon":1e-05}`))
	if err != nil || cfg != Presets["gpt2"] {
		t.Errorf("gpt2 config: %+v %v", cfg, err)
	}
}

func TestForwardBadInput(t *testing.T) {
	cfg, dir := smallVocab(t)
	m, err := loadFile(cfg, filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	long := make([]int, cfg.NCtx+1)
	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{}, "empty batch"},
		{Request{Tokens: [][]int{{}}}, "empty"},
		{Request{Tokens: [][]int{{1, 512}}}, "token id 512"},
		{Request{Tokens: [][]int{long}}, "context"},
		{Request{Tokens: [][]int{{1}}, Capture: []Site{At("mlp.nope", 0)}}, "unknown location"},
		{Request{Tokens: [][]int{{1}}, Capture: []Site{At(MLPPostAct, 2)}}, "out of range"},
		{Request{Tokens: [][]int{{1}}, Capture: []Site{At(Logits, 0)}}, "no layer"},
		{Request{Tokens: [][]int{{1}}, Interventions: []Intervention{{Site: At(MLPPostAct, 0), Index: []int{999}}}}, "outside the tensor"},
	} {
		if _, err := m.Forward(context.Background(), c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want error %q, got %v", c.want, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Forward(ctx, Request{Tokens: [][]int{{1}}}); err == nil {
		t.Error("cancelled context ignored")
	}
}

// Ragged batches: each row equals the row run alone; padding is zero.
func TestRaggedBatch(t *testing.T) {
	cfg, dir := smallVocab(t)
	m, _ := loadFile(cfg, filepath.Join(dir, "model.safetensors"))
	rows := [][]int{{5, 6, 7, 8, 9}, {10, 11}, {1, 2, 3}}
	sites := []Site{At(MLPPostAct, 1), At(AttnQKProbs, 0), At(Logits, NoLayer)}
	batch, err := m.Forward(context.Background(), Request{Tokens: rows, Capture: sites})
	if err != nil {
		t.Fatal(err)
	}
	for b, row := range rows {
		one, err := m.Forward(context.Background(), Request{Tokens: [][]int{row}, Capture: sites})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sites {
			bt, ot := batch.Acts[s], one.Acts[s]
			per := bt.Stride(1)
			oper := ot.Stride(1)
			for tk := range batch.T {
				got := bt.Data[(b*batch.T+tk)*per : (b*batch.T+tk+1)*per]
				if tk >= len(row) {
					for _, v := range got {
						if v != 0 {
							t.Fatalf("%s row %d: padding position %d not zero", s, b, tk)
						}
					}
					continue
				}
				want := ot.Data[tk*oper : (tk+1)*oper]
				for i, w := range want {
					g := got[i]
					if s.Loc == AttnQKProbs { // [Tq, Tk, H]: the batch has more keys
						h, k := i%cfg.NHead, i/cfg.NHead
						g = got[k*cfg.NHead+h]
					}
					if math.Abs(float64(g-w)) > 1e-5 {
						t.Fatalf("%s row %d pos %d [%d]: batch %g, alone %g", s, b, tk, i, g, w)
					}
				}
			}
		}
	}
	if batch.LastLayer != cfg.NLayer-1 {
		t.Errorf("last layer %d", batch.LastLayer)
	}
	// early stop: only layer 0 is needed
	early, _ := m.Forward(context.Background(), Request{Tokens: rows, Capture: []Site{At(MLPPostAct, 0)}})
	if early.LastLayer != 0 {
		t.Errorf("forward ran to layer %d for a layer-0 capture", early.LastLayer)
	}
}

func TestRandomSaveLoad(t *testing.T) {
	m, err := NewRandom(Config{NLayer: 1, NHead: 2, DModel: 8, DMLP: 32, NCtx: 8, Vocab: 50, Eps: 1e-5}, 9)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Random || back.Config != m.Config || back.Blocks[0].FcW[5] != m.Blocks[0].FcW[5] {
		t.Errorf("round trip lost data: random=%v config=%+v", back.Random, back.Config)
	}
}

func FuzzSafetensorsHeader(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "small-vocab", "model.safetensors"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:4096])
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	// Headers the parser must refuse: overlapping ranges, shapes whose
	// element count overflows, offsets near the int64 limit, bad metadata.
	for _, hdr := range []string{
		`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`,
		`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[8],"data_offsets":[0,16]}}`,
		`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`,
		`{"a":{"dtype":"I64","shape":[2305843009213693952],"data_offsets":[0,0]}}`,
		`{"a":{"dtype":"F32","shape":[2],"data_offsets":[9223372036854775799,9223372036854775807]}}`,
		`{"a":{"dtype":"F32","shape":[0],"data_offsets":[16,8]},"e":{"dtype":"F16","shape":[0,3],"data_offsets":[4,4]}}`,
		`{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`,
		`{"a":{"dtype":"F32","shape":[-1,-4],"data_offsets":[0,16]}}`,
		`{"a":[1,2]}`,
	} {
		f.Add(rawHeader(hdr, 16))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := parseSafetensorsHeader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		type span struct{ lo, hi int64 }
		var spans []span
		for name, ti := range sf.Tensors {
			if sf.dataOff+ti.Offsets[1] > int64(len(data)) || ti.Offsets[0] < 0 || ti.Offsets[0] > ti.Offsets[1] {
				t.Fatalf("tensor %q accepted outside the file", name)
			}
			elems := int64(1)
			for _, d := range ti.Shape {
				elems *= int64(d)
			}
			if elems*int64(dtypeSize(ti.DType)) != ti.Offsets[1]-ti.Offsets[0] || elems > int64(len(data)) {
				t.Fatalf("tensor %q: shape %v does not fill its %v bytes", name, ti.Shape, ti.Offsets)
			}
			if ti.Offsets[0] == ti.Offsets[1] {
				continue // empty tensors occupy no bytes
			}
			for _, s := range spans {
				if ti.Offsets[0] < s.hi && s.lo < ti.Offsets[1] {
					t.Fatalf("tensor %q overlaps another", name)
				}
			}
			spans = append(spans, span{ti.Offsets[0], ti.Offsets[1]})
		}
	})
}
