package viewer

import (
	"net/http"
	"strconv"
	"strings"

	"tdb/debugger"
	"tdb/model"
)

// LensRequest is POST /api/v1/lens: a component page's logit lens from
// the weights, for a dataset location the live model can map to a node:
// mlp.post_act (MLP neurons) or ae.<location> (the latents of the loaded
// autoencoder reading that location at that layer). A head's output
// tokens depend on the prompt: the page asks /api/v1/tdb for them on a
// record instead.
type LensRequest struct {
	Location string `json:"location"`
	Layer    int    `json:"layer"`
	Index    int    `json:"index"`
	// K is how many tokens per list (default 20, at most 100).
	K int `json:"k,omitempty"`
}

// LensResponse: the node (as the debugger names it), the output tokens
// its unit write upvotes and downvotes, and for neurons the input tokens
// that raise it most. Scores are the debugger's (OutputTokenLens,
// InputTokenLens).
type LensResponse struct {
	Node        debugger.Node          `json:"node"`
	Name        string                 `json:"name"`
	Upvoted     []debugger.ScoredToken `json:"upvoted"`
	Downvoted   []debugger.ScoredToken `json:"downvoted"`
	InputTokens []debugger.ScoredToken `json:"input_tokens,omitempty"`
}

// lensNode maps a dataset location to the debugger node it names.
func (s *Server) lensNode(req LensRequest) (debugger.Node, error) {
	n := debugger.Node{Layer: req.Layer, Index: req.Index, Token: -1, KeyToken: -1}
	switch {
	case req.Location == string(model.MLPPostAct):
		n.Type = debugger.MLPNeuron
		return n, nil
	case req.Location == headsLocation:
		return n, badf("a head's output tokens depend on the prompt: ask POST /api/v1/tdb with the head in inspect")
	case strings.HasPrefix(req.Location, "ae."):
		read := strings.TrimPrefix(req.Location, "ae.")
		var have []string
		for _, a := range s.opt.Engine.Autoencoders() {
			if string(a.Location) == read && a.Layer == req.Layer {
				n.Type = a.Kind
				return n, nil
			}
			have = append(have, "ae."+string(a.Location)+" layer "+strconv.Itoa(a.Layer))
		}
		if len(have) == 0 {
			have = []string{"none"}
		}
		return n, badf("no autoencoder reading %s at layer %d is loaded (loaded: %s): start tdb serve with --mlp-autoencoders / --attn-autoencoders", read, req.Layer, strings.Join(have, ", "))
	}
	return n, badf("no logit lens for location %q (want %s, %s or ae.<location>)", req.Location, model.MLPPostAct, headsLocation)
}

func (s *Server) handleLens(w http.ResponseWriter, r *http.Request) {
	req, ok := modelRequest[LensRequest](s, w, r)
	if !ok {
		return
	}
	switch {
	case req.K == 0:
		req.K = 20
	case req.K < 0 || req.K > 100:
		s.fail(w, r, badf("k must be 1..100, not %d", req.K))
		return
	}
	n, err := s.lensNode(req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Weights only: no forward pass, so no queue slot.
	out := LensResponse{Node: n, Name: n.Name()}
	if out.Upvoted, out.Downvoted, err = s.opt.Engine.OutputTokenLens(n, req.K); err != nil {
		s.fail(w, r, err)
		return
	}
	if n.Type == debugger.MLPNeuron {
		if out.InputTokens, _, err = s.opt.Engine.InputTokenLens(n, req.K); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	writeData(w, out)
}
