package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

func TestServeMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	addr, err := ServeMetrics(ctx, "127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := get(t, "http://"+addr+"/metrics")
	if !strings.Contains(body, "tdb_test_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics body lacks the counter:\n%s", body)
	}
	if got := get(t, "http://"+addr+"/healthz"); got != "ok\n" {
		t.Fatalf("/healthz = %q", got)
	}
	if _, err := ServeMetrics(ctx, addr, reg, nil); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("a second server on %s: %v", addr, err)
	}
}

func TestNewMuxTakesRoutes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	mux := NewMux(NewRegistry())
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hi") })
	addr, err := Serve(ctx, "127.0.0.1:0", mux, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := get(t, "http://"+addr+"/hello"); got != "hi" {
		t.Fatalf("/hello = %q", got)
	}
	cancel()
}

func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	NewLogger(&b, true, slog.LevelWarn).Info("hidden")
	NewLogger(&b, true, slog.LevelWarn).Warn("shown", "k", 1)
	if s := b.String(); strings.Contains(s, "hidden") || !strings.Contains(s, `"msg":"shown"`) || !strings.Contains(s, `"k":1`) {
		t.Fatalf("json log: %q", s)
	}
	b.Reset()
	NewLogger(&b, false, slog.LevelInfo).Info("text", "k", 2)
	if s := b.String(); !strings.Contains(s, "msg=text") || !strings.Contains(s, "k=2") {
		t.Fatalf("text log: %q", s)
	}
}

// ServeUntil answers until its context ends, then lets a request in flight
// finish within the grace period and returns nil; a listener that fails
// ends it at once with the error.
func TestServeUntil(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, finish := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-finish
		io.WriteString(w, "done")
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "fast") })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ServeUntil(ctx, &http.Server{Handler: mux}, ln, 5*time.Second) }()
	url := "http://" + ln.Addr().String()
	if got := get(t, url+"/fast"); got != "fast" {
		t.Fatalf("/fast: %q", got)
	}
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		slow <- string(b)
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		t.Fatalf("returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(finish)
	if got := <-slow; got != "done" {
		t.Fatalf("the request in flight got %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("after shutdown: %v", err)
	}

	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln2.Close()
	if err := ServeUntil(context.Background(), &http.Server{Handler: mux}, ln2, time.Second); err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("closed listener: %v", err)
	}
}
