package compat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"tdb/dataset"
	"tdb/debugger"
	"tdb/model/tokenizer"
	"tdb/store"
)

// Prefix is the path under which tdb serve mounts the handler.
const Prefix = "/compat"

// Options wires the handler to the engine, the datasets and explanations.
// Every field may be zero: routes that need a missing part answer a 4xx/5xx
// with a message the app shows.
type Options struct {
	// Engine answers inference (nil: no model loaded).
	Engine *debugger.Engine
	// Store holds the collated datasets; Datasets names the ones to serve
	// (empty: every dataset with a manifest under datasets/).
	Store    store.Store
	Datasets []string
	// ModelName is reported as /model_info's modelName and is the dataset
	// name the app puts in its URLs (default: "gpt2-small" for GPT-2 small,
	// else derived from the first dataset).
	ModelName string
	// Explanations answers /existing_explanations, /explain and /score
	// (nil: no explanations).
	Explanations Explanations
	// Tokenizer renders dataset tokens (default: the engine's, else GPT-2's).
	Tokenizer *tokenizer.Tokenizer
	// Logger receives one line per failed request (default: slog.Default()).
	Logger *slog.Logger
	// Acquire, when set, is called before each request's model work and
	// its done after (tdb serve passes its model queue, so the app shares
	// the viewer's limit); an error is answered 503 with its message.
	Acquire func(ctx context.Context) (done func(), err error)
}

// Handler serves the compatibility API.
type Handler struct {
	opts   Options
	mux    *http.ServeMux
	tokMu  sync.Mutex
	tokErr error
}

// New returns the handler. It serves the app's routes both bare
// ("/model_info") and under Prefix ("/compat/model_info"), so it can be
// mounted with or without http.StripPrefix.
func New(opts Options) http.Handler {
	if opts.Explanations == nil {
		opts.Explanations = NoExplanations{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Tokenizer == nil && opts.Engine != nil {
		opts.Tokenizer = opts.Engine.Tok
	}
	h := &Handler{opts: opts, mux: http.NewServeMux()}
	routes := map[string]func(ctx context.Context, body []byte) (any, error){
		"/model_info":                h.modelInfo,
		"/neuron_datasets_metadata":  h.datasetsMetadata,
		"/neuron_record":             h.neuronRecord,
		"/attention_head_record":     h.attentionHeadRecord,
		"/existing_explanations":     h.existingExplanations,
		"/explain":                   h.explain,
		"/score":                     h.score,
		"/derived_scalars":           h.derivedScalars,
		"/derived_attention_scalars": h.derivedAttentionScalars,
		"/batched":                   h.batched,
		"/batched_tdb":               h.batchedTdb,
	}
	for path, fn := range routes {
		h.mux.Handle(path, h.post(fn))
		h.mux.Handle(Prefix+path, h.post(fn))
	}
	return h
}

// ServeHTTP adds the CORS headers to every answer (errors and 404s too:
// without them the browser hides the message from the app).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", "*")
	hd.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", "Content-Type")
	hd.Set("Access-Control-Max-Age", "600")
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if _, pattern := h.mux.Handler(r); pattern == "" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route %s (the compatibility API answers POST %s/model_info, /batched_tdb, ...)", r.URL.Path, Prefix))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// maxBody bounds request bodies (prompts are short).
const maxBody = 4 << 20

// errStatus is an error with its HTTP status.
type errStatus struct {
	code int
	err  error
}

func (e errStatus) Error() string { return e.err.Error() }
func (e errStatus) Unwrap() error { return e.err }

func badRequest(format string, a ...any) error {
	return errStatus{http.StatusBadRequest, fmt.Errorf(format, a...)}
}

func unavailable(format string, a ...any) error {
	return errStatus{http.StatusServiceUnavailable, fmt.Errorf(format, a...)}
}

func notFound(format string, a ...any) error {
	return errStatus{http.StatusNotFound, fmt.Errorf(format, a...)}
}

func (h *Handler) post(fn func(ctx context.Context, body []byte) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s takes POST, not %s", r.URL.Path, r.Method))
			return
		}
		var body []byte
		var err error
		if r.Body != nil {
			body, err = io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
			return
		}
		if len(body) > maxBody {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", maxBody))
			return
		}
		out, err := fn(r.Context(), body)
		if err != nil {
			code := status(err)
			if code == http.StatusInternalServerError {
				h.opts.Logger.Error("compat request failed", "path", r.URL.Path, "err", err)
			}
			writeError(w, code, err.Error())
			return
		}
		b, err := json.Marshal(out)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "encoding the response: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

// status maps an error to its HTTP status.
func status(err error) int {
	var es errStatus
	var br debugger.BadRequest
	switch {
	case errors.As(err, &es):
		return es.code
	case errors.As(err, &br):
		return http.StatusBadRequest
	case errors.Is(err, dataset.ErrBadName):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrNotFound), errors.Is(err, dataset.ErrNoDataset):
		return http.StatusNotFound
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// decode reads a JSON body into v; unknown fields are allowed (the app
// sends more than tdb needs).
func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return badRequest("empty request body: this route takes a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("bad JSON request: %v", err)
	}
	return nil
}

// engine returns the engine, once Options.Acquire lets the request run,
// or a 503 that says why not; call done when the model work is over.
// decodeForEngine decodes a request for model work into v, then takes the
// engine as engine does.
func (h *Handler) decodeForEngine(ctx context.Context, body []byte, v any) (*debugger.Engine, func(), error) {
	if err := decode(body, v); err != nil {
		return nil, nil, err
	}
	return h.engine(ctx)
}

func (h *Handler) engine(ctx context.Context) (e *debugger.Engine, done func(), err error) {
	if h.opts.Engine == nil {
		return nil, nil, unavailable("no model is loaded: start tdb serve with a model to answer inference requests")
	}
	done = func() {}
	if h.opts.Acquire != nil {
		if done, err = h.opts.Acquire(ctx); err != nil {
			return nil, nil, unavailable("%v", err)
		}
	}
	return h.opts.Engine, done, nil
}

// tokenizer returns the tokenizer for dataset tokens.
func (h *Handler) tokenizer() (*tokenizer.Tokenizer, error) {
	h.tokMu.Lock()
	defer h.tokMu.Unlock()
	if h.opts.Tokenizer == nil && h.tokErr == nil {
		h.opts.Tokenizer, h.tokErr = tokenizer.GPT2()
	}
	return h.opts.Tokenizer, h.tokErr
}
