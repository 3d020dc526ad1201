package hub

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHub imitates huggingface.co's resolve endpoint: small files are served
// directly with their git blob id as ETag; model.safetensors is an LFS file
// answered with a 302 carrying X-Linked-Etag (sha256) and X-Linked-Size to a
// separate CDN server (reached as "localhost", another host than the hub's
// 127.0.0.1) whose own ETag is not the sha256. Both support Range requests
// through http.ServeContent.
type fakeHub struct {
	t   testing.TB
	hub *httptest.Server
	cdn *httptest.Server

	mu       sync.Mutex
	repos    map[string]map[string][]byte // "owner/name@rev" -> file -> content
	requests []request
	// Behaviour knobs, read under mu.
	cutOnce     int64         // >0: the next CDN answer sends this many bytes, then drops the connection
	hangOnce    int64         // >0: the next CDN answer sends this many bytes, then blocks until the client goes away
	hangStarted chan struct{} // closed once a hanging answer has sent its bytes
	failOnce    int           // >0: the next CDN answers are 503s
	ignoreRange bool          // the CDN answers every request with 200 and the whole file
	corrupt     bool          // the CDN flips one byte of what it serves
	lieSize     int64         // !=0: added to X-Linked-Size
	status      int           // !=0: the hub answers every request with this status
	errorCode   string        // X-Error-Code sent with status
}

// request is what the fake servers saw.
type request struct {
	server string // "hub" or "cdn"
	path   string
	rng    string
	auth   string
}

func newFakeHub(t testing.TB) *fakeHub {
	t.Helper()
	h := &fakeHub{t: t, repos: map[string]map[string][]byte{}}
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	t.Cleanup(func() {
		h.hub.Close()
		h.cdn.Close()
	})
	return h
}

func (h *fakeHub) add(repo, rev string, files map[string][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[repo+"@"+rev] = files
}

// newFakeHubWith is a fake hub serving a test checkpoint (testCheckpoint
// of seed and weightBytes) as the main revision of repo; it returns the
// hub and the checkpoint's files.
func newFakeHubWith(t testing.TB, repo string, seed uint64, weightBytes int) (*fakeHub, map[string][]byte) {
	t.Helper()
	h := newFakeHub(t)
	files := testCheckpoint(t, seed, weightBytes)
	h.add(repo, "main", files)
	return h, files
}

func (h *fakeHub) log() []request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]request(nil), h.requests...)
}

func (h *fakeHub) count(server, suffix string) int {
	n := 0
	for _, r := range h.log() {
		if r.server == server && strings.HasSuffix(r.path, suffix) {
			n++
		}
	}
	return n
}

func (h *fakeHub) record(server string, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests = append(h.requests, request{server, r.URL.Path, r.Header.Get("Range"), r.Header.Get("Authorization")})
}

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record("hub", r)
	h.mu.Lock()
	status, code, lie := h.status, h.errorCode, h.lieSize
	h.mu.Unlock()
	if status != 0 {
		if code != "" {
			w.Header().Set("X-Error-Code", code)
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	// /{owner}/{name}/resolve/{rev}/{file}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/", 5)
	if len(parts) != 5 || parts[2] != "resolve" {
		http.NotFound(w, r)
		return
	}
	for i := range parts {
		var err error
		if parts[i], err = url.PathUnescape(parts[i]); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	h.mu.Lock()
	files, ok := h.repos[parts[0]+"/"+parts[1]+"@"+parts[3]]
	h.mu.Unlock()
	if !ok {
		w.Header().Set("X-Error-Code", "RepoNotFound")
		w.WriteHeader(http.StatusUnauthorized) // what huggingface.co does for unknown repos
		return
	}
	data, ok := files[parts[4]]
	if !ok {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.NotFound(w, r)
		return
	}
	if parts[4] != weightsFile {
		blob := sha1.Sum(append([]byte(fmt.Sprintf("blob %d\x00", len(data))), data...))
		w.Header().Set("ETag", `"`+hex.EncodeToString(blob[:])+`"`)
		http.ServeContent(w, r, parts[4], time.Time{}, bytes.NewReader(data))
		return
	}
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	w.Header().Set("X-Linked-Etag", `"`+hexSum+`"`)
	w.Header().Set("X-Linked-Size", strconv.FormatInt(int64(len(data))+lie, 10))
	w.Header().Set("ETag", `W/"`+hexSum+`"`)
	cdn := strings.Replace(h.cdn.URL, "127.0.0.1", "localhost", 1)
	w.Header().Set("Location", cdn+"/blobs/"+parts[0]+"/"+parts[1]+"/"+url.PathEscape(parts[3])+"/"+hexSum)
	w.WriteHeader(http.StatusFound)
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.record("cdn", r)
	// /blobs/{owner}/{name}/{rev}/{sha}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.EscapedPath(), "/blobs/"), "/", 4)
	if len(parts) != 4 {
		http.NotFound(w, r)
		return
	}
	parts[2], _ = url.PathUnescape(parts[2])
	h.mu.Lock()
	data := h.repos[parts[0]+"/"+parts[1]+"@"+parts[2]][weightsFile]
	cut, hang, started, fail := h.cutOnce, h.hangOnce, h.hangStarted, h.failOnce
	if fail > 0 {
		h.failOnce--
	} else {
		h.cutOnce, h.hangOnce = 0, 0
	}
	ignore, corrupt := h.ignoreRange, h.corrupt
	h.mu.Unlock()
	if fail > 0 {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	if corrupt {
		data = bytes.Clone(data)
		data[len(data)/3] ^= 0x40
	}
	// A CDN ETag that looks like a sha256 but is not one of the content.
	bogus := sha256.Sum256([]byte("cdn:" + parts[3]))
	w.Header().Set("ETag", `"`+hex.EncodeToString(bogus[:])+`"`)
	if ignore {
		r.Header.Del("Range")
	}
	switch {
	case cut > 0:
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-body
	case hang > 0:
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:hang])
		w.(http.Flusher).Flush()
		if started != nil {
			close(started)
		}
		<-r.Context().Done()
		return
	}
	http.ServeContent(w, r, "model.safetensors", time.Time{}, bytes.NewReader(data))
}

// testCheckpoint makes a config.json and a valid safetensors file of about
// weightBytes random float32 bytes.
func testCheckpoint(t testing.TB, seed uint64, weightBytes int) map[string][]byte {
	t.Helper()
	n := weightBytes / 4
	header := fmt.Sprintf(`{"wte.weight":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}}`, n, 4*n)
	for len(header)%8 != 0 {
		header += " "
	}
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, uint64(len(header)))
	buf.WriteString(header)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	body := make([]byte, 4*n)
	for i := 0; i+8 <= len(body); i += 8 {
		binary.LittleEndian.PutUint64(body[i:], rng.Uint64())
	}
	buf.Write(body)
	config := fmt.Sprintf(`{"model_type":"gpt2","n_embd":768,"n_layer":12,"n_head":12,"n_ctx":1024,"n_positions":1024,"vocab_size":50257,"seed":%d}`, seed)
	return map[string][]byte{configFile: []byte(config), weightsFile: buf.Bytes()}
}
