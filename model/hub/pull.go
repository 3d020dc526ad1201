package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Errors a caller can test for with errors.Is.
var (
	ErrNotFound = errors.New("not found on the hub")
	ErrAccess   = errors.New("access refused by the hub")
	ErrCorrupt  = errors.New("corrupted download")
)

// PullOptions tunes Pull; the zero value downloads from Endpoint() into
// CacheDir() silently.
type PullOptions struct {
	// Revision overrides the branch, tag or commit ("" = the name's
	// "@revision", else main).
	Revision string
	// Progress receives a progress bar redrawn with '\r' (nil = silent).
	Progress io.Writer
	// Endpoint is the hub base URL ("" = Endpoint()).
	Endpoint string
	// CacheDir is the cache root ("" = CacheDir()).
	CacheDir string
	// Token is sent as a bearer token ("" = $HF_TOKEN); needed for gated
	// or private repos. Go's HTTP client drops it on redirects to other
	// hosts, so the CDN never sees it.
	Token string
	// Client makes the requests (nil = http.DefaultClient's settings).
	Client *http.Client
	// MaxAttempts is the number of tries per file on transient errors
	// (5xx, 429, lost connections, stalls), each resuming where the last
	// stopped (0 = 5).
	MaxAttempts int
	// RetryDelay is the first back-off, doubled per retry up to 30s
	// (0 = 1s).
	RetryDelay time.Duration
	// StallTimeout aborts an attempt that receives nothing for this long
	// (0 = 60s).
	StallTimeout time.Duration
	// Logger gets retry warnings (nil = slog.Default()).
	Logger *slog.Logger
}

// Pull downloads config.json and model.safetensors of the named model into
// the cache and returns the folder holding them. Files already in the cache
// are not downloaded again (no request is made when both are there); an
// interrupted download resumes from its ".part" file on the next call.
func Pull(ctx context.Context, name string, opts PullOptions) (string, error) {
	ref, err := ParseName(name, opts.Revision)
	if err != nil {
		return "", err
	}
	endpoint := opts.Endpoint
	if endpoint == "" {
		endpoint = Endpoint()
	}
	endpoint = strings.TrimRight(endpoint, "/")
	eu, err := url.Parse(endpoint)
	if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
		return "", fmt.Errorf("hub endpoint %q is not an http(s) URL (check TDB_HF_ENDPOINT)", endpoint)
	}
	cache := opts.CacheDir
	if cache == "" {
		cache = CacheDir()
	}
	dir := modelDir(cache, ref)
	if checkDir(dir) == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cache folder: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	unlock, err := LockDir(ctx, dir, func() {
		log.Info("waiting for another tdb process downloading into the same folder", "dir", dir)
	})
	if err != nil {
		return "", err
	}
	defer unlock()

	token := opts.Token
	if token == "" {
		token = os.Getenv("HF_TOKEN")
	}
	header := http.Header{}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	for _, file := range checkpointFiles {
		final := filepath.Join(dir, file)
		if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() {
			continue // verified by an earlier run: only verified files get this name
		}
		u := endpoint + "/" + ref.Repo + "/resolve/" + url.PathEscape(ref.Revision) + "/" + file
		err := Fetch(ctx, u, final, FetchOptions{
			Label:        file + " of " + ref.String(),
			Name:         file,
			Progress:     opts.Progress,
			Client:       opts.Client,
			Header:       header,
			MaxAttempts:  opts.MaxAttempts,
			RetryDelay:   opts.RetryDelay,
			StallTimeout: opts.StallTimeout,
			Logger:       log,
			Refused: func(resp *http.Response) error {
				return refused(resp, name, endpoint, file, ref, token != "")
			},
			Check: func(path string) error {
				if err := checkContent(file, path); err != nil {
					return &hubError{
						msg:  fmt.Sprintf("downloaded %s of %s from %s is corrupted: it %v; deleted it (is TDB_HF_ENDPOINT a real hub mirror?)", file, ref, endpoint, err),
						kind: ErrCorrupt,
					}
				}
				return nil
			},
		})
		if err != nil {
			return "", err
		}
	}
	return dir, nil
}

// refused turns the hub's refusal of a file into a message that says what
// to do (5xx, 429 and 408 never get here: Fetch retries them).
func refused(resp *http.Response, name, endpoint, file string, ref Ref, haveToken bool) error {
	code := resp.Header.Get("X-Error-Code") // set by huggingface.co
	switch {
	case resp.StatusCode == http.StatusNotFound && code == "EntryNotFound":
		return &hubError{msg: fmt.Sprintf("model %q on %s has no %s (tdb needs %s)", name, endpoint, file, strings.Join(checkpointFiles, " and ")), kind: ErrNotFound}
	case resp.StatusCode == http.StatusNotFound && code == "RevisionNotFound":
		return &hubError{msg: fmt.Sprintf("model %q on %s has no revision %q", name, endpoint, ref.Revision), kind: ErrNotFound}
	case resp.StatusCode == http.StatusNotFound:
		return &hubError{msg: fmt.Sprintf("model %q not found on %s (is the name right? set TDB_HF_ENDPOINT for a mirror)", name, endpoint), kind: ErrNotFound}
	case resp.StatusCode == http.StatusUnauthorized && code == "RepoNotFound":
		// The hub answers 401 for repos that do not exist or are private.
		return &hubError{msg: fmt.Sprintf("model %q not found on %s (is the name right? if it is private, set HF_TOKEN; set TDB_HF_ENDPOINT for a mirror)", name, endpoint), kind: ErrNotFound}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		hint := "set HF_TOKEN to a token of an account that has access"
		if haveToken {
			hint = "the HF_TOKEN given has no access: accept the model's terms on its hub page, or use a token of an account that has access"
		}
		return &hubError{msg: fmt.Sprintf("model %q on %s is gated or private (HTTP %d): %s", name, endpoint, resp.StatusCode, hint), kind: ErrAccess}
	}
	return nil
}
