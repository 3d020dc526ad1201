package hub

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFetchPlainServer fetches from a server that knows nothing of the hub
// (no X-Linked headers, an ETag that is not a sha256), as the autoencoder
// cache does: the size it announces is checked, a cut connection resumes
// with a Range request, and refusals go through Refused.
func TestFetchPlainServer(t *testing.T) {
	data := bytes.Repeat([]byte("tdb fetch "), 50_000)
	var mu sync.Mutex
	var ranges []string
	cut := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.Error(w, "no such blob", http.StatusNotFound)
			return
		}
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		first := cut
		cut = false
		mu.Unlock()
		w.Header().Set("ETag", `"0x8DC0FFEE"`)
		if first { // send a third, then drop the connection
			w.Header().Set("Content-Length", "500000")
			w.Write(data[:len(data)/3])
			if hj, ok := w.(http.Hijacker); ok {
				conn, _, _ := hj.Hijack()
				conn.Close()
			}
			return
		}
		http.ServeContent(w, r, "blob", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()

	final := filepath.Join(t.TempDir(), "blob.bin")
	var progress bytes.Buffer
	opts := FetchOptions{Label: "test blob", Progress: &progress, MaxAttempts: 3, RetryDelay: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := Fetch(context.Background(), srv.URL+"/blob", final, opts); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(final)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetched %d bytes (%v), want the %d served", len(got), err, len(data))
	}
	if len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || ranges[1] == "bytes=0-" {
		t.Fatalf("Range headers %q: want a fresh request, then a resume", ranges)
	}
	if !strings.Contains(progress.String(), "blob.bin") || !strings.Contains(progress.String(), "100%") {
		t.Errorf("progress %q", progress.String())
	}

	errGone := errors.New("gone")
	opts.Refused = func(r *http.Response) error {
		if r.StatusCode == http.StatusNotFound {
			return errGone
		}
		return nil
	}
	missing := filepath.Join(t.TempDir(), "missing.bin")
	if err := Fetch(context.Background(), srv.URL+"/missing", missing, opts); !errors.Is(err, errGone) {
		t.Fatalf("404: %v, want Refused's error", err)
	}
	if _, err := os.Stat(missing + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused fetch left a part file: %v", err)
	}
	opts.Refused = nil
	if err := Fetch(context.Background(), srv.URL+"/missing", missing, opts); err == nil || !strings.Contains(err.Error(), "test blob") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404 without Refused: %v", err)
	}
}
