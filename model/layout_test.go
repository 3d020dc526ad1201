package model

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkpointDir writes config.json (cfg) and model.safetensors (made from
// src by rewrite's edit) into a fresh folder.
func checkpointDir(t *testing.T, cfg Config, src string, edit func(string, *TensorInfo, *[]byte) bool) string {
	t.Helper()
	dir := t.TempDir()
	b, err := cfg.MarshalHF(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	rewrite(t, src, filepath.Join(dir, "model.safetensors"), edit)
	return dir
}

func keep(string, *TensorInfo, *[]byte) bool { return true }

// A config.json with fewer layers than the weights used to run the first
// layers only, silently. Every unused tensor is now an error naming it.
func TestLoadRefusesUnusedTensors(t *testing.T) {
	cfg, dir := smallVocab(t)
	src := filepath.Join(dir, "model.safetensors")
	short := cfg
	short.NLayer = 1
	for _, c := range []struct {
		name string
		cfg  Config
		edit func(string, *TensorInfo, *[]byte) bool
		want []string
	}{
		{"fewer layers in config.json", short, keep, []string{"12 tensors are not used", "transformer.h.1.ln_1.weight", "layers up to 1", "n_layer 1"}},
	} {
		d := checkpointDir(t, c.cfg, src, c.edit)
		for _, load := range []func() error{
			func() error { _, err := Load(d); return err },
			func() error { _, err := Inspect(d); return err },
		} {
			err := load()
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s: err %v, want an ErrInvalid", c.name, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not mention %q", c.name, err, w)
				}
			}
		}
	}

	// An unknown tensor besides the full model, and a tied lm_head.weight
	// (accepted only when it equals wte).
	withExtra := func(name string, change bool) string {
		return addTensor(t, cfg, src, name, change)
	}
	if _, err := Load(withExtra("transformer.h.0.attn.rotary", false)); err == nil || !strings.Contains(err.Error(), "transformer.h.0.attn.rotary") ||
		!strings.Contains(err.Error(), "does config.json match") {
		t.Errorf("unknown tensor: %v", err)
	}
	if _, err := Load(withExtra("lm_head.weight", false)); err != nil {
		t.Errorf("tied lm_head.weight refused: %v", err)
	}
	if _, err := Load(withExtra("lm_head.weight", true)); err == nil || !strings.Contains(err.Error(), "untied") {
		t.Errorf("untied lm_head.weight: %v", err)
	}
	// The same weight under both naming conventions is ambiguous.
	if _, err := Load(withExtra("h.0.ln_1.weight", false)); err == nil || !strings.Contains(err.Error(), "same weight") {
		t.Errorf("duplicate weight: %v", err)
	}
	// The hub's causal-mask buffers are not weights: still loads.
	if _, err := loadFile(cfg, filepath.Join(dir, "model.hub-naming.safetensors")); err != nil {
		t.Errorf("hub checkpoint with mask buffers: %v", err)
	}
	if got, err := Inspect(dir); err != nil || got != cfg {
		t.Errorf("Inspect of the fixture: %+v, %v", got, err)
	}
}

// addTensor writes a checkpoint holding src's tensors plus name, a copy of
// wte.weight (perturbed when change).
func addTensor(t *testing.T, cfg Config, src, name string, change bool) string {
	t.Helper()
	var wte []byte
	var wteInfo TensorInfo
	dir := checkpointDir(t, cfg, src, func(n string, ti *TensorInfo, b *[]byte) bool {
		if n == "transformer.wte.weight" {
			wte, wteInfo = append([]byte(nil), *b...), *ti
		}
		return true
	})
	if strings.HasPrefix(name, "h.") { // a copy of the tensor named transformer.<name>
		sf, err := OpenSafetensors(src)
		if err != nil {
			t.Fatal(err)
		}
		ti := sf.Tensors["transformer."+name]
		wte = make([]byte, ti.Offsets[1]-ti.Offsets[0])
		sf.f.ReadAt(wte, sf.dataOff+ti.Offsets[0])
		wteInfo = ti
		sf.Close()
	}
	if change {
		wte[0] ^= 0x40
	}
	path := filepath.Join(dir, "model.safetensors")
	rewrite(t, path, path, func(n string, ti *TensorInfo, b *[]byte) bool { return true })
	// append the extra tensor at the end of the data
	sf, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	header := map[string]TensorInfo{}
	var body []byte
	for _, n := range sf.Names() {
		ti := sf.Tensors[n]
		data := make([]byte, ti.Offsets[1]-ti.Offsets[0])
		sf.f.ReadAt(data, sf.dataOff+ti.Offsets[0])
		ti.Offsets = [2]int64{int64(len(body)), int64(len(body) + len(data))}
		body = append(body, data...)
		header[n] = ti
	}
	sf.Close()
	wteInfo.Offsets = [2]int64{int64(len(body)), int64(len(body) + len(wte))}
	body = append(body, wte...)
	header[name] = wteInfo
	writeRaw(t, path, header, body)
	return dir
}

func writeRaw(t *testing.T, path string, header map[string]TensorInfo, body []byte) {
	t.Helper()
	hdr, _ := json.Marshal(header)
	var out bytes.Buffer
	binary.Write(&out, binary.LittleEndian, uint64(len(hdr)))
	out.Write(hdr)
	out.Write(body)
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rawHeader is a safetensors file with the given header JSON and n data bytes.
func rawHeader(hdr string, n int) []byte {
	var out bytes.Buffer
	binary.Write(&out, binary.LittleEndian, uint64(len(hdr)))
	out.WriteString(hdr)
	out.Write(make([]byte, n))
	return out.Bytes()
}

func TestSafetensorsHeaderRejects(t *testing.T) {
	for _, c := range []struct{ name, hdr, want string }{
		{"overlap", `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, "overlap"},
		{"same bytes", `{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, "overlap"},
		{"overflowing shape", `{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`, "more bytes than"},
		{"offsets past the end", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[9223372036854775800,9223372036854775808]}}`, "bad header"},
		{"reversed offsets", `{"a":{"dtype":"F32","shape":[0],"data_offsets":[16,8]}}`, "do not match"},
	} {
		data := rawHeader(c.hdr, 16)
		_, err := parseSafetensorsHeader(bytes.NewReader(data), int64(len(data)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	// adjacent and empty tensors are fine
	ok := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"b":{"dtype":"F16","shape":[4],"data_offsets":[8,16]}}`
	data := rawHeader(ok, 16)
	if sf, err := parseSafetensorsHeader(bytes.NewReader(data), int64(len(data))); err != nil || len(sf.Tensors) != 3 {
		t.Errorf("valid header refused: %v", err)
	}
	// through OpenSafetensors the error is an ErrInvalid naming the file
	path := filepath.Join(t.TempDir(), "x.safetensors")
	os.WriteFile(path, rawHeader(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 16), 0o644)
	if _, err := OpenSafetensors(path); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"a" (bytes 0..16) and "b" (bytes 4..12) overlap`) {
		t.Errorf("overlap through OpenSafetensors: %v", err)
	}
}

func TestValidateTokensAndContext(t *testing.T) {
	cfg := Config{NLayer: 1, NHead: 1, DModel: 4, DMLP: 4, NCtx: 8, Vocab: 10, Eps: 1e-5}
	for _, c := range []struct {
		tokens [][]int
		want   string
	}{
		{nil, "empty batch"},
		{[][]int{{1}, {}}, "sequence 1 is empty"},
		{[][]int{make([]int, 9)}, "9 tokens, more than the model's context of 8"},
		{[][]int{{1, 2, 10}}, "position 2: token id 10 is outside the vocabulary [0, 10)"},
		{[][]int{{-1}}, "token id -1"},
	} {
		err := ValidateTokens(cfg, c.tokens)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.tokens, err, c.want)
		}
	}
	if err := ValidateTokens(cfg, [][]int{{0, 9}, make([]int, 8)}); err != nil {
		t.Error(err)
	}
	for _, n := range []int{0, -1, 9} {
		if err := ValidateContext(cfg, n); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "1..8") {
			t.Errorf("context %d: %v", n, err)
		}
	}
	if err := ValidateContext(cfg, 8); err != nil {
		t.Error(err)
	}
	// Forward runs the same check.
	m, err := NewRandom(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Forward(context.Background(), Request{Tokens: [][]int{{10}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("forward with a bad token: %v", err)
	}
}

func TestOpenMarksBadNamesInvalid(t *testing.T) {
	for _, name := range []string{"./no-such-folder", "random:gpt5", "not a name!"} {
		_, err := Open(context.Background(), name, nil)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
		if _, err := InspectName(context.Background(), name, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("InspectName %s: %v, want ErrInvalid", name, err)
		}
	}
	cfg, err := InspectName(context.Background(), "random:tiny", nil)
	if err != nil || cfg != TinyConfig {
		t.Errorf("random:tiny: %+v %v", cfg, err)
	}
}
