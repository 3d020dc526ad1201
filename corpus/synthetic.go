package corpus

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// generator makes document i of a synthetic corpus from (seed, i) alone, so
// any worker can produce any document range without the others.
type generator struct {
	docs     int64
	seed     uint64
	make     func(r *rand.Rand) string
	avgBytes int64
}

var generators = map[string]func(r *rand.Rand) string{
	"ioi":   ioiDoc,
	"facts": factsDoc,
}

func syntheticNames() []string {
	names := make([]string, 0, len(generators))
	for n := range generators {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func newGenerator(s Spec) (*generator, error) {
	mk, ok := generators[s.Name]
	if !ok {
		return nil, fmt.Errorf("corpus: unknown synthetic corpus %q (have %s)", s.Name, strings.Join(syntheticNames(), ", "))
	}
	g := &generator{docs: s.Docs, seed: s.Seed, make: mk}
	// The mean size of the first documents sets the block length.
	var total int64
	n := min(g.docs, 256)
	for i := range n {
		total += int64(len(g.doc(i)))
	}
	g.avgBytes = max(1, total/n)
	return g, nil
}

func (g *generator) doc(i int64) string {
	return g.make(rand.New(rand.NewPCG(g.seed, uint64(i))))
}

// planSynthetic cuts the documents into blocks of about BlockBytes.
func (c *Corpus) planSynthetic() []estPart {
	g := c.gen
	per := max(1, c.opts.BlockBytes/g.avgBytes)
	var parts []estPart
	for s := int64(0); s < g.docs; s += per {
		e := min(s+per, g.docs)
		parts = append(parts, estPart{
			Part:   Part{Start: s, End: e, Doc: s},
			tokens: estimateTokens(g.avgBytes*(e-s)) + (e - s),
		})
	}
	return parts
}

func (c *Corpus) readSynthetic(ctx context.Context, sh Shard, s sink) error {
	for _, p := range sh.Parts {
		for i := p.Start; i < p.End; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			text := c.gen.doc(i)
			if err := s.add(i, text, int64(len(text))); err != nil {
				return err
			}
		}
		if err := s.endBlock(); err != nil {
			return err
		}
	}
	return nil
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// ioiDoc is one indirect-object-identification sentence: two names, the
// subject repeated, ending with the indirect object, e.g. "When Mary and John
// went to the store, John gave a drink to Mary."
func ioiDoc(r *rand.Rand) string {
	io := pick(r, ioiNames)
	s := pick(r, ioiNames)
	for s == io {
		s = pick(r, ioiNames)
	}
	first, second := io, s // ABBA
	if r.IntN(2) == 0 {
		first, second = s, io // BABA
	}
	t := pick(r, ioiTemplates)
	out := strings.NewReplacer(
		"{1}", first, "{2}", second, "{S}", s,
		"{P}", pick(r, ioiPlaces), "{O}", pick(r, ioiObjects),
	).Replace(t)
	return out + " " + io + "."
}

// factsDoc lists 4 to 10 facts of one relation about distinct countries.
func factsDoc(r *rand.Rand) string {
	family := r.IntN(4)
	n := 4 + r.IntN(7)
	idx := r.Perm(len(countries))[:n]
	facts := make([]string, n)
	for k, i := range idx {
		c := countries[i]
		switch family {
		case 0:
			facts[k] = c.capital + ", " + c.name + "."
		case 1:
			facts[k] = c.city + ", " + c.name + "."
		case 2:
			facts[k] = "In " + c.name + ", people speak " + c.language + "."
		default:
			facts[k] = c.name + " uses the " + c.currency + "."
		}
	}
	return strings.Join(facts, " ")
}
