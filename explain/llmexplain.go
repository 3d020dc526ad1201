package explain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"tdb/explain/llm"
)

// LLMExplainer asks a language model for an explanation: it shows the
// model the explainer's top records (even ranks) with each activating
// token marked with its activation on a 0–10 scale.
type LLMExplainer struct {
	Client *llm.Client
	Vocab  *Vocab
	// Records bounds how many top records the prompt shows (default 10).
	Records int
}

// LLMName is the explainer name of language-model explanations.
const LLMName = "llm"

// Method implements Explainer.
func (e *LLMExplainer) Method() Method { return Method{Explainer: LLMName, Model: e.Client.Model} }

const explainSystem = `You are studying one unit (a neuron or feature) of a language model. You are shown text excerpts; each token where the unit activates is written as [[token]](a), with a its activation from 1 to 10 (10 is the unit's strongest). Unmarked tokens have activation 0; ⏎ is a line break. Say in one short phrase what the unit responds to: the token(s), and their context if it matters. Quote exact tokens in double quotes, with their leading space, e.g. " France" after " Paris". Answer with the phrase only, on one line.`

// Explain implements Explainer.
func (e *LLMExplainer) Explain(ctx context.Context, c *Component) (string, error) {
	top := c.trainTop()
	n := e.Records
	if n <= 0 {
		n = 10
	}
	top = top[:min(n, len(top))]
	if len(top) == 0 || top[0].Max <= 0 {
		return noPattern, nil
	}
	scale := top[0].Max
	var b strings.Builder
	for i, r := range top {
		fmt.Fprintf(&b, "Excerpt %d:\n", i+1)
		for k, t := range r.Tokens {
			a := 0
			if k < len(r.Activations) && scale > 0 {
				a = int(10 * r.Activations[k] / scale)
			}
			if a > 0 {
				fmt.Fprintf(&b, "[[%s]](%d)", display(e.Vocab.Text(t)), min(a, 10))
			} else {
				b.WriteString(display(e.Vocab.Text(t)))
			}
		}
		b.WriteString("\n\n")
	}
	b.WriteString("What does the unit respond to?")
	var out string
	_, err := e.Client.Complete(ctx, []llm.Message{{Role: "system", Content: explainSystem}, {Role: "user", Content: b.String()}}, func(s string) error {
		var err error
		out, err = cleanExplanation(s)
		return err
	})
	return out, err
}

// display shows a token on one line: line breaks and tabs become ⏎ and →
// (excerpts are one per line in prompts).
func display(s string) string { return lineBreaks.Replace(s) }

var lineBreaks = strings.NewReplacer("\n", "⏎", "\r", "⏎", "\t", "→")

// cleanExplanation keeps the first line of an answer without labels and
// surrounding quotes; an empty or rambling answer is an error (re-asked).
func cleanExplanation(s string) (string, error) {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		for _, p := range []string{"Explanation:", "explanation:", "Answer:", "answer:", "**Explanation:**"} {
			line = strings.TrimSpace(strings.TrimPrefix(line, p))
		}
		line = strings.TrimSuffix(line, ".")
		if len(line) >= 2 && line[0] == '\'' && line[len(line)-1] == '\'' {
			line = line[1 : len(line)-1]
		}
		if line == "" {
			continue
		}
		if len(line) > 300 {
			return "", fmt.Errorf("explanation of %d characters is not a short phrase", len(line))
		}
		return line, nil
	}
	return "", errors.New("empty answer")
}

// LLMJudge makes score predictions with a language model, Batch records
// per request.
type LLMJudge struct {
	Client *llm.Client
	Vocab  *Vocab
	// Batch is how many records one request shows (default 5).
	Batch int
}

// Name implements Judge.
func (j *LLMJudge) Name() string { return LLMName + ":" + j.Client.Model }

func (j *LLMJudge) batch() int {
	if j.Batch <= 0 {
		return 5
	}
	return j.Batch
}

const simulateSystem = `You predict how strongly one unit of a language model activates on each token of text excerpts, given an explanation of what the unit responds to. Activations go from 0 (none, most tokens) to 10 (strongest). Reply with JSON only: an array holding, for each excerpt in order, an array with one number per token.`

// Simulate implements Judge.
func (j *LLMJudge) Simulate(ctx context.Context, explanation string, recs []Record) ([][]float64, error) {
	out := make([][]float64, 0, len(recs))
	for lo := 0; lo < len(recs); lo += j.batch() {
		part := recs[lo:min(lo+j.batch(), len(recs))]
		var b strings.Builder
		fmt.Fprintf(&b, "Explanation: %s\n\n", explanation)
		for i, r := range part {
			fmt.Fprintf(&b, "Excerpt %d (%d tokens): ", i+1, len(r.Tokens))
			toks := make([]string, len(r.Tokens))
			for k, t := range r.Tokens {
				toks[k] = strconv.Quote(j.Vocab.Text(t))
			}
			b.WriteString("[" + strings.Join(toks, ", ") + "]\n")
		}
		var got [][]float64
		_, err := j.Client.Complete(ctx, []llm.Message{{Role: "system", Content: simulateSystem}, {Role: "user", Content: b.String()}}, func(s string) error {
			got = nil
			if err := decodeJSONArray(s, &got); err != nil {
				return err
			}
			if len(got) != len(part) {
				return fmt.Errorf("%d excerpts answered, want %d", len(got), len(part))
			}
			for i, r := range part {
				if len(got[i]) != len(r.Activations) {
					return fmt.Errorf("excerpt %d: %d numbers, want %d", i+1, len(got[i]), len(r.Activations))
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

const detectSystem = `You are given an explanation of what one unit of a language model responds to, and numbered text excerpts. Say which excerpts contain something the unit responds to. Reply with JSON only: an array of the numbers of those excerpts (possibly empty).`

// Detect implements Judge.
func (j *LLMJudge) Detect(ctx context.Context, explanation string, recs []Record) ([]bool, error) {
	return j.pick(ctx, detectSystem, explanation, recs, nil)
}

const fuzzSystem = `You are given an explanation of what one unit of a language model responds to, and numbered text excerpts in which some tokens are marked [[like this]]. In some excerpts the marked tokens are where the unit activates; in others they were marked at random. Say in which excerpts the marks fit the explanation. Reply with JSON only: an array of the numbers of those excerpts (possibly empty).`

// Fuzz implements Judge.
func (j *LLMJudge) Fuzz(ctx context.Context, explanation string, recs []Record, marked [][]bool) ([]bool, error) {
	return j.pick(ctx, fuzzSystem, explanation, recs, marked)
}

// pick asks, batch by batch, which numbered excerpts qualify.
func (j *LLMJudge) pick(ctx context.Context, system, explanation string, recs []Record, marked [][]bool) ([]bool, error) {
	out := make([]bool, 0, len(recs))
	for lo := 0; lo < len(recs); lo += j.batch() {
		hi := min(lo+j.batch(), len(recs))
		var b strings.Builder
		fmt.Fprintf(&b, "Explanation: %s\n\n", explanation)
		for i := lo; i < hi; i++ {
			fmt.Fprintf(&b, "Excerpt %d: ", i-lo+1)
			for k, t := range recs[i].Tokens {
				s := display(j.Vocab.Text(t))
				if marked != nil && k < len(marked[i]) && marked[i][k] {
					s = "[[" + s + "]]"
				}
				b.WriteString(s)
			}
			b.WriteString("\n")
		}
		sel := make([]bool, hi-lo)
		_, err := j.Client.Complete(ctx, []llm.Message{{Role: "system", Content: system}, {Role: "user", Content: b.String()}}, func(s string) error {
			clear(sel)
			var nums []float64
			if err := decodeJSONArray(s, &nums); err != nil {
				return err
			}
			for _, x := range nums {
				k := int(x)
				if float64(k) != x || k < 1 || k > hi-lo {
					return fmt.Errorf("excerpt number %v out of range 1..%d", x, hi-lo)
				}
				sel[k-1] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, sel...)
	}
	return out, nil
}

// decodeJSONArray decodes the outermost JSON array in s (models like to
// wrap JSON in prose or code fences).
func decodeJSONArray(s string, v any) error {
	i, k := strings.Index(s, "["), strings.LastIndex(s, "]")
	if i < 0 || k < i {
		return errors.New("no JSON array in the answer")
	}
	if err := json.Unmarshal([]byte(s[i:k+1]), v); err != nil {
		return fmt.Errorf("answer is not the JSON asked for: %w", err)
	}
	return nil
}
