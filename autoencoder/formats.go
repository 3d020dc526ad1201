package autoencoder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"tdb/internal/pickle"
	"tdb/model"
)

// loadOpenAI reads an OpenAI sparse_autoencoder state dict saved with
// torch.save: encoder.weight [n_latents, n_inputs], decoder.weight
// [n_inputs, n_latents], pre_bias, latent_bias, optional training
// statistics, and optional "activation" / "activation_state_dict" entries.
// As in OpenAI's loader, TopK autoencoders normalise their input.
//
// With headerOnly it reads the pickle and the archive's directory but no
// tensor data: the returned autoencoder has its shape and activation only.
func loadOpenAI(path string, headerOnly bool) (*Autoencoder, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("autoencoder: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("autoencoder: %w", err)
	}
	tf, err := openTorch(f, fi.Size(), path)
	if err != nil {
		return nil, err
	}
	if headerOnly {
		return describeStateDict(tf)
	}
	return fromStateDict(tf)
}

// openAIEntries are the entries of OpenAI's Autoencoder.state_dict():
// weights, training statistics and the activation. Anything else is refused,
// as PyTorch's strict load_state_dict does: an unknown tensor would be a
// weight this code silently ignores.
var openAIEntries = []string{"encoder.weight", "decoder.weight", "pre_bias", "latent_bias",
	"stats_last_nonzero", "latents_activation_frequency", "latents_mean_square",
	"activation", "activation_state_dict"}

// describeStateDict checks a state dict's entries, activation and tensor
// shapes (views into storages inside the file) without reading tensor data.
func describeStateDict(tf *torchFile) (*Autoencoder, error) {
	path := tf.path
	a := &Autoencoder{Source: path, Format: "openai", Activation: ReLU, Layer: model.NoLayer}
	if v, ok := tf.value("activation"); ok {
		s, isStr := v.(string)
		if !isStr {
			return nil, fmt.Errorf("%s: entry \"activation\" is a %s, not a string", path, pickle.TypeName(v))
		}
		a.Activation = Activation(s)
		if a.Activation != ReLU && a.Activation != Identity && a.Activation != TopK {
			return nil, fmt.Errorf("%s: unknown activation %q in entry \"activation\" (supported: ReLU, Identity, TopK)", path, s)
		}
	}
	if a.Activation == TopK {
		a.Normalize = true
		v, ok := tf.value("activation_state_dict")
		d, isDict := v.(*pickle.Dict)
		if !ok || !isDict {
			return nil, fmt.Errorf("%s: TopK autoencoder without an \"activation_state_dict\" dict holding k", path)
		}
		k, ok := d.Get("k")
		kk, isInt := k.(int64)
		if !ok || !isInt || kk <= 0 || kk > 1<<30 {
			return nil, fmt.Errorf("%s: activation_state_dict[\"k\"] is %s, not a positive integer", path, pickle.Describe(k))
		}
		a.K, a.PostAct = int(kk), ReLU
		if p, ok := d.Get("postact_fn"); ok {
			s, isStr := p.(string)
			if !isStr {
				return nil, fmt.Errorf("%s: activation_state_dict[\"postact_fn\"] is a %s, not a string", path, pickle.TypeName(p))
			}
			a.PostAct = Activation(s)
			if a.PostAct != ReLU && a.PostAct != Identity {
				return nil, fmt.Errorf("%s: unknown TopK postact_fn %q (supported: ReLU, Identity)", path, s)
			}
		}
	}
	var unknown []string
	for _, k := range tf.keys() {
		if !slices.Contains(openAIEntries, k) {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(tf.keys()) != len(tf.dict.Keys()) {
		unknown = append(unknown, "non-string keys")
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%s: unexpected entries %s in the state dict (an OpenAI sparse autoencoder has %s)", path, strings.Join(unknown, ", "), strings.Join(openAIEntries, ", "))
	}
	enc, _, err := tf.view("encoder.weight")
	if err != nil {
		return nil, err
	}
	if len(enc.Shape) != 2 {
		return nil, fmt.Errorf("%s: tensor \"encoder.weight\" has shape %v, want [n_latents, n_inputs]", path, enc.Shape)
	}
	a.NLatents, a.NInputs = enc.Shape[0], enc.Shape[1]
	want := map[string][]int{
		"decoder.weight": {a.NInputs, a.NLatents},
		"pre_bias":       {a.NInputs},
		"latent_bias":    {a.NLatents},
	}
	for _, name := range openAIEntries[1:7] {
		w, required := want[name]
		if !required && !tf.has(name) {
			continue
		}
		t, _, err := tf.view(name)
		if err != nil {
			return nil, err
		}
		if !required {
			w = []int{a.NLatents} // per-latent statistics
		}
		if !slices.Equal(t.Shape, w) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, want %v (encoder.weight is %v)", path, name, t.Shape, w, enc.Shape)
		}
	}
	return a, a.check()
}

// fromStateDict loads a state dict that describeStateDict accepts.
func fromStateDict(tf *torchFile) (*Autoencoder, error) {
	a, err := describeStateDict(tf)
	if err != nil {
		return nil, err
	}
	get := func(name string, optional bool) ([]float32, error) {
		if optional && !tf.has(name) {
			return nil, nil
		}
		t, err := tf.tensor(name)
		if err != nil {
			return nil, err
		}
		return t.Data, nil
	}
	enc, err := get("encoder.weight", false)
	if err != nil {
		return nil, err
	}
	a.enc = enc
	dec, err := get("decoder.weight", false)
	if err != nil {
		return nil, err
	}
	if a.inBias, err = get("pre_bias", false); err != nil {
		return nil, err
	}
	a.outBias = a.inBias
	if a.latentBias, err = get("latent_bias", false); err != nil {
		return nil, err
	}
	if a.stats.lastNonzero, err = get("stats_last_nonzero", true); err != nil {
		return nil, err
	}
	if a.stats.frequency, err = get("latents_activation_frequency", true); err != nil {
		return nil, err
	}
	a.dec = make([]float32, len(dec))
	transpose(a.dec, dec, a.NInputs, a.NLatents)
	return a, a.check()
}

// SAELens file names.
const (
	saeLensWeights = "sae_weights.safetensors"
	saeLensConfig  = "cfg.json"
)

// saeLensCfg holds the cfg.json fields we use.
type saeLensCfg struct {
	Architecture         string         `json:"architecture"`
	ActivationFn         string         `json:"activation_fn_str"`
	ActivationFnAlt      string         `json:"activation_fn"`
	ActivationKwargs     map[string]any `json:"activation_fn_kwargs"`
	K                    *int           `json:"k"`
	DIn                  int            `json:"d_in"`
	DSAE                 int            `json:"d_sae"`
	ApplyBDecToInput     *bool          `json:"apply_b_dec_to_input"`
	NormalizeActivations string         `json:"normalize_activations"`
	HookName             string         `json:"hook_name"`
	FinetuningScaling    any            `json:"finetuning_scaling_factor"`
}

// loadSAELens reads SAELens weights (W_enc [d_in, d_sae], W_dec [d_sae,
// d_in], b_enc, b_dec, threshold for JumpReLU) and its cfg.json; any other
// tensor is refused. With headerOnly it reads cfg.json and the safetensors
// header only.
func loadSAELens(weights, cfgPath string, headerOnly bool) (*Autoencoder, error) {
	raw, err := os.ReadFile(cfgPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: SAELens weights need their %s beside them (%s is missing)", weights, saeLensConfig, cfgPath)
	}
	if err != nil {
		return nil, fmt.Errorf("autoencoder: %w", err)
	}
	var cfg saeLensCfg
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: bad JSON: %w", cfgPath, err)
	}
	a := &Autoencoder{Source: weights, Format: "saelens", Layer: model.NoLayer}
	act := strings.ToLower(cfg.ActivationFn)
	if act == "" {
		act = strings.ToLower(cfg.ActivationFnAlt)
	}
	arch := strings.ToLower(cfg.Architecture)
	if arch == "" {
		arch = "standard"
	}
	switch arch {
	case "standard":
		switch act {
		case "", "relu":
			a.Activation = ReLU
		case "topk":
			a.Activation = TopK
		default:
			return nil, fmt.Errorf("%s: unsupported activation_fn %q (supported: relu, topk)", cfgPath, act)
		}
	case "topk":
		a.Activation = TopK
	case "jumprelu":
		a.Activation = JumpReLU
	default:
		return nil, fmt.Errorf("%s: unsupported architecture %q (supported: standard, topk, jumprelu)", cfgPath, cfg.Architecture)
	}
	if a.Activation == TopK {
		a.PostAct = ReLU
		switch k := cfg.ActivationKwargs["k"].(type) {
		case float64:
			a.K = int(k)
		case nil:
			if cfg.K != nil {
				a.K = *cfg.K
			}
		}
		if a.K <= 0 {
			return nil, fmt.Errorf("%s: TopK autoencoder without a positive k (k or activation_fn_kwargs.k)", cfgPath)
		}
	}
	switch cfg.NormalizeActivations {
	case "", "none":
	case "layer_norm":
		a.Normalize = true
	default:
		return nil, fmt.Errorf("%s: normalize_activations %q is not supported (none, layer_norm)", cfgPath, cfg.NormalizeActivations)
	}
	if b, ok := cfg.FinetuningScaling.(bool); ok && b {
		return nil, fmt.Errorf("%s: finetuning_scaling_factor is not supported", cfgPath)
	}
	a.Location, a.Layer = hookLocation(cfg.HookName)

	sf, err := model.OpenSafetensors(weights)
	if err != nil {
		return nil, fmt.Errorf("autoencoder: %w", err)
	}
	defer sf.Close()
	read := func(name string, shape ...int) ([]float32, error) {
		t, err := sf.Float32(name)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(t.Shape, shape) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, want %v (d_in %d, d_sae %d)", weights, name, t.Shape, shape, cfg.DIn, cfg.DSAE)
		}
		return t.Data, nil
	}
	info, ok := sf.Tensors["W_enc"]
	if !ok || len(info.Shape) != 2 {
		return nil, fmt.Errorf("%s: tensor \"W_enc\" [d_in, d_sae] is missing or not a matrix (tensors: %s)", weights, strings.Join(sf.Names(), ", "))
	}
	a.NInputs, a.NLatents = info.Shape[0], info.Shape[1]
	if cfg.DIn != 0 && cfg.DIn != a.NInputs || cfg.DSAE != 0 && cfg.DSAE != a.NLatents {
		return nil, fmt.Errorf("%s: tensor \"W_enc\" has shape %v but %s says d_in %d, d_sae %d", weights, info.Shape, cfgPath, cfg.DIn, cfg.DSAE)
	}
	shapes := map[string][]int{"W_enc": {a.NInputs, a.NLatents}, "W_dec": {a.NLatents, a.NInputs}, "b_enc": {a.NLatents}, "b_dec": {a.NInputs}}
	if a.Activation == JumpReLU {
		shapes["threshold"] = []int{a.NLatents}
	}
	var unknown []string
	for _, name := range sf.Names() {
		if _, ok := shapes[name]; !ok {
			unknown = append(unknown, strconv.Quote(name))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%s: unexpected tensors %s (a %s SAELens autoencoder has W_enc, W_dec, b_enc, b_dec%s)", weights, strings.Join(unknown, ", "),
			arch, map[bool]string{true: ", threshold", false: ""}[a.Activation == JumpReLU])
	}
	for _, name := range []string{"W_dec", "b_enc", "b_dec", "threshold"} {
		want, used := shapes[name]
		if !used {
			continue
		}
		info, ok := sf.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("%s: tensor %q not found (tensors: %s)", weights, name, strings.Join(sf.Names(), ", "))
		}
		if !slices.Equal(info.Shape, want) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, want %v (d_in %d, d_sae %d)", weights, name, info.Shape, want, a.NInputs, a.NLatents)
		}
	}
	if headerOnly {
		return a, a.check()
	}
	wEnc, err := read("W_enc", a.NInputs, a.NLatents)
	if err != nil {
		return nil, err
	}
	a.enc = make([]float32, len(wEnc))
	transpose(a.enc, wEnc, a.NInputs, a.NLatents)
	if a.dec, err = read("W_dec", a.NLatents, a.NInputs); err != nil {
		return nil, err
	}
	if a.latentBias, err = read("b_enc", a.NLatents); err != nil {
		return nil, err
	}
	if a.outBias, err = read("b_dec", a.NInputs); err != nil {
		return nil, err
	}
	if cfg.ApplyBDecToInput == nil || *cfg.ApplyBDecToInput {
		a.inBias = a.outBias
	}
	if a.Activation == JumpReLU {
		if a.threshold, err = read("threshold", a.NLatents); err != nil {
			return nil, err
		}
	}
	return a, a.check()
}

var hookRe = regexp.MustCompile(`^blocks\.(\d+)\.(hook_mlp_out|hook_attn_out|mlp\.hook_post|hook_resid_mid|hook_resid_post)$`)

// hookLocation maps a TransformerLens hook name to our location.
func hookLocation(hook string) (model.Location, int) {
	m := hookRe.FindStringSubmatch(hook)
	if m == nil {
		return "", model.NoLayer
	}
	layer, err := strconv.Atoi(m[1])
	if err != nil {
		return "", model.NoLayer
	}
	loc := map[string]model.Location{
		"hook_mlp_out":    model.ResidDeltaMLP,
		"hook_attn_out":   model.ResidDeltaAtt,
		"mlp.hook_post":   model.MLPPostAct,
		"hook_resid_mid":  model.ResidPostAttn,
		"hook_resid_post": model.ResidPostMLP,
	}[m[2]]
	return loc, layer
}
