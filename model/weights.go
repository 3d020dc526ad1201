package model

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
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

	pool  sync.Pool // *workspace, reused by forward passes without a tape
	spare spareBufs // captured buffers handed back by Result.Release
}

// Load reads a Hugging Face GPT-2 checkpoint folder (config.json +
// model.safetensors). Tensor names may carry the "transformer." prefix or
// not; causal-mask buffers are ignored; F16/BF16 tensors become float32.
// A file holding tensors the configuration does not use is refused
// (checkLayout); every checkpoint error wraps ErrInvalid.
func Load(dir string) (*Model, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	return loadFile(cfg, filepath.Join(dir, "model.safetensors"))
}

// loadFile reads weights for cfg from one safetensors file, after
// checkLayout has matched every tensor of the file to the model.
func loadFile(cfg Config, path string) (*Model, error) {
	sf, err := OpenSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("loading weights: %w", err)
	}
	defer sf.Close()
	m := &Model{Config: cfg, Blocks: make([]Block, cfg.NLayer)}
	m.Random = sf.Metadata["tdb_random_weights"] == "true"
	wants := m.wants()
	names, err := checkLayout(cfg, sf, wants)
	if err != nil {
		return nil, err
	}
	for _, w := range wants {
		t, err := sf.Float32(names[w.name])
		if err != nil {
			return nil, err
		}
		*w.dst = t.Data
	}
	if name, ok := names[lmHead]; ok { // a tied copy of wte: it must be one
		t, err := sf.Float32(name)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(t.Data, m.WTE) {
			return nil, invalid(fmt.Errorf("%s: tensor %q differs from wte.weight: untied output embeddings are not supported (GPT-2 ties them)", path, name))
		}
	}
	return m, nil
}

// lmHead is the output embedding some GPT2LMHeadModel checkpoints store
// beside wte.weight; GPT-2 ties the two, so it must be a copy.
const lmHead = "lm_head.weight"

// want is one tensor the model reads: its canonical name (no
// "transformer." prefix), shape and destination.
type want struct {
	dst   *[]float32
	name  string
	shape []int
}

// wants lists the tensors of m's configuration, pointing into m.
func (m *Model) wants() []want {
	cfg := m.Config
	d, mlp := cfg.DModel, cfg.DMLP
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
	return wants
}

// maskBuffer matches the causal-mask buffers of Hugging Face GPT-2
// checkpoints (h.N.attn.bias, a [1, 1, n_ctx, n_ctx] mask, and
// h.N.attn.masked_bias, a scalar): not weights, ignored.
var maskBuffer = regexp.MustCompile(`^h\.\d+\.attn\.(bias|masked_bias)$`)

// layerOf finds the block index of a canonical name (-1 if none).
var layerOf = regexp.MustCompile(`^h\.(\d+)\.`)

// checkLayout matches the file's tensors to wants by canonical name (the
// "transformer." prefix is optional) and returns canonical → file name. It
// reads no data. Every wanted tensor must be there with its shape, and
// every tensor of the file must be used: a config.json with fewer layers
// than the weights would otherwise run a truncated model silently. Only the
// causal-mask buffers and a tied lm_head.weight are allowed besides.
func checkLayout(cfg Config, sf *SafetensorsFile, wants []want) (map[string]string, error) {
	path := sf.Path
	names := map[string]string{}
	for _, name := range sf.Names() {
		canon := strings.TrimPrefix(name, "transformer.")
		if maskBuffer.MatchString(canon) && (strings.HasSuffix(canon, ".masked_bias") || len(sf.Tensors[name].Shape) == 4) {
			continue // a [1, 1, n_ctx, n_ctx] mask, not the attention bias vector
		}
		if prev, dup := names[canon]; dup {
			return nil, invalid(fmt.Errorf("%s: tensors %q and %q are the same weight", path, prev, name))
		}
		names[canon] = name
	}
	used := map[string]bool{}
	for _, w := range wants {
		name, ok := names[w.name]
		if !ok {
			return nil, invalid(fmt.Errorf("%s: tensor %q is missing (is this a GPT-2 checkpoint matching config.json?)", path, w.name))
		}
		if ti := sf.Tensors[name]; !slices.Equal(ti.Shape, w.shape) {
			return nil, invalid(fmt.Errorf("%s: tensor %q has shape %v, config.json implies %v", path, name, ti.Shape, w.shape))
		}
		used[w.name] = true
	}
	if name, ok := names[lmHead]; ok {
		if ti := sf.Tensors[name]; !slices.Equal(ti.Shape, []int{cfg.Vocab, cfg.DModel}) {
			return nil, invalid(fmt.Errorf("%s: tensor %q has shape %v, wte.weight is %v", path, name, ti.Shape, []int{cfg.Vocab, cfg.DModel}))
		}
		used[lmHead] = true
	}
	var unused []string
	maxLayer := -1
	for canon, name := range names {
		if used[canon] {
			continue
		}
		unused = append(unused, name)
		if m := layerOf.FindStringSubmatch(canon); m != nil {
			if l, err := strconv.Atoi(m[1]); err == nil {
				maxLayer = max(maxLayer, l)
			}
		}
	}
	if len(unused) == 0 {
		return names, nil
	}
	slices.Sort(unused)
	list := unused
	if len(list) > 8 {
		list = list[:8]
	}
	msg := fmt.Sprintf("%s: %d tensors are not used by the model config.json describes: %s", path, len(unused), strings.Join(list, ", "))
	if len(unused) > len(list) {
		msg += fmt.Sprintf(", and %d more", len(unused)-len(list))
	}
	if maxLayer >= cfg.NLayer {
		msg += fmt.Sprintf(" (the weights have layers up to %d but config.json says n_layer %d)", maxLayer, cfg.NLayer)
	} else {
		msg += " (does config.json match the weights?)"
	}
	return nil, invalid(errors.New(msg))
}

// Inspect checks a checkpoint folder (config.json + model.safetensors)
// without reading its weights: the configuration, the safetensors header
// (every tensor inside the file, none overlapping) and that the tensors are
// exactly those the configuration needs, with their shapes. It is what Load
// checks before reading, for callers that validate input before handing
// work to others (tdb collate). Errors wrap ErrInvalid, except I/O errors.
func Inspect(dir string) (Config, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return Config{}, err
	}
	sf, err := OpenSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return Config{}, fmt.Errorf("loading weights: %w", err)
	}
	defer sf.Close()
	m := &Model{Config: cfg, Blocks: make([]Block, cfg.NLayer)}
	if _, err := checkLayout(cfg, sf, m.wants()); err != nil {
		return Config{}, err
	}
	return cfg, nil
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
