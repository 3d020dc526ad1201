package explain

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Pattern is what a builtin explanation says: the current token is one of
// Tokens (or, with Class set, any token of that lexical class), optionally
// right after one of After.
type Pattern struct {
	Tokens []int32
	Class  tokenClass
	After  []int32
}

// empty reports a pattern that matches nothing.
func (p Pattern) empty() bool { return len(p.Tokens) == 0 && p.Class == classNone }

// Phrase writes the pattern in the builtin grammar:
//
//	the token " France"
//	" France" after " Paris"            (" France" after " Paris" or " Lyon")
//	one of " Mary", " John", " Tom"     (optionally: ... after " and")
//	a capitalized word | a number | punctuation | a line break
//	no clear pattern
func (p Pattern) Phrase(v *Vocab) string {
	if p.empty() {
		return noPattern
	}
	var b strings.Builder
	switch {
	case p.Class != classNone:
		b.WriteString(classNames[p.Class])
	case len(p.Tokens) == 1 && len(p.After) == 0:
		b.WriteString("the token " + quoteTok(v, p.Tokens[0]))
	case len(p.Tokens) == 1:
		b.WriteString(quoteTok(v, p.Tokens[0]))
	default:
		b.WriteString("one of ")
		for i, t := range p.Tokens {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteTok(v, t))
		}
	}
	if len(p.After) > 0 {
		b.WriteString(" after ")
		for i, t := range p.After {
			if i > 0 {
				b.WriteString(" or ")
			}
			b.WriteString(quoteTok(v, t))
		}
	}
	return b.String()
}

const noPattern = "no clear pattern"

func quoteTok(v *Vocab, id int32) string { return strconv.Quote(v.Text(id)) }

var quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// ParsePhrase reads an explanation written in the builtin grammar back into
// a pattern. ok is false for any other text.
func ParsePhrase(v *Vocab, text string) (p Pattern, ok bool) {
	text = strings.TrimSpace(text)
	if text == noPattern {
		return Pattern{}, true
	}
	for c := classCapitalized; c < nClasses; c++ {
		name := classNames[c]
		if text == name {
			return Pattern{Class: c}, true
		}
		if rest, found := strings.CutPrefix(text, name+" after "); found {
			after, ok := quotedList(v, rest, " or ")
			return Pattern{Class: c, After: after}, ok
		}
	}
	head, tail := text, ""
	if i := afterIndex(text); i >= 0 {
		head, tail = text[:i], text[i+len(" after "):]
	}
	var sep string
	switch {
	case strings.HasPrefix(head, "the token "):
		head, sep = strings.TrimPrefix(head, "the token "), ""
	case strings.HasPrefix(head, "one of "):
		head, sep = strings.TrimPrefix(head, "one of "), ", "
	case strings.HasPrefix(head, `"`) && tail != "":
		sep = ""
	default:
		return Pattern{}, false
	}
	toks, ok := quotedList(v, head, sep)
	if !ok || len(toks) == 0 {
		return Pattern{}, false
	}
	p.Tokens = toks
	if tail != "" {
		if p.After, ok = quotedList(v, tail, " or "); !ok {
			return Pattern{}, false
		}
	}
	return p, true
}

// afterIndex finds the " after " that follows the last quoted token of the
// head (quoted strings may themselves contain " after ").
func afterIndex(text string) int {
	for _, m := range quotedRE.FindAllStringIndex(text, -1) {
		if strings.HasPrefix(text[m[1]:], " after ") {
			return m[1]
		}
	}
	return -1
}

// quotedList parses `"a"SEP"b"SEP"c"` into token ids (sep "" means one item).
func quotedList(v *Vocab, s, sep string) ([]int32, bool) {
	var out []int32
	rest := s
	for {
		m := quotedRE.FindStringIndex(rest)
		if m == nil || m[0] != 0 {
			return nil, false
		}
		str, err := strconv.Unquote(rest[:m[1]])
		if err != nil {
			return nil, false
		}
		ids := v.byText[str]
		if len(ids) == 0 {
			return nil, false
		}
		out = append(out, ids...)
		rest = rest[m[1]:]
		if rest == "" {
			return out, true
		}
		if sep == "" || !strings.HasPrefix(rest, sep) {
			return nil, false
		}
		rest = rest[len(sep):]
	}
}

// freeTextPattern is the simulator's reading of an explanation not in the
// builtin grammar (an LLM's or an imported one): the tokens it quotes, or
// else the tokens that spell its content words, in any case and spacing.
func freeTextPattern(v *Vocab, text string) Pattern {
	var ids []int32
	for _, q := range anyQuoteRE.FindAllStringSubmatch(text, -1) {
		s := q[1] + q[2] + q[3] + q[4]
		if exact := v.byText[s]; len(exact) > 0 {
			ids = append(ids, exact...)
		}
		ids = append(ids, v.byWord[strings.ToLower(strings.TrimSpace(s))]...)
	}
	if len(ids) == 0 {
		for _, w := range wordRE.FindAllString(strings.ToLower(text), -1) {
			if len(w) < 3 || stopwords[w] {
				continue
			}
			ids = append(ids, v.byWord[w]...)
		}
	}
	slices.Sort(ids)
	return Pattern{Tokens: slices.Compact(ids)}
}

var (
	anyQuoteRE = regexp.MustCompile(`"([^"]+)"|“([^”]+)”|'([^']+)'|‘([^’]+)’`)
	wordRE     = regexp.MustCompile(`[\p{L}\p{N}]+`)
	stopwords  = map[string]bool{}
)

func init() {
	for _, w := range strings.Fields(`the and for with that this from into onto word words token tokens
		phrase phrases mention mentions mentioned related relating refer refers referring context contexts
		like such are was were its their text texts especially particularly often usually typically
		about after before when where which while other others various different specific certain
		any all some one ones not has have had being used use uses can could would should neuron
		activates activating activation fires firing appears appear appearing part parts end ends`) {
		stopwords[w] = true
	}
}

// matcher answers whether position i of a record fits a pattern.
type matcher struct {
	p      Pattern
	v      *Vocab
	tokens map[int32]bool
	after  map[int32]bool
}

func newMatcher(v *Vocab, p Pattern) *matcher {
	m := &matcher{p: p, v: v}
	if len(p.Tokens) > 0 {
		m.tokens = make(map[int32]bool, len(p.Tokens))
		for _, t := range p.Tokens {
			m.tokens[t] = true
		}
	}
	if len(p.After) > 0 {
		m.after = make(map[int32]bool, len(p.After))
		for _, t := range p.After {
			m.after[t] = true
		}
	}
	return m
}

func (m *matcher) match(toks []int32, i int) bool {
	t := toks[i]
	if m.p.Class != classNone {
		if m.v.classOf(t) != m.p.Class {
			return false
		}
	} else if !m.tokens[t] {
		return false
	}
	if m.after != nil {
		return i > 0 && m.after[toks[i-1]]
	}
	return true
}
