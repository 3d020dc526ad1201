package viewer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tdb/debugger"
	"tdb/model"
	"tdb/model/tokenizer"
)

//go:embed static
var staticFS embed.FS

// Options configure a Server.
type Options struct {
	// Engine answers TDB requests; nil serves the dataset pages only (the
	// TDB page then says that no model is loaded).
	Engine *debugger.Engine
	// ModelName is shown in the page header ("gpt2", "random:tiny").
	ModelName string
	// Autoencoders names the spliced-in autoencoders by kind, for the
	// page's switches: "mlp" and "attention".
	Autoencoders map[string][]string
	// Data serves every /api/v1 path the viewer does not (the query
	// service: /api/v1/datasets...); nil answers them 503 "no store".
	Data http.Handler
	// Datasets are the datasets the user named (--dataset): the node
	// table links to component pages in the first one that has the node's
	// location.
	Datasets []string
	// AuthToken, when set, is required on every request but /healthz:
	// "Authorization: Bearer TOKEN", or once as ?token=TOKEN on a page,
	// which sets a cookie.
	AuthToken string
	// Workers is how many model requests run at once (default 1); Queue
	// how many more may wait (0: default 8; negative: none). Beyond: 503.
	Workers, Queue int
	// RequestTimeout bounds one model request, waiting included (default 2m).
	RequestTimeout time.Duration
	// MaxPromptTokens limits each prompt (default 256, at most the
	// model's context).
	MaxPromptTokens int
	// Log receives one line per failed request (default: discard).
	Log *slog.Logger
	// Explanations reads a component's explanations (nil: none).
	Explanations ExplanationsFunc
	// Mounts serves more handlers by path prefix ("/compat/" for the
	// original TDB front end's API, issue 13), behind the same auth check.
	Mounts map[string]http.Handler
	// OpenMounts lists Mounts prefixes served without the auth token
	// (tdb serve --compat-open: the original front end cannot send one).
	OpenMounts []string
	// Registry gathers /metrics; pass the one the Data handler registers
	// with so that one scrape sees both (nil: a new one).
	Registry *prometheus.Registry
}

// Server is the viewer's http.Handler.
type Server struct {
	opt     Options
	tok     *tokenizer.Tokenizer
	q       *queue
	mux     *http.ServeMux
	reg     *prometheus.Registry
	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
	busy    prometheus.Counter
}

// maxBody bounds request bodies.
const maxBody = 1 << 20

// New builds the server.
func New(opt Options) (*Server, error) {
	if opt.Workers <= 0 {
		opt.Workers = 1
	}
	switch {
	case opt.Queue < 0:
		opt.Queue = 0
	case opt.Queue == 0:
		opt.Queue = 8
	}
	if opt.RequestTimeout <= 0 {
		opt.RequestTimeout = 2 * time.Minute
	}
	if opt.MaxPromptTokens <= 0 {
		opt.MaxPromptTokens = 256
	}
	if opt.Engine != nil && opt.MaxPromptTokens > opt.Engine.Model.NCtx {
		opt.MaxPromptTokens = opt.Engine.Model.NCtx
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		return nil, err
	}
	reg := opt.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	s := &Server{opt: opt, tok: tok, q: newQueue(opt.Workers, opt.Queue), mux: http.NewServeMux(), reg: reg}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tdb_viewer_requests_total", Help: "Viewer API requests by route and status code."}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tdb_viewer_request_seconds", Help: "Viewer API latency by route.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14)}, []string{"route"})
	s.busy = prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_viewer_busy_total", Help: "Model requests refused because the queue was full."})
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tdb_viewer_queue_depth", Help: "Model requests running or waiting."}, func() float64 { return float64(s.q.depth()) })
	if err := s.reg.Register(s.reqs); err != nil {
		return nil, fmt.Errorf("viewer metrics: %w", err)
	}
	s.reg.MustRegister(s.latency, s.busy, depth)

	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(static)
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", cacheHeaders(files)))
	index, err := fs.ReadFile(static, "index.html")
	if err != nil {
		return nil, err
	}
	page := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(index)
	}
	for _, p := range []string{"GET /{$}", "GET /tdb", "GET /c/", "GET /search", "GET /l/", "GET /datasets/"} {
		s.mux.HandleFunc(p, page)
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("POST /api/v1/tdb", s.instrument("tdb", s.handleTDB))
	s.mux.HandleFunc("POST /api/v1/activations", s.instrument("activations", s.handleActivations))
	s.mux.HandleFunc("POST /api/v1/lens", s.instrument("lens", s.handleLens))
	s.mux.HandleFunc("POST /api/v1/tokenize", s.instrument("tokenize", s.handleTokenize))
	s.mux.HandleFunc("GET /api/v1/model", s.instrument("model", s.handleModel))
	s.mux.HandleFunc("GET /api/v1/explanations/{dataset}/{location}/{layer}/{index}", s.instrument("explanations", s.handleExplanations))
	for prefix, h := range opt.Mounts {
		if !strings.HasPrefix(prefix, "/") || !strings.HasSuffix(prefix, "/") || prefix == "/" || strings.HasPrefix(prefix, "/api/") || strings.HasPrefix(prefix, "/static/") {
			return nil, fmt.Errorf("viewer: mount %q: want a /prefix/ outside /, /api/ and /static/", prefix)
		}
		s.mux.Handle(prefix, h)
	}
	for _, p := range opt.OpenMounts {
		if _, ok := opt.Mounts[p]; !ok {
			return nil, fmt.Errorf("viewer: open mount %q is not a mount", p)
		}
	}
	s.mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		if s.opt.Data == nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "no dataset store: start tdb serve with --store to browse datasets")
			return
		}
		s.opt.Data.ServeHTTP(w, r)
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeError(w, http.StatusNotFound, "not_found", "no API at "+r.URL.Path)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.NotFound(w, r)
			return
		}
		// Unknown pages get the app with 404: it shows a visible message.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write(index)
	})
	return s, nil
}

func cacheHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// ServeHTTP checks the token, sets security headers and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // prompts live in URLs
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	if s.opt.AuthToken != "" && r.URL.Path != "/healthz" && !s.openMount(r.URL.Path) && !s.authorized(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// openMount says whether path lies under an OpenMounts prefix (cleaned
// first, so that /compat/../api/v1/tdb is not under /compat/).
func (s *Server) openMount(p string) bool {
	if len(s.opt.OpenMounts) == 0 {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if clean != p {
		return false // the mux redirects unclean paths; the redirect target is checked again
	}
	for _, m := range s.opt.OpenMounts {
		if strings.HasPrefix(p, m) {
			return true
		}
	}
	return false
}

const authCookie = "tdb_auth"

// authorized checks the bearer token, the cookie, or ?token= on a page
// load (which then sets the cookie and redirects to the clean URL).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && s.tokenOK(auth) {
		return true
	}
	if c, err := r.Cookie(authCookie); err == nil && s.tokenOK(c.Value) {
		return true
	}
	if t := r.URL.Query().Get("token"); t != "" && r.Method == http.MethodGet && s.tokenOK(t) {
		http.SetCookie(w, &http.Cookie{Name: authCookie, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		q := r.URL.Query()
		q.Del("token")
		u := *r.URL
		u.RawQuery = q.Encode()
		http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="tdb"`)
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" {
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong auth token (Authorization: Bearer TOKEN)")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, "tdb serve needs its auth token: open this page once with ?token=TOKEN\n")
	}
	return false
}

// tokenOK compares in constant time (hashing first hides the length).
func (s *Server) tokenOK(t string) bool {
	a, b := sha256.Sum256([]byte(t)), sha256.Sum256([]byte(s.opt.AuthToken))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (s *Server) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
		s.reqs.WithLabelValues(route, fmt.Sprint(sw.code)).Inc()
	}
}

// envelope is the query service's answer format, used for all of /api/v1.
type envelope struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeData(w http.ResponseWriter, data any) {
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: data})
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, envelope{Status: "error", ErrorType: typ, Error: msg})
}

// fail maps an error to the envelope: request errors 400, busy 503,
// cancelled 499-ish (client gone), anything else 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var bad debugger.BadRequest
	switch {
	case errors.As(err, &bad), errors.As(err, new(badInput)):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, errBusy):
		s.busy.Inc()
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "request cancelled or timed out: "+err.Error())
	default:
		s.opt.Log.Error("viewer request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

// badInput is an error in the user's request.
type badInput struct{ error }

func badf(format string, a ...any) error { return badInput{fmt.Errorf(format, a...)} }

// decode reads a JSON body strictly.
func decode(r *http.Request, w http.ResponseWriter, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badf("bad JSON body: %v", err)
	}
	return nil
}

func (s *Server) noModel(w http.ResponseWriter) bool {
	if s.opt.Engine == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "no model loaded: start tdb serve with --model")
		return true
	}
	return false
}

// modelRequest reads the request of a handler that runs the model: 503
// without a model, 400 for a body that is not a T. ok false: it has
// answered.
func modelRequest[T any](s *Server, w http.ResponseWriter, r *http.Request) (req T, ok bool) {
	if s.noModel(w) {
		return req, false
	}
	if err := decode(r, w, &req); err != nil {
		s.fail(w, r, err)
		return req, false
	}
	return req, true
}

// checkPrompt limits a prompt's token length.
func (s *Server) checkPrompt(name, prompt string, tokens int) error {
	n := tokens
	if prompt != "" {
		if len(prompt) > 64*s.opt.MaxPromptTokens {
			return badf("%s is too long: %d bytes (the limit is %d tokens)", name, len(prompt), s.opt.MaxPromptTokens)
		}
		n = len(s.tok.Encode(prompt))
	}
	if n > s.opt.MaxPromptTokens {
		return badf("%s is too long: %d tokens, the limit is %d", name, n, s.opt.MaxPromptTokens)
	}
	return nil
}

// handleTDB answers POST /api/v1/tdb: a debugger.Request in, the
// debugger.Response as the envelope's data.
func (s *Server) handleTDB(w http.ResponseWriter, r *http.Request) {
	req, ok := modelRequest[debugger.Request](s, w, r)
	if !ok {
		return
	}
	if req.Prompt == "" && len(req.Tokens) == 0 {
		s.fail(w, r, badf("the prompt is empty"))
		return
	}
	if err := s.checkPrompt("the prompt", req.Prompt, len(req.Tokens)); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.checkPrompt("the second prompt", req.SecondPrompt, 0); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.TopK > 200 || req.Candidates > 1000 || len(req.Inspect) > 64 || len(req.Ablations) > 256 {
		s.fail(w, r, badf("request too large: top_k ≤ 200, candidates ≤ 1000, inspect ≤ 64 nodes, ablations ≤ 256"))
		return
	}
	ctx, done, ok := s.modelSlot(w, r)
	if !ok {
		return
	}
	defer done()
	resp, err := s.opt.Engine.Run(ctx, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeData(w, resp)
}

// TokenizeRequest is POST /api/v1/tokenize's body.
type TokenizeRequest struct {
	Text string `json:"text"`
}

// handleTokenize splits text into tokens (the page warns about
// multi-token targets before submitting).
func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) {
	var req TokenizeRequest
	if err := decode(r, w, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if len(req.Text) > 64*1024 {
		s.fail(w, r, badf("text too long: %d bytes (limit 65536)", len(req.Text)))
		return
	}
	ids := s.tok.Encode(req.Text)
	writeData(w, map[string]any{"tokens": tokenList(s.tok, ids)})
}

func tokenList(tok *tokenizer.Tokenizer, ids []int) []debugger.Token {
	disp := tok.Display(ids)
	out := make([]debugger.Token, len(ids))
	for i, id := range ids {
		out[i] = debugger.Token{ID: id, Text: disp[i]}
	}
	return out
}

// ModelInfo is GET /api/v1/model: what the pages need to know about the
// server's model and settings.
type ModelInfo struct {
	Loaded          bool                `json:"loaded"`
	Name            string              `json:"name,omitempty"`
	Random          bool                `json:"random"`
	Config          *model.Config       `json:"config,omitempty"`
	Params          int64               `json:"params,omitempty"`
	Autoencoders    map[string][]string `json:"autoencoders"`
	Datasets        []string            `json:"datasets"`
	MaxPromptTokens int                 `json:"max_prompt_tokens"`
	Data            bool                `json:"data"`
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	info := ModelInfo{Name: s.opt.ModelName, Autoencoders: s.opt.Autoencoders, Datasets: s.opt.Datasets, MaxPromptTokens: s.opt.MaxPromptTokens, Data: s.opt.Data != nil}
	if info.Autoencoders == nil {
		info.Autoencoders = map[string][]string{}
	}
	if info.Datasets == nil {
		info.Datasets = []string{}
	}
	if e := s.opt.Engine; e != nil {
		cfg := e.Model.Config
		info.Loaded, info.Config, info.Params = true, &cfg, e.Model.Params()
		info.Random = e.Model.Random || strings.HasPrefix(s.opt.ModelName, "random:")
	}
	writeData(w, info)
}
