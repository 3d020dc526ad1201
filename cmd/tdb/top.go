package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"tdb/dataset"
	"tdb/model/tokenizer"
	"tdb/query"
	"tdb/store"
)

func init() {
	register("top", "print a component's top-activating records, random records and statistics from a dataset", cmdTop)
}

func cmdTop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("top", stderr)
	storeURL := storeFlag(fs, "store holding the dataset")
	name := fs.String("dataset", "", "dataset name")
	location := fs.String("location", "mlp.post_act", "location (mlp.post_act, attn.heads, ...)")
	layer := fs.Int("layer", 0, "layer")
	index := fs.Int("index", 0, "component index (neuron, head or latent)")
	k := fs.Int("k", 0, "show at most K top records (default: all stored)")
	asJSON := fs.Bool("json", false, "print JSON: the query API's component answer {stats, top, random, quantiles} (docs/api.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usagef("--dataset is required")
	}
	if *k < 0 {
		return usagef("-k must not be negative")
	}
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	v, err := dataset.ReadComponent(ctx, st, *name, *location, *layer, *index)
	if err != nil {
		return err
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		return err
	}
	if *asJSON {
		c := query.NewComponent(v, query.TokenStrings(tok), *k)
		c.Dataset = *name
		return writeJSON(stdout, c)
	}
	top := v.Top
	if *k > 0 && len(top) > *k {
		top = top[:*k]
	}
	s := v.Stats
	fmt.Fprintf(stdout, "%s %s layer %d #%d: mean %.4g, variance %.4g, skewness %.4g, kurtosis %.4g, max %.4g, non-zero %.1f%%\n",
		*name, *location, *layer, *index, s.Mean, s.Variance, s.Skewness, s.Kurtosis, s.Max, 100*s.FracNonzero)
	for _, part := range []struct {
		name string
		recs []dataset.Record
	}{{"top", top}, {"random", v.Random}} {
		fmt.Fprintf(stdout, "\n%s records:\n", part.name)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tMAX\tDOC\tOFFSET\tTEXT ([[max token]])")
		for i, r := range part.recs {
			fmt.Fprintf(tw, "%d\t%.4g\t%d\t%d\t%s\n", i, r.MaxActivation, r.Source.Doc, r.Source.Offset, recordText(tok, r, v.Pairs))
		}
		tw.Flush()
	}
	return nil
}

// recordText decodes a record's tokens and marks the token where the
// activation peaks (for head records: the query token of the peak pair).
func recordText(tok *tokenizer.Tokenizer, r dataset.Record, pairs bool) string {
	peak := dataset.PeakPosition(&r, pairs)
	var b strings.Builder
	for i, id := range r.Tokens {
		s := tok.Decode([]int{int(id)})
		if i == peak {
			s = "[[" + s + "]]"
		}
		b.WriteString(s)
	}
	return printable(b.String())
}

// printable shows text from a corpus safely on a terminal: a newline as ⏎,
// a tab as a space, and every other control character (an escape sequence
// could rewrite the terminal) as its \x.. or \u.... escape.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString("⏎")
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r):
			b.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
