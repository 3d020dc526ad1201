package compat

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"tdb/debugger"
)

// inferenceAndTokenData is the app's per-prompt header.
type inferenceAndTokenData struct {
	InferenceTime                  float64  `json:"inferenceTime"`
	Loss                           *float64 `json:"loss,omitempty"`
	ActivationValueForBackwardPass *float64 `json:"activationValueForBackwardPass,omitempty"`
	TokensAsInts                   []int    `json:"tokensAsInts"`
	TokensAsStrings                []string `json:"tokensAsStrings"`
}

func (h *Handler) tokenData(e *debugger.Engine, tokens []int, start time.Time) inferenceAndTokenData {
	return inferenceAndTokenData{InferenceTime: time.Since(start).Seconds(), TokensAsInts: tokens, TokensAsStrings: e.Tok.Display(tokens)}
}

// mirroredActivationIndex is the app's activation index (ablations, grads).
type mirroredActivationIndex struct {
	ActivationLocationType string  `json:"activationLocationType"`
	TensorIndices          indices `json:"tensorIndices"`
	LayerIndex             *int    `json:"layerIndex"`
	PassType               string  `json:"passType"`
}

// nodeForDst maps a node page's dst (or an activation location type) to a node type.
func nodeForDst(dst string) (debugger.NodeType, bool) {
	switch {
	case strings.Contains(dst, "autoencoder") && (strings.Contains(dst, "attention") || strings.Contains(dst, "attn")):
		return debugger.AttnLatent, true
	case strings.Contains(dst, "autoencoder"):
		return debugger.MLPLatent, true
	case dst == dstMLPPostAct || dst == "mlp.post_act" || dst == "mlp.pre_act" || dst == "mlp_pre_act":
		return debugger.MLPNeuron, true
	case strings.HasPrefix(dst, "attn") || strings.Contains(dst, "attn_write"):
		return debugger.AttnHead, true
	}
	return "", false
}

type inferenceRequestSpec struct {
	Prompt                            string                   `json:"prompt"`
	ActivationIndexForWithinLayerGrad *mirroredActivationIndex `json:"activationIndexForWithinLayerGrad"`
	AblationSpecs                     []struct {
		Index mirroredActivationIndex `json:"index"`
		Value float64                 `json:"value"`
	} `json:"ablationSpecs"`
}

type normalizeSpec struct {
	nodeRequest
}

type derivedScalarsRequest struct {
	InferenceRequestSpec      inferenceRequestSpec `json:"inferenceRequestSpec"`
	DerivedScalarsRequestSpec struct {
		nodeRequest
		NormalizeActivationsUsingNeuronRecord *normalizeSpec `json:"normalizeActivationsUsingNeuronRecord"`
	} `json:"derivedScalarsRequestSpec"`
}

type derivedScalarsResponse struct {
	InferenceAndTokenData      inferenceAndTokenData `json:"inferenceAndTokenData"`
	DerivedScalarsResponseData struct {
		Activations           []float64 `json:"activations"`
		NormalizedActivations []float64 `json:"normalizedActivations"`
		// NodeIndices names each activation's node: the component at each token.
		NodeIndices []nodeIndex `json:"nodeIndices"`
	} `json:"derivedScalarsResponseData"`
}

// prompt encodes a node page's prompt.
func promptTokens(e *debugger.Engine, prompt string) ([]int, error) {
	if prompt == "" {
		return nil, badRequest("give inferenceRequestSpec.prompt")
	}
	return e.Tok.Encode(prompt), nil
}

func (h *Handler) derivedScalars(ctx context.Context, body []byte) (any, error) {
	start := time.Now()
	var r derivedScalarsRequest
	e, done, err := h.decodeForEngine(ctx, body, &r)
	if err != nil {
		return nil, err
	}
	defer done()
	spec := r.DerivedScalarsRequestSpec
	if err := spec.check(); err != nil {
		return nil, err
	}
	typ, ok := nodeForDst(spec.Dst)
	if !ok || typ == debugger.AttnHead {
		return nil, badRequest("dst %q has no per-token activation (want %s, %s or %s; heads: /derived_attention_scalars)", spec.Dst, dstMLPPostAct, dstMLPLatent, dstAttnLatent)
	}
	tokens, err := promptTokens(e, r.InferenceRequestSpec.Prompt)
	if err != nil {
		return nil, err
	}
	acts, err := e.NodeActivations(ctx, tokens, debugger.Node{Type: typ, Layer: *spec.LayerIndex, Index: *spec.ActivationIndex, Token: -1})
	if err != nil {
		return nil, err
	}
	// normalise by the collated record's maximum when one is served, else
	// by this prompt's maximum
	mx := 0.0
	for _, a := range acts {
		mx = math.Max(mx, float64(a))
	}
	if n := spec.NormalizeActivationsUsingNeuronRecord; n != nil && n.check() == nil && h.opts.Store != nil {
		_, v, err := h.component(ctx, n.nodeRequest)
		var es errStatus
		switch {
		case err == nil:
			mx = float64(v.Stats.Max)
		case errors.As(err, &es) && es.code == http.StatusNotFound:
		default:
			return nil, err
		}
	}
	out := derivedScalarsResponse{InferenceAndTokenData: h.tokenData(e, tokens, start)}
	d := &out.DerivedScalarsResponseData
	for t, a := range acts {
		d.Activations = append(d.Activations, float64(a))
		d.NormalizedActivations = append(d.NormalizedActivations, normalize(float64(a), mx))
		d.NodeIndices = append(d.NodeIndices, toNodeIndex(debugger.Node{Type: typ, Layer: *spec.LayerIndex, Index: *spec.ActivationIndex, Token: t}))
	}
	return out, nil
}

type derivedAttentionScalarsResponse struct {
	InferenceAndTokenData               inferenceAndTokenData `json:"inferenceAndTokenData"`
	DerivedAttentionScalarsResponseData struct {
		TokenAndAttentionScalarsList []tokenAndAttentionScalars `json:"tokenAndAttentionScalarsList"`
	} `json:"derivedAttentionScalarsResponseData"`
}

func (h *Handler) derivedAttentionScalars(ctx context.Context, body []byte) (any, error) {
	start := time.Now()
	var r struct {
		InferenceRequestSpec               inferenceRequestSpec `json:"inferenceRequestSpec"`
		DerivedAttentionScalarsRequestSpec struct {
			nodeRequest
		} `json:"derivedAttentionScalarsRequestSpec"`
	}
	e, done, err := h.decodeForEngine(ctx, body, &r)
	if err != nil {
		return nil, err
	}
	defer done()
	spec := r.DerivedAttentionScalarsRequestSpec
	if err := spec.check(); err != nil {
		return nil, err
	}
	tokens, err := promptTokens(e, r.InferenceRequestSpec.Prompt)
	if err != nil {
		return nil, err
	}
	var tri [][]float32
	if g := r.InferenceRequestSpec.ActivationIndexForWithinLayerGrad; g != nil {
		// the by-token-pair page of an attention latent: each pair's write onto the latent
		layer := *spec.LayerIndex
		if g.LayerIndex != nil {
			layer = *g.LayerIndex
		}
		latent := *spec.ActivationIndex
		if n := len(g.TensorIndices); n > 0 && g.TensorIndices[n-1] != nil {
			latent = *g.TensorIndices[n-1]
		}
		tri, err = e.LatentPairAttribution(ctx, tokens, debugger.Node{Type: debugger.AttnLatent, Layer: layer, Index: latent, Token: -1})
	} else {
		if spec.Dst != "unflattened_attn_write_norm" && spec.Dst != dstAttnWriteNorm {
			return nil, badRequest("dst %q: /derived_attention_scalars answers unflattened_attn_write_norm (or an attention latent's pairs with activationIndexForWithinLayerGrad)", spec.Dst)
		}
		tri, err = e.HeadWriteNorms(ctx, tokens, *spec.LayerIndex, *spec.ActivationIndex)
	}
	if err != nil {
		return nil, err
	}
	f := make([][]float64, len(tri))
	for q, row := range tri {
		f[q] = make([]float64, len(row))
		for k, v := range row {
			f[q][k] = float64(v)
		}
	}
	out := derivedAttentionScalarsResponse{InferenceAndTokenData: h.tokenData(e, tokens, start)}
	out.DerivedAttentionScalarsResponseData.TokenAndAttentionScalarsList = pairSequence(e.Tok.Display(tokens), f)
	return out, nil
}

// vocabToken is one token of a top-token list.
type vocabToken struct {
	Token            string  `json:"token"`
	Scalar           float64 `json:"scalar"`
	NormalizedScalar float64 `json:"normalizedScalar"`
}

type topTokens struct {
	Top    []vocabToken `json:"top"`
	Bottom []vocabToken `json:"bottom"`
}

// makeTopTokens converts scored tokens, normalising by the largest |score|
// of either list.
func makeTopTokens(up, down []debugger.ScoredToken) *topTokens {
	mx := 0.0
	for _, s := range append(append([]debugger.ScoredToken{}, up...), down...) {
		mx = math.Max(mx, math.Abs(s.Score))
	}
	conv := func(xs []debugger.ScoredToken) []vocabToken {
		out := []vocabToken{}
		for _, s := range xs {
			n := 0.0
			if mx > 0 {
				n = s.Score / mx
			}
			out = append(out, vocabToken{Token: s.Text, Scalar: s.Score, NormalizedScalar: n})
		}
		return out
	}
	return &topTokens{Top: conv(up), Bottom: conv(down)}
}

type batchedSubRequest struct {
	InferenceRequestSpec        inferenceRequestSpec `json:"inferenceRequestSpec"`
	ProcessingRequestSpecByName map[string]struct {
		Dst             string `json:"dst"`
		LayerIndex      *int   `json:"layerIndex"`
		ActivationIndex *int   `json:"activationIndex"`
		NumTopTokens    int    `json:"numTopTokens"`
	} `json:"processingRequestSpecByName"`
}

type batchedSubResponse struct {
	InferenceResponse struct {
		InferenceAndTokenData inferenceAndTokenData `json:"inferenceAndTokenData"`
	} `json:"inferenceResponse"`
	ProcessingResponseDataByName map[string]scoredTokensData `json:"processingResponseDataByName"`
}

type scoredTokensData struct {
	ResponseDataType string     `json:"responseDataType"`
	TopTokens        *topTokens `json:"topTokens"`
}

const inputDirectionDst = "vocab_token_write_to_input_direction"

// batched answers the node pages' logit lens: input tokens (a backward
// ablation, dst vocab_token_write_to_input_direction) and output tokens (a
// forward ablation with the node's dst).
func (h *Handler) batched(ctx context.Context, body []byte) (any, error) {
	var r struct {
		InferenceSubRequests []batchedSubRequest `json:"inferenceSubRequests"`
	}
	e, done, err := h.decodeForEngine(ctx, body, &r)
	if err != nil {
		return nil, err
	}
	defer done()
	out := struct {
		InferenceSubResponses []batchedSubResponse `json:"inferenceSubResponses"`
	}{InferenceSubResponses: []batchedSubResponse{}}
	for i, sr := range r.InferenceSubRequests {
		start := time.Now()
		tokens, err := promptTokens(e, sr.InferenceRequestSpec.Prompt)
		if err != nil {
			return nil, err
		}
		resp := batchedSubResponse{ProcessingResponseDataByName: map[string]scoredTokensData{}}
		for name, spec := range sr.ProcessingRequestSpecByName {
			n, err := lensNode(sr, spec.Dst, spec.LayerIndex, spec.ActivationIndex)
			if err != nil {
				return nil, badRequest("inferenceSubRequests[%d].%s: %v", i, name, err)
			}
			k := spec.NumTopTokens
			if k <= 0 {
				k = 100
			}
			var up, down []debugger.ScoredToken
			switch {
			case spec.Dst == inputDirectionDst && n.Type == debugger.MLPNeuron:
				up, down, err = e.InputTokenLens(n, k)
			case spec.Dst == inputDirectionDst && n.Type == debugger.MLPLatent:
				up, down, err = latentInputTokens(ctx, e, tokens, n)
			case spec.Dst == inputDirectionDst: // no input lens for attention nodes
			case n.Type == debugger.AttnHead: // output tokens of a head depend on the prompt's values
			default:
				up, down, err = e.OutputTokenLens(n, k)
			}
			if err != nil {
				return nil, err
			}
			resp.ProcessingResponseDataByName[name] = scoredTokensData{ResponseDataType: "scored_tokens_response_data", TopTokens: makeTopTokens(up, down)}
		}
		resp.InferenceResponse.InferenceAndTokenData = h.tokenData(e, tokens, start)
		out.InferenceSubResponses = append(out.InferenceSubResponses, resp)
	}
	return out, nil
}

// lensNode finds the node of a logit-lens sub-request: from its ablation
// (the app puts the node there), else from the processing spec.
func lensNode(sr batchedSubRequest, dst string, layer, index *int) (debugger.Node, error) {
	for _, a := range sr.InferenceRequestSpec.AblationSpecs {
		ix := a.Index
		typ, ok := nodeForDst(ix.ActivationLocationType)
		if !ok {
			typ, ok = nodeForDst(dst)
		}
		n := len(ix.TensorIndices)
		if !ok || ix.LayerIndex == nil || n == 0 || ix.TensorIndices[n-1] == nil {
			continue
		}
		return debugger.Node{Type: typ, Layer: *ix.LayerIndex, Index: *ix.TensorIndices[n-1], Token: 0}, nil
	}
	typ, ok := nodeForDst(dst)
	if !ok || layer == nil || index == nil {
		return debugger.Node{}, errors.New("give an ablation spec naming the node (activationLocationType, layerIndex, tensorIndices)")
	}
	return debugger.Node{Type: typ, Layer: *layer, Index: *index, Token: 0}, nil
}

// latentInputTokens: an MLP latent's input tokens on the prompt, as the
// node table computes them (the gradient of its pre-activation at the
// prompt's first token, projected on the token embeddings; top and bottom
// 10).
func latentInputTokens(ctx context.Context, e *debugger.Engine, tokens []int, n debugger.Node) (up, down []debugger.ScoredToken, err error) {
	resp, err := e.Run(ctx, debugger.Request{Tokens: tokens, Loss: "zero", UseMLPAutoencoders: true, Inspect: []debugger.Node{n}, TopK: 1, Candidates: 1})
	if err != nil {
		return nil, nil, err
	}
	if len(resp.Details) == 0 {
		return nil, nil, nil
	}
	return resp.Details[0].InputTokens, resp.Details[0].InputTokensDown, nil
}
