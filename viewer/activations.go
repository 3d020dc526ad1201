package viewer

import (
	"net/http"
	"strings"

	"tdb/debugger"
	"tdb/model"
)

// headsLocation is the dataset location of attention heads (records are
// the head's attention pattern, lower triangle row by row).
const headsLocation = "attn.heads"

// ActivationsRequest is POST /api/v1/activations: one component's
// activations on the user's prompt ("activations for your prompt" on a
// component page), from the live model.
type ActivationsRequest struct {
	Prompt   string `json:"prompt"`
	Location string `json:"location"`
	Layer    int    `json:"layer"`
	Index    int    `json:"index"`
}

// ActivationsResponse holds the prompt's tokens and the component's
// activation at every token, or for attn.heads the attention pattern's
// lower triangle row by row (query i, keys 0..i), as dataset records do.
type ActivationsResponse struct {
	Tokens      []debugger.Token `json:"tokens"`
	Activations []float32        `json:"activations"`
	Pairs       bool             `json:"pairs"`
}

func (s *Server) handleActivations(w http.ResponseWriter, r *http.Request) {
	req, ok := modelRequest[ActivationsRequest](s, w, r)
	if !ok {
		return
	}
	if strings.TrimSpace(req.Prompt) == "" {
		s.fail(w, r, badf("the prompt is empty"))
		return
	}
	if err := s.checkPrompt("the prompt", req.Prompt, 0); err != nil {
		s.fail(w, r, err)
		return
	}
	m := s.opt.Engine.Model
	if req.Layer < 0 || req.Layer >= m.NLayer {
		s.fail(w, r, badf("layer %d is out of range: the model has layers 0..%d", req.Layer, m.NLayer-1))
		return
	}
	var site model.Site
	var width int
	pairs := req.Location == headsLocation
	if pairs {
		site, width = model.At(model.AttnQKProbs, req.Layer), m.NHead
	} else {
		loc, err := model.ParseLocation(req.Location)
		if err != nil || !loc.HasLayer() || loc == model.AttnQKLogits || loc == model.AttnQKProbs {
			s.fail(w, r, badf("activations for a prompt: location %q is not one the live model computes per token (want %s or a per-token location such as %s)", req.Location, headsLocation, model.MLPPostAct))
			return
		}
		site, width = model.At(loc, req.Layer), 1
		for _, d := range m.SiteShape(loc, 1)[1:] {
			width *= d
		}
	}
	if req.Index < 0 || req.Index >= width {
		s.fail(w, r, badf("index %d is out of range: %s has %d components per layer", req.Index, req.Location, width))
		return
	}
	ids := s.tok.Encode(req.Prompt)
	ctx, done, ok := s.modelSlot(w, r)
	if !ok {
		return
	}
	defer done()
	res, err := m.Forward(ctx, model.Request{Tokens: [][]int{ids}, Capture: []model.Site{site}})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data := res.Acts[site].Data
	T := len(ids)
	out := ActivationsResponse{Tokens: tokenList(s.tok, ids), Pairs: pairs}
	if pairs {
		H := m.NHead
		for q := range T {
			for k := 0; k <= q; k++ {
				out.Activations = append(out.Activations, data[(q*T+k)*H+req.Index])
			}
		}
	} else {
		for t := range T {
			out.Activations = append(out.Activations, data[t*width+req.Index])
		}
	}
	writeData(w, out)
}
