// Package llm is a small client for OpenAI-compatible chat-completions
// endpoints (hosted APIs, vLLM, Ollama, llama.cpp's server): retries with
// exponential back-off (honouring Retry-After), a request rate limit, answer
// validation with re-asking, and a content-addressed cache on a store so
// that the same request is never paid for twice.
//
// It imports only tdb/store.
package llm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"tdb/store"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Client calls one model at one endpoint. Set its fields before first use;
// it is safe for concurrent use afterwards.
type Client struct {
	// URL is the API base (".../v1", to which "/chat/completions" is
	// added) or the full chat-completions URL.
	URL   string
	Model string
	// APIKey is sent as a bearer token when set (TDB_LLM_API_KEY).
	APIKey string
	// HTTP defaults to a client with a 2-minute timeout.
	HTTP *http.Client
	// Attempts bounds tries per request, failed answers included (default 5).
	Attempts int
	// Backoff is the first retry delay, doubled each time up to MaxBackoff
	// (defaults 500 ms and 30 s), with jitter.
	Backoff, MaxBackoff time.Duration
	// Limiter, if set, paces requests (cache hits are free).
	Limiter *rate.Limiter
	// Cache, if set, stores answers under CachePrefix + sha256 of the
	// request (model, messages, sampling settings).
	Cache       store.Store
	CachePrefix string
	// Temperature and MaxTokens are sent with every request (MaxTokens 0:
	// not sent).
	Temperature float64
	MaxTokens   int

	requests, cacheHits, retries atomic.Int64
}

// Stats counts a client's HTTP requests, cache hits and retries.
type Stats struct {
	Requests  int64 `json:"requests"`
	CacheHits int64 `json:"cache_hits"`
	Retries   int64 `json:"retries"`
}

// Stats returns the counts so far.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.requests.Load(), CacheHits: c.cacheHits.Load(), Retries: c.retries.Load()}
}

// DefaultCachePrefix is where answers are cached on the store.
const DefaultCachePrefix = "cache/llm/"

type chatRequest struct {
	Model       string    `json:"model"`
	Messages    []Message `json:"messages"`
	Temperature float64   `json:"temperature"`
	MaxTokens   int       `json:"max_tokens,omitempty"`
}

type chatResponse struct {
	Choices []struct {
		Message Message `json:"message"`
	} `json:"choices"`
}

// ErrBadAnswer wraps answers that check rejected on every attempt.
var ErrBadAnswer = errors.New("llm: unusable answer")

// Complete sends messages and returns the answer's text. check validates
// an answer (nil: any non-empty text); a rejected answer is asked again
// (within Attempts) and never cached.
func (c *Client) Complete(ctx context.Context, msgs []Message, check func(string) error) (string, error) {
	if c.URL == "" || c.Model == "" {
		return "", errors.New("llm: the endpoint URL and model are required (--llm-url, --llm-model)")
	}
	if check == nil {
		check = func(s string) error {
			if strings.TrimSpace(s) == "" {
				return errors.New("empty answer")
			}
			return nil
		}
	}
	req := chatRequest{Model: c.Model, Messages: msgs, Temperature: c.Temperature, MaxTokens: c.MaxTokens}
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	key := c.cacheKey(body)
	if c.Cache != nil {
		if s, ok := c.cached(ctx, key); ok && check(s) == nil {
			c.cacheHits.Add(1)
			return s, nil
		}
	}
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	var last error
	for a := 0; a < attempts; a++ {
		if a > 0 {
			c.retries.Add(1)
			if err := sleep(ctx, c.delay(a, last)); err != nil {
				return "", err
			}
		}
		text, err := c.post(ctx, body)
		if err != nil {
			var fe *fatalError
			if errors.As(err, &fe) {
				return "", err
			}
			last = err
			continue
		}
		if err := check(text); err != nil {
			last = fmt.Errorf("%w: %v (answer %q)", ErrBadAnswer, err, clip(text, 200))
			continue
		}
		if c.Cache != nil {
			b, _ := json.Marshal(map[string]string{"model": c.Model, "content": text})
			if err := c.Cache.Put(ctx, key, bytes.NewReader(b)); err != nil {
				return "", fmt.Errorf("llm: caching answer in %s: %w", c.Cache, err)
			}
		}
		return text, nil
	}
	return "", fmt.Errorf("llm: %s at %s: giving up after %d attempts: %w", c.Model, c.endpoint(), attempts, last)
}

func (c *Client) endpoint() string {
	u := strings.TrimRight(c.URL, "/")
	if strings.HasSuffix(u, "/chat/completions") {
		return u
	}
	return u + "/chat/completions"
}

func (c *Client) cacheKey(body []byte) string {
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	p := c.CachePrefix
	if p == "" {
		p = DefaultCachePrefix
	}
	return p + h[:2] + "/" + h + ".json"
}

func (c *Client) cached(ctx context.Context, key string) (string, bool) {
	rc, err := c.Cache.Get(ctx, key)
	if err != nil {
		return "", false
	}
	defer rc.Close()
	var v struct {
		Content string `json:"content"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, 16<<20)).Decode(&v); err != nil {
		return "", false
	}
	return v.Content, true
}

// fatalError is a failure that retrying cannot fix (bad key, bad model).
type fatalError struct{ error }

// retryAfter carries a server's Retry-After.
type retryAfter struct {
	error
	after time.Duration
}

func (c *Client) post(ctx context.Context, body []byte) (string, error) {
	if c.Limiter != nil {
		if err := c.Limiter.Wait(ctx); err != nil {
			return "", &fatalError{err}
		}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(), bytes.NewReader(body))
	if err != nil {
		return "", &fatalError{fmt.Errorf("llm: %w", err)}
	}
	hreq.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	c.requests.Add(1)
	resp, err := hc.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return "", &fatalError{ctx.Err()}
		}
		return "", fmt.Errorf("llm: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", fmt.Errorf("llm: reading answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		err := fmt.Errorf("llm: %s: %s", resp.Status, clip(string(data), 300))
		if s := resp.Header.Get("Retry-After"); s != "" {
			if secs, perr := strconv.ParseFloat(s, 64); perr == nil && secs >= 0 {
				return "", &retryAfter{err, time.Duration(secs * float64(time.Second))}
			}
		}
		return "", err
	case resp.StatusCode != http.StatusOK:
		return "", &fatalError{fmt.Errorf("llm: %s from %s (check --llm-url, --llm-model and TDB_LLM_API_KEY): %s", resp.Status, c.endpoint(), clip(string(data), 300))}
	}
	var cr chatResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		return "", fmt.Errorf("%w: not a chat-completions response: %v (%q)", ErrBadAnswer, err, clip(string(data), 200))
	}
	if len(cr.Choices) == 0 {
		return "", fmt.Errorf("%w: no choices in %q", ErrBadAnswer, clip(string(data), 200))
	}
	return cr.Choices[0].Message.Content, nil
}

// delay is the wait before attempt a: the server's Retry-After if it gave
// one, else exponential back-off with jitter.
func (c *Client) delay(a int, last error) time.Duration {
	var ra *retryAfter
	if errors.As(last, &ra) {
		return ra.after
	}
	base, top := c.Backoff, c.MaxBackoff
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if top <= 0 {
		top = 30 * time.Second
	}
	d := base << (a - 1)
	if d > top || d <= 0 {
		d = top
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
