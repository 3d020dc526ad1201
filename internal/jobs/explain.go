package jobs

import (
	"fmt"
	"slices"
	"strings"
)

// KindExplain is the JobSpec.Kind of an explain job: it explains (and
// scores) the components of a collated dataset. The empty kind is a
// collation job.
const KindExplain = "explain"

// Explain methods and judges, and the scoring methods an explain job may
// run (explain.ScoreMethods; repeated here so this package needs no
// explain import).
var (
	ExplainMethods = []string{"builtin", "llm"}
	ExplainScores  = []string{"simulation", "detection", "fuzzing"}
)

// ExplainSpec is what an explain job computes over the dataset named by
// JobSpec.Dataset. The LLM API key is never part of it: workers read
// TDB_LLM_API_KEY from their own environment.
type ExplainSpec struct {
	// Locations, Layers and Components narrow the job (empty: all).
	Locations  []string `json:"locations,omitempty"`
	Layers     []int    `json:"layers,omitempty"`
	Components []int    `json:"components,omitempty"`
	// Method is the explainer, Judge who makes score predictions
	// (builtin or llm; empty judge: the method's own).
	Method string   `json:"method"`
	Judge  string   `json:"judge"`
	Scores []string `json:"scores,omitempty"`
	// The OpenAI-compatible endpoint of the llm method or judge.
	LLMURL      string  `json:"llm_url,omitempty"`
	LLMModel    string  `json:"llm_model,omitempty"`
	LLMRPS      float64 `json:"llm_rps,omitempty"`
	LLMBatch    int     `json:"llm_batch,omitempty"`
	LLMAttempts int     `json:"llm_attempts,omitempty"`
}

// UsesLLM reports whether the method or the judge is the llm.
func (e ExplainSpec) UsesLLM() bool { return e.Method == "llm" || e.Judge == "llm" }

// normalizeExplain checks an explain job's spec (no model or corpus: it
// reads a dataset) and fills its defaults.
func normalizeExplain(s JobSpec) (JobSpec, error) {
	if s.Explain == nil {
		return s, fmt.Errorf("job spec: an explain job without its explain settings")
	}
	e := *s.Explain
	if e.Method == "" {
		e.Method = "builtin"
	}
	if e.Judge == "" {
		e.Judge = e.Method
	}
	switch {
	case !slices.Contains(ExplainMethods, e.Method):
		return s, fmt.Errorf("job spec: explain method %q: want builtin or llm", e.Method)
	case !slices.Contains(ExplainMethods, e.Judge):
		return s, fmt.Errorf("job spec: explain judge %q: want builtin or llm", e.Judge)
	case e.UsesLLM() && (e.LLMURL == "" || e.LLMModel == ""):
		return s, fmt.Errorf("job spec: the llm method and judge need an LLM URL and model")
	case e.LLMBatch < 0 || e.LLMAttempts < 0 || e.LLMRPS < 0:
		return s, fmt.Errorf("job spec: LLM batch, attempts and rate must not be negative")
	}
	for _, sc := range e.Scores {
		if !slices.Contains(ExplainScores, sc) {
			return s, fmt.Errorf("job spec: scoring method %q: want any of %s", sc, strings.Join(ExplainScores, ","))
		}
	}
	for _, x := range append(slices.Clone(e.Layers), e.Components...) {
		if x < 0 {
			return s, fmt.Errorf("job spec: negative layer or component %d", x)
		}
	}
	if hasDup(e.Locations) {
		return s, fmt.Errorf("job spec: a location is listed twice in %q", strings.Join(e.Locations, ","))
	}
	s.Explain = &e
	if err := ValidateDatasetName(s.Dataset); err != nil {
		return s, err
	}
	if s.ID == "" {
		s.ID = s.DefaultID()
	}
	return s, ValidateJobID(s.ID)
}

// TaskSubject is the subject of one task's message: a collation shard's
// Subject, or tdb.shards.<job>.explain.<task> for an explain task (the
// same stream and consumer; JobSubjects matches both).
func TaskSubject(job, kind string, task int) string {
	if kind == KindExplain {
		return fmt.Sprintf("%s.%s.explain.%d", SubjectPrefix, job, task)
	}
	return Subject(job, task)
}
