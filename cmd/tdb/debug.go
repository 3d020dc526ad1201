package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"tdb/debugger"
)

func init() {
	register("debug", "ask why the model outputs a target instead of a distractor: node table, ablations, tracing", cmdDebug)
}

func cmdDebug(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("debug", stderr)
	modelName := modelFlag(fs, "model: hub name, local folder or random:<preset>")
	prompt := fs.String("prompt", "", "the prompt (<|endoftext|> is the special token)")
	var targets, distractors, ablations, inspect stringList
	fs.Var(&targets, "target", "target token, exactly one token (repeatable; #N for token id N)")
	fs.Var(&distractors, "distractor", "distractor token (repeatable; may be omitted)")
	fs.Var(&ablations, "ablate", "ablate NODE[=VALUE] (repeatable), e.g. mlp_L5_123@7=0 or attn_L3_7@7 (no @token: every token)")
	fs.Var(&inspect, "inspect", "show token views of NODE (repeatable)")
	trace := fs.String("trace", "", "trace NODE[:q|k|qk|v] instead of the loss, e.g. mlp_L5_123@7 or attn_L3_7@7>2:v")
	second := fs.String("second-prompt", "", "compare with a second prompt of equal token length")
	loss := fs.String("loss", "logit_diff", "loss: logit_diff, logit_minus_mean, probs, zero")
	top := fs.Int("top", 10, "k for the node table (top-k and bottom-k per column)")
	asJSON := fs.Bool("json", false, "print the full JSON response")
	mlpAE := fs.String("mlp-autoencoders", "", "MLP autoencoders to use: PATH_OR_NAME@LAYER[:LOCATION],... or a public name for every layer (mlp_post_act_v4)")
	dropDead := fs.Bool("drop-dead-latents", false, "drop autoencoder latents that never fired in training (as TDB does for the public ones)")
	attnAE := fs.String("attn-autoencoders", "", "attention autoencoders to use (resid.delta_attn): PATH_OR_NAME@LAYER,... or resid_delta_attn_v4")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *prompt == "" {
		return usagef("--prompt is required")
	}
	if *top < 1 { // 0 would silently become the engine's default of 10
		return usagef("--top must be at least 1 (got %d)", *top)
	}
	req := debugger.Request{Prompt: *prompt, Targets: targets, Distractors: distractors, Loss: *loss, SecondPrompt: *second, TopK: *top}
	for _, a := range ablations {
		name, val, hasVal := strings.Cut(a, "=")
		n, err := debugger.ParseNode(name)
		if err != nil {
			return usageError{err}
		}
		ab := debugger.Ablation{Node: n}
		if hasVal {
			v, err := strconv.ParseFloat(val, 32)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return usagef("--ablate %s: bad value %q: want a finite number within float32 range", a, val)
			}
			ab.Value = float32(v)
		}
		req.Ablations = append(req.Ablations, ab)
	}
	if *trace != "" {
		name, path, _ := strings.Cut(*trace, ":")
		n, err := debugger.ParseNode(name)
		if err != nil {
			return usageError{err}
		}
		req.Trace = &debugger.Trace{Node: n, Path: path}
	}
	for _, s := range inspect {
		n, err := debugger.ParseNode(s)
		if err != nil {
			return usageError{err}
		}
		req.Inspect = append(req.Inspect, n)
	}
	eng, mlp, attn, err := openEngine(ctx, *modelName, *mlpAE, *attnAE, *dropDead, stderr)
	if err != nil {
		return badInput(err)
	}
	req.UseMLPAutoencoders, req.UseAttnAutoencoders = len(mlp) > 0, len(attn) > 0
	resp, err := eng.Run(ctx, req)
	if err != nil {
		return badInput(err) // a debugger.BadRequest: exit 2
	}
	if *asJSON {
		return writeJSON(stdout, resp)
	}
	printDebug(stdout, resp)
	return nil
}

func printDebug(w io.Writer, resp *debugger.Response) {
	for _, r := range resp.Runs {
		var toks []string
		for i, t := range r.Tokens {
			toks = append(toks, fmt.Sprintf("%d:%q", i, t.Text))
		}
		fmt.Fprintf(w, "[%s] %s\n", r.Label, strings.Join(toks, " "))
		fmt.Fprintf(w, "[%s] %s = %.4f\n", r.Label, resp.Scalar, r.Loss)
		var cands []string
		for _, c := range r.Candidates.Top[:min(10, len(r.Candidates.Top))] {
			cands = append(cands, fmt.Sprintf("%q %+.2f", c.Text, c.Relative))
		}
		for _, c := range r.Candidates.Pinned {
			cands = append(cands, fmt.Sprintf("[%s %q %+.2f]", c.Role, c.Text, c.Relative))
		}
		fmt.Fprintf(w, "[%s] next tokens at %d (logit relative to the first target): %s\n\n", r.Label, r.Candidates.Position, strings.Join(cands, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "node\t"
	for _, c := range resp.Columns {
		header += c + "\t"
	}
	fmt.Fprintln(tw, header)
	for _, n := range resp.Nodes {
		line := n.Name + "\t"
		for _, c := range resp.Columns {
			v := n.Metrics[c]
			cell := fmt.Sprintf("%.4g", v.Value)
			if v.Diff != nil {
				cell += fmt.Sprintf(" (Δ%+.3g)", *v.Diff)
			}
			line += cell + "\t"
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for _, d := range resp.Details {
		fmt.Fprintf(w, "\n%s\n", d.Name)
		show := func(label string, xs []debugger.ScoredToken) {
			if len(xs) == 0 {
				return
			}
			var parts []string
			for _, x := range xs {
				parts = append(parts, fmt.Sprintf("%q %.3g", x.Text, x.Score))
			}
			fmt.Fprintf(w, "  %s: %s\n", label, strings.Join(parts, ", "))
		}
		show("upvoted output tokens", d.Upvoted)
		show("downvoted output tokens", d.Downvoted)
		show("input tokens that upvote it", d.InputTokens)
		show("attended to", d.AttendedTo)
		show("attended from", d.AttendedFrom)
	}
}
