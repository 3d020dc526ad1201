package model

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Block holds one transformer block's weights in Hugging Face Conv1D layout
// ([in, out], so y = x·W + b).
type Block struct {
	Ln1G, Ln1B   []float32 // [d]
	AttnW, AttnB []float32 // [d, 3d], [3d]: q | k | v
	ProjW, ProjB []float32 // [d, d], [d]
	Ln2G, Ln2B   []float32 // [d]
	FcW, FcB     []float32 // [d, d_mlp], [d_mlp]
	OutW, OutB   []float32 // [d_mlp, d], [d]
}

// Model is a loaded GPT-2.
type Model struct {
	Config
	WTE    []float32 // [vocab, d]; also the unembedding (tied)
	WPE    []float32 // [n_ctx, d]
	Blocks []Block
	LnFG   []float32
	LnFB   []float32
	// Random is true for weights made by NewRandom: they predict nothing.
	Random bool

	pool sync.Pool // *workspace, reused by forward passes without a tape
}

// Load reads a Hugging Face GPT-2 checkpoint folder (config.json +
// model.safetensors). Tensor names may carry the "transformer." prefix or
// not; causal-mask buffers are ignored; F16/BF16 tensors become float32.
func Load(dir string) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	return loadFile(cfg, filepath.Join(dir, "model.safetensors"))
}

// loadFile reads weights for cfg from one safetensors file.
func loadFile(cfg Config, path string) (*Model, error) {
	sf, err := OpenSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("loading weights: %w", err)
	}
	defer sf.Close()
	m := &Model{Config: cfg, Blocks: make([]Block, cfg.NLayer)}
	m.Random = sf.Metadata["tdb_random_weights"] == "true"

	// Map canonical names (no prefix) to the names in the file.
	names := map[string]string{}
	for name := range sf.Tensors {
		canon := strings.TrimPrefix(name, "transformer.")
		if strings.HasSuffix(canon, ".attn.bias") && len(sf.Tensors[name].Shape) == 4 || strings.HasSuffix(canon, ".attn.masked_bias") {
			continue // causal-mask buffers, not weights
		}
		names[canon] = name
	}
	d, mlp := cfg.DModel, cfg.DMLP
	read := func(canon string, shape ...int) ([]float32, error) {
		name, ok := names[canon]
		if !ok {
			return nil, fmt.Errorf("%s: tensor %q is missing (is this a GPT-2 checkpoint matching config.json?)", path, canon)
		}
		ti := sf.Tensors[name]
		if !slices.Equal(ti.Shape, shape) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, config.json implies %v", path, name, ti.Shape, shape)
		}
		t, err := sf.Float32(name)
		if err != nil {
			return nil, err
		}
		return t.Data, nil
	}
	type want struct {
		dst   *[]float32
		name  string
		shape []int
	}
	wants := []want{
		{&m.WTE, "wte.weight", []int{cfg.Vocab, d}},
		{&m.WPE, "wpe.weight", []int{cfg.NCtx, d}},
		{&m.LnFG, "ln_f.weight", []int{d}},
		{&m.LnFB, "ln_f.bias", []int{d}},
	}
	for l := range m.Blocks {
		b := &m.Blocks[l]
		p := fmt.Sprintf("h.%d.", l)
		wants = append(wants,
			want{&b.Ln1G, p + "ln_1.weight", []int{d}}, want{&b.Ln1B, p + "ln_1.bias", []int{d}},
			want{&b.AttnW, p + "attn.c_attn.weight", []int{d, 3 * d}}, want{&b.AttnB, p + "attn.c_attn.bias", []int{3 * d}},
			want{&b.ProjW, p + "attn.c_proj.weight", []int{d, d}}, want{&b.ProjB, p + "attn.c_proj.bias", []int{d}},
			want{&b.Ln2G, p + "ln_2.weight", []int{d}}, want{&b.Ln2B, p + "ln_2.bias", []int{d}},
			want{&b.FcW, p + "mlp.c_fc.weight", []int{d, mlp}}, want{&b.FcB, p + "mlp.c_fc.bias", []int{mlp}},
			want{&b.OutW, p + "mlp.c_proj.weight", []int{mlp, d}}, want{&b.OutB, p + "mlp.c_proj.bias", []int{d}},
		)
	}
	for _, w := range wants {
		if *w.dst, err = read(w.name, w.shape...); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Tensors returns the weights under Hugging Face names (with the
// "transformer." prefix), for writing a checkpoint.
func (m *Model) Tensors() []NamedTensor {
	d, mlp := m.DModel, m.DMLP
	t := func(name string, data []float32, shape ...int) NamedTensor {
		return NamedTensor{Name: "transformer." + name, Tensor: &Tensor{Shape: shape, Data: data}}
	}
	out := []NamedTensor{t("wte.weight", m.WTE, m.Vocab, d), t("wpe.weight", m.WPE, m.NCtx, d)}
	for l, b := range m.Blocks {
		p := fmt.Sprintf("h.%d.", l)
		out = append(out,
			t(p+"ln_1.weight", b.Ln1G, d), t(p+"ln_1.bias", b.Ln1B, d),
			t(p+"attn.c_attn.weight", b.AttnW, d, 3*d), t(p+"attn.c_attn.bias", b.AttnB, 3*d),
			t(p+"attn.c_proj.weight", b.ProjW, d, d), t(p+"attn.c_proj.bias", b.ProjB, d),
			t(p+"ln_2.weight", b.Ln2G, d), t(p+"ln_2.bias", b.Ln2B, d),
			t(p+"mlp.c_fc.weight", b.FcW, d, mlp), t(p+"mlp.c_fc.bias", b.FcB, mlp),
			t(p+"mlp.c_proj.weight", b.OutW, mlp, d), t(p+"mlp.c_proj.bias", b.OutB, d),
		)
	}
	return append(out, t("ln_f.weight", m.LnFG, d), t("ln_f.bias", m.LnFB, d))
}
