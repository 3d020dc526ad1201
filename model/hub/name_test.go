package hub

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		name, revision string
		want           Ref
		wantErr        string
	}{
		{name: "gpt2", want: Ref{"openai-community/gpt2", "main"}},
		{name: "gpt2-medium", want: Ref{"openai-community/gpt2-medium", "main"}},
		{name: "gpt2-large", want: Ref{"openai-community/gpt2-large", "main"}},
		{name: "gpt2-xl", want: Ref{"openai-community/gpt2-xl", "main"}},
		{name: " gpt2 ", want: Ref{"openai-community/gpt2", "main"}},
		{name: "gpt2@v1.0", want: Ref{"openai-community/gpt2", "v1.0"}},
		{name: "gpt2", revision: "607a30d783dfa663caf39e06633721c8d4cfcd7e", want: Ref{"openai-community/gpt2", "607a30d783dfa663caf39e06633721c8d4cfcd7e"}},
		{name: "sshleifer/tiny-gpt2", want: Ref{"sshleifer/tiny-gpt2", "main"}},
		{name: "Org_1/My.Model-2@refs/pr/12", want: Ref{"Org_1/My.Model-2", "refs/pr/12"}},
		{name: "gpt2@dev", revision: "dev", want: Ref{"openai-community/gpt2", "dev"}},
		{name: "", wantErr: "empty model name"},
		{name: "gpt3", wantErr: "unknown model"},
		{name: "GPT2", wantErr: "unknown model"},
		{name: "gpt2@", wantErr: "empty revision"},
		{name: "gpt2@dev", revision: "main", wantErr: "was also asked for"},
		{name: "a/b/c", wantErr: "repo"},
		{name: "/b", wantErr: "owner"},
		{name: "a/", wantErr: "repo"},
		{name: "a/..", wantErr: "repo"},
		{name: "a/-x", wantErr: "repo"},
		{name: "a/x.", wantErr: "repo"},
		{name: "a/x--y", wantErr: "repo"},
		{name: "a b/c", wantErr: "owner"},
		{name: "a/" + strings.Repeat("x", 97), wantErr: "longer than 96"},
		{name: "gpt2@../../etc", wantErr: "bad revision"},
		{name: "gpt2@refs//x", wantErr: "bad revision"},
		{name: "gpt2@a--b", wantErr: "bad revision"},
		{name: "gpt2@a b", wantErr: "bad revision"},
		{name: "gpt2@.hidden", wantErr: "bad revision"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"@"+tt.revision, func(t *testing.T) {
			got, err := ParseName(tt.name, tt.revision)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseName(%q, %q) = %v, %v; want error containing %q", tt.name, tt.revision, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseName(%q, %q) = %v, %v; want %v", tt.name, tt.revision, got, err, tt.want)
			}
		})
	}
}

// FuzzParseName checks that no accepted name can steer the cache folder
// outside the cache or collide two repos into one folder.
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"gpt2", "gpt2-xl@v2", "a/b", "a/b@refs/pr/1", "../x", "a/b@../../x", "a/b/c", "x@y@z", "a\\b/c"} {
		f.Add(s, "")
	}
	f.Add("a/b", "dev")
	f.Fuzz(func(t *testing.T, name, revision string) {
		ref, err := ParseName(name, revision)
		if err != nil {
			return
		}
		if strings.Count(ref.Repo, "/") != 1 || ref.Revision == "" {
			t.Fatalf("ParseName(%q, %q) = %+v: malformed", name, revision, ref)
		}
		key := ref.cacheKey()
		if strings.Count(key, "/") != 1 {
			t.Fatalf("cache key %q of %+v is not two folders deep", key, ref)
		}
		root := filepath.Join("cache", "models")
		dir := modelDir("cache", ref)
		if rel, err := filepath.Rel(root, dir); err != nil || strings.HasPrefix(rel, "..") || strings.Count(filepath.ToSlash(rel), "/") != 1 {
			t.Fatalf("%+v maps to %s, outside %s", ref, dir, root)
		}
		// The folder name maps back to the same repo and revision.
		back := strings.SplitN(key, "/", 2)
		if strings.Replace(back[0], "--", "/", 1) != ref.Repo || strings.ReplaceAll(back[1], "--", "/") != ref.Revision {
			t.Fatalf("cache key %q does not map back to %+v", key, ref)
		}
	})
}

// Names that can never resolve are marked ErrBadName (the CLI's exit code
// 2), without any network request.
func TestResolveMarksBadNames(t *testing.T) {
	empty := t.TempDir() // a folder without config.json
	for _, name := range []string{"", "./no-such-folder", empty, "no-slash-name", "owner/--bad", "a/b@"} {
		_, err := Resolve(t.Context(), name, nil)
		if !errors.Is(err, ErrBadName) {
			t.Errorf("%q: %v, want ErrBadName", name, err)
		}
	}
}
