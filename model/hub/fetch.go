package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"time"
)

// FetchOptions tunes Fetch; the zero value downloads silently with five
// attempts.
type FetchOptions struct {
	// Label names the download in messages ("model.safetensors of gpt2").
	Label string
	// Name heads the progress bar ("" = the final file's base name).
	Name string
	// Progress receives a progress bar redrawn with '\r' (nil = silent).
	Progress io.Writer
	// Client makes the requests (nil = http.DefaultClient's settings).
	Client *http.Client
	// Header is sent with every request (an Authorization, say). Go's HTTP
	// client drops Authorization on redirects to other hosts.
	Header http.Header
	// MaxAttempts is the number of tries on transient errors (5xx, 429,
	// lost connections, stalls), each resuming where the last stopped
	// (0 = 5).
	MaxAttempts int
	// RetryDelay is the first back-off, doubled per retry up to 30s
	// (0 = 1s).
	RetryDelay time.Duration
	// StallTimeout aborts an attempt that receives nothing for this long
	// (0 = 60s).
	StallTimeout time.Duration
	// Logger gets retry warnings (nil = slog.Default()).
	Logger *slog.Logger
	// Refused turns an answer that is neither a success nor worth a retry
	// (a 404, a 403) into an error; nil, or a nil result, gives a generic
	// one.
	Refused func(*http.Response) error
	// Check inspects the complete, verified file before it gets its final
	// name; its error is returned as it is and the file deleted.
	Check func(path string) error
}

// Fetch downloads u to final through final+".part": an interrupted
// download resumes from the part with a Range request (on the next attempt,
// or the next call), the result is verified against the size the server
// announces (Content-Length, Content-Range, or a hub's X-Linked-Size) and,
// where the origin server announces one (X-Linked-Etag or a sha256 ETag),
// its sha256, and only then renamed to final. Transient failures are
// retried with back-off. The caller serialises fetches of one file.
func Fetch(ctx context.Context, u, final string, opts FetchOptions) error {
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("download of %s: bad URL: %w", opts.Label, err)
	}
	f := &fetcher{url: u, host: pu.Host, opts: opts, client: opts.Client, log: opts.Logger}
	if f.client == nil {
		f.client = &http.Client{}
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.opts.Name == "" {
		f.opts.Name = filepath.Base(final)
	}
	if f.opts.Label == "" {
		f.opts.Label = f.opts.Name
	}
	maxAttempts := opts.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 5
	}
	delay := opts.RetryDelay
	if delay <= 0 {
		delay = time.Second
	}
	for attempt := 1; ; attempt++ {
		err := f.attempt(ctx, final)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("download of %s stopped (%w); run the same command again to resume", f.opts.Label, context.Cause(ctx))
		}
		var te *transientError
		if !errors.As(err, &te) {
			return err
		}
		if attempt >= maxAttempts {
			return fmt.Errorf("download of %s failed after %d attempts: %w; run the same command again to resume", f.opts.Label, attempt, err)
		}
		wait := min(delay<<(attempt-1), 30*time.Second)
		wait += time.Duration(rand.Int64N(int64(wait)/4 + 1)) // jitter, so many clients do not retry in step
		f.log.Warn("download interrupted, retrying", "download", f.opts.Label, "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("download of %s stopped (%w); run the same command again to resume", f.opts.Label, context.Cause(ctx))
		case <-time.After(wait):
		}
	}
}

// fetcher is one Fetch.
type fetcher struct {
	url    string
	host   string // the URL's host: only its headers are trusted for sizes and hashes
	opts   FetchOptions
	client *http.Client
	log    *slog.Logger
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

// writeError marks a local disk failure, which must not be retried like a
// network error.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// errStalled cancels an attempt whose connection went quiet.
var errStalled = errors.New("no data received")

// respMeta collects what the origin says about a file. On huggingface.co an
// LFS file is a 302 to a CDN; the 302 carries X-Linked-Size and
// X-Linked-Etag (the content's sha256), while the CDN's own ETag is
// something else. Only responses from the URL's host are trusted.
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

// attempt makes one request and appends what it receives to the part;
// once the part is complete it is verified and renamed to final.
func (f *fetcher) attempt(ctx context.Context, final string) error {
	// Hash what an earlier run downloaded before asking for the rest (on a
	// slow disk this takes a while, and the server should not wait for it).
	part, err := openPart(final)
	if err != nil {
		return err
	}
	defer part.close()

	stall := f.stall()
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stall, func() { cancel(errStalled) })
	defer watchdog.Stop()

	resp, meta, err := f.request(actx, part.size)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	total, complete, err := f.expectedSize(resp, meta, part)
	if err != nil {
		return err
	}
	if !complete {
		if err := f.receive(actx, part, resp.Body, total, watchdog, stall); err != nil {
			return err
		}
	}
	return f.finish(part, total, meta, resp)
}

// request asks for the file from byte offset on, noting what the origin
// host says about it on the way through redirects.
func (f *fetcher) request(actx context.Context, offset int64) (*http.Response, *respMeta, error) {
	req, err := http.NewRequestWithContext(actx, http.MethodGet, f.url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("request %s: %w", f.url, err)
	}
	for k, v := range f.opts.Header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "tdb/1 (+model/hub)")
	// identity: a transparently gunzipped body would defeat the size and
	// Range arithmetic.
	req.Header.Set("Accept-Encoding", "identity")
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	meta := &respMeta{host: f.host}
	client := *f.client
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		meta.observe(r.Response)
		return nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, f.netError(actx, "request", err)
	}
	meta.observe(resp)
	return resp, meta, nil
}

// expectedSize reads the answer's status and sizes: the file's total size
// (-1: unknown) and whether the part already holds all of it. A 200 empties
// the part (the server ignored the Range).
func (f *fetcher) expectedSize(resp *http.Response, meta *respMeta, part *partFile) (total int64, complete bool, err error) {
	offset := part.size
	total = -1
	if meta.linkedSize != "" {
		if n, err := strconv.ParseInt(meta.linkedSize, 10, 64); err == nil && n >= 0 {
			total = n
		}
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if offset > 0 {
			f.log.Debug("server ignored the range request, starting over", "download", f.opts.Label, "had", offset)
		}
		if err := part.restart(); err != nil {
			return 0, false, err
		}
		offset = 0
		if resp.ContentLength >= 0 {
			if total >= 0 && total != resp.ContentLength {
				return 0, false, f.corrupt(part, fmt.Sprintf("the hub announced %d bytes but the server sends %d", total, resp.ContentLength))
			}
			total = resp.ContentLength
		}
	case http.StatusPartialContent:
		start, _, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			// Not the bytes we asked for: drop the part so the retry starts clean.
			_ = part.restart()
			return 0, false, transient("server answered a range request for byte %d with Content-Range %q", offset, resp.Header.Get("Content-Range"))
		}
		if size >= 0 {
			if total >= 0 && total != size {
				return 0, false, f.corrupt(part, fmt.Sprintf("the hub announced %d bytes but the server has %d", total, size))
			}
			total = size
		}
	case http.StatusRequestedRangeNotSatisfiable:
		// The part may already hold everything (we stopped just before the rename).
		if _, _, size, ok := parseContentRange(resp.Header.Get("Content-Range")); ok {
			if total >= 0 && total != size {
				return 0, false, f.corrupt(part, fmt.Sprintf("the hub announced %d bytes but the server has %d", total, size))
			}
			total = size
		}
		if total != offset {
			_ = part.restart()
			return 0, false, transient("server refused to resume at byte %d of %s; starting over", offset, sizeString(total))
		}
		return total, true, nil
	default:
		return 0, false, f.statusError(resp)
	}
	if total >= 0 && offset > total {
		return 0, false, f.corrupt(part, fmt.Sprintf("%d bytes already downloaded but the file has %d", offset, total))
	}
	return total, false, nil
}

// receive appends the body to the part, drawing progress, until the body
// ends; it checks that the part then holds exactly total bytes (when known).
func (f *fetcher) receive(actx context.Context, part *partFile, body io.Reader, total int64, watchdog *time.Timer, stall time.Duration) error {
	bar := newProgressBar(f.opts.Progress, f.opts.Name, total, part.size, nil)
	if err := copyBody(part, body, bar, watchdog, stall); err != nil {
		bar.abort()
		if werr := (*writeError)(nil); errors.As(err, &werr) {
			return werr.err
		}
		return f.netError(actx, fmt.Sprintf("connection lost at byte %d of %s", part.size, sizeString(total)), err)
	}
	if total >= 0 && part.size < total {
		bar.abort()
		return transient("connection closed at byte %d of %d", part.size, total)
	}
	if total >= 0 && part.size > total {
		bar.abort()
		return f.corrupt(part, fmt.Sprintf("received %d bytes, the file has %d", part.size, total))
	}
	bar.finish()
	return nil
}

// finish verifies the complete part against what the origin announced and
// renames it to its final name.
func (f *fetcher) finish(part *partFile, total int64, meta *respMeta, resp *http.Response) error {
	etag := meta.linkedETag
	if etag == "" && resp.Request != nil && resp.Request.URL.Host == f.host {
		etag = resp.Header.Get("ETag")
	}
	if why := part.verify(total, sha256FromETag(etag)); why != "" {
		return f.corrupt(part, why)
	}
	return part.commit(f.opts.Check)
}

// corrupt deletes the part and says why.
func (f *fetcher) corrupt(part *partFile, why string) error {
	msg := fmt.Sprintf("download of %s is corrupted: %s; deleted it, run the same command again to download it anew", f.opts.Label, why)
	if err := part.discard(); err != nil {
		msg = fmt.Sprintf("download of %s is corrupted: %s; could not delete %s (%v), delete it by hand", f.opts.Label, why, part.path, err)
	}
	return &hubError{msg: msg, kind: ErrCorrupt}
}

// statusError retries what may pass and asks Refused about the rest.
func (f *fetcher) statusError(resp *http.Response) error {
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500 {
		return transient("%s answered %s", f.host, resp.Status)
	}
	if f.opts.Refused != nil {
		if err := f.opts.Refused(resp); err != nil {
			return err
		}
	}
	return fmt.Errorf("download of %s: unexpected answer %s from %s", f.opts.Label, resp.Status, resp.Request.URL.Redacted())
}

// netError classifies a failed request or body read.
func (f *fetcher) netError(actx context.Context, what string, err error) error {
	if errors.Is(context.Cause(actx), errStalled) {
		return transient("%s: no data for %s", what, f.stall())
	}
	if actx.Err() != nil {
		return err // the caller's context: not retried
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return fmt.Errorf("%s: host %s not found (%w)", what, f.host, err)
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return transient("%s: %w", what, err)
}

func (f *fetcher) stall() time.Duration {
	if f.opts.StallTimeout > 0 {
		return f.opts.StallTimeout
	}
	return 60 * time.Second
}

// copyBody streams body into the part, feeding the watchdog and progress
// bar.
func copyBody(part *partFile, body io.Reader, bar *progressBar, watchdog *time.Timer, stall time.Duration) error {
	buf := make([]byte, 1<<20)
	for {
		watchdog.Reset(stall)
		k, rerr := body.Read(buf)
		if k > 0 {
			if _, err := part.Write(buf[:k]); err != nil {
				return err
			}
			bar.add(k)
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
