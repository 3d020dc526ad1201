package compat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"tdb/dataset"
	"tdb/debugger"
	"tdb/model"
	"tdb/store"
)

// Dataset locations as the collation pipeline names them (worker.HeadsLocation,
// worker.AutoencoderPrefix + the autoencoder's input location).
const (
	locNeurons = "mlp.post_act"
	locHeads   = "attn.heads"
	aePrefix   = "ae."
)

// The app's derived scalar types for node pages.
const (
	dstMLPPostAct    = "mlp_post_act"
	dstAttnWriteNorm = "attn_write_norm"
	dstMLPLatent     = "mlp_autoencoder_latent"
	dstAttnLatent    = "attention_autoencoder_latent"
	dstLatentPairs   = "flattened_attn_write_to_latent_summed_over_heads"
)

// pathScheme prefixes the neuronDatasetPath tdb reports: tdb://DATASET/LOCATION.
const pathScheme = "tdb://"

// source is one collated location of one dataset.
type source struct {
	manifest *dataset.Manifest
	location string
	// dst is the app's derived scalar type for the location ("" when the
	// app has no page for it), short the dataset name the app uses for
	// it (catalog.name).
	dst, short string
}

func (s source) path() string { return pathScheme + s.manifest.Name + "/" + s.location }

// catalog maps the served datasets to what the app asks for.
type catalog struct {
	modelName string
	// by kind: the first dataset (in Options.Datasets order) holding it
	neurons, heads, mlpLatents, attnLatents *source
	all                                     []source
}

// aeName turns an autoencoder's input location into the name the app
// matches: mlp.post_act → mlp-post-act, resid.delta_mlp → resid-delta-mlp,
// resid.delta_attn → resid-delta-attn.
func aeName(loc string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(loc)
}

func isMLPLatentLoc(loc string) bool {
	return loc == aePrefix+string(model.MLPPostAct) || loc == aePrefix+string(model.ResidDeltaMLP)
}

func isAttnLatentLoc(loc string) bool { return loc == aePrefix+string(model.ResidDeltaAtt) }

// catalog reads the manifests of the served datasets.
func (h *Handler) catalog(ctx context.Context) (*catalog, error) {
	c := &catalog{}
	if st := h.opts.Store; st != nil {
		names := h.opts.Datasets
		if len(names) == 0 {
			keys, err := st.List(ctx, "datasets/")
			if err != nil {
				return nil, fmt.Errorf("listing datasets in %s: %w", st, err)
			}
			for _, k := range keys {
				parts := strings.Split(k, "/")
				if len(parts) == 3 && parts[2] == "manifest.json" {
					names = append(names, parts[1])
				}
			}
		}
		for _, name := range names {
			m, err := dataset.ReadManifest(ctx, st, name)
			if err != nil {
				return nil, err
			}
			for _, l := range m.Locations {
				s := source{manifest: m, location: l.Name}
				c.all = append(c.all, s)
				pick := func(p **source) {
					if *p == nil {
						*p = &s
					}
				}
				switch {
				case l.Name == locNeurons:
					pick(&c.neurons)
				case l.Name == locHeads:
					pick(&c.heads)
				case isMLPLatentLoc(l.Name):
					pick(&c.mlpLatents)
				case isAttnLatentLoc(l.Name):
					pick(&c.attnLatents)
				}
			}
		}
	}
	c.modelName = h.modelName(c)
	c.name()
	return c, nil
}

// name gives every source the app can show its derived scalar type and a
// short name of its own: the first dataset (in Options.Datasets order) of
// each kind gets the model's name (MODEL, MODEL_mlp-post-act, ...), later
// ones their own dataset's name in its place, so the app can reach each
// of them (it splits names on "_", so a dataset's "_" become "-").
func (c *catalog) name() {
	used := map[string]bool{}
	for i := range c.all {
		s := &c.all[i]
		var suffix string
		switch loc := s.location; {
		case loc == locNeurons:
			s.dst = dstMLPPostAct
		case loc == locHeads:
			s.dst = dstAttnWriteNorm
		case isMLPLatentLoc(loc):
			s.dst, suffix = dstMLPLatent, "_"+aeName(strings.TrimPrefix(loc, aePrefix))
		case isAttnLatentLoc(loc):
			s.dst, suffix = dstAttnLatent, "_"+aeName(strings.TrimPrefix(loc, aePrefix))
		default:
			continue
		}
		short := c.modelName + suffix
		for n := 1; used[s.dst+" "+short]; n++ {
			short = strings.ReplaceAll(s.manifest.Name, "_", "-") + suffix
			if n > 1 {
				short = fmt.Sprintf("%s-%d%s", strings.ReplaceAll(s.manifest.Name, "_", "-"), n, suffix)
			}
		}
		used[s.dst+" "+short] = true
		s.short = short
	}
}

// modelName is Options.ModelName, else gpt2-small for GPT-2 small, else a
// name derived from the first dataset (no "_": the app splits on it).
func (h *Handler) modelName(c *catalog) string {
	if h.opts.ModelName != "" {
		return h.opts.ModelName
	}
	if e := h.opts.Engine; e != nil && e.Model.Config == model.Presets["gpt2"] {
		return "gpt2-small"
	}
	if len(c.all) > 0 {
		m := c.all[0].manifest
		if h.opts.Engine == nil && slices.Contains([]string{"gpt2", "gpt2-small", "openai-community/gpt2"}, m.Model) {
			return "gpt2-small"
		}
		return strings.ReplaceAll(m.Name, "_", "-")
	}
	return "tdb"
}

// aeNames returns the MLP and attention autoencoder names: the engine's
// (what TDB can splice in), else the datasets' latent locations.
func (h *Handler) aeNames(c *catalog) (mlp, attn string) {
	if e := h.opts.Engine; e != nil {
		for _, a := range e.Autoencoders() {
			switch {
			case a.Kind == debugger.MLPLatent && mlp == "":
				mlp = aeName(string(a.Location))
			case a.Kind == debugger.AttnLatent && attn == "":
				attn = aeName(string(a.Location))
			}
		}
	}
	if mlp == "" && c.mlpLatents != nil {
		mlp = aeName(strings.TrimPrefix(c.mlpLatents.location, aePrefix))
	}
	if attn == "" && c.attnLatents != nil {
		attn = aeName(strings.TrimPrefix(c.attnLatents.location, aePrefix))
	}
	return mlp, attn
}

type modelInfoResponse struct {
	ModelName                string `json:"modelName"`
	HasMlpAutoencoder        bool   `json:"hasMlpAutoencoder"`
	MlpAutoencoderName       string `json:"mlpAutoencoderName,omitempty"`
	HasAttentionAutoencoder  bool   `json:"hasAttentionAutoencoder"`
	AttentionAutoencoderName string `json:"attentionAutoencoderName,omitempty"`
	NLayers                  int    `json:"nLayers"`
}

func (h *Handler) modelInfo(ctx context.Context, _ []byte) (any, error) {
	c, err := h.catalog(ctx)
	if err != nil {
		return nil, err
	}
	mlp, attn := h.aeNames(c)
	out := modelInfoResponse{ModelName: c.modelName, HasMlpAutoencoder: mlp != "", MlpAutoencoderName: mlp,
		HasAttentionAutoencoder: attn != "", AttentionAutoencoderName: attn}
	if e := h.opts.Engine; e != nil {
		out.NLayers = e.Model.NLayer
	} else {
		for _, s := range c.all {
			if l, ok := s.manifest.Location(s.location); ok && len(l.Layers) > 0 {
				out.NLayers = max(out.NLayers, slices.Max(l.Layers)+1)
			}
		}
	}
	return out, nil
}

type datasetMetadata struct {
	ShortName         string `json:"shortName"`
	DerivedScalarType string `json:"derivedScalarType"`
	UserVisibleName   string `json:"userVisibleName"`
	NeuronDatasetPath string `json:"neuronDatasetPath"`
}

func (h *Handler) datasetsMetadata(ctx context.Context, _ []byte) (any, error) {
	c, err := h.catalog(ctx)
	if err != nil {
		return nil, err
	}
	out := []datasetMetadata{}
	for _, s := range c.all {
		if s.dst == "" {
			continue
		}
		out = append(out, datasetMetadata{ShortName: s.short, DerivedScalarType: s.dst,
			UserVisibleName:   fmt.Sprintf("%s: %s of tdb dataset %s (%d tokens)", s.short, s.location, s.manifest.Name, s.manifest.Tokens),
			NeuronDatasetPath: s.path()})
	}
	return out, nil
}

// resolve finds the dataset location for a node page request: a
// tdb://DATASET/LOCATION path among datasets, else the first served dataset
// holding dst's location.
func (h *Handler) resolve(ctx context.Context, dst string, datasets []string) (*catalog, source, error) {
	c, err := h.catalog(ctx)
	if err != nil {
		return nil, source{}, err
	}
	switch dst {
	case dstMLPPostAct, dstAttnWriteNorm, dstMLPLatent, dstAttnLatent:
	case dstLatentPairs:
		return nil, source{}, badRequest("tdb collates attention autoencoder latents per token, not per token pair: no %s records", dst)
	default:
		return nil, source{}, badRequest("unknown dst %q for dataset records (want %s, %s, %s or %s)", dst, dstMLPPostAct, dstAttnWriteNorm, dstMLPLatent, dstAttnLatent)
	}
	for _, d := range datasets {
		rest, ok := strings.CutPrefix(d, pathScheme)
		if !ok { // the app's dataset name: gpt2-small, gpt2-small_mlp-post-act
			for _, s := range c.all {
				if s.dst == dst && s.short == d {
					return c, s, nil
				}
			}
			continue
		}
		name, loc, _ := strings.Cut(rest, "/")
		for _, s := range c.all {
			if s.manifest.Name == name && s.location == loc && s.dst == dst {
				return c, s, nil
			}
		}
	}
	for _, s := range c.all {
		if s.dst == dst {
			return c, s, nil
		}
	}
	return nil, source{}, notFound("no served dataset has %s records (served: %s)", dst, describe(c))
}

func describe(c *catalog) string {
	if len(c.all) == 0 {
		return "none"
	}
	var parts []string
	for _, s := range c.all {
		parts = append(parts, s.path())
	}
	return strings.Join(parts, ", ")
}

// nodeRequest is the body of /neuron_record, /attention_head_record and /explain.
type nodeRequest struct {
	Dst             string   `json:"dst"`
	LayerIndex      *int     `json:"layerIndex"`
	ActivationIndex *int     `json:"activationIndex"`
	Datasets        []string `json:"datasets"`
}

func (r nodeRequest) check() error {
	if r.Dst == "" || r.LayerIndex == nil || r.ActivationIndex == nil {
		return badRequest("give dst, layerIndex and activationIndex")
	}
	return nil
}

// component reads one component's collated records.
func (h *Handler) component(ctx context.Context, r nodeRequest) (source, *dataset.ComponentView, error) {
	if err := r.check(); err != nil {
		return source{}, nil, err
	}
	_, s, err := h.resolve(ctx, r.Dst, r.Datasets)
	if err != nil {
		return source{}, nil, err
	}
	v, err := dataset.ReadComponentFrom(ctx, h.opts.Store, s.manifest, s.location, *r.LayerIndex, *r.ActivationIndex)
	if errors.Is(err, store.ErrNotFound) {
		return source{}, nil, notFound("%v", err)
	}
	return s, v, err
}

type tokenAndScalar struct {
	Token            string  `json:"token"`
	Scalar           float64 `json:"scalar"`
	NormalizedScalar float64 `json:"normalizedScalar"`
}

type neuronRecordResponse struct {
	Dataset        string             `json:"dataset"`
	MaxActivation  float64            `json:"maxActivation"`
	TopActivations [][]tokenAndScalar `json:"topActivations"`
	RandomSample   [][]tokenAndScalar `json:"randomSample"`
}

// normalize divides by max and floors at 0 (0 when max is not positive).
func normalize(x, max float64) float64 {
	if max <= 0 {
		return 0
	}
	return maxf(0, x/max)
}

func maxf(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}

func (h *Handler) neuronRecord(ctx context.Context, body []byte) (any, error) {
	var r nodeRequest
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	if r.Dst == dstAttnWriteNorm {
		return nil, badRequest("attention heads have token-pair records: ask /attention_head_record")
	}
	s, v, err := h.component(ctx, r)
	if err != nil {
		return nil, err
	}
	tok, err := h.tokenizer()
	if err != nil {
		return nil, err
	}
	mx := float64(v.Stats.Max)
	seqs := func(recs []dataset.Record) [][]tokenAndScalar {
		out := [][]tokenAndScalar{}
		for _, rec := range recs {
			strs := tok.Display(ints(rec.Tokens))
			seq := make([]tokenAndScalar, len(rec.Tokens))
			for i := range seq {
				a := float64(rec.Activations[i])
				seq[i] = tokenAndScalar{Token: strs[i], Scalar: a, NormalizedScalar: normalize(a, mx)}
			}
			out = append(out, seq)
		}
		return out
	}
	return neuronRecordResponse{Dataset: s.path(), MaxActivation: mx, TopActivations: seqs(v.Top), RandomSample: seqs(v.Random)}, nil
}

func ints(xs []int32) []int {
	out := make([]int, len(xs))
	for i, x := range xs {
		out[i] = int(x)
	}
	return out
}

// tokenAndAttentionScalars is one token of a token-pair sequence.
type tokenAndAttentionScalars struct {
	Token                    string    `json:"token"`
	Scalars                  []float64 `json:"scalars"`
	NormalizedScalars        []float64 `json:"normalizedScalars"`
	TotalScalarIn            float64   `json:"totalScalarIn"`
	NormalizedTotalScalarIn  float64   `json:"normalizedTotalScalarIn"`
	MaxScalarIn              float64   `json:"maxScalarIn"`
	NormalizedMaxScalarIn    float64   `json:"normalizedMaxScalarIn"`
	TotalScalarOut           float64   `json:"totalScalarOut"`
	NormalizedTotalScalarOut float64   `json:"normalizedTotalScalarOut"`
	MaxScalarOut             float64   `json:"maxScalarOut"`
	NormalizedMaxScalarOut   float64   `json:"normalizedMaxScalarOut"`
}

// pairSequence turns a lower triangle (row q: keys 0..q) into the app's
// per-token items: token j's scalars are its row; "in" sums and maxes over
// the row, "out" over the column; each normalised by its largest value in
// the sequence and floored at 0.
func pairSequence(strs []string, tri [][]float64) []tokenAndAttentionScalars {
	T := len(tri)
	out := make([]tokenAndAttentionScalars, T)
	var mxS, mxTI, mxMI, mxTO, mxMO float64
	for j := range T {
		it := &out[j]
		it.Token = strs[j]
		it.Scalars = tri[j]
		for k, v := range tri[j] {
			it.TotalScalarIn += v
			if k == 0 || v > it.MaxScalarIn {
				it.MaxScalarIn = v
			}
			mxS = maxf(mxS, v)
		}
		for q := j; q < T; q++ {
			v := tri[q][j]
			it.TotalScalarOut += v
			if q == j || v > it.MaxScalarOut {
				it.MaxScalarOut = v
			}
		}
		mxTI, mxMI = maxf(mxTI, it.TotalScalarIn), maxf(mxMI, it.MaxScalarIn)
		mxTO, mxMO = maxf(mxTO, it.TotalScalarOut), maxf(mxMO, it.MaxScalarOut)
	}
	for j := range out {
		it := &out[j]
		it.NormalizedScalars = make([]float64, len(it.Scalars))
		for k, v := range it.Scalars {
			it.NormalizedScalars[k] = normalize(v, mxS)
		}
		it.NormalizedTotalScalarIn = normalize(it.TotalScalarIn, mxTI)
		it.NormalizedMaxScalarIn = normalize(it.MaxScalarIn, mxMI)
		it.NormalizedTotalScalarOut = normalize(it.TotalScalarOut, mxTO)
		it.NormalizedMaxScalarOut = normalize(it.MaxScalarOut, mxMO)
	}
	return out
}

// triangle splits a record's lower-triangle activations into rows.
func triangle(acts []float32, T int) ([][]float64, error) {
	if len(acts) != T*(T+1)/2 {
		return nil, fmt.Errorf("a token-pair record of %d tokens has %d values, want %d", T, len(acts), T*(T+1)/2)
	}
	out := make([][]float64, T)
	i := 0
	for q := range T {
		out[q] = make([]float64, q+1)
		for k := range out[q] {
			out[q][k] = float64(acts[i])
			i++
		}
	}
	return out, nil
}

type attentionHeadRecordResponse struct {
	Dataset                    string                       `json:"dataset"`
	MaxAttentionActivation     float64                      `json:"maxAttentionActivation"`
	MostPositiveTokenSequences [][]tokenAndAttentionScalars `json:"mostPositiveTokenSequences"`
	RandomTokenSequences       [][]tokenAndAttentionScalars `json:"randomTokenSequences"`
}

func (h *Handler) attentionHeadRecord(ctx context.Context, body []byte) (any, error) {
	var r nodeRequest
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	if r.Dst != dstAttnWriteNorm && r.Dst != dstLatentPairs {
		return nil, badRequest("dst %q has per-token records: ask /neuron_record", r.Dst)
	}
	s, v, err := h.component(ctx, r)
	if err != nil {
		return nil, err
	}
	if !v.Pairs {
		return nil, badRequest("%s holds per-token records, not token pairs", s.path())
	}
	tok, err := h.tokenizer()
	if err != nil {
		return nil, err
	}
	seqs := func(recs []dataset.Record) ([][]tokenAndAttentionScalars, error) {
		out := [][]tokenAndAttentionScalars{}
		for _, rec := range recs {
			tri, err := triangle(rec.Activations, len(rec.Tokens))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.path(), err)
			}
			out = append(out, pairSequence(tok.Display(ints(rec.Tokens)), tri))
		}
		return out, nil
	}
	top, err := seqs(v.Top)
	if err != nil {
		return nil, err
	}
	random, err := seqs(v.Random)
	if err != nil {
		return nil, err
	}
	return attentionHeadRecordResponse{Dataset: s.path(), MaxAttentionActivation: float64(v.Stats.Max),
		MostPositiveTokenSequences: top, RandomTokenSequences: random}, nil
}
