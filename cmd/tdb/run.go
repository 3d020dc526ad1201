package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"tdb/autoencoder"
	"tdb/internal/textutil"
	"tdb/model"
	"tdb/model/tokenizer"
)

func init() {
	register("run", "run GPT-2 on prompts or tokens; print predictions, save activations (and gradients)", cmdRun)
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr)
	modelName := modelFlag(fs, "model: hub name (gpt2, gpt2-medium, ...; pulled on first use), local folder, or random:<preset>")
	var prompts, tokenLists stringList
	fs.Var(&prompts, "prompt", "prompt text (repeatable: one batch row each); <|endoftext|> is the special token")
	fs.Var(&tokenLists, "tokens", "comma-separated token ids (repeatable: one batch row each)")
	locations := fs.String("locations", "", "comma-separated locations to save: NAME (every layer) or NAME/LAYER, e.g. mlp.post_act,attn.qk_probs/3")
	out := fs.String("out", "", "write the activations (and gradients) to this .safetensors file")
	top := fs.Int("top", 10, "number of next-token predictions to print")
	target := fs.String("target", "", "target token (string or #ID): save gradients of Σ_batch logit(target) − logit(distractor) at the last position")
	distractor := fs.String("distractor", "", "distractor token (string or #ID), with --target")
	aeSpec := fs.String("autoencoder", "", "splice autoencoders in: PATH_OR_NAME@LAYER[:LOCATION], comma-separated; captures <location>.latents/<layer>")
	freeze := fs.Bool("freeze-ln-f", false, "treat the final LayerNorm scale as a constant in the backward pass (as TDB does)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if (len(prompts) == 0) == (len(tokenLists) == 0) {
		return usagef("give --prompt or --tokens (one or more times), not both")
	}
	if (*target == "") != (*distractor == "") {
		return usagef("--target and --distractor go together")
	}
	if *top < 1 {
		return usagef("--top must be at least 1 (got %d)", *top)
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		return err
	}
	var batch [][]int
	for _, p := range prompts {
		ids := tok.Encode(p)
		if len(ids) == 0 {
			return usagef("prompt %q is empty: it has no tokens", p)
		}
		batch = append(batch, ids)
	}
	for _, s := range tokenLists {
		ids, err := parseTokenList(s)
		if err != nil {
			return usagef("--tokens %q: %v", s, err)
		}
		batch = append(batch, ids)
	}
	m, err := loadModel(ctx, *modelName, stderr)
	if err != nil {
		return err
	}
	if err := model.ValidateTokens(m.Config, batch); err != nil {
		return usagef("%s: %v", map[bool]string{true: "--prompt", false: "--tokens"}[len(prompts) > 0], err)
	}
	var targetID, distractorID int
	if *target != "" { // before the forward pass: a bad token is a usage error, not wasted work
		if targetID, err = tok.SingleToken(*target); err != nil {
			return usagef("--target: %v", err)
		}
		if distractorID, err = tok.SingleToken(*distractor); err != nil {
			return usagef("--distractor: %v", err)
		}
		if targetID >= m.Vocab || distractorID >= m.Vocab {
			return usagef("target/distractor id outside the model's vocabulary of %d", m.Vocab)
		}
	}
	sites, err := parseSites(m.Config, *locations)
	if err != nil {
		return usageError{err}
	}
	capture := sites
	if !slices.Contains(sites, model.At(model.Logits, model.NoLayer)) {
		capture = append(capture[:len(capture):len(capture)], model.At(model.Logits, model.NoLayer))
	}
	req := model.Request{Tokens: batch, Capture: capture, Backward: *target != ""}
	aes, err := openAutoencoders(ctx, *aeSpec, false, m, stderr) // every latent, so columns are file indices
	if err != nil {
		return err
	}
	var spliced []*autoencoder.Spliced
	for _, a := range aes {
		s, err := a.ae.Splice(a.layer, a.loc)
		if err != nil {
			return badInput(err)
		}
		if err := s.Check(m.Config); err != nil {
			return badInput(err)
		}
		spliced = append(spliced, s)
		req.Hooks = append(req.Hooks, s.Hook())
	}
	res, err := m.Forward(ctx, req)
	if err != nil {
		return badInput(err)
	}
	logits := res.Acts[model.At(model.Logits, model.NoLayer)]
	for b, seq := range batch {
		fmt.Fprintf(stdout, "sequence %d (%d tokens):\n", b, len(seq))
		disp := tok.Display(seq)
		for i, id := range seq {
			fmt.Fprintf(stdout, "  %4d %6d %q\n", i, id, disp[i])
		}
		row := logits.Data[(b*res.T+len(seq)-1)*m.Vocab : (b*res.T+len(seq))*m.Vocab]
		fmt.Fprintf(stdout, "  top %d next tokens:\n", *top)
		for _, p := range topTokens(row, *top) {
			fmt.Fprintf(stdout, "    %6d %-16q p=%.4g logit=%.3f\n", p.id, tok.Display([]int{p.id})[0], p.prob, p.logit)
		}
	}
	tensors := []model.NamedTensor{}
	for _, s := range sites { // logits are always computed for the predictions; saved only when asked
		tensors = append(tensors, model.NamedTensor{Name: s.String(), Tensor: res.Acts[s]})
	}
	for _, s := range spliced {
		lat := s.Latents.Clone()
		for b, n := range res.Lengths { // padding has no latents
			clear(lat.Data[(b*res.T+n)*lat.Shape[2] : (b+1)*res.T*lat.Shape[2]])
		}
		tensors = append(tensors, model.NamedTensor{Name: fmt.Sprintf("%s.latents/%d", s.Site.Loc, s.Site.Layer), Tensor: lat})
		fmt.Fprintf(stdout, "%s.latents/%d: %s\n", s.Site.Loc, s.Site.Layer, s.AE)
	}
	if *target != "" {
		t, d := targetID, distractorID
		seed := model.NewTensor(len(batch), res.T, m.Vocab)
		var diff float64
		for b, n := range res.Lengths {
			row := (b*res.T + n - 1) * m.Vocab
			seed.Data[row+t]++
			seed.Data[row+d]--
			diff += float64(logits.Data[row+t] - logits.Data[row+d])
		}
		opts := model.BackwardOptions{Keep: sites}
		if *freeze {
			opts.Stop = []model.Site{model.At(model.LnFScale, model.NoLayer)}
		}
		grads, err := res.Backward(map[model.Site]*model.Tensor{model.At(model.Logits, model.NoLayer): seed}, opts)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Σ logit diff (%q − %q) at the last position: %.4f\n", *target, *distractor, diff)
		for _, s := range sites {
			tensors = append(tensors, model.NamedTensor{Name: "grad/" + s.String(), Tensor: grads[s]})
		}
	}
	if *out != "" {
		meta := map[string]string{"model": *modelName, "lengths": fmt.Sprint(res.Lengths)}
		if err := model.WriteSafetensors(*out, tensors, meta); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d tensors to %s\n", len(tensors), *out)
	}
	return nil
}

func parseTokenList(s string) ([]int, error) {
	var ids []int
	for _, f := range textutil.List(s) {
		id, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no tokens")
	}
	return ids, nil
}

// parseSites expands "loc" (every layer) and "loc/L" entries.
func parseSites(c model.Config, spec string) ([]model.Site, error) {
	var sites []model.Site
	seen := map[model.Site]bool{}
	add := func(s model.Site) {
		if !seen[s] {
			seen[s] = true
			sites = append(sites, s)
		}
	}
	for _, f := range textutil.List(spec) {
		if name, layer, ok := strings.Cut(f, "/"); ok {
			s, err := model.ParseSite(name + "/" + layer)
			if err != nil {
				return nil, err
			}
			if s.Layer >= c.NLayer {
				return nil, fmt.Errorf("%s: layer %d is out of range: the model has layers 0..%d", f, s.Layer, c.NLayer-1)
			}
			add(s)
			continue
		}
		loc, err := model.ParseLocation(f)
		if err != nil {
			return nil, err
		}
		if !loc.HasLayer() {
			add(model.At(loc, model.NoLayer))
			continue
		}
		for l := range c.NLayer {
			add(model.At(loc, l))
		}
	}
	return sites, nil
}

type prediction struct {
	id          int
	logit, prob float64
}

// topTokens returns the n most likely tokens of a logit row with softmax probabilities.
func topTokens(row []float32, n int) []prediction {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(v))
	}
	var z float64
	for _, v := range row {
		z += math.Exp(float64(v) - mx)
	}
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
	out := make([]prediction, 0, n)
	for _, i := range idx[:min(n, len(idx))] {
		out = append(out, prediction{i, float64(row[i]), math.Exp(float64(row[i])-mx) / z})
	}
	return out
}
