package hub

import (
	"errors"
	"fmt"
	"strings"
)

// defaultRevision is the branch pulled when a name has no "@revision".
const defaultRevision = "main"

// aliases maps the short GPT-2 names to their hub repositories; the hub moved
// the original un-namespaced repos under openai-community.
var aliases = map[string]string{
	"gpt2":        "openai-community/gpt2",
	"gpt2-medium": "openai-community/gpt2-medium",
	"gpt2-large":  "openai-community/gpt2-large",
	"gpt2-xl":     "openai-community/gpt2-xl",
}

// Ref names one revision of a hub repository.
type Ref struct {
	Repo     string // "owner/name"
	Revision string // branch, tag or commit; never empty
}

// String gives the canonical "owner/name@revision" form.
func (r Ref) String() string { return r.Repo + "@" + r.Revision }

// cacheKey is the folder, relative to the models cache, that holds the
// revision: slashes would otherwise create nested folders that collide
// (owner/name vs owner--name is not ambiguous on the hub: "--" is not allowed
// in repo names).
func (r Ref) cacheKey() string {
	return strings.ReplaceAll(r.Repo, "/", "--") + "/" + strings.ReplaceAll(r.Revision, "/", "--")
}

// ParseName turns a model name ("gpt2", "gpt2-xl", "owner/name",
// optionally followed by "@revision") into a hub reference. revision, when
// not empty, overrides the default branch; giving two different revisions is
// an error.
func ParseName(name, revision string) (Ref, error) {
	orig := name
	name = strings.TrimSpace(name)
	if name == "" {
		return Ref{}, errors.New("empty model name")
	}
	rev := ""
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		name, rev = name[:i], name[i+1:]
		if rev == "" {
			return Ref{}, fmt.Errorf("model name %q: empty revision after '@'", orig)
		}
	}
	if revision != "" {
		if rev != "" && rev != revision {
			return Ref{}, fmt.Errorf("model name %q names revision %q but %q was also asked for", orig, rev, revision)
		}
		rev = revision
	}
	if rev == "" {
		rev = defaultRevision
	}
	if err := checkRevision(rev); err != nil {
		return Ref{}, fmt.Errorf("model name %q: %w", orig, err)
	}
	repo, ok := aliases[name]
	if !ok {
		owner, repoName, found := strings.Cut(name, "/")
		if !found {
			return Ref{}, fmt.Errorf("unknown model %q: use gpt2, gpt2-medium, gpt2-large, gpt2-xl, a hub repo id (owner/name) or a local folder", orig)
		}
		if err := checkRepoPart(owner); err != nil {
			return Ref{}, fmt.Errorf("model name %q: owner: %w", orig, err)
		}
		if err := checkRepoPart(repoName); err != nil {
			return Ref{}, fmt.Errorf("model name %q: repo: %w", orig, err)
		}
		repo = name
	}
	return Ref{Repo: repo, Revision: rev}, nil
}

// checkRepoPart applies the hub's rules for owner and repo names: letters,
// digits, '-', '_', '.', at most 96 characters, no "--" or "..", not starting
// or ending with '-' or '.'. Being strict here also keeps names from
// escaping the cache folder.
func checkRepoPart(s string) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > 96:
		return fmt.Errorf("%q is longer than 96 characters", s)
	case strings.Contains(s, "--") || strings.Contains(s, ".."):
		return fmt.Errorf("%q may not contain \"--\" or \"..\"", s)
	case strings.ContainsAny(s[:1], "-.") || strings.ContainsAny(s[len(s)-1:], "-."):
		return fmt.Errorf("%q may not start or end with '-' or '.'", s)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("%q contains %q (allowed: letters, digits, '-', '_', '.')", s, c)
		}
	}
	return nil
}

// checkRevision accepts git ref names such as "main", "v1.0", a commit hash
// or "refs/pr/3", and refuses anything that could escape the cache folder.
func checkRevision(rev string) error {
	if len(rev) > 256 {
		return fmt.Errorf("revision %q is longer than 256 characters", rev)
	}
	for _, part := range strings.Split(rev, "/") {
		if part == "" || part[0] == '.' || strings.Contains(part, "--") {
			return fmt.Errorf("bad revision %q", rev)
		}
	}
	for _, c := range rev {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./+", c)) {
			return fmt.Errorf("bad revision %q: character %q", rev, c)
		}
	}
	return nil
}
