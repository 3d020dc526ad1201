package store_test

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"tdb/internal/syncbuf"
	"tdb/store"
)

// TestAzureHungEndpointFailsInBoundedTime: an endpoint that accepts
// connections and never answers makes every call fail after its retries,
// saying on the log what is being retried, instead of hanging.
func TestAzureHungEndpointFailsInBoundedTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	store.SetAzureTryBase(t, 100*time.Millisecond)
	var logs syncbuf.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(old)

	st, err := store.NewAzure("http://"+ln.Addr().String()+"/devstoreaccount1/data", store.AzureCredentials{})
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"size": func() error { _, err := st.Size(t.Context(), "a/b"); return err },
		"get":  func() error { _, err := st.Get(t.Context(), "a/b"); return err },
		"list": func() error { _, err := st.List(t.Context(), "a/"); return err },
		"range": func() error {
			_, err := st.GetRange(t.Context(), "a/b", 0, 10)
			return err
		},
	} {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if err == nil {
			t.Errorf("%s on a hung endpoint succeeded", name)
			continue
		}
		if errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: a hung endpoint reported as not found: %v", name, err)
		}
		// 4 tries of 100 ms each (a Get makes two calls) plus back-off (5 ms, 15 ms, 35 ms).
		if took > 5*time.Second {
			t.Errorf("%s took %v on a hung endpoint, want a bounded failure", name, took)
		}
	}
	if !strings.Contains(logs.String(), "retrying while attempts remain") || !strings.Contains(logs.String(), "/devstoreaccount1/data") {
		t.Errorf("retries were not logged with the request; log:\n%s", logs.String())
	}
}
