package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"tdb/internal/syncbuf"
)

// startServe runs tdb serve in-process on a free port and returns its URL.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var sout, serr syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), &sout, &serr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("tdb serve did not stop")
		}
	})
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(sout.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			t.Fatalf("tdb serve exited %d: %s %s", code, sout.String(), serr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tdb serve did not start: %s %s", sout.String(), serr.String())
		}
	}
}

// POST /api/v1/tdb on tdb serve answers what tdb debug --json prints.
func TestServeAnswersLikeDebug(t *testing.T) {
	base := startServe(t, "--model", "random:tiny")
	res, err := http.Get(base + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v", err, res)
	}
	res.Body.Close()
	const prompt = "<|endoftext|>Paris, France. Ottawa,"
	body := `{"prompt":"<|endoftext|>Paris, France. Ottawa,","targets":[" Canada"],"distractors":[" Germany"],"loss":"logit_diff","top_k":10,"ablations":[{"node":{"type":"mlp_neuron","layer":0,"index":5,"token":-1},"value":0}]}`
	res, err = http.Post(base+"/api/v1/tdb", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || res.StatusCode != 200 || env.Status != "success" {
		t.Fatalf("POST /api/v1/tdb: %d %s", res.StatusCode, raw)
	}
	code, out, errOut := runTDB(t, "debug", "--model", "random:tiny", "--prompt", prompt, "--target", " Canada", "--distractor", " Germany", "--ablate", "mlp_L0_5", "--json")
	if code != 0 {
		t.Fatalf("debug: %s", errOut)
	}
	var got, want any
	json.Unmarshal(env.Data, &got)
	json.Unmarshal([]byte(out), &want)
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("serve and debug differ:\nserve %.400s\ndebug %.400s", g, w)
	}
}

func TestServeBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--model", "none", "--workers", "0"},
		{"serve", "--model", "none", "--max-prompt-tokens", "0"},
		{"serve", "--model", "none", "--addr", "nonsense"},
		{"serve", "--model", "random:nope"},
	} {
		if code, _, errOut := runTDB(t, args...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d (%s), want 2 with a message", args, code, errOut)
		}
	}
}

// With --auth-token, /compat needs the token (the original app cannot send
// one) unless --compat-open; the rest of the server needs it either way.
func TestServeCompatOpen(t *testing.T) {
	post := func(url, hdr string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", url, nil)
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	closed := startServe(t, "--model", "random:tiny", "--auth-token", "s3cret")
	if code := post(closed+"/compat/model_info", ""); code != 401 {
		t.Errorf("/compat without the token and without --compat-open: %d, want 401", code)
	}
	if code := post(closed+"/compat/model_info", "Bearer s3cret"); code != 200 {
		t.Errorf("/compat with the token: %d, want 200", code)
	}
	open := startServe(t, "--model", "random:tiny", "--auth-token", "s3cret", "--compat-open")
	if code := post(open+"/compat/model_info", ""); code != 200 {
		t.Errorf("/compat without the token under --compat-open: %d, want 200", code)
	}
	if code := post(open+"/api/v1/tokenize", ""); code != 401 {
		t.Errorf("/api/v1/tokenize without the token under --compat-open: %d, want 401", code)
	}
}

// $TDB_AUTH_TOKEN sets the token like --auth-token does, and neither tdb
// serve's nor tdb query's --help prints it (a flag's default would be).
func TestServeAuthTokenFromEnv(t *testing.T) {
	t.Setenv("TDB_AUTH_TOKEN", "env-s3cret")
	for _, cmd := range []string{"serve", "query"} {
		code, _, help := runTDB(t, cmd, "--help")
		if code != 0 || !strings.Contains(help, "$TDB_AUTH_TOKEN") || strings.Contains(help, "env-s3cret") {
			t.Fatalf("tdb %s --help (exit %d) should name $TDB_AUTH_TOKEN but not print its value:\n%s", cmd, code, help)
		}
	}
	url := startServe(t, "--model", "random:tiny")
	for _, c := range []struct {
		hdr  string
		want int
	}{{"", 401}, {"Bearer env-s3cret", 200}} {
		req, _ := http.NewRequest("POST", url+"/api/v1/tokenize", strings.NewReader(`{"text":"hi"}`))
		if c.hdr != "" {
			req.Header.Set("Authorization", c.hdr)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("tokenize with %q: %d, want %d", c.hdr, res.StatusCode, c.want)
		}
	}
}
