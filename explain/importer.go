package explain

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"tdb/store"
)

// ImportName is the explainer name of imported explanations.
const ImportName = "import"

// Import copies public explanation files into a dataset's explanations.
// The source store holds one JSONL file per component at
// "{layer}/{index}.jsonl" (open it at the folder, e.g.
// https://openaipublic.blob.core.windows.net/neuron-explainer/data/explanations
// for anonymous reads). Each line is either the neuron-explainer form
// ({"scored_explanations": [{"explanation", "scored_simulation":
// {"ev_correlation_score", ...}}]}) or a flat {"explanation", "score"}.
type Import struct {
	Source   store.Store
	Store    store.Store
	Dataset  string
	Location string
	// Layers and Components to fetch; each (layer, component) file that is
	// missing at the source is counted, not an error.
	Layers     []int
	Components []int
	// Model names where the explanations came from (Method.Model), e.g.
	// "gpt-4"; the method is {import, Model}.
	Model string
	// Workers fetch files in parallel (≤ 0: 8).
	Workers  int
	Progress io.Writer
	Now      func() time.Time
}

// ImportSummary counts an import.
type ImportSummary struct {
	Imported int `json:"imported"`
	Missing  int `json:"missing"`
}

// maxImportLine bounds one JSONL line (the neuron-explainer lines carry
// every simulated sequence).
const maxImportLine = 64 << 20

// Run imports every requested component. A component with several
// explanations keeps the one with the best simulation score (one row per
// component and method).
func (im *Import) Run(ctx context.Context) (ImportSummary, error) {
	if err := checkName("dataset", im.Dataset); err != nil {
		return ImportSummary{}, err
	}
	if err := checkName("location", im.Location); err != nil {
		return ImportSummary{}, err
	}
	now := im.Now
	if now == nil {
		now = time.Now
	}
	workers := im.Workers
	if workers <= 0 {
		workers = 8
	}
	var sum ImportSummary
	method := Method{Explainer: ImportName, Model: im.Model}
	for _, layer := range im.Layers {
		var mu sync.Mutex
		var rows []Row
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(workers)
		for _, idx := range im.Components {
			g.Go(func() error {
				key := fmt.Sprintf("%d/%d.jsonl", layer, idx)
				ex, err := fetchExplanations(gctx, im.Source, key)
				mu.Lock()
				defer mu.Unlock()
				if errors.Is(err, store.ErrNotFound) {
					sum.Missing++
					return nil
				}
				if err != nil {
					return err
				}
				if len(ex) == 0 {
					sum.Missing++
					return nil
				}
				best := ex[0]
				for _, e := range ex[1:] {
					if e.Scores.Simulation != nil && (best.Scores.Simulation == nil || e.Scores.Simulation.Value > best.Scores.Simulation.Value) {
						best = e
					}
				}
				best.Method, best.Created = method, now().UTC()
				rows = append(rows, Row{Location: im.Location, Layer: layer, Component: idx, Explanation: best})
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return sum, err
		}
		if err := Write(ctx, im.Store, im.Dataset, rows); err != nil {
			return sum, err
		}
		sum.Imported += len(rows)
		if im.Progress != nil {
			fmt.Fprintf(im.Progress, "explain import: layer %d: %d explanations imported (%d missing so far)\n", layer, len(rows), sum.Missing)
		}
	}
	return sum, nil
}

// fetchExplanations reads and parses one public JSONL file.
func fetchExplanations(ctx context.Context, st store.Store, key string) ([]Explanation, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("explain import: %s in %s: %w", key, st, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 4*maxImportLine))
	if err != nil {
		return nil, fmt.Errorf("explain import: reading %s: %w", key, err)
	}
	ex, err := ParseExplanationsJSONL(data)
	if err != nil {
		return nil, fmt.Errorf("explain import: %s: %w", key, err)
	}
	return ex, nil
}

// publicLine is either form of a public explanation line.
type publicLine struct {
	Explanation        *string           `json:"explanation"`
	Score              *float64          `json:"score"`
	EVCorrelationScore *float64          `json:"ev_correlation_score"`
	ScoredSimulation   *scoredSimulation `json:"scored_simulation"`
	ScoredExplanations []struct {
		Explanation      *string           `json:"explanation"`
		ScoredSimulation *scoredSimulation `json:"scored_simulation"`
	} `json:"scored_explanations"`
}

type scoredSimulation struct {
	EVCorrelationScore        *float64 `json:"ev_correlation_score"`
	RSquaredScore             *float64 `json:"rsquared_score"`
	AbsoluteDevExplainedScore *float64 `json:"absolute_dev_explained_score"`
}

// ParseExplanationsJSONL parses a public explanations file: one JSON object
// a line, in the neuron-explainer form or the flat form (see Import).
// Scores come in as simulation scores judged "import", with the public
// file's other score fields as details.
func ParseExplanationsJSONL(data []byte) ([]Explanation, error) {
	var out []Explanation
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxImportLine)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var p publicLine
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		n := len(out)
		if p.Explanation != nil {
			s := p.ScoredSimulation
			if s == nil {
				s = &scoredSimulation{EVCorrelationScore: p.EVCorrelationScore}
				if s.EVCorrelationScore == nil {
					s.EVCorrelationScore = p.Score
				}
			}
			out = append(out, importedExplanation(*p.Explanation, s))
		}
		for _, e := range p.ScoredExplanations {
			if e.Explanation != nil {
				out = append(out, importedExplanation(*e.Explanation, e.ScoredSimulation))
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("line %d: no explanation (want \"explanation\" or \"scored_explanations\")", line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func importedExplanation(text string, s *scoredSimulation) Explanation {
	e := Explanation{Explanation: text}
	if s == nil || s.EVCorrelationScore == nil {
		return e
	}
	details := map[string]float64{}
	if s.RSquaredScore != nil {
		details["rsquared_score"] = *s.RSquaredScore
	}
	if s.AbsoluteDevExplainedScore != nil {
		details["absolute_dev_explained_score"] = *s.AbsoluteDevExplainedScore
	}
	var raw json.RawMessage
	if len(details) > 0 {
		raw, _ = json.Marshal(details)
	}
	e.Scores.Simulation = &Score{Value: *s.EVCorrelationScore, Judge: ImportName, Details: raw}
	return e
}

// ParseIndexList parses "0-9,12" style lists (layers and components on the
// command line).
func ParseIndexList(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 0 || b < a || b-a > 1<<24 {
			return nil, fmt.Errorf("bad index list %q: want e.g. 0-11 or 3,5,7", s)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
