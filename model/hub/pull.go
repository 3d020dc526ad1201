package hub

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
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
	dir := ModelDir(cache, ref)
	if CheckDir(dir) == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create cache folder: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	unlock, err := lockDir(ctx, dir, func() {
		log.Info("waiting for another tdb process downloading into the same folder", "dir", dir)
	})
	if err != nil {
		return "", err
	}
	defer unlock()

	d := &downloader{
		name:     name,
		ref:      ref,
		endpoint: endpoint,
		host:     eu.Host,
		opts:     opts,
		log:      log,
		client:   opts.Client,
		token:    opts.Token,
	}
	if d.client == nil {
		d.client = &http.Client{}
	}
	if d.token == "" {
		d.token = os.Getenv("HF_TOKEN")
	}
	for _, f := range Files {
		final := filepath.Join(dir, f)
		if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() {
			continue // verified by an earlier run: only verified files get this name
		}
		if err := d.fetch(ctx, f, final); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// downloader fetches the files of one model.
type downloader struct {
	name     string // as the user typed it, for messages
	ref      Ref
	endpoint string
	host     string // endpoint host: only its headers are trusted for sizes and hashes
	opts     PullOptions
	log      *slog.Logger
	client   *http.Client
	token    string
}

// transientError marks failures worth retrying.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(format string, args ...any) error {
	return &transientError{fmt.Errorf(format, args...)}
}

// hubError carries a user-facing message and a sentinel for errors.Is.
type hubError struct {
	msg  string
	kind error
}

func (e *hubError) Error() string { return e.msg }
func (e *hubError) Unwrap() error { return e.kind }

// errStalled cancels an attempt whose connection went quiet.
var errStalled = errors.New("no data received")

// fetch downloads one file to final, retrying transient failures.
func (d *downloader) fetch(ctx context.Context, file, final string) error {
	u := d.endpoint + "/" + d.ref.Repo + "/resolve/" + url.PathEscape(d.ref.Revision) + "/" + file
	maxAttempts := d.opts.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 5
	}
	delay := d.opts.RetryDelay
	if delay <= 0 {
		delay = time.Second
	}
	for attempt := 1; ; attempt++ {
		err := d.attempt(ctx, u, file, final)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("download of %s %s stopped (%w); run the same command again to resume", d.ref, file, context.Cause(ctx))
		}
		var te *transientError
		if !errors.As(err, &te) {
			return err
		}
		if attempt >= maxAttempts {
			return fmt.Errorf("download of %s %s failed after %d attempts: %w; run the same command again to resume", d.ref, file, attempt, err)
		}
		wait := min(delay<<(attempt-1), 30*time.Second)
		wait += time.Duration(rand.Int64N(int64(wait)/4 + 1)) // jitter, so many clients do not retry in step
		d.log.Warn("download interrupted, retrying", "file", file, "model", d.ref.String(), "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("download of %s %s stopped (%w); run the same command again to resume", d.ref, file, context.Cause(ctx))
		case <-time.After(wait):
		}
	}
}

// respMeta collects what the hub says about a file. On huggingface.co an LFS
// file is a 302 to a CDN; the 302 carries X-Linked-Size and X-Linked-Etag
// (the content's sha256), while the CDN's own ETag is something else. Only
// responses from the endpoint host are trusted for the hash.
type respMeta struct {
	host       string
	linkedETag string
	linkedSize string
}

func (m *respMeta) observe(r *http.Response) {
	if r == nil || r.Request == nil || r.Request.URL.Host != m.host {
		return
	}
	if v := r.Header.Get("X-Linked-Etag"); v != "" && m.linkedETag == "" {
		m.linkedETag = v
	}
	if v := r.Header.Get("X-Linked-Size"); v != "" && m.linkedSize == "" {
		m.linkedSize = v
	}
}

// attempt makes one request and appends what it receives to the .part file;
// once the file is complete it verifies it and renames it to final.
func (d *downloader) attempt(ctx context.Context, u, file, final string) (err error) {
	part := final + ".part"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", part, err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	// Hash what an earlier run downloaded before asking for the rest (on a
	// slow disk this takes a while, and the server should not wait for it).
	// This leaves the file offset at the end of the part.
	h := sha256.New()
	offset, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("read %s: %w", part, err)
	}

	stall := d.opts.StallTimeout
	if stall <= 0 {
		stall = 60 * time.Second
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", u, err)
	}
	req.Header.Set("User-Agent", "tdb/1 (+model/hub)")
	// identity: a transparently gunzipped body would defeat the size and
	// Range arithmetic.
	req.Header.Set("Accept-Encoding", "identity")
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	meta := &respMeta{host: d.host}
	client := *d.client
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		meta.observe(r.Response)
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return d.netError(actx, "request", err)
	}
	defer resp.Body.Close()
	meta.observe(resp)

	total := int64(-1)
	if meta.linkedSize != "" {
		if n, err := strconv.ParseInt(meta.linkedSize, 10, 64); err == nil && n >= 0 {
			total = n
		}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if offset > 0 {
			d.log.Debug("server ignored the range request, starting over", "file", file, "had", offset)
		}
		if err := f.Truncate(0); err != nil {
			return fmt.Errorf("truncate %s: %w", part, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("seek %s: %w", part, err)
		}
		offset = 0
		h.Reset()
		if resp.ContentLength >= 0 {
			if total >= 0 && total != resp.ContentLength {
				return d.corrupt(&f, part, file, fmt.Sprintf("the hub announced %d bytes but the server sends %d", total, resp.ContentLength))
			}
			total = resp.ContentLength
		}
	case http.StatusPartialContent:
		start, _, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			// Not the bytes we asked for: drop the part so the retry starts clean.
			_ = f.Truncate(0)
			return transient("server answered a range request for byte %d with Content-Range %q", offset, resp.Header.Get("Content-Range"))
		}
		if size >= 0 {
			if total >= 0 && total != size {
				return d.corrupt(&f, part, file, fmt.Sprintf("the hub announced %d bytes but the server has %d", total, size))
			}
			total = size
		}
	case http.StatusRequestedRangeNotSatisfiable:
		// The part may already hold everything (we stopped just before the rename).
		if _, _, size, ok := parseContentRange(resp.Header.Get("Content-Range")); ok {
			if total >= 0 && total != size {
				return d.corrupt(&f, part, file, fmt.Sprintf("the hub announced %d bytes but the server has %d", total, size))
			}
			total = size
		}
		if total != offset {
			_ = f.Truncate(0)
			return transient("server refused to resume at byte %d of %s; starting over", offset, sizeString(total))
		}
		return d.finish(&f, part, file, final, total, meta, resp, h, offset)
	default:
		return d.statusError(resp, file)
	}
	if total >= 0 && offset > total {
		return d.corrupt(&f, part, file, fmt.Sprintf("%d bytes already downloaded but the file has %d", offset, total))
	}

	bar := newProgressBar(d.opts.Progress, file, total, offset, nil)
	n, err := copyBody(f, h, resp.Body, bar, watchdog, stall)
	got := offset + n
	if err != nil {
		bar.abort()
		if werr := (*writeError)(nil); errors.As(err, &werr) {
			return fmt.Errorf("write %s: %w", part, werr.err)
		}
		return d.netError(actx, fmt.Sprintf("connection lost at byte %d of %s", got, sizeString(total)), err)
	}
	if total >= 0 && got < total {
		bar.abort()
		return transient("connection closed at byte %d of %d", got, total)
	}
	if total >= 0 && got > total {
		bar.abort()
		return d.corrupt(&f, part, file, fmt.Sprintf("received %d bytes, the file has %d", got, total))
	}
	bar.finish()
	return d.finish(&f, part, file, final, total, meta, resp, h, got)
}

// finish verifies the complete .part file and renames it to final. h holds
// the sha256 of the part's content.
func (d *downloader) finish(fp **os.File, part, file, final string, total int64, meta *respMeta, resp *http.Response, h hash.Hash, size int64) error {
	f := *fp
	if total >= 0 && size != total {
		return d.corrupt(fp, part, file, fmt.Sprintf("%d bytes instead of %d", size, total))
	}
	etag := meta.linkedETag
	if etag == "" && resp.Request != nil && resp.Request.URL.Host == d.host {
		etag = resp.Header.Get("ETag")
	}
	if want := sha256FromETag(etag); want != "" {
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			return d.corrupt(fp, part, file, fmt.Sprintf("sha256 is %s but the hub says %s", got, want))
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", part, err)
	}
	if err := f.Close(); err != nil {
		*fp = nil
		return fmt.Errorf("close %s: %w", part, err)
	}
	*fp = nil
	if err := checkContent(file, part); err != nil {
		_ = os.Remove(part)
		return &hubError{
			msg:  fmt.Sprintf("downloaded %s of %s from %s is corrupted: it %v; deleted it (is TDB_HF_ENDPOINT a real hub mirror?)", file, d.ref, d.endpoint, err),
			kind: ErrCorrupt,
		}
	}
	if err := os.Rename(part, final); err != nil {
		return fmt.Errorf("rename %s: %w", part, err)
	}
	syncDir(filepath.Dir(final))
	return nil
}

// corrupt deletes the .part file and says why.
func (d *downloader) corrupt(fp **os.File, part, file, why string) error {
	if *fp != nil {
		(*fp).Close()
		*fp = nil
	}
	rmErr := os.Remove(part)
	msg := fmt.Sprintf("download of %s of %s is corrupted: %s; deleted it, run the same command again to download it anew", file, d.ref, why)
	if rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		msg = fmt.Sprintf("download of %s of %s is corrupted: %s; could not delete %s (%v), delete it by hand", file, d.ref, why, part, rmErr)
	}
	return &hubError{msg: msg, kind: ErrCorrupt}
}

// statusError turns a refusal into a message that says what to do.
func (d *downloader) statusError(resp *http.Response, file string) error {
	code := resp.Header.Get("X-Error-Code") // set by huggingface.co
	switch {
	case resp.StatusCode == http.StatusNotFound && code == "EntryNotFound":
		return &hubError{msg: fmt.Sprintf("model %q on %s has no %s (tdb needs %s)", d.name, d.endpoint, file, strings.Join(Files, " and ")), kind: ErrNotFound}
	case resp.StatusCode == http.StatusNotFound && code == "RevisionNotFound":
		return &hubError{msg: fmt.Sprintf("model %q on %s has no revision %q", d.name, d.endpoint, d.ref.Revision), kind: ErrNotFound}
	case resp.StatusCode == http.StatusNotFound:
		return &hubError{msg: fmt.Sprintf("model %q not found on %s (is the name right? set TDB_HF_ENDPOINT for a mirror)", d.name, d.endpoint), kind: ErrNotFound}
	case resp.StatusCode == http.StatusUnauthorized && code == "RepoNotFound":
		// The hub answers 401 for repos that do not exist or are private.
		return &hubError{msg: fmt.Sprintf("model %q not found on %s (is the name right? if it is private, set HF_TOKEN; set TDB_HF_ENDPOINT for a mirror)", d.name, d.endpoint), kind: ErrNotFound}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		hint := "set HF_TOKEN to a token of an account that has access"
		if d.token != "" {
			hint = "the HF_TOKEN given has no access: accept the model's terms on its hub page, or use a token of an account that has access"
		}
		return &hubError{msg: fmt.Sprintf("model %q on %s is gated or private (HTTP %d): %s", d.name, d.endpoint, resp.StatusCode, hint), kind: ErrAccess}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return transient("%s answered %s", d.endpoint, resp.Status)
	}
	return fmt.Errorf("download of %s of %s: unexpected answer %s from %s", file, d.ref, resp.Status, resp.Request.URL.Redacted())
}

// netError classifies a failed request or body read.
func (d *downloader) netError(actx context.Context, what string, err error) error {
	if errors.Is(context.Cause(actx), errStalled) {
		return transient("%s: no data for %s", what, d.stall())
	}
	if actx.Err() != nil {
		return err // the caller's context: not retried
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return fmt.Errorf("%s: hub host not found (%w); check TDB_HF_ENDPOINT", what, err)
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return transient("%s: %w", what, err)
}

func (d *downloader) stall() time.Duration {
	if d.opts.StallTimeout > 0 {
		return d.opts.StallTimeout
	}
	return 60 * time.Second
}

// writeError marks a local disk failure inside copyBody, which must not be
// retried like a network error.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// copyBody streams body into f and h, feeding the watchdog and progress bar.
func copyBody(f *os.File, h hash.Hash, body io.Reader, bar *progressBar, watchdog *time.Timer, stall time.Duration) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		watchdog.Reset(stall)
		k, rerr := body.Read(buf)
		if k > 0 {
			if _, err := f.Write(buf[:k]); err != nil {
				return n, &writeError{err}
			}
			h.Write(buf[:k])
			n += int64(k)
			bar.add(k)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// parseContentRange reads "bytes START-END/SIZE" or "bytes */SIZE"; size is
// -1 when given as "*".
func parseContentRange(v string) (start, end, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	size = -1
	if sz != "*" {
		n, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, 0, false
		}
		size = n
	}
	if rng == "*" {
		return -1, -1, size, size >= 0
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start || size >= 0 && end >= size {
		return 0, 0, 0, false
	}
	return start, end, size, true
}

func sizeString(total int64) string {
	if total < 0 {
		return "unknown"
	}
	return strconv.FormatInt(total, 10)
}

// syncDir makes a rename durable; failures only cost durability on a crash.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
