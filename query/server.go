package query

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tdb/dataset"
	"tdb/model/tokenizer"
	"tdb/store"
)

// Prefix is where the API is served; mount the handler at Prefix+"/".
const Prefix = "/api/v1"

// Limits on parameters and response sizes.
const (
	MaxK            = 1024 // top records per component answer
	DefaultLimit    = 100
	MaxLimit        = 1000 // layer table rows per page
	MaxSearchLimit  = 200
	maxLayerOrIndex = 1 << 24
	maxTextBytes    = 256
)

// Options configure the API.
type Options struct {
	// Strings decodes token strings; nil loads the GPT-2 tokenizer.
	Strings Strings
	// Tokenizer encodes search tokens and texts; nil loads GPT-2's.
	Tokenizer *tokenizer.Tokenizer
	// CacheBytes bounds the LRU of decoded row groups, tables and rendered
	// components (0: 256 MiB).
	CacheBytes int64
	// AuthToken, if set, is required as "Authorization: Bearer TOKEN".
	AuthToken string
	// CORSOrigins are the origins allowed to call the API from a browser
	// ("*" for any).
	CORSOrigins []string
	// Timeout bounds each request's store reads (0: 30s).
	Timeout time.Duration
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
	// ExplanationsTTL is how long stored explanations are cached before
	// they are read again, so that explanations `tdb explain` adds later
	// show up (0: DefaultExplanationsTTL; < 0: read on every request).
	ExplanationsTTL time.Duration
	// Logger logs 5xx answers (nil: slog.Default()).
	Logger *slog.Logger
}

// API is the HTTP handler of the query service; it serves Prefix+"/...".
type API struct {
	r       *Reader
	tok     *tokenizer.Tokenizer
	opts    Options
	mux     *http.ServeMux
	metrics *metrics
	log     *slog.Logger
}

// New returns the API over st. Mount it with mux.Handle(query.Prefix+"/", api).
func New(st store.Store, opts Options) (*API, error) {
	tok := opts.Tokenizer
	if tok == nil || opts.Strings == nil {
		t, err := tokenizer.GPT2()
		if err != nil {
			return nil, fmt.Errorf("query: loading the tokenizer: %w", err)
		}
		if tok == nil {
			tok = t
		}
		if opts.Strings == nil {
			opts.Strings = TokenStrings(t)
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	a := &API{r: NewReader(st, opts.Strings, opts.CacheBytes), tok: tok, opts: opts, mux: http.NewServeMux(), log: opts.Logger}
	if a.log == nil {
		a.log = slog.Default()
	}
	if opts.ExplanationsTTL != 0 {
		a.r.explTTL = opts.ExplanationsTTL
	}
	a.metrics = newMetrics(opts.Registerer, a.r)
	a.r.cache.hits, a.r.cache.misses = a.metrics.hits.Inc, a.metrics.misses.Inc
	a.r.answers.hits, a.r.answers.misses = a.metrics.hits.Inc, a.metrics.misses.Inc
	for _, rt := range routes {
		h := rt.handle
		pattern := "GET " + Prefix + rt.path
		a.mux.Handle(pattern, a.instrument(rt.path, func(w http.ResponseWriter, req *http.Request) error { return h(a, w, req) }))
	}
	a.mux.Handle(Prefix+"/", a.instrument("other", func(w http.ResponseWriter, req *http.Request) error {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			return methodNotAllowed{req.Method}
		}
		return fmt.Errorf("no such endpoint %s (see %s/openapi.json): %w", req.URL.Path, Prefix, store.ErrNotFound)
	}))
	return a, nil
}

// Reader is the API's cached dataset reader.
func (a *API) Reader() *Reader { return a.r }

type route struct {
	path   string
	handle func(a *API, w http.ResponseWriter, r *http.Request) error
}

// routes are every endpoint; openapi.json must document each (tested).
var routes = []route{
	{"/datasets", (*API).datasets},
	{"/datasets/{dataset}", (*API).manifest},
	{"/datasets/{dataset}/search", (*API).search},
	{"/datasets/{dataset}/{location}/{layer}", (*API).layer},
	{"/datasets/{dataset}/{location}/{layer}/{index}", (*API).component},
	{"/datasets/{dataset}/{location}/{layer}/{index}/explanations", (*API).explanations},
	{"/datasets/{dataset}/{location}/{layer}/export", (*API).export},
	{"/openapi.json", (*API).openapi},
}

// ServeHTTP applies CORS and authentication, then routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := r.Header.Get("Origin"); origin != "" && a.corsAllowed(origin) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	if !a.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tdb"`)
		writeError(w, unauthorized{})
		return
	}
	a.mux.ServeHTTP(w, r)
}

func (a *API) corsAllowed(origin string) bool {
	return slices.Contains(a.opts.CORSOrigins, "*") || slices.Contains(a.opts.CORSOrigins, origin)
}

// authorized compares the bearer token in constant time (over hashes, so
// the length does not leak either).
func (a *API) authorized(r *http.Request) bool {
	if a.opts.AuthToken == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	x, y := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(a.opts.AuthToken))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// envelope is every JSON answer.
type envelope struct {
	Status    string `json:"status"`
	Data      any    `json:"data,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
}

type methodNotAllowed struct{ method string }

func (e methodNotAllowed) Error() string {
	return "method " + e.method + " not allowed (the API is read-only: GET)"
}

type unauthorized struct{}

func (unauthorized) Error() string {
	return "missing or wrong bearer token (send Authorization: Bearer TOKEN)"
}

// classify maps an error to its HTTP status and errorType: the one place
// that does.
func classify(err error) (int, string) {
	var bad badRequest
	var mna methodNotAllowed
	switch {
	case errors.As(err, &bad), errors.Is(err, dataset.ErrBadName):
		return http.StatusBadRequest, "bad_request"
	case errors.As(err, &mna):
		return http.StatusMethodNotAllowed, "bad_request"
	case errors.As(err, new(unauthorized)):
		return http.StatusUnauthorized, "bad_request"
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusInternalServerError, "internal"
}

func writeError(w http.ResponseWriter, err error) int {
	code, typ := classify(err)
	writeJSON(w, code, envelope{Status: "error", ErrorType: typ, Error: err.Error()})
	return code
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(envelope{Status: "error", ErrorType: "internal", Error: "encoding the answer: " + err.Error()})
	}
	writeBody(w, code, b)
}

func writeBody(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(b)
}

func success(w http.ResponseWriter, data any) error {
	writeJSON(w, http.StatusOK, envelope{Status: "success", Data: data})
	return nil
}

// statusWriter remembers the status code and whether anything was written.
type statusWriter struct {
	http.ResponseWriter
	code    int
	written bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.written {
		s.code, s.written = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if !s.written {
		s.code, s.written = http.StatusOK, true
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// instrument adds the request timeout, panic recovery, error mapping and
// metrics to a handler.
func (a *API) instrument(name string, h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), a.opts.Timeout)
		defer cancel()
		sw := &statusWriter{ResponseWriter: w}
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					if p == http.ErrAbortHandler {
						panic(p)
					}
					err = fmt.Errorf("internal error: %v", p)
				}
			}()
			return h(sw, r.WithContext(ctx))
		}()
		if err != nil {
			if sw.written {
				// Mid-stream (export): abort so the client sees a broken
				// transfer, not a silently short one.
				a.log.Error("query: answer failed after it started", "path", r.URL.Path, "err", err)
				panic(http.ErrAbortHandler)
			}
			code := writeError(sw, err)
			if code >= 500 {
				a.log.Error("query: request failed", "path", r.URL.Path, "status", code, "err", err)
			}
		}
		a.metrics.observe(name, sw.code, time.Since(start))
	})
}

// Parameter parsing: every bad parameter is a 400 that names it.

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, badf("%s=%q: want an integer in [%d, %d]", name, s, lo, hi)
	}
	return v, nil
}

func pathInt(r *http.Request, name string) (int, error) {
	s := r.PathValue(name)
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 || v > maxLayerOrIndex {
		return 0, badf("%s %q: want a non-negative integer", name, s)
	}
	return v, nil
}

// layerParams returns the dataset, location and layer of the path.
func layerParams(r *http.Request) (string, string, int, error) {
	name, location := r.PathValue("dataset"), r.PathValue("location")
	if err := dataset.CheckName("dataset", name); err != nil {
		return "", "", 0, badRequest{err.Error()}
	}
	if err := dataset.CheckName("location", location); err != nil {
		return "", "", 0, badRequest{err.Error()}
	}
	layer, err := pathInt(r, "layer")
	return name, location, layer, err
}

// componentParams are layerParams and the component index.
func componentParams(r *http.Request) (name, location string, layer, index int, err error) {
	if name, location, layer, err = layerParams(r); err == nil {
		index, err = pathInt(r, "index")
	}
	return name, location, layer, index, err
}

func (a *API) datasets(w http.ResponseWriter, r *http.Request) error {
	ds, err := a.r.Datasets(r.Context())
	if err != nil {
		return err
	}
	return success(w, ds)
}

func (a *API) manifest(w http.ResponseWriter, r *http.Request) error {
	m, err := a.r.Manifest(r.Context(), r.PathValue("dataset"))
	if err != nil {
		return err
	}
	return success(w, m)
}

func (a *API) component(w http.ResponseWriter, r *http.Request) error {
	name, location, layer, index, err := componentParams(r)
	if err != nil {
		return err
	}
	k, err := intParam(r, "k", 0, 0, MaxK)
	if err != nil {
		return err
	}
	if k == 0 {
		b, err := a.r.ComponentJSON(r.Context(), name, location, layer, index)
		if err != nil {
			return err
		}
		writeBody(w, http.StatusOK, b)
		return nil
	}
	c, err := a.r.Component(r.Context(), name, location, layer, index, k)
	if err != nil {
		return err
	}
	return success(w, c)
}

func (a *API) layer(w http.ResponseWriter, r *http.Request) error {
	name, location, layer, err := layerParams(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	sortBy, order := q.Get("sort"), q.Get("order")
	if sortBy == "" {
		sortBy = "index"
	}
	if order == "" {
		order = "desc"
		if sortBy == "index" {
			order = "asc"
		}
	}
	limit, err := intParam(r, "limit", DefaultLimit, 1, MaxLimit)
	if err != nil {
		return err
	}
	offset, err := intParam(r, "offset", 0, 0, maxLayerOrIndex)
	if err != nil {
		return err
	}
	t, err := a.r.Layer(r.Context(), name, location, layer, sortBy, order, limit, offset)
	if err != nil {
		return err
	}
	return success(w, t)
}

func (a *API) search(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	o := SearchOptions{Token: -1, Layer: -1, Location: q.Get("location"), Text: q.Get("text")}
	token, hasToken := q.Get("token"), q.Has("token")
	expl, hasExpl := q.Get("explanation"), q.Has("explanation")
	given := 0
	for _, b := range []bool{hasToken, o.Text != "", hasExpl} {
		if b {
			given++
		}
	}
	switch {
	case given != 1:
		return badf("give exactly one of token= (one token, e.g. %%20Paris or #6342), text= and explanation=")
	case len(o.Text) > maxTextBytes:
		return badf("text is %d bytes; at most %d", len(o.Text), maxTextBytes)
	case len(expl) > maxTextBytes:
		return badf("explanation is %d bytes; at most %d", len(expl), maxTextBytes)
	case hasExpl && strings.TrimSpace(expl) == "":
		return badf("explanation= is empty: give words to look for in explanations")
	case hasToken:
		id, err := a.tok.SingleToken(token)
		if err != nil {
			return badRequest{err.Error()}
		}
		o.Token = id
	}
	if o.Location != "" {
		if err := dataset.CheckName("location", o.Location); err != nil {
			return badRequest{err.Error()}
		}
	}
	var err error
	if q.Has("layer") {
		if o.Layer, err = intParam(r, "layer", -1, 0, maxLayerOrIndex); err != nil {
			return err
		}
	}
	if o.Limit, err = intParam(r, "limit", 20, 1, MaxSearchLimit); err != nil {
		return err
	}
	if hasExpl {
		res, err := a.r.SearchExplanations(r.Context(), r.PathValue("dataset"), expl, o)
		if err != nil {
			return err
		}
		return success(w, res)
	}
	res, err := a.r.Search(r.Context(), r.PathValue("dataset"), o)
	if err != nil {
		return err
	}
	return success(w, res)
}

func (a *API) explanations(w http.ResponseWriter, r *http.Request) error {
	name, location, layer, index, err := componentParams(r)
	if err != nil {
		return err
	}
	exps, err := a.r.Explanations(r.Context(), name, location, layer, index)
	if err != nil {
		return err
	}
	return success(w, exps)
}

func (a *API) export(w http.ResponseWriter, r *http.Request) error {
	name, location, layer, err := layerParams(r)
	if err != nil {
		return err
	}
	m, err := a.r.Manifest(r.Context(), name)
	if err != nil {
		return err
	}
	if err := checkLayer(m, location, layer); err != nil {
		return err
	}
	// Fail before the first byte when the layer's files cannot be opened.
	if _, err := a.r.layerStats(r.Context(), m, location, layer); err != nil {
		return err
	}
	if _, err := a.r.file(r.Context(), dataset.RecordsKey(name, location, layer)); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s-%d.jsonl.gz"`, name, location, layer))
	// Exports are long: the request timeout does not apply to them.
	return a.r.export(context.WithoutCancel(r.Context()), w, m, location, layer)
}

//go:embed openapi.json
var openapiJSON []byte

func (a *API) openapi(w http.ResponseWriter, r *http.Request) error {
	writeBody(w, http.StatusOK, openapiJSON)
	return nil
}

// Protect wraps h with the API's bearer-token check (for /metrics beside
// the API).
func (a *API) Protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tdb"`)
			writeError(w, unauthorized{})
			return
		}
		h.ServeHTTP(w, r)
	})
}
