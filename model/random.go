package model

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// NewRandom makes GPT-2-shaped weights with GPT-2's initialisation
// (normal(0, 0.02), residual projections scaled by 1/sqrt(2·n_layer), unit
// LayerNorm gains). They are for benchmarks and for trying the pipeline
// without a download: the model predicts nothing.
func NewRandom(cfg Config, seed uint64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x7db))
	normal := func(n int, std float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(rng.NormFloat64() * std)
		}
		return out
	}
	ones := func(n int) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = 1
		}
		return out
	}
	d, mlp := cfg.DModel, cfg.DMLP
	resid := 0.02 / sqrt64(2*float64(cfg.NLayer))
	m := &Model{Config: cfg, Random: true,
		WTE: normal(cfg.Vocab*d, 0.02), WPE: normal(cfg.NCtx*d, 0.01),
		LnFG: ones(d), LnFB: make([]float32, d), Blocks: make([]Block, cfg.NLayer)}
	for l := range m.Blocks {
		m.Blocks[l] = Block{
			Ln1G: ones(d), Ln1B: make([]float32, d),
			AttnW: normal(d*3*d, 0.02), AttnB: make([]float32, 3*d),
			ProjW: normal(d*d, resid), ProjB: make([]float32, d),
			Ln2G: ones(d), Ln2B: make([]float32, d),
			FcW: normal(d*mlp, 0.02), FcB: make([]float32, mlp),
			OutW: normal(mlp*d, resid), OutB: make([]float32, d),
		}
	}
	return m, nil
}

// Save writes config.json and model.safetensors into dir (created if needed).
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	meta := map[string]string{"format": "pt"}
	extra := map[string]any{}
	if m.Random {
		meta["tdb_random_weights"] = "true"
		extra["tdb_random_weights"] = true
	}
	cfg, err := m.Config.MarshalHF(extra)
	if err != nil {
		return err
	}
	if err := WriteSafetensors(filepath.Join(dir, "model.safetensors"), m.Tensors(), meta); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		return fmt.Errorf("writing config.json: %w", err)
	}
	return nil
}

// NewLoud makes random weights whose every term matters: embeddings drawn
// with spread embStd, every other matrix, bias and LayerNorm parameter with
// spread std (gains around 1), unlike NewRandom's initialisation, under
// which biases are zero and LayerNorms the identity. Tests of gradients and
// attributions use it so that a wrong term anywhere shows in the numbers.
func NewLoud(cfg Config, seed uint64, embStd, std float64) (*Model, error) {
	m, err := NewRandom(cfg, seed)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	loud := func(xs []float32, center, std float64) {
		for i := range xs {
			xs[i] = float32(center + std*rng.NormFloat64())
		}
	}
	loud(m.WTE, 0, embStd)
	loud(m.WPE, 0, embStd)
	loud(m.LnFG, 1, std)
	loud(m.LnFB, 0, std)
	for i := range m.Blocks {
		b := &m.Blocks[i]
		for _, w := range [][]float32{b.AttnW, b.ProjW, b.FcW, b.OutW, b.AttnB, b.ProjB, b.FcB, b.OutB, b.Ln1B, b.Ln2B} {
			loud(w, 0, std)
		}
		loud(b.Ln1G, 1, std)
		loud(b.Ln2G, 1, std)
	}
	return m, nil
}
