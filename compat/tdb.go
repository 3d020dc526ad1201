package compat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"tdb/debugger"
)

// nodeIndex is the app's MirroredNodeIndex. Field order is the JSON key
// order; the app compares node index lists as JSON text.
type nodeIndex struct {
	NodeType      string  `json:"nodeType"`
	TensorIndices indices `json:"tensorIndices"`
	LayerIndex    *int    `json:"layerIndex"`
	PassType      string  `json:"passType"`
}

func ip(i int) *int { return &i }

// indices are tensor indices; the app writes "All" (or null) for a whole
// dimension, read as nil.
type indices []*int

// UnmarshalJSON accepts numbers, null and strings ("All").
func (ix *indices) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("tensorIndices: %w", err)
	}
	out := make(indices, len(raw))
	for i, r := range raw {
		var n *int
		if err := json.Unmarshal(r, &n); err == nil {
			out[i] = n
			continue
		}
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return fmt.Errorf("tensorIndices[%d]: %s is not a number or \"All\"", i, r)
		}
	}
	*ix = out
	return nil
}

// toNodeIndex converts an engine node: [token, index] for neurons and
// latents, [query, key, head] for heads, [token] for embeddings (type
// "layer", no layer).
func toNodeIndex(n debugger.Node) nodeIndex {
	out := nodeIndex{NodeType: string(n.Type), LayerIndex: ip(n.Layer), PassType: "forward"}
	switch n.Type {
	case debugger.AttnHead:
		out.TensorIndices = []*int{ip(n.Token), ip(n.KeyToken), ip(n.Index)}
	case debugger.Embedding:
		out.NodeType, out.LayerIndex = "layer", nil
		out.TensorIndices = []*int{ip(n.Token)}
	default:
		out.TensorIndices = []*int{ip(n.Token), ip(n.Index)}
	}
	return out
}

// fromNodeIndex converts the app's node index; a null token means every token.
func (h *Handler) fromNodeIndex(e *debugger.Engine, ix nodeIndex) (debugger.Node, error) {
	at := func(i int) int {
		if i < len(ix.TensorIndices) && ix.TensorIndices[i] != nil {
			return *ix.TensorIndices[i]
		}
		return -1
	}
	if ix.NodeType == "layer" { // how embedding rows come back (toNodeIndex)
		return debugger.Node{}, errors.New("embedding nodes (nodeType layer) cannot be ablated or traced: like the original backend, tdb ablates and traces neurons, attention heads and autoencoder latents")
	}
	if ix.LayerIndex == nil {
		return debugger.Node{}, fmt.Errorf("node %s has no layerIndex", ix.NodeType)
	}
	n := debugger.Node{Layer: *ix.LayerIndex, Token: at(0), KeyToken: -1}
	last := at(len(ix.TensorIndices) - 1)
	switch ix.NodeType {
	case string(debugger.AttnHead):
		if len(ix.TensorIndices) == 3 {
			n.KeyToken = at(1)
		}
		n.Type, n.Index = debugger.AttnHead, last
	case string(debugger.MLPNeuron), string(debugger.MLPLatent), string(debugger.AttnLatent):
		n.Type, n.Index = debugger.NodeType(ix.NodeType), last
	case "autoencoder_latent_by_token_pair": // the app's name for attention latents on node pages
		n.Type, n.Index = debugger.AttnLatent, last
	case "autoencoder_latent": // the generic name: the layer's MLP autoencoder, else its attention one
		n.Type, n.Index = debugger.MLPLatent, last
		hasMLP, hasAttn := false, false
		for _, a := range e.Autoencoders() {
			hasMLP = hasMLP || a.Layer == n.Layer && a.Kind == debugger.MLPLatent
			hasAttn = hasAttn || a.Layer == n.Layer && a.Kind == debugger.AttnLatent
		}
		if hasAttn && !hasMLP {
			n.Type = debugger.AttnLatent
		}
	default:
		return debugger.Node{}, fmt.Errorf("node type %q cannot be ablated or traced here (mlp_neuron, attention_head, mlp_autoencoder_latent, attention_autoencoder_latent)", ix.NodeType)
	}
	if len(ix.TensorIndices) < 2 || last < 0 {
		return debugger.Node{}, fmt.Errorf("node %s: tensorIndices %s must end with the component index", ix.NodeType, ints2s(ix.TensorIndices))
	}
	return n, nil
}

func ints2s(xs []*int) string {
	var parts []string
	for _, x := range xs {
		if x == nil {
			parts = append(parts, "null")
		} else {
			parts = append(parts, fmt.Sprint(*x))
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

type nodeAblation struct {
	NodeIndex nodeIndex `json:"nodeIndex"`
	Value     float32   `json:"value"`
}

type nodeToTrace struct {
	NodeIndex          nodeIndex `json:"nodeIndex"`
	AttentionTraceType string    `json:"attentionTraceType"`
}

// tdbRequestSpec is one sub-request of /batched_tdb.
type tdbRequestSpec struct {
	Prompt                      string         `json:"prompt"`
	TargetTokens                []string       `json:"targetTokens"`
	DistractorTokens            []string       `json:"distractorTokens"`
	ComponentTypeForMlp         string         `json:"componentTypeForMlp"`
	ComponentTypeForAttention   string         `json:"componentTypeForAttention"`
	TopAndBottomKForNodeTable   int            `json:"topAndBottomKForNodeTable"`
	HideEarlyLayersWhenAblating bool           `json:"hideEarlyLayersWhenAblating"`
	NodeAblations               []nodeAblation `json:"nodeAblations"`
	UpstreamNodeToTrace         *nodeToTrace   `json:"upstreamNodeToTrace"`
}

// common is what the sub-requests of one batch must share (two prompts
// may have tokens of interest of their own).
func (s tdbRequestSpec) common() any {
	return []any{s.ComponentTypeForMlp, s.ComponentTypeForAttention, s.TopAndBottomKForNodeTable, s.HideEarlyLayersWhenAblating, s.UpstreamNodeToTrace}
}

// tokensOfInterest are a sub-request's target and distractor tokens.
func (s tdbRequestSpec) tokensOfInterest() any {
	return []any{slices.Clone(s.TargetTokens), slices.Clone(s.DistractorTokens)}
}

// engineRequest builds the one engine request that answers the batch and
// says which of the engine's runs ("main", "baseline", "right") answers
// each sub-request: [prompt], [ablated, baseline] (the second without the
// first's ablations) or [left, right] (two prompts, same ablations).
func (h *Handler) engineRequest(e *debugger.Engine, subs []tdbRequestSpec) (debugger.Request, []string, error) {
	s0 := subs[0]
	var req debugger.Request
	switch len(subs) {
	case 1:
	case 2:
		s1 := subs[1]
		if !reflect.DeepEqual(norm(s0).common(), norm(s1).common()) {
			return req, nil, badRequest("the two sub-requests must share component types, k, hideEarlyLayersWhenAblating and the traced node")
		}
	default:
		return req, nil, badRequest("give one sub-request, or two ([ablated, baseline] or [left prompt, right prompt]), not %d", len(subs))
	}
	req = debugger.Request{Prompt: s0.Prompt, Targets: s0.TargetTokens, Distractors: s0.DistractorTokens, TopK: s0.TopAndBottomKForNodeTable}
	if req.Prompt == "" {
		return req, nil, badRequest("subRequests[0]: empty prompt")
	}
	var err error
	if req.UseMLPAutoencoders, err = usesLatents("componentTypeForMlp", s0.ComponentTypeForMlp, "neuron"); err != nil {
		return req, nil, err
	}
	if req.UseAttnAutoencoders, err = usesLatents("componentTypeForAttention", s0.ComponentTypeForAttention, "attention_head"); err != nil {
		return req, nil, err
	}
	for _, a := range s0.NodeAblations {
		n, err := h.fromNodeIndex(e, a.NodeIndex)
		if err != nil {
			return req, nil, badRequest("nodeAblations: %v", err)
		}
		req.Ablations = append(req.Ablations, debugger.Ablation{Node: n, Value: a.Value})
	}
	if t := s0.UpstreamNodeToTrace; t != nil {
		n, err := h.fromNodeIndex(e, t.NodeIndex)
		if err != nil {
			return req, nil, badRequest("upstreamNodeToTrace: %v", err)
		}
		req.Trace = &debugger.Trace{Node: n}
		if n.Type == debugger.AttnHead {
			req.Trace.Path = strings.ToLower(t.AttentionTraceType)
		}
	}
	runs := []string{"main"}
	if len(subs) == 2 {
		s1 := subs[1]
		switch {
		case len(s0.NodeAblations) > 0 && len(s1.NodeAblations) == 0 && s0.Prompt == s1.Prompt:
			if !reflect.DeepEqual(norm(s0).tokensOfInterest(), norm(s1).tokensOfInterest()) {
				return req, nil, badRequest("an ablated run and its baseline must share target and distractor tokens")
			}
			runs = append(runs, "baseline")
		case reflect.DeepEqual(norm(s0).NodeAblations, norm(s1).NodeAblations):
			if s1.Prompt == "" {
				return req, nil, badRequest("subRequests[1]: empty prompt")
			}
			if len(e.Tok.Encode(s1.Prompt)) != len(e.Tok.Encode(s0.Prompt)) {
				return req, nil, badRequest("the two prompts have %d and %d tokens: comparing prompts needs equal token lengths",
					len(e.Tok.Encode(s0.Prompt)), len(e.Tok.Encode(s1.Prompt)))
			}
			req.SecondPrompt = s1.Prompt
			if !reflect.DeepEqual(norm(s0).tokensOfInterest(), norm(s1).tokensOfInterest()) {
				req.SecondTargets, req.SecondDistractors = s1.TargetTokens, s1.DistractorTokens
			}
			runs = append(runs, "right")
		default:
			return req, nil, badRequest("two sub-requests are either [ablated, baseline] (same prompt, the second without ablations) or two prompts with the same ablations")
		}
	}
	return req, runs, nil
}

// usesLatents reads a componentTypeFor* field: the layer's own components
// (named by own, or empty) or "autoencoder_latent".
func usesLatents(field, value, own string) (bool, error) {
	switch value {
	case "", own:
		return false, nil
	case "autoencoder_latent":
		return true, nil
	}
	return false, badRequest("%s %q: want %s or autoencoder_latent", field, value, own)
}

// norm makes nil and empty lists compare equal.
func norm(s tdbRequestSpec) tdbRequestSpec {
	if len(s.TargetTokens) == 0 {
		s.TargetTokens = nil
	}
	if len(s.DistractorTokens) == 0 {
		s.DistractorTokens = nil
	}
	if len(s.NodeAblations) == 0 {
		s.NodeAblations = nil
	}
	return s
}

// multipleTopK is the app's MultipleTopKDerivedScalarsResponseData.
type multipleTopK struct {
	ResponseDataType                         string                               `json:"responseDataType"`
	ActivationsByGroupID                     map[string][]float64                 `json:"activationsByGroupId"`
	NodeIndices                              []nodeIndex                          `json:"nodeIndices"`
	VocabTokenStringsForIndices              []string                             `json:"vocabTokenStringsForIndices,omitempty"`
	IntermediateSumActivationsByDstByGroupID map[string]map[string]map[string]any `json:"intermediateSumActivationsByDstByGroupId"`
}

type scoredTokensList struct {
	ResponseDataType string       `json:"responseDataType"`
	NodeIndices      []nodeIndex  `json:"nodeIndices"`
	TopTokensList    []*topTokens `json:"topTokensList"`
}

type topTokensAttendedTo struct {
	TokenIndices []int     `json:"tokenIndices"`
	Attributions []float64 `json:"attributions"`
}

type tokenPairAttribution struct {
	ResponseDataType        string                 `json:"responseDataType"`
	NodeIndices             []nodeIndex            `json:"nodeIndices"`
	TopTokensAttendedToList []*topTokensAttendedTo `json:"topTokensAttendedToList"`
}

type tdbSubResponse struct {
	InferenceResponse struct {
		InferenceAndTokenData inferenceAndTokenData `json:"inferenceAndTokenData"`
	} `json:"inferenceResponse"`
	ProcessingResponseDataByName map[string]any `json:"processingResponseDataByName"`
}

// batchedTdb answers the TDB page with one engine run for the whole batch
// (so every sub-response lists the same nodes, the union of the node table
// over the batch), which also gives the table's token views and the
// attention token-pair sums.
func (h *Handler) batchedTdb(ctx context.Context, body []byte) (any, error) {
	start := time.Now()
	var r struct {
		SubRequests []tdbRequestSpec `json:"subRequests"`
	}
	if err := decode(body, &r); err != nil {
		return nil, err
	}
	if len(r.SubRequests) == 0 {
		return nil, badRequest("give subRequests")
	}
	e, done, err := h.engine(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	req, runs, err := h.engineRequest(e, r.SubRequests)
	if err != nil {
		return nil, err
	}
	// one engine run: the node table, the token views of its nodes, every
	// token's logit and the attention token-pair sums
	req.InspectTable, req.AttentionPairs = true, true
	req.Candidates = e.Model.Vocab
	resp, err := e.Run(ctx, req)
	if err != nil {
		return nil, err
	}
	// the node table, early layers hidden when asked
	minLayer := -1
	if r.SubRequests[0].HideEarlyLayersWhenAblating && len(req.Ablations) > 0 {
		minLayer = e.Model.NLayer
		for _, a := range req.Ablations {
			minLayer = min(minLayer, a.Node.Layer)
		}
	}
	var rows []debugger.NodeRow
	for _, nr := range resp.Nodes {
		if minLayer >= 0 && (nr.Node.Type == debugger.Embedding || nr.Node.Layer < minLayer) {
			continue
		}
		rows = append(rows, nr)
	}
	details := map[string]debugger.NodeDetail{}
	for _, d := range resp.Details {
		details[d.Node.Name()] = d
	}
	runIndex := map[string]int{}
	for i, run := range resp.Runs {
		runIndex[run.Label] = i
	}

	indices := make([]nodeIndex, len(rows))
	for i, nr := range rows {
		indices[i] = toNodeIndex(nr.Node)
	}
	// token views: the same for every sub-request (computed on the first)
	upvoted := scoredTokensList{ResponseDataType: "scored_tokens_response_data", NodeIndices: indices, TopTokensList: make([]*topTokens, len(rows))}
	inMLP := scoredTokensList{ResponseDataType: "scored_tokens_response_data", NodeIndices: indices, TopTokensList: make([]*topTokens, len(rows))}
	inQ := scoredTokensList{ResponseDataType: "scored_tokens_response_data", NodeIndices: indices, TopTokensList: make([]*topTokens, len(rows))}
	inK := scoredTokensList{ResponseDataType: "scored_tokens_response_data", NodeIndices: indices, TopTokensList: make([]*topTokens, len(rows))}
	pairAttr := tokenPairAttribution{ResponseDataType: "token_pair_attribution_response_data", NodeIndices: indices, TopTokensAttendedToList: make([]*topTokensAttendedTo, len(rows))}
	for i, nr := range rows {
		d, ok := details[nr.Node.Name()]
		if !ok {
			continue
		}
		if len(d.Upvoted)+len(d.Downvoted) > 0 {
			upvoted.TopTokensList[i] = makeTopTokens(d.Upvoted, d.Downvoted)
		}
		switch nr.Node.Type {
		case debugger.MLPNeuron:
			inMLP.TopTokensList[i] = makeTopTokens(d.InputTokens, d.InputTokensDown)
		case debugger.MLPLatent:
			if len(d.InputTokens) > 0 {
				inMLP.TopTokensList[i] = makeTopTokens(d.InputTokens, d.InputTokensDown)
			}
		case debugger.AttnLatent:
			if len(d.AttendedTo) > 0 {
				t := &topTokensAttendedTo{TokenIndices: []int{}, Attributions: []float64{}}
				for _, s := range d.AttendedTo {
					t.TokenIndices = append(t.TokenIndices, s.Position)
					t.Attributions = append(t.Attributions, s.Score)
				}
				pairAttr.TopTokensAttendedToList[i] = t
			}
		}
	}

	// output-token logits: the union of every run's 100 highest and 100
	// lowest candidates and its target and distractor tokens (the app pins
	// those and subtracts their logits)
	var vocabIDs []int
	seen := map[int]bool{}
	const topLogits = 100
	for _, label := range runs {
		cs := resp.Runs[runIndex[label]].Candidates
		for _, list := range [][]debugger.Candidate{cs.Top[:min(topLogits, len(cs.Top))], cs.Bottom[:min(topLogits, len(cs.Bottom))], cs.Pinned} {
			for _, c := range list {
				if !seen[c.ID] {
					seen[c.ID] = true
					vocabIDs = append(vocabIDs, c.ID)
				}
			}
		}
	}

	out := struct {
		InferenceSubResponses []tdbSubResponse `json:"inferenceSubResponses"`
	}{}
	elapsed := time.Since(start).Seconds()
	for _, label := range runs {
		ri := runIndex[label]
		run := resp.Runs[ri]
		sub := tdbSubResponse{ProcessingResponseDataByName: map[string]any{}}
		tokens := make([]int, len(run.Tokens))
		strs := make([]string, len(run.Tokens))
		for i, t := range run.Tokens {
			tokens[i], strs[i] = t.ID, t.Text
		}
		loss := run.Loss
		td := inferenceAndTokenData{InferenceTime: elapsed, TokensAsInts: tokens, TokensAsStrings: strs}
		if req.Trace != nil {
			td.ActivationValueForBackwardPass = &loss
		} else {
			td.Loss = &loss
		}
		sub.InferenceResponse.InferenceAndTokenData = td

		acts := map[string][]float64{}
		for _, col := range debugger.Columns {
			vals := make([]float64, len(rows))
			for i, nr := range rows {
				vals[i] = pick(nr.Metrics[col], label)
			}
			acts[col] = vals
		}
		sub.ProcessingResponseDataByName["topKComponents"] = multipleTopK{
			ResponseDataType: "multiple_top_k_derived_scalars_response_data", ActivationsByGroupID: acts, NodeIndices: indices,
			IntermediateSumActivationsByDstByGroupID: map[string]map[string]map[string]any{}}

		logits := map[int]float64{}
		for _, list := range [][]debugger.Candidate{run.Candidates.Top, run.Candidates.Bottom, run.Candidates.Pinned} {
			for _, c := range list {
				logits[c.ID] = c.Logit
			}
		}
		lg := make([]float64, len(vocabIDs))
		vocabIdx := make([]nodeIndex, len(vocabIDs))
		vocabStr := make([]string, len(vocabIDs))
		disp := e.Tok.Display(vocabIDs)
		for i, id := range vocabIDs {
			lg[i] = logits[id]
			vocabIdx[i] = nodeIndex{NodeType: "vocab_token", TensorIndices: []*int{ip(id)}, PassType: "forward"}
			vocabStr[i] = disp[i]
		}
		sub.ProcessingResponseDataByName["topOutputTokenLogits"] = multipleTopK{
			ResponseDataType: "multiple_top_k_derived_scalars_response_data", ActivationsByGroupID: map[string][]float64{"logits": lg},
			NodeIndices: vocabIdx, VocabTokenStringsForIndices: vocabStr, IntermediateSumActivationsByDstByGroupID: map[string]map[string]map[string]any{}}

		te := run.TokenEffects
		mlp := slices.Clone(te.MLP)
		if req.UseMLPAutoencoders && !req.UseAttnAutoencoders && len(te.Latents) == len(mlp) {
			for i := range mlp {
				mlp[i] += te.Latents[i]
			}
		}
		sub.ProcessingResponseDataByName["componentSumsForTokenDisplay"] = multipleTopK{
			ResponseDataType: "multiple_top_k_derived_scalars_response_data", ActivationsByGroupID: map[string][]float64{}, NodeIndices: []nodeIndex{},
			IntermediateSumActivationsByDstByGroupID: map[string]map[string]map[string]any{
				debugger.ColActTimesGrad: {
					"token_attribution":               {"value": te.Embedding},
					"mlp_act_times_grad":              {"value": mlp},
					"unflattened_attn_act_times_grad": {"value": run.AttentionPairs},
				},
			}}
		sub.ProcessingResponseDataByName["upvotedOutputTokens"] = upvoted
		sub.ProcessingResponseDataByName["inputTokensThatUpvoteMlp"] = inMLP
		sub.ProcessingResponseDataByName["inputTokensThatUpvoteAttnQ"] = inQ
		sub.ProcessingResponseDataByName["inputTokensThatUpvoteAttnK"] = inK
		sub.ProcessingResponseDataByName["tokenPairAttribution"] = pairAttr
		out.InferenceSubResponses = append(out.InferenceSubResponses, sub)
	}
	return out, nil
}

// pick returns a node table value of one run.
func pick(v debugger.Values, label string) float64 {
	switch {
	case label == "baseline" && v.Baseline != nil:
		return *v.Baseline
	case label == "right" && v.Right != nil:
		return *v.Right
	}
	return v.Value
}
