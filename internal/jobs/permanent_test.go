package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestPermanent(t *testing.T) {
	base := errors.New("line 3: not a string")
	p := Permanent(base)
	if !IsPermanent(p) || !IsPermanent(fmt.Errorf("shard 2: %w", p)) || !errors.Is(p, base) || p.Error() != base.Error() {
		t.Fatalf("Permanent(%v) = %v", base, p)
	}
	if IsPermanent(base) || Permanent(nil) != nil || Permanent(p) != p {
		t.Fatal("unmarked errors must not be permanent; nil stays nil; no double wrapping")
	}
}

// Replacing a model's weights changes the stamp; names that are not local
// paths stamp nothing.
func TestLocalFilesStamp(t *testing.T) {
	dir := t.TempDir()
	w := filepath.Join(dir, "model.safetensors")
	if err := os.WriteFile(w, []byte("weights v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	s1 := LocalFilesStamp(dir, "random:tiny")
	if s1 == "" || s1 != LocalFilesStamp(dir) {
		t.Fatalf("stamp %q unstable or empty", s1)
	}
	if err := os.WriteFile(w, []byte("weights v2!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s2 := LocalFilesStamp(dir); s2 == s1 {
		t.Fatal("new weights, same stamp")
	}
	if LocalFilesStamp("random:tiny", "gpt2", "az://x/y.pt") != "" {
		t.Fatal("non-local names stamped")
	}
}
