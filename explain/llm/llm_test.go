package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"tdb/store"
)

// server answers chat completions with the scripted replies in turn (the
// last one repeats); a reply "STATUS n [retry-after]" sends that status.
func server(t *testing.T, replies ...string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if got := r.Header.Get("Authorization"); got != "Bearer sekrit" {
			http.Error(w, `{"error":"bad key"}`, http.StatusUnauthorized)
			return
		}
		var req chatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != "m" || len(req.Messages) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		i := int(n.Add(1)) - 1
		reply := replies[min(i, len(replies)-1)]
		var code int
		var after string
		if _, err := fmt.Sscanf(reply, "STATUS %d %s", &code, &after); err == nil || code != 0 {
			if after != "" {
				w.Header().Set("Retry-After", after)
			}
			http.Error(w, "scripted failure", code)
			return
		}
		if strings.HasPrefix(reply, "RAW ") {
			io.WriteString(w, strings.TrimPrefix(reply, "RAW "))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"role": "assistant", "content": reply}}}})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func client(url string) *Client {
	return &Client{URL: url + "/v1", Model: "m", APIKey: "sekrit", Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
}

func TestCompleteRetriesAndCaches(t *testing.T) {
	ctx := context.Background()
	srv, n := server(t, "STATUS 429 0", "STATUS 503", "RAW {not json", `RAW {"choices": []}`, "", "hello")
	c := client(srv.URL)
	c.Attempts = 6
	c.Cache = store.NewMemory()
	msgs := []Message{{Role: "user", Content: "hi"}}
	got, err := c.Complete(ctx, msgs, nil)
	if err != nil || got != "hello" {
		t.Fatalf("Complete = %q, %v", got, err)
	}
	if n.Load() != 6 || c.Stats().Retries != 5 {
		t.Fatalf("%d requests, stats %+v", n.Load(), c.Stats())
	}
	// Cached: no request.
	got, err = c.Complete(ctx, msgs, nil)
	if err != nil || got != "hello" || n.Load() != 6 || c.Stats().CacheHits != 1 {
		t.Fatalf("second Complete = %q, %v, %d requests", got, err, n.Load())
	}
	keys, _ := c.Cache.List(ctx, DefaultCachePrefix)
	if len(keys) != 1 || !strings.HasSuffix(keys[0], ".json") {
		t.Fatalf("cache keys %v", keys)
	}
	// Another model is another cache entry.
	c2 := client(srv.URL)
	c2.Model = "other"
	c2.Cache = c.Cache
	if _, err := c2.Complete(ctx, msgs, nil); err == nil {
		t.Fatal("the server rejects model other; want an error")
	}
}

func TestCompleteGivesUp(t *testing.T) {
	ctx := context.Background()
	srv, n := server(t, "STATUS 500")
	c := client(srv.URL)
	c.Attempts = 3
	_, err := c.Complete(ctx, []Message{{Role: "user", Content: "x"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "3 attempts") || n.Load() != 3 {
		t.Fatalf("err %v after %d requests", err, n.Load())
	}
	// A bad key is not retried.
	c = client(srv.URL)
	c.APIKey = "wrong"
	before := n.Load()
	_, err = c.Complete(ctx, []Message{{Role: "user", Content: "x"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "401") || n.Load() != before {
		t.Fatalf("bad key: %v", err)
	}
	// Garbage answers that the check rejects are re-asked, then reported.
	srv2, n2 := server(t, "I think it is about cats", "still no json")
	c = client(srv2.URL)
	c.Attempts = 2
	c.Cache = store.NewMemory()
	_, err = c.Complete(ctx, []Message{{Role: "user", Content: "x"}}, func(s string) error {
		var v []int
		return json.Unmarshal([]byte(s), &v)
	})
	if !errors.Is(err, ErrBadAnswer) || n2.Load() != 2 {
		t.Fatalf("garbage: %v after %d", err, n2.Load())
	}
	if keys, _ := c.Cache.List(ctx, ""); len(keys) != 0 {
		t.Fatalf("a rejected answer was cached: %v", keys)
	}
	// Missing configuration.
	if _, err := (&Client{}).Complete(ctx, nil, nil); err == nil {
		t.Fatal("no URL accepted")
	}
}

func TestRetryAfterAndRateLimit(t *testing.T) {
	ctx := context.Background()
	srv, _ := server(t, "STATUS 429 0.2", "ok")
	c := client(srv.URL)
	start := time.Now()
	if _, err := c.Complete(ctx, []Message{{Role: "user", Content: "x"}}, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("Retry-After 0.2 s not honoured: %v", d)
	}
	srv2, _ := server(t, "ok")
	c = client(srv2.URL)
	c.Limiter = rate.NewLimiter(rate.Limit(20), 1)
	start = time.Now()
	for i := range 5 {
		if _, err := c.Complete(ctx, []Message{{Role: "user", Content: fmt.Sprint(i)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Fatalf("5 requests at 20/s took %v, want ≥ 200 ms", d)
	}
	// Cancellation stops the back-off.
	srv3, _ := server(t, "STATUS 503 30")
	c = client(srv3.URL)
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.Complete(cctx, []Message{{Role: "user", Content: "x"}}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled: %v", err)
	}
}
