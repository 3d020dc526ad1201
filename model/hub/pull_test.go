package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

const weightBytes = 4 << 20

// testOptions points Pull at the fake hub and a fresh cache, with fast retries.
func testOptions(t *testing.T, h *fakeHub) PullOptions {
	t.Helper()
	return PullOptions{
		Endpoint:    h.hub.URL,
		CacheDir:    t.TempDir(),
		Token:       "hf_test_token",
		MaxAttempts: 1,
		RetryDelay:  time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// checkPulled asserts dir holds exactly files and no leftover .part file.
func checkPulled(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("read pulled %s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: pulled %d bytes differ from the hub's %d", name, len(got), len(want))
		}
		if _, err := os.Stat(filepath.Join(dir, name+".part")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s.part left behind (stat err %v)", name, err)
		}
	}
}

func TestPullSuccess(t *testing.T) {
	h, files := newFakeHubWith(t, "openai-community/gpt2", 1, weightBytes)
	opts := testOptions(t, h)
	var progress bytes.Buffer
	opts.Progress = &progress

	dir, err := Pull(context.Background(), "gpt2", opts)
	if err != nil {
		t.Fatal(err)
	}
	wantDir := filepath.Join(opts.CacheDir, "models", "openai-community--gpt2", "main")
	if dir != wantDir {
		t.Fatalf("dir = %s, want %s", dir, wantDir)
	}
	checkPulled(t, dir, files)

	// The weights went hub (302) -> CDN; the token reached the hub but not the CDN host.
	var sawHub, sawCDN bool
	for _, r := range h.log() {
		switch {
		case r.server == "hub" && strings.HasSuffix(r.path, "/resolve/main/"+weightsFile):
			sawHub = true
			if r.auth != "Bearer hf_test_token" {
				t.Errorf("hub request Authorization = %q", r.auth)
			}
		case r.server == "cdn":
			sawCDN = true
			if r.auth != "" {
				t.Errorf("token leaked to the CDN host: %q", r.auth)
			}
			if r.rng != "" {
				t.Errorf("fresh download sent Range %q", r.rng)
			}
		}
	}
	if !sawHub || !sawCDN {
		t.Fatalf("expected a hub request and a CDN request, saw %+v", h.log())
	}
	out := progress.String()
	for _, want := range []string{"config.json", "model.safetensors", "100%", "MB/s", "4.2/4.2 MB", "\r"} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q:\n%q", want, out)
		}
	}
}

func TestPullRevision(t *testing.T) {
	h := newFakeHub(t)
	files := testCheckpoint(t, 2, 1<<16)
	h.add("someone/tiny-gpt2", "refs/pr/3", files)
	opts := testOptions(t, h)
	dir, err := Pull(context.Background(), "someone/tiny-gpt2@refs/pr/3", opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(opts.CacheDir, "models", "someone--tiny-gpt2", "refs--pr--3"); dir != want {
		t.Fatalf("dir = %s, want %s", dir, want)
	}
	checkPulled(t, dir, files)
	// The revision travels as one escaped path segment, as the hub expects.
	if n := h.count("hub", "/resolve/refs/pr/3/"+configFile); n != 1 {
		t.Fatalf("config requests for refs/pr/3: %d; log %+v", n, h.log())
	}
}

func TestPullResumesAfterInterruption(t *testing.T) {
	h, files := newFakeHubWith(t, "openai-community/gpt2-medium", 3, weightBytes)
	half := int64(len(files[weightsFile]) / 2)
	h.cutOnce = half
	opts := testOptions(t, h)

	_, err := Pull(context.Background(), "gpt2-medium", opts)
	if err == nil {
		t.Fatal("first pull succeeded although the server dropped the connection")
	}
	if errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "run the same command again to resume") {
		t.Fatalf("first pull error = %v", err)
	}
	dir := modelDir(opts.CacheDir, Ref{"openai-community/gpt2-medium", "main"})
	fi, err := os.Stat(filepath.Join(dir, weightsFile+".part"))
	if err != nil {
		t.Fatalf("no .part after the interruption: %v", err)
	}
	if fi.Size() != half {
		t.Fatalf(".part holds %d bytes, the server sent %d", fi.Size(), half)
	}
	if _, err := os.Stat(filepath.Join(dir, weightsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("incomplete weights already under the final name (err %v)", err)
	}

	if _, err := Pull(context.Background(), "gpt2-medium", opts); err != nil {
		t.Fatal(err)
	}
	checkPulled(t, dir, files)
	log := h.log()
	last := log[len(log)-1]
	if last.server != "cdn" || last.rng != fmt.Sprintf("bytes=%d-", half) {
		t.Fatalf("second pull's weights request = %+v, want a Range request from byte %d", last, half)
	}
	if n := h.count("hub", configFile); n != 1 {
		t.Fatalf("config.json fetched %d times, want once (it completed in the first pull)", n)
	}
}

func TestPullRetriesWithinOneCall(t *testing.T) {
	h, files := newFakeHubWith(t, "openai-community/gpt2", 4, weightBytes)
	h.failOnce = 1
	h.cutOnce = 1 << 20
	opts := testOptions(t, h)
	opts.MaxAttempts = 3

	dir, err := Pull(context.Background(), "gpt2", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, dir, files)
	var ranges []string
	for _, r := range h.log() {
		if r.server == "cdn" {
			ranges = append(ranges, r.rng)
		}
	}
	// 503, then cut after 1 MiB, then the rest by Range.
	want := []string{"", "", fmt.Sprintf("bytes=%d-", 1<<20)}
	if fmt.Sprint(ranges) != fmt.Sprint(want) {
		t.Fatalf("CDN Range headers = %q, want %q", ranges, want)
	}
}

func TestPullGivesUpAfterMaxAttempts(t *testing.T) {
	h := newFakeHub(t)
	h.add("openai-community/gpt2", "main", testCheckpoint(t, 5, 1<<16))
	h.failOnce = 10
	opts := testOptions(t, h)
	opts.MaxAttempts = 3
	_, err := Pull(context.Background(), "gpt2", opts)
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v, want a failure after 3 attempts naming the 503", err)
	}
	if n := h.count("cdn", ""); n != 3 {
		t.Fatalf("%d CDN requests, want 3", n)
	}
}

func TestPullStartsOverWhenRangeIgnored(t *testing.T) {
	h, files := newFakeHubWith(t, "openai-community/gpt2", 6, weightBytes)
	h.ignoreRange = true
	opts := testOptions(t, h)
	dir := modelDir(opts.CacheDir, Ref{"openai-community/gpt2", "main"})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A leftover part whose bytes are wrong: a 200 answer must replace it, not append.
	if err := os.WriteFile(filepath.Join(dir, weightsFile+".part"), bytes.Repeat([]byte{0xAA}, 12345), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(context.Background(), "gpt2", opts); err != nil {
		t.Fatal(err)
	}
	checkPulled(t, dir, files)
	if n := h.count("cdn", ""); n != 1 {
		t.Fatalf("%d CDN requests, want 1", n)
	}
}

func TestPullFinishesCompletePart(t *testing.T) {
	// A run that stopped after the last byte but before the rename: the
	// server answers 416 to the Range request and the part is verified as is.
	h, files := newFakeHubWith(t, "openai-community/gpt2", 7, 1<<16)
	opts := testOptions(t, h)
	dir := modelDir(opts.CacheDir, Ref{"openai-community/gpt2", "main"})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, weightsFile+".part"), files[weightsFile], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(context.Background(), "gpt2", opts); err != nil {
		t.Fatal(err)
	}
	checkPulled(t, dir, files)
}

func TestPullRefusals(t *testing.T) {
	tests := []struct {
		name      string
		model     string
		status    int    // forced hub status; 0 = serve normally
		code      string // X-Error-Code with it
		kind      error
		wantMsg   string // %s is the endpoint
		emptyRepo bool   // the repo exists but lacks the weights
	}{
		{name: "404", model: "nobody/nothing", status: 404, kind: ErrNotFound,
			wantMsg: `model "nobody/nothing" not found on %s (is the name right? set TDB_HF_ENDPOINT for a mirror)`},
		{name: "unknown repo answered 401 like the hub", model: "nobody/nothing", kind: ErrNotFound,
			wantMsg: `model "nobody/nothing" not found on %s (is the name right? if it is private, set HF_TOKEN`},
		{name: "missing file", model: "someone/config-only", emptyRepo: true, kind: ErrNotFound,
			wantMsg: `model "someone/config-only" on %s has no model.safetensors`},
		{name: "gated", model: "meta/gated", status: 403, kind: ErrAccess,
			wantMsg: `model "meta/gated" on %s is gated or private (HTTP 403)`},
		{name: "private", model: "meta/private", status: 401, kind: ErrAccess,
			wantMsg: `model "meta/private" on %s is gated or private (HTTP 401)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHub(t)
			h.status, h.errorCode = tt.status, tt.code
			if tt.emptyRepo {
				h.add(tt.model, "main", map[string][]byte{configFile: testCheckpoint(t, 8, 64)[configFile]})
			}
			opts := testOptions(t, h)
			opts.MaxAttempts = 5
			dir, err := Pull(context.Background(), tt.model, opts)
			if err == nil {
				t.Fatalf("pull succeeded into %s", dir)
			}
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.kind)
			}
			if want := fmt.Sprintf(tt.wantMsg, h.hub.URL); !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %q\nwant prefix %q", err, want)
			}
			if n := len(h.log()); n > 2 {
				t.Fatalf("a refusal was retried: %d requests", n)
			}
		})
	}
}

func TestPullCorrupted(t *testing.T) {
	tests := []struct {
		name  string
		setup func(h *fakeHub, files map[string][]byte)
		want  string
	}{
		{"sha256 mismatch", func(h *fakeHub, _ map[string][]byte) { h.corrupt = true }, "sha256 is "},
		{"size mismatch", func(h *fakeHub, _ map[string][]byte) { h.lieSize = 100 }, "the hub announced"},
		{"html instead of config", func(h *fakeHub, files map[string][]byte) {
			files[configFile] = []byte("<!doctype html><html><body>mirror error</body></html>")
		}, "config.json of openai-community/gpt2@main from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHub(t)
			files := testCheckpoint(t, 9, weightBytes)
			tt.setup(h, files)
			h.add("openai-community/gpt2", "main", files)
			opts := testOptions(t, h)
			_, err := Pull(context.Background(), "gpt2", opts)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "corrupted") || !strings.Contains(err.Error(), "deleted it") {
				t.Fatalf("err = %q, want it to say %q, corrupted and deleted", err, tt.want)
			}
			dir := modelDir(opts.CacheDir, Ref{"openai-community/gpt2", "main"})
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != configFile || tt.name == "html instead of config" {
					t.Errorf("%s left in the cache after a corrupted download", e.Name())
				}
			}
		})
	}
}

func TestPullCancel(t *testing.T) {
	h, _ := newFakeHubWith(t, "openai-community/gpt2", 10, weightBytes)
	h.hangOnce = 1 << 20
	h.hangStarted = make(chan struct{})
	opts := testOptions(t, h)
	opts.MaxAttempts = 5

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-h.hangStarted
		time.Sleep(50 * time.Millisecond) // let the client write what it got
		cancel()
	}()
	start := time.Now()
	_, err := Pull(ctx, "gpt2", opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancellation took %v", d)
	}
	if n := h.count("cdn", ""); n != 1 {
		t.Fatalf("a cancelled download was retried: %d CDN requests", n)
	}
	dir := modelDir(opts.CacheDir, Ref{"openai-community/gpt2", "main"})
	fi, err := os.Stat(filepath.Join(dir, weightsFile+".part"))
	if err != nil || fi.Size() != 1<<20 {
		t.Fatalf("the .part should keep the 1 MiB received for a later resume: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, weightsFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("cancelled download has a final file")
	}
}

func TestPullStallTimeout(t *testing.T) {
	h, files := newFakeHubWith(t, "openai-community/gpt2", 11, weightBytes)
	h.hangOnce = 1 << 20
	opts := testOptions(t, h)
	opts.MaxAttempts = 2
	opts.StallTimeout = 300 * time.Millisecond
	dir, err := Pull(context.Background(), "gpt2", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, dir, files)
	log := h.log()
	if last := log[len(log)-1]; last.rng != fmt.Sprintf("bytes=%d-", 1<<20) {
		t.Fatalf("after the stall the download did not resume: %+v", last)
	}
}

func TestPullCacheHit(t *testing.T) {
	h, _ := newFakeHubWith(t, "openai-community/gpt2-xl", 12, weightBytes)
	opts := testOptions(t, h)
	dir1, err := Pull(context.Background(), "gpt2-xl", opts)
	if err != nil {
		t.Fatal(err)
	}
	before := len(h.log())
	var progress bytes.Buffer
	opts.Progress = &progress
	dir2, err := Pull(context.Background(), "gpt2-xl@main", opts)
	if err != nil {
		t.Fatal(err)
	}
	if dir1 != dir2 {
		t.Fatalf("second pull returned %s, first %s", dir2, dir1)
	}
	if after := len(h.log()); after != before {
		t.Fatalf("cached model made %d more requests", after-before)
	}
	if progress.Len() != 0 {
		t.Fatalf("cache hit drew a progress bar: %q", progress.String())
	}
}

func TestPullConcurrentSameModel(t *testing.T) {
	h, files := newFakeHubWith(t, "openai-community/gpt2", 13, weightBytes)
	opts := testOptions(t, h)
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	errs := make([]error, 4)
	for i := range dirs {
		wg.Go(func() { dirs[i], errs[i] = Pull(context.Background(), "gpt2", opts) })
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil {
			t.Fatalf("pull %d: %v", i, errs[i])
		}
		checkPulled(t, dirs[i], files)
	}
	if n := h.count("cdn", ""); n != 1 {
		t.Fatalf("weights downloaded %d times by concurrent pulls, want once", n)
	}
}

func TestPullBadInput(t *testing.T) {
	tests := []struct{ name, endpoint, want string }{
		{"gpt3", "", "unknown model"},
		{"", "", "empty model name"},
		{"owner/../x", "", "repo"},
		{"gpt2", "ftp://mirror", "not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := PullOptions{Endpoint: tt.endpoint, CacheDir: t.TempDir()}
			if opts.Endpoint == "" {
				opts.Endpoint = "http://127.0.0.1:1" // never reached
			}
			_, err := Pull(context.Background(), tt.name, opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	h, files := newFakeHubWith(t, "openai-community/gpt2", 14, 1<<16)
	cache := t.TempDir()
	t.Setenv("TDB_HF_ENDPOINT", h.hub.URL)
	t.Setenv("TDB_CACHE_DIR", cache)
	t.Setenv("HF_TOKEN", "")

	local := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(local, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	half := t.TempDir()
	if err := os.WriteFile(filepath.Join(half, configFile), files[configFile], 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("local folder as is", func(t *testing.T) {
		dir, err := Resolve(context.Background(), local, nil)
		if err != nil || dir != local {
			t.Fatalf("Resolve(local) = %q, %v", dir, err)
		}
		if n := len(h.log()); n != 0 {
			t.Fatalf("a local folder made %d requests", n)
		}
	})
	t.Run("folder without weights", func(t *testing.T) {
		_, err := Resolve(context.Background(), half, nil)
		if err == nil || !strings.Contains(err.Error(), "has no model.safetensors") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing folder", func(t *testing.T) {
		_, err := Resolve(context.Background(), "./no-such-model", nil)
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("err = %v", err)
		}
		if n := len(h.log()); n != 0 {
			t.Fatalf("a missing folder went to the hub: %d requests", n)
		}
	})
	t.Run("hub name pulled once", func(t *testing.T) {
		dir, err := Resolve(context.Background(), "gpt2", nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(cache, "models", "openai-community--gpt2", "main"); dir != want {
			t.Fatalf("dir = %s, want %s", dir, want)
		}
		checkPulled(t, dir, files)
		n := len(h.log())
		if _, err := Resolve(context.Background(), "gpt2", nil); err != nil {
			t.Fatal(err)
		}
		if m := len(h.log()); m != n {
			t.Fatalf("second Resolve made %d requests", m-n)
		}
	})
}

func TestCacheDirAndEndpoint(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name, tdb, xdg, want string
	}{
		{"TDB_CACHE_DIR wins", "/data/tdb", "/xdg", "/data/tdb"},
		{"XDG_CACHE_HOME", "", "/xdg", "/xdg/tdb"},
		{"relative XDG ignored", "", "rel", filepath.Join(home, ".cache", "tdb")},
		{"home", "", "", filepath.Join(home, ".cache", "tdb")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv("TDB_CACHE_DIR", tt.tdb)
			t.Setenv("XDG_CACHE_HOME", tt.xdg)
			if got := CacheDir(); got != tt.want {
				t.Fatalf("CacheDir() = %q, want %q", got, tt.want)
			}
		})
	}
	t.Setenv("TDB_HF_ENDPOINT", "")
	if got := Endpoint(); got != "https://huggingface.co" {
		t.Fatalf("Endpoint() = %q", got)
	}
	t.Setenv("TDB_HF_ENDPOINT", "https://hf-mirror.com/")
	if got := Endpoint(); got != "https://hf-mirror.com" {
		t.Fatalf("Endpoint() with mirror = %q", got)
	}
}

// BenchmarkPull measures a full download from a loopback server: HTTP,
// sha256, disk write, fsync and rename.
func BenchmarkPull(b *testing.B) {
	h := newFakeHub(b)
	files := testCheckpoint(b, 15, 64<<20)
	h.add("openai-community/gpt2", "main", files)
	b.SetBytes(int64(len(files[weightsFile]) + len(files[configFile])))
	for b.Loop() {
		opts := PullOptions{Endpoint: h.hub.URL, CacheDir: b.TempDir()}
		if _, err := Pull(context.Background(), "gpt2", opts); err != nil {
			b.Fatal(err)
		}
	}
}

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
