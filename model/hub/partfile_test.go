package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPartFileResumeVerifyCommit(t *testing.T) {
	final := filepath.Join(t.TempDir(), "blob.bin")
	data := []byte("0123456789abcdefghij")
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	// A first attempt writes half, then stops.
	p, err := openPart(final)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(data[:8]); err != nil {
		t.Fatal(err)
	}
	p.close()

	// The next one finds those bytes (hashed) and appends the rest.
	p, err = openPart(final)
	if err != nil {
		t.Fatal(err)
	}
	if p.size != 8 {
		t.Fatalf("resumed part holds %d bytes, want 8", p.size)
	}
	if _, err := p.Write(data[8:]); err != nil {
		t.Fatal(err)
	}
	if why := p.verify(int64(len(data)), want); why != "" {
		t.Fatalf("complete part fails verification: %s", why)
	}
	if why := p.verify(int64(len(data))+1, ""); !strings.Contains(why, "bytes instead of") {
		t.Fatalf("wrong size accepted: %q", why)
	}
	if why := p.verify(-1, strings.Repeat("0", 64)); !strings.Contains(why, "sha256 is "+want) {
		t.Fatalf("wrong sha256 accepted: %q", why)
	}
	if err := p.commit(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(final); err != nil || string(got) != string(data) {
		t.Fatalf("final file %q (%v)", got, err)
	}
	if _, err := os.Stat(final + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("part left behind: %v", err)
	}
}

func TestPartFileCheckAndRestart(t *testing.T) {
	final := filepath.Join(t.TempDir(), "config.json")
	p, err := openPart(final)
	if err != nil {
		t.Fatal(err)
	}
	p.Write([]byte("garbage"))
	if err := p.restart(); err != nil || p.size != 0 {
		t.Fatalf("restart: %v, size %d", err, p.size)
	}
	p.Write([]byte("<html>"))
	refuse := errors.New("not JSON")
	if err := p.commit(func(string) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("commit with a failing check: %v", err)
	}
	for _, name := range []string{final, final + ".part"} {
		if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a refused check", name)
		}
	}
}
