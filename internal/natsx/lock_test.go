//go:build unix

package natsx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two embedded servers never share a JetStream folder: the second start
// says who holds it (PID) and how to reach it; once the first stops the
// folder is free again.
func TestEmbeddedFolderLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	first, err := StartEmbedded(EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = StartEmbedded(EmbeddedOptions{Dir: dir})
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || le.URL != first.URL() {
		t.Fatalf("second start: %v (%+v); want a LockedError with PID %d and URL %s", err, le, os.Getpid(), first.URL())
	}
	for _, w := range []string{"PID", dir, "tdb worker --nats " + first.URL()} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("message %q lacks %q", err, w)
		}
	}
	first.Shutdown()
	again, err := StartEmbedded(EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	again.Shutdown()
}
