package corpus

import (
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		want Spec
	}{
		{"text:data/*.txt", Spec{Kind: Text, Path: "data/*.txt"}},
		{"data/*.txt", Spec{Kind: Text, Path: "data/*.txt"}},
		{"notes.md", Spec{Kind: Text, Path: "notes.md"}},
		{"jsonl:a.jsonl", Spec{Kind: JSONL, Path: "a.jsonl", Field: "text"}},
		{"jsonl:a/*.jsonl#body", Spec{Kind: JSONL, Path: "a/*.jsonl", Field: "body"}},
		{"web.jsonl#content", Spec{Kind: JSONL, Path: "web.jsonl", Field: "content"}},
		{"parquet:x.parquet#doc", Spec{Kind: Parquet, Path: "x.parquet", Field: "doc"}},
		{"x.parquet", Spec{Kind: Parquet, Path: "x.parquet", Field: "text"}},
		{"tokens:train.bin", Spec{Kind: Tokens, Path: "train.bin"}},
		{"val.bin", Spec{Kind: Tokens, Path: "val.bin"}},
		{"jsonl:azblob://acct/c/dir/*.jsonl#t", Spec{Kind: JSONL, Path: "azblob://acct/c/dir/*.jsonl", Field: "t"}},
		{"synthetic:ioi", Spec{Kind: Synthetic, Name: "ioi", Docs: DefaultSyntheticDocs}},
		{"synthetic:facts?docs=50&seed=7", Spec{Kind: Synthetic, Name: "facts", Docs: 50, Seed: 7}},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.in)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseSpec(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		// The canonical form parses back to the same spec.
		again, err := ParseSpec(got.String())
		if err != nil || again != got {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty"},
		{"text:", "missing path"},
		{"jsonl:", "missing path"},
		{"jsonl:a.jsonl#", "empty field"},
		{"parquet:#col", "missing path"},
		{"synthetic:nope", `unknown synthetic corpus "nope" (have facts, ioi)`},
		{"synthetic:ioi?docs=0", "docs"},
		{"synthetic:ioi?docs=x", "docs"},
		{"synthetic:ioi?seed=-1", "seed"},
		{"synthetic:ioi?size=3", `unknown option "size"`},
		{"foo:/x", `unknown corpus kind "foo"`},
		{"json:data.jsonl", `unknown corpus kind "json"`},
	}
	for _, tt := range tests {
		_, err := ParseSpec(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSpec(%q) error = %v, want it to mention %q", tt.in, err, tt.want)
		}
	}
}

func TestSpecRemote(t *testing.T) {
	for in, want := range map[string]bool{
		"jsonl:azblob://a/b/c.jsonl": true,
		"text:file:///tmp/x.txt":     false,
		"text:/tmp/x.txt":            false,
		"text:weird:name.txt":        false,
		"tokens:mem://t/x.bin":       true,
	} {
		s, err := ParseSpec(in)
		if err != nil {
			t.Fatal(err)
		}
		if s.Remote() != want {
			t.Errorf("%q Remote() = %v, want %v", in, s.Remote(), want)
		}
	}
}
