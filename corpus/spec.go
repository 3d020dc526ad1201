package corpus

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Kind is the format of a corpus.
type Kind string

// The corpus kinds.
const (
	Text      Kind = "text"
	JSONL     Kind = "jsonl"
	Parquet   Kind = "parquet"
	Tokens    Kind = "tokens"
	Synthetic Kind = "synthetic"
)

// DefaultSyntheticDocs is the document count of a synthetic corpus without docs=N.
const DefaultSyntheticDocs = 10000

// Spec is a parsed corpus spec (see the package doc for the syntax).
type Spec struct {
	Kind Kind
	// Path is a local path or glob, or a URL (scheme://...) with an optional glob.
	Path string
	// Field is the JSONL field or Parquet column holding the text.
	Field string
	// Name, Docs and Seed describe a synthetic corpus.
	Name string
	Docs int64
	Seed uint64
}

// ParseSpec parses a --corpus value.
func ParseSpec(s string) (Spec, error) {
	if strings.TrimSpace(s) == "" {
		return Spec{}, fmt.Errorf("corpus spec is empty")
	}
	kind, rest, ok := strings.Cut(s, ":")
	switch Kind(kind) {
	case Text, Tokens:
		if !ok || rest == "" {
			return Spec{}, fmt.Errorf("corpus spec %q: missing path after %q", s, kind+":")
		}
		return Spec{Kind: Kind(kind), Path: rest}, nil
	case JSONL, Parquet:
		if !ok || rest == "" {
			return Spec{}, fmt.Errorf("corpus spec %q: missing path after %q", s, kind+":")
		}
		return withField(s, Kind(kind), rest)
	case Synthetic:
		return parseSynthetic(s, rest)
	}
	if ok && isScheme(kind) && !strings.HasPrefix(rest, "//") {
		// KIND:... with a kind we do not know (a URL has "//" after its scheme).
		return Spec{}, fmt.Errorf("corpus spec %q: unknown corpus kind %q (want text:, jsonl:, parquet:, tokens:, synthetic: or a path)", s, kind)
	}
	// A plain path: the extension picks the kind.
	p := s
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		p = s[:i]
	}
	switch strings.ToLower(path.Ext(p)) {
	case ".jsonl":
		return withField(s, JSONL, s)
	case ".parquet":
		return withField(s, Parquet, s)
	case ".bin":
		return Spec{Kind: Tokens, Path: s}, nil
	}
	return Spec{Kind: Text, Path: s}, nil
}

func withField(spec string, k Kind, rest string) (Spec, error) {
	p, field := rest, "text"
	if i := strings.LastIndexByte(rest, '#'); i >= 0 {
		p, field = rest[:i], rest[i+1:]
		if field == "" {
			return Spec{}, fmt.Errorf("corpus spec %q: empty field name after '#'", spec)
		}
	}
	if p == "" {
		return Spec{}, fmt.Errorf("corpus spec %q: missing path", spec)
	}
	return Spec{Kind: k, Path: p, Field: field}, nil
}

func parseSynthetic(spec, rest string) (Spec, error) {
	name, query, _ := strings.Cut(rest, "?")
	if !slices.Contains(syntheticNames(), name) {
		return Spec{}, fmt.Errorf("corpus spec %q: unknown synthetic corpus %q (have %s)", spec, name, strings.Join(syntheticNames(), ", "))
	}
	out := Spec{Kind: Synthetic, Name: name, Docs: DefaultSyntheticDocs}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return Spec{}, fmt.Errorf("corpus spec %q: options: %w", spec, err)
	}
	for key, vs := range vals {
		v := vs[len(vs)-1]
		switch key {
		case "docs":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return Spec{}, fmt.Errorf("corpus spec %q: docs=%q: want a positive integer", spec, v)
			}
			out.Docs = n
		case "seed":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return Spec{}, fmt.Errorf("corpus spec %q: seed=%q: want a non-negative integer", spec, v)
			}
			out.Seed = n
		default:
			return Spec{}, fmt.Errorf("corpus spec %q: unknown option %q (have docs, seed)", spec, key)
		}
	}
	return out, nil
}

// String is the canonical form of the spec, recorded in manifests.
func (s Spec) String() string {
	switch s.Kind {
	case JSONL, Parquet:
		return string(s.Kind) + ":" + s.Path + "#" + s.Field
	case Synthetic:
		return fmt.Sprintf("synthetic:%s?docs=%d&seed=%d", s.Name, s.Docs, s.Seed)
	}
	return string(s.Kind) + ":" + s.Path
}

// Remote reports whether the path is a URL to be resolved by an Opener
// (file:// URLs are local).
func (s Spec) Remote() bool {
	scheme, _, ok := strings.Cut(s.Path, "://")
	return ok && scheme != "file" && isScheme(scheme)
}

func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}
