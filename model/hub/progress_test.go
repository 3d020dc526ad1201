package hub

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFormatProgress(t *testing.T) {
	tests := []struct {
		name               string
		done, total, fresh int64
		elapsed            time.Duration
		final              bool
		want               string
	}{
		{"half", 274_000_000, 548_000_000, 274_000_000, 10 * time.Second, false,
			"model.safetensors  [============>           ]  50%  274.0/548.0 MB  27.4 MB/s  ETA 0:10"},
		{"resumed", 500_000_000, 1_000_000_000, 100_000_000, 10 * time.Second, false,
			"model.safetensors  [============>           ]  50%  0.5/1.0 GB  10.0 MB/s  ETA 0:50"},
		{"done", 6_431_000_000, 6_431_000_000, 6_431_000_000, 3725 * time.Second, true,
			"model.safetensors  [========================] 100%  6.4/6.4 GB  1.7 MB/s  in 1:02:05"},
		{"unknown size", 1500, -1, 1500, time.Second, false,
			"model.safetensors  1.5 kB  0.0 MB/s"},
		{"no data yet", 0, 665, 0, 0, false,
			"config.json        [>                       ]   0%  0/665 B  0.0 MB/s  ETA --:--"},
	}
	for _, tt := range tests {
		name := "model.safetensors"
		if tt.name == "no data yet" {
			name = "config.json"
		}
		if got := formatProgress(name, tt.done, tt.total, tt.fresh, tt.elapsed, tt.final); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestProgressBarThrottlesAndEndsLine(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	p := newProgressBar(&out, "model.safetensors", 1000, 0, clock)
	for i := 0; i < 10; i++ {
		p.add(10) // all within the same instant: only the first draws
	}
	if n := strings.Count(out.String(), "\r"); n != 1 {
		t.Fatalf("%d redraws without time passing, want 1: %q", n, out.String())
	}
	now = now.Add(progressEvery)
	p.add(10)
	if n := strings.Count(out.String(), "\r"); n != 2 {
		t.Fatalf("%d redraws after %v, want 2", n, progressEvery)
	}
	now = now.Add(time.Second)
	p.add(890)
	p.finish()
	s := out.String()
	if !strings.HasSuffix(s, "\n") || !strings.Contains(s, "100%") {
		t.Fatalf("finished bar = %q", s)
	}

	// nil writer: silent, no panic.
	var q *progressBar = newProgressBar(nil, "x", 1, 0, nil)
	q.add(1)
	q.finish()
	q.abort()
}
