package jobs

import (
	"errors"
	"fmt"
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
