package main

// Interim dataset API for tdb serve until the query service (issue 11,
// package query) is merged: the same paths and JSON shapes for the calls
// the viewer makes (dataset list, manifest, one component). Replaced by
// query's handler on merge.

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"encoding/json"

	"tdb/dataset"
	"tdb/model/tokenizer"
	"tdb/store"
)

type dataHandler struct {
	st  store.Store
	tok *tokenizer.Tokenizer
}

func newDataHandler(st store.Store) http.Handler {
	tok, _ := tokenizer.GPT2()
	return &dataHandler{st: st, tok: tok}
}

func (h *dataHandler) reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (h *dataHandler) fail(w http.ResponseWriter, code int, typ, msg string) {
	h.reply(w, code, map[string]any{"status": "error", "errorType": typ, "error": msg})
}

type dataRecord struct {
	Rank          int            `json:"rank"`
	MaxActivation float32        `json:"max_activation"`
	Source        dataset.Source `json:"source"`
	Tokens        []int32        `json:"tokens"`
	TokenStrings  []string       `json:"token_strings"`
	Activations   []float32      `json:"activations"`
	Pairs         bool           `json:"pairs,omitempty"`
}

func (h *dataHandler) records(rs []dataset.Record, pairs bool) []dataRecord {
	out := make([]dataRecord, len(rs))
	for i, r := range rs {
		ids := make([]int, len(r.Tokens))
		for j, t := range r.Tokens {
			ids[j] = int(t)
		}
		out[i] = dataRecord{Rank: i, MaxActivation: r.MaxActivation, Source: r.Source, Tokens: r.Tokens, TokenStrings: h.tok.Display(ids), Activations: r.Activations, Pairs: pairs}
	}
	return out
}

func (h *dataHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/api/v1/datasets"), "/"), "/")
	ctx := r.Context()
	switch {
	case r.URL.Path == "/api/v1/datasets" || r.URL.Path == "/api/v1/datasets/":
		keys, err := h.st.List(ctx, "datasets/")
		if err != nil {
			h.fail(w, 500, "internal", err.Error())
			return
		}
		list := []map[string]any{}
		for _, k := range keys {
			name, ok := strings.CutSuffix(strings.TrimPrefix(k, "datasets/"), "/manifest.json")
			if !ok || strings.Contains(name, "/") {
				continue
			}
			m, err := dataset.ReadManifest(ctx, h.st, name)
			if err != nil {
				continue
			}
			list = append(list, map[string]any{"name": m.Name, "model": m.Model, "corpus": m.Corpus, "tokens": m.Tokens, "n_ctx": m.NCtx, "locations": m.Locations})
		}
		h.reply(w, 200, map[string]any{"status": "success", "data": list})
	case len(parts) == 1 && parts[0] != "":
		m, err := dataset.ReadManifest(ctx, h.st, parts[0])
		if err != nil {
			h.notFound(w, err)
			return
		}
		h.reply(w, 200, map[string]any{"status": "success", "data": m})
	case len(parts) == 4:
		layer, err1 := strconv.Atoi(parts[2])
		index, err2 := strconv.Atoi(parts[3])
		if err1 != nil || err2 != nil {
			h.fail(w, 400, "bad_request", "layer and index must be numbers")
			return
		}
		v, err := dataset.ReadComponent(ctx, h.st, parts[0], parts[1], layer, index)
		if err != nil {
			h.notFound(w, err)
			return
		}
		type bucket struct {
			Bucket  int          `json:"bucket"`
			Lower   float32      `json:"lower"`
			Upper   float32      `json:"upper"`
			Records []dataRecord `json:"records"`
		}
		var qs []bucket
		for b, rs := range v.Quantiles {
			bk := bucket{Bucket: b, Records: h.records(rs, v.Pairs)}
			if b+1 < len(v.Stats.QuantileBoundaries) {
				bk.Lower, bk.Upper = v.Stats.QuantileBoundaries[b], v.Stats.QuantileBoundaries[b+1]
			}
			qs = append(qs, bk)
		}
		stats := map[string]any{"count": v.Stats.Count, "mean": v.Stats.Mean, "variance": v.Stats.Variance, "skewness": v.Stats.Skewness, "kurtosis": v.Stats.Kurtosis,
			"max": v.Stats.Max, "min": v.Stats.Min, "frac_nonzero": v.Stats.FracNonzero, "quantile_boundaries": v.Stats.QuantileBoundaries,
			"histogram": v.Stats.Histogram, "histogram_edges": dataset.HistogramEdgesJSON()}
		h.reply(w, 200, map[string]any{"status": "success", "data": map[string]any{"stats": stats, "top": h.records(v.Top, v.Pairs), "random": h.records(v.Random, v.Pairs), "quantiles": qs, "pairs": v.Pairs}})
	default:
		h.fail(w, 404, "not_found", "no such dataset API path (the full query service is not merged yet): "+r.URL.Path)
	}
}

func (h *dataHandler) notFound(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) || strings.Contains(err.Error(), "not found") || strings.Contains(err.Error(), "no ") {
		h.fail(w, 404, "not_found", err.Error())
		return
	}
	h.fail(w, 500, "internal", err.Error())
}
