package compat

import (
	"context"
	"errors"

	"tdb/dataset"
)

// Component names one collated component: a dataset, its location
// ("mlp.post_act", "attn.heads", "ae.resid.delta_attn", ...), layer and index.
type Component struct {
	Dataset  string
	Location string
	Layer    int
	Index    int
}

// Explanation is one stored explanation of a component.
type Explanation struct {
	Text string
	// Score is nil when the explanation was never scored.
	Score *float64
	// Dataset names where it comes from (shown by the app).
	Dataset string
}

// Explanations is what the app's explanation routes need from an
// explanation store and explainer (package explain, wired by tdb serve).
// View holds the component's collated records, for explainers and scorers
// that read them.
type Explanations interface {
	// Existing lists the stored explanations of a component.
	Existing(ctx context.Context, c Component) ([]Explanation, error)
	// Explain writes new explanations of a component.
	Explain(ctx context.Context, c Component, view *dataset.ComponentView) ([]string, error)
	// Score scores an explanation on at most maxSequences of the
	// component's records (0: the scorer's default).
	Score(ctx context.Context, c Component, view *dataset.ComponentView, explanation string, maxSequences int) (float64, error)
}

// NoExplanations is the default: no stored explanations, no explainer.
type NoExplanations struct{}

// Existing returns none.
func (NoExplanations) Existing(context.Context, Component) ([]Explanation, error) { return nil, nil }

// Explain returns none.
func (NoExplanations) Explain(context.Context, Component, *dataset.ComponentView) ([]string, error) {
	return nil, nil
}

// ErrNoScorer is returned by NoExplanations.Score.
var ErrNoScorer = errors.New("no explanation scorer is configured on this tdb serve")

// Score fails with ErrNoScorer.
func (NoExplanations) Score(context.Context, Component, *dataset.ComponentView, string, int) (float64, error) {
	return 0, ErrNoScorer
}

// forExplanations reads the node of an explanation route. The app's node
// table relabels attention latents as by-token-pair latents and asks for
// their explanations under that type (dst flattened_attn_write_to_latent_
// summed_over_heads); an explanation is of the latent itself, which tdb
// collates and explains per token, so those requests are answered as for
// the attention latent.
func (r *nodeRequest) forExplanations() {
	if r.Dst == dstLatentPairs {
		r.Dst = dstAttnLatent
	}
}

type existingRequest struct {
	nodeRequest
	ExplanationDatasets []string `json:"explanationDatasets"`
	NeuronDataset       string   `json:"neuronDataset"`
}

type explanationResult struct {
	Explanation string   `json:"explanation"`
	Score       *float64 `json:"score"`
	DatasetName string   `json:"datasetName"`
}

func (h *Handler) existingExplanations(ctx context.Context, body []byte) (any, error) {
	var r existingRequest
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	r.forExplanations()
	if err := r.check(); err != nil {
		return nil, err
	}
	datasets := append([]string{r.NeuronDataset}, r.Datasets...)
	_, s, err := h.resolve(ctx, r.Dst, datasets)
	if err != nil {
		return nil, err
	}
	exps, err := h.opts.Explanations.Existing(ctx, Component{s.manifest.Name, s.location, *r.LayerIndex, *r.ActivationIndex})
	if err != nil {
		return nil, err
	}
	out := []explanationResult{}
	for _, e := range exps {
		name := e.Dataset
		if name == "" {
			name = s.path()
		}
		out = append(out, explanationResult{Explanation: e.Text, Score: e.Score, DatasetName: name})
	}
	return out, nil
}

type explainResponse struct {
	Explanations []string `json:"explanations"`
	Dataset      string   `json:"dataset"`
}

func (h *Handler) explain(ctx context.Context, body []byte) (any, error) {
	var r nodeRequest
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	r.forExplanations()
	s, v, err := h.component(ctx, r)
	if err != nil {
		return nil, err
	}
	exps, err := h.opts.Explanations.Explain(ctx, Component{s.manifest.Name, s.location, *r.LayerIndex, *r.ActivationIndex}, v)
	if err != nil {
		return nil, err
	}
	if exps == nil {
		exps = []string{}
	}
	return explainResponse{Explanations: exps, Dataset: s.path()}, nil
}

type scoreRequest struct {
	nodeRequest
	Explanation  string `json:"explanation"`
	MaxSequences int    `json:"maxSequences"`
}

type scoreResponse struct {
	Score       float64 `json:"score"`
	DatasetPath string  `json:"datasetPath"`
}

func (h *Handler) score(ctx context.Context, body []byte) (any, error) {
	var r scoreRequest
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	r.forExplanations()
	if r.Explanation == "" {
		return nil, badRequest("give the explanation to score")
	}
	if r.MaxSequences < 0 {
		return nil, badRequest("maxSequences must not be negative")
	}
	s, v, err := h.component(ctx, r.nodeRequest)
	if err != nil {
		return nil, err
	}
	sc, err := h.opts.Explanations.Score(ctx, Component{s.manifest.Name, s.location, *r.LayerIndex, *r.ActivationIndex}, v, r.Explanation, r.MaxSequences)
	if errors.Is(err, ErrNoScorer) {
		return nil, errStatus{501, err}
	}
	if err != nil {
		return nil, err
	}
	return scoreResponse{Score: sc, DatasetPath: s.path()}, nil
}
