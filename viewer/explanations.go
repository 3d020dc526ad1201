package viewer

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"tdb/explain"
	"tdb/store"
)

// ExplanationsFunc reads a component's stored explanations (tdb serve
// passes explain.Read over its store).
type ExplanationsFunc func(ctx context.Context, dataset, location string, layer, index int) ([]explain.Explanation, error)

// handleExplanations answers GET /api/v1/explanations/{dataset}/{location}/{layer}/{index}
// with the component's explanations and scores ([] when there are none).
func (s *Server) handleExplanations(w http.ResponseWriter, r *http.Request) {
	layer, err1 := strconv.Atoi(r.PathValue("layer"))
	index, err2 := strconv.Atoi(r.PathValue("index"))
	if err1 != nil || err2 != nil || layer < 0 || index < 0 {
		s.fail(w, r, badf("layer and index must be non-negative integers, got %q and %q", r.PathValue("layer"), r.PathValue("index")))
		return
	}
	out := []explain.Explanation{}
	if s.opt.Explanations != nil {
		xs, err := s.opt.Explanations(r.Context(), r.PathValue("dataset"), r.PathValue("location"), layer, index)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
			s.fail(w, r, err)
			return
		case err != nil:
			s.fail(w, r, badInput{err})
			return
		default:
			out = append(out, xs...)
		}
	}
	writeData(w, out)
}
