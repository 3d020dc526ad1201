package debugger

// Request is one TDB question. It is JSON-serialisable; see the README's
// "Debugger API" section for an example.
type Request struct {
	// Prompt is the text (may contain <|endoftext|>); Tokens may be given instead.
	Prompt string `json:"prompt,omitempty"`
	Tokens []int  `json:"tokens,omitempty"`
	// Targets and Distractors are strings that must each be exactly one token
	// (or "#N" for token id N). Distractors may be empty.
	Targets     []string `json:"targets"`
	Distractors []string `json:"distractors,omitempty"`
	// Loss is logit_diff (default), logit_minus_mean, probs or zero.
	Loss string `json:"loss,omitempty"`
	// Ablations set nodes to a value (default 0) in the forward pass.
	Ablations []Ablation `json:"ablations,omitempty"`
	// Trace makes a node's pre-activation the scalar to explain (§6).
	Trace *Trace `json:"trace,omitempty"`
	// SecondPrompt, of equal token length, turns every column into Left / Diff / Right.
	SecondPrompt string `json:"second_prompt,omitempty"`
	// SecondTargets and SecondDistractors are the second prompt's tokens
	// of interest when they differ from the first's (IOI: " Mary" is the
	// answer on one side, " John" on the other); empty: the first's.
	SecondTargets     []string `json:"second_targets,omitempty"`
	SecondDistractors []string `json:"second_distractors,omitempty"`
	// TopK is the node table's k per column and direction (default 10).
	TopK int `json:"top_k,omitempty"`
	// Candidates is the number of top and bottom next-token candidates (default 100).
	Candidates int `json:"candidates,omitempty"`
	// UseMLPAutoencoders and UseAttnAutoencoders splice the engine's
	// autoencoders in: their latents become nodes (MLP latents replace the
	// neurons of their layers in the node table), ablatable and traceable.
	UseMLPAutoencoders  bool `json:"use_mlp_autoencoders,omitempty"`
	UseAttnAutoencoders bool `json:"use_attention_autoencoders,omitempty"`
	// Inspect lists nodes whose token views (upvoted output tokens, input
	// tokens that upvote them, tokens attended to/from) are returned.
	Inspect []Node `json:"inspect,omitempty"`
	// InspectTable adds every node of the node table (embeddings excepted)
	// to Inspect, so one request answers what a second, inspecting the
	// first one's table, would.
	InspectTable bool `json:"inspect_table,omitempty"`
	// AttentionPairs fills each Run's AttentionPairs.
	AttentionPairs bool `json:"attention_pairs,omitempty"`
}

// Ablation sets a node's activation. Token -1 (or omitted in the CLI name)
// ablates every position; a head ablation sets its whole attention row.
type Ablation struct {
	Node  Node    `json:"node"`
	Value float32 `json:"value"`
}

// Trace picks the scalar to explain instead of the loss.
type Trace struct {
	Node Node `json:"node"`
	// Path for attention heads: "q", "k", "qk" (default) through the
	// attention logit, or "v": the head's direct effect through its value.
	Path string `json:"path,omitempty"`
	// Downstream, for a "v" trace, is the traced node whose direct effect
	// receives the head's write (default: the loss).
	Downstream *Trace `json:"downstream,omitempty"`
}

// Column names of the node table (§4).
const (
	ColActivation   = "activation"
	ColWriteNorm    = "write_norm"
	ColActTimesGrad = "act_times_grad"
	ColDirectEffect = "direction_write"
)

// Columns in display order.
var Columns = []string{ColActivation, ColWriteNorm, ColActTimesGrad, ColDirectEffect}

// Values is one number under comparison. Value is the request's run (with
// its ablations); Baseline is the run without ablations; Right is the second
// prompt; Diff is Value − Baseline (ablations) or Value − Right (two prompts).
type Values struct {
	Value    float64  `json:"value"`
	Baseline *float64 `json:"baseline,omitempty"`
	Right    *float64 `json:"right,omitempty"`
	Diff     *float64 `json:"diff,omitempty"`
}

// NodeRow is one row of the node table.
type NodeRow struct {
	Node    Node              `json:"node"`
	Name    string            `json:"name"`
	Metrics map[string]Values `json:"metrics"`
	// Reason says which column lists put the node in the table, e.g. "top act_times_grad".
	Reason []string `json:"reason"`
}

// Token is one prompt token.
type Token struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
}

// Candidate is a next-token candidate; Relative is its logit minus the first target's.
type Candidate struct {
	Token
	Logit    float64 `json:"logit"`
	Relative float64 `json:"relative"`
	Prob     float64 `json:"prob"`
	Role     string  `json:"role,omitempty"` // "target" or "distractor"
}

// Candidates are the next-token views at one position.
type Candidates struct {
	Position int         `json:"position"`
	Top      []Candidate `json:"top"`
	Bottom   []Candidate `json:"bottom"`
	Pinned   []Candidate `json:"pinned"`
}

// TokenEffects are per-token sums of the estimated total effect (§7).
type TokenEffects struct {
	Embedding     []float64 `json:"embedding"`
	MLP           []float64 `json:"mlp"`
	AttentionFrom []float64 `json:"attention_from"` // by attended-from (query) token
	AttentionTo   []float64 `json:"attention_to"`   // by attended-to (key) token
	Latents       []float64 `json:"latents,omitempty"`
}

// Run is one prompt's run: the request's, the baseline, or the second prompt.
type Run struct {
	Label  string  `json:"label"` // "main", "baseline", "right"
	Tokens []Token `json:"tokens"`
	// Loss is the loss, or the traced scalar when tracing.
	Loss         float64      `json:"loss"`
	Candidates   Candidates   `json:"candidates"`
	TokenEffects TokenEffects `json:"token_effects"`
	// AttentionPairs, when asked for, is act_times_grad of attention summed
	// over layers and heads per token pair: [query][key], zero above the
	// diagonal (as AttentionPairEffects).
	AttentionPairs [][]float64 `json:"attention_pairs,omitempty"`
}

// ScoredToken is a token with a score (upvoted tokens, attention).
type ScoredToken struct {
	Token
	Position int     `json:"position,omitempty"`
	Score    float64 `json:"score"`
}

// NodeDetail holds a node's token views.
type NodeDetail struct {
	Node Node   `json:"node"`
	Name string `json:"name"`
	// Upvoted / Downvoted output tokens: the node's write through the
	// unembedding (ln_f gain applied), mean-subtracted; swapped for negative activations.
	Upvoted   []ScoredToken `json:"upvoted,omitempty"`
	Downvoted []ScoredToken `json:"downvoted,omitempty"`
	// InputTokens that upvote a neuron or latent (gradient of its
	// pre-activation projected on the token embeddings).
	InputTokens []ScoredToken `json:"input_tokens,omitempty"`
	// InputTokensDown, for MLP neurons and latents, are the token embeddings that most
	// lower the pre-activation (scores negative), most negative first.
	InputTokensDown []ScoredToken `json:"input_tokens_down,omitempty"`
	// AttendedTo (keys of the node's query) and AttendedFrom (queries onto its key) for heads.
	AttendedTo   []ScoredToken `json:"attended_to,omitempty"`
	AttendedFrom []ScoredToken `json:"attended_from,omitempty"`
}

// Response is the answer to a Request.
type Response struct {
	Runs    []Run        `json:"runs"`
	Columns []string     `json:"columns"`
	Nodes   []NodeRow    `json:"nodes"`
	Details []NodeDetail `json:"details,omitempty"`
	// Scalar describes what the gradients are of: the loss, or the traced node.
	Scalar string `json:"scalar"`
}
