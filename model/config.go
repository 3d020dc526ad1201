package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Config is the shape of a GPT-2 model.
type Config struct {
	NLayer int     `json:"n_layer"`
	NHead  int     `json:"n_head"`
	DModel int     `json:"n_embd"`
	DMLP   int     `json:"n_inner"`
	NCtx   int     `json:"n_positions"`
	Vocab  int     `json:"vocab_size"`
	Eps    float32 `json:"layer_norm_epsilon"`
}

// DHead is the per-head width.
func (c Config) DHead() int { return c.DModel / c.NHead }

// Params is the number of parameters (tied unembedding counted once).
func (c Config) Params() int64 {
	d, m := int64(c.DModel), int64(c.DMLP)
	perLayer := 2*d + d*3*d + 3*d + d*d + d + 2*d + d*m + m + m*d + d
	return int64(c.Vocab)*d + int64(c.NCtx)*d + int64(c.NLayer)*perLayer + 2*d
}

// Presets are the four public GPT-2 sizes.
var Presets = map[string]Config{
	"gpt2":        {NLayer: 12, NHead: 12, DModel: 768, DMLP: 3072, NCtx: 1024, Vocab: 50257, Eps: 1e-5},
	"gpt2-medium": {NLayer: 24, NHead: 16, DModel: 1024, DMLP: 4096, NCtx: 1024, Vocab: 50257, Eps: 1e-5},
	"gpt2-large":  {NLayer: 36, NHead: 20, DModel: 1280, DMLP: 5120, NCtx: 1024, Vocab: 50257, Eps: 1e-5},
	"gpt2-xl":     {NLayer: 48, NHead: 25, DModel: 1600, DMLP: 6400, NCtx: 1024, Vocab: 50257, Eps: 1e-5},
}

// Validate checks that the configuration describes a model we can run.
func (c Config) Validate() error {
	switch {
	case c.NLayer <= 0 || c.NHead <= 0 || c.DModel <= 0 || c.DMLP <= 0 || c.NCtx <= 0 || c.Vocab <= 0:
		return fmt.Errorf("config: every size must be positive (n_layer %d, n_head %d, n_embd %d, n_inner %d, n_positions %d, vocab_size %d)",
			c.NLayer, c.NHead, c.DModel, c.DMLP, c.NCtx, c.Vocab)
	case c.DModel%c.NHead != 0:
		return fmt.Errorf("config: n_embd %d is not a multiple of n_head %d", c.DModel, c.NHead)
	case c.Eps <= 0:
		return fmt.Errorf("config: layer_norm_epsilon must be positive, got %g", c.Eps)
	}
	return nil
}

// hfConfig holds the Hugging Face config.json fields we read or must check.
type hfConfig struct {
	ModelType          string   `json:"model_type"`
	NLayer             int      `json:"n_layer"`
	NHead              int      `json:"n_head"`
	NEmbd              int      `json:"n_embd"`
	NInner             *int     `json:"n_inner"`
	NPositions         int      `json:"n_positions"`
	VocabSize          int      `json:"vocab_size"`
	LayerNormEpsilon   *float64 `json:"layer_norm_epsilon"`
	ActivationFunction string   `json:"activation_function"`
	ScaleAttnWeights   *bool    `json:"scale_attn_weights"`
	ScaleByLayerIdx    bool     `json:"scale_attn_by_inverse_layer_idx"`
	ReorderUpcast      bool     `json:"reorder_and_upcast_attn"`
}

// parseConfig reads a Hugging Face GPT-2 config.json. Configurations of other
// architectures, or GPT-2 variants we do not implement, are rejected.
func parseConfig(data []byte) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return Config{}, fmt.Errorf("not JSON: %w", err)
	}
	if h.ModelType != "gpt2" {
		return Config{}, fmt.Errorf("model_type %q is not supported (only GPT-2 checkpoints, model_type \"gpt2\")", h.ModelType)
	}
	if h.ActivationFunction != "" && h.ActivationFunction != "gelu_new" {
		return Config{}, fmt.Errorf("activation_function %q is not supported (GPT-2 uses gelu_new)", h.ActivationFunction)
	}
	if h.ScaleAttnWeights != nil && !*h.ScaleAttnWeights || h.ScaleByLayerIdx {
		return Config{}, fmt.Errorf("non-standard attention scaling is not supported")
	}
	c := Config{NLayer: h.NLayer, NHead: h.NHead, DModel: h.NEmbd, NCtx: h.NPositions, Vocab: h.VocabSize, Eps: 1e-5}
	c.DMLP = 4 * h.NEmbd
	if h.NInner != nil {
		c.DMLP = *h.NInner
	}
	if h.LayerNormEpsilon != nil {
		c.Eps = float32(*h.LayerNormEpsilon)
	}
	return c, c.Validate()
}

// MarshalHF writes the config as a Hugging Face config.json; extra fields
// (such as a note that the weights are random) are added verbatim.
func (c Config) MarshalHF(extra map[string]any) ([]byte, error) {
	m := map[string]any{
		"model_type":          "gpt2",
		"architectures":       []string{"GPT2LMHeadModel"},
		"activation_function": "gelu_new",
		"n_layer":             c.NLayer,
		"n_head":              c.NHead,
		"n_embd":              c.DModel,
		"n_inner":             c.DMLP,
		"n_positions":         c.NCtx,
		"vocab_size":          c.Vocab,
		"layer_norm_epsilon":  c.Eps,
		"tie_word_embeddings": true,
		"bos_token_id":        50256,
		"eos_token_id":        50256,
		"scale_attn_weights":  true,
		"torch_dtype":         "float32",
	}
	for k, v := range extra {
		m[k] = v
	}
	return json.MarshalIndent(m, "", "  ")
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, invalid(fmt.Errorf("reading model config: %w", err))
	}
	if err != nil {
		return Config{}, fmt.Errorf("reading model config: %w", err)
	}
	c, err := parseConfig(b)
	if err != nil {
		return Config{}, invalid(fmt.Errorf("%s: %w", path, err))
	}
	return c, nil
}

// TinyConfig is a small GPT-2 shape (full vocabulary) for tests and for
// trying the pipeline quickly with random weights.
var TinyConfig = Config{NLayer: 2, NHead: 4, DModel: 64, DMLP: 256, NCtx: 64, Vocab: 50257, Eps: 1e-5}
