package corpus

import (
	"regexp"
	"strings"
	"testing"
)

func TestIOINamesAreSingleTokens(t *testing.T) {
	tok := gpt2(t)
	seen := map[string]bool{}
	for _, n := range ioiNames {
		if seen[n] {
			t.Errorf("name %q twice", n)
		}
		seen[n] = true
		if ids := tok.EncodeOrdinary(" " + n); len(ids) != 1 {
			t.Errorf("%q is %d tokens", " "+n, len(ids))
		}
	}
	for _, list := range [][]string{ioiPlaces, ioiObjects} {
		for _, w := range list {
			if ids := tok.EncodeOrdinary(" " + w); len(ids) != 1 {
				t.Errorf("%q is %d tokens", " "+w, len(ids))
			}
		}
	}
}

func TestIOIDocuments(t *testing.T) {
	c := open(t, "synthetic:ioi?docs=5000&seed=1", Options{})
	pair := regexp.MustCompile(`(\w+) and (\w+)`)
	unique := map[string]bool{}
	templates := map[string]bool{}
	for i := range int64(5000) {
		d := c.gen.doc(i)
		unique[d] = true
		m := pair.FindStringSubmatch(d)
		if m == nil || m[1] == m[2] {
			t.Fatalf("doc %d %q: no pair of distinct names", i, d)
		}
		// The answer is the name of the pair that is not repeated as the subject.
		body := d[:strings.LastIndexByte(d, ' ')]
		rest := body[strings.Index(body, m[0])+len(m[0]):]
		words := map[string]bool{}
		for _, w := range strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == ',' || r == '.' }) {
			words[w] = true
		}
		s, io := m[1], m[2]
		if words[io] {
			s, io = io, s
		}
		if !words[s] || words[io] || !strings.HasSuffix(d, " "+io+".") {
			t.Fatalf("doc %d %q: want the subject repeated and the indirect object %q at the end", i, d, io)
		}
		templates[pair.ReplaceAllString(d, "")[:12]] = true
	}
	if len(unique) < 4950 {
		t.Errorf("only %d distinct documents of 5000", len(unique))
	}
	if len(templates) < 10 {
		t.Errorf("only %d distinct openings", len(templates))
	}
	want := c.gen.doc(42)
	if again := open(t, "synthetic:ioi?docs=5000&seed=1", Options{}); again.gen.doc(42) != want {
		t.Error("same seed, different document")
	}
	if other := open(t, "synthetic:ioi?docs=5000&seed=2", Options{}); other.gen.doc(42) == want {
		t.Error("different seed, same document")
	}
}

func TestFactsDocuments(t *testing.T) {
	c := open(t, "synthetic:facts?docs=2000", Options{})
	capitals := map[string]string{}
	for _, k := range countries {
		capitals[k.capital] = k.name
	}
	sentence := regexp.MustCompile(`[^.]+\.`)
	kinds := map[string]int{}
	unique := map[string]bool{}
	for i := range int64(2000) {
		d := c.gen.doc(i)
		unique[d] = true
		facts := sentence.FindAllString(d, -1)
		if len(facts) < 4 || len(facts) > 10 || strings.Join(facts, "") != d {
			t.Fatalf("doc %d %q: %d facts", i, d, len(facts))
		}
		switch {
		case strings.HasPrefix(d, "In "):
			kinds["language"]++
		case strings.Contains(facts[0], " uses the "):
			kinds["currency"]++
		default:
			city, country, _ := strings.Cut(strings.TrimSuffix(strings.TrimSpace(facts[0]), "."), ", ")
			if name, ok := capitals[city]; ok {
				kinds["capital"]++
				if name != country {
					t.Fatalf("doc %d: %s is not the capital of %s", i, city, country)
				}
			} else {
				kinds["city"]++
			}
		}
	}
	if len(kinds) != 4 || len(unique) < 1990 {
		t.Errorf("kinds %v, %d distinct documents", kinds, len(unique))
	}
	if !strings.Contains(strings.Join(func() []string {
		var all []string
		for i := range int64(200) {
			all = append(all, c.gen.doc(i))
		}
		return all
	}(), " "), "Paris, France.") {
		t.Error(`no "Paris, France." in 200 documents`)
	}
}

func TestSyntheticWindows(t *testing.T) {
	c := open(t, "synthetic:facts?docs=300&seed=5", Options{})
	ws, st := collect(t, c, 2000, 64)
	if st.Docs != 300 || st.Windows != int64(len(ws)) || len(ws) < 100 {
		t.Fatalf("stats %+v, %d windows", st, len(ws))
	}
	checkSources(t, gpt2(t), ws, c.gen.doc)
}
