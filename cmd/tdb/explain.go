package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"golang.org/x/time/rate"

	"tdb/dataset"
	"tdb/explain"
	"tdb/explain/llm"
	"tdb/store"
)

func init() {
	register("explain", "explain and score every component of a dataset (builtin explainer or an LLM)", cmdExplain)
	register("explain import", "import public explanation files ({layer}/{index}.jsonl) into a dataset", cmdExplainImport)
	register("explain show", "print the stored explanations of one component", cmdExplainShow)
	register("explain search", "search a dataset's explanations by text", cmdExplainSearch)
}

// llmFlags are the language-model flags shared by explain subcommands.
type llmFlags struct {
	url, model *string
	rps        *float64
	batch      *int
	attempts   *int
}

func addLLMFlags(fs interface {
	String(string, string, string) *string
	Float64(string, float64, string) *float64
	Int(string, int, string) *int
}) llmFlags {
	return llmFlags{
		url:      fs.String("llm-url", envOr("TDB_LLM_URL", ""), "OpenAI-compatible API base, e.g. http://localhost:8000/v1 (vLLM) or http://localhost:11434/v1 (Ollama); the key comes from TDB_LLM_API_KEY ($TDB_LLM_URL)"),
		model:    fs.String("llm-model", envOr("TDB_LLM_MODEL", ""), "model name at --llm-url ($TDB_LLM_MODEL)"),
		rps:      fs.Float64("llm-rps", 2, "at most this many LLM requests per second (0: unlimited)"),
		batch:    fs.Int("llm-batch", 5, "records per judge request"),
		attempts: fs.Int("llm-attempts", 6, "tries per LLM request (errors, 429s and unusable answers are retried with back-off)"),
	}
}

func (f llmFlags) client(st store.Store) (*llm.Client, error) {
	if *f.url == "" || *f.model == "" {
		return nil, usagef("the llm method and judge need --llm-url and --llm-model")
	}
	c := &llm.Client{URL: *f.url, Model: *f.model, APIKey: os.Getenv("TDB_LLM_API_KEY"), Cache: st, Attempts: *f.attempts}
	if *f.rps > 0 {
		c.Limiter = rate.NewLimiter(rate.Limit(*f.rps), 1)
	}
	return c, nil
}

func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", stderr)
	storeURL := fs.String("store", envOr("TDB_STORE", "./tdb-data"), "store holding the dataset ($TDB_STORE)")
	dsName := fs.String("dataset", "", "dataset name")
	locations := fs.String("locations", "", "comma-separated locations (default: all of the dataset)")
	layers := fs.String("layers", "", "layers, e.g. 0-5,7 (default: all)")
	components := fs.String("components", "", "components, e.g. 0-99 (default: all)")
	method := fs.String("method", "builtin", "explainer: builtin (no model) or llm")
	judge := fs.String("judge", "", "who makes score predictions: builtin or llm (default: the method's own)")
	scores := fs.String("score", "simulation", "scoring methods: any of simulation,detection,fuzzing (or none)")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "components explained in parallel")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	lf := addLLMFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsName == "" {
		return usagef("--dataset is required")
	}
	if *workers < 1 {
		return usagef("--workers must be at least 1")
	}
	var scoreList []string
	if *scores != "none" && *scores != "" {
		for _, s := range strings.Split(*scores, ",") {
			s = strings.TrimSpace(s)
			if !slices.Contains(explain.ScoreMethods, s) {
				return usagef("--score %q: want any of %s, or none", s, strings.Join(explain.ScoreMethods, ","))
			}
			scoreList = append(scoreList, s)
		}
	}
	if *judge == "" {
		*judge = *method
	}
	layerList, err := explain.ParseIndexList(*layers)
	if err != nil {
		return usagef("--layers: %v", err)
	}
	compList, err := explain.ParseIndexList(*components)
	if err != nil {
		return usagef("--components: %v", err)
	}
	var locList []string
	if *locations != "" {
		locList = strings.Split(*locations, ",")
	}
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	vocab, err := explain.GPT2Vocab()
	if err != nil {
		return err
	}
	var client *llm.Client
	if *method == "llm" || *judge == "llm" {
		if client, err = lf.client(st); err != nil {
			return err
		}
	}
	job := &explain.Job{Store: st, Dataset: *dsName, Locations: locList, Layers: layerList, Components: compList,
		Scores: scoreList, Workers: *workers, Progress: stderr}
	switch *method {
	case "builtin":
		job.Explainer = &explain.Builtin{Vocab: vocab}
	case "llm":
		job.Explainer = &explain.LLMExplainer{Client: client, Vocab: vocab}
	default:
		return usagef("--method %q: want builtin or llm", *method)
	}
	switch *judge {
	case "builtin":
		job.Judge = &explain.BuiltinJudge{Vocab: vocab}
	case "llm":
		job.Judge = &explain.LLMJudge{Client: client, Vocab: vocab, Batch: *lf.batch}
	default:
		return usagef("--judge %q: want builtin or llm", *judge)
	}
	sum, err := job.Run(ctx)
	if errors.Is(err, dataset.ErrNoDataset) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	out := struct {
		explain.Summary
		Method string     `json:"method"`
		Judge  string     `json:"judge"`
		LLM    *llm.Stats `json:"llm,omitempty"`
	}{Summary: sum, Method: job.Explainer.Method().String(), Judge: job.Judge.Name()}
	if client != nil {
		s := client.Stats()
		out.LLM = &s
	}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "%s: %d components explained by %s, %d already done (%d tasks)\n", *dsName, sum.Explained, out.Method, sum.Skipped, sum.Tasks)
	if out.LLM != nil {
		fmt.Fprintf(stdout, "llm: %d requests, %d cache hits, %d retries\n", out.LLM.Requests, out.LLM.CacheHits, out.LLM.Retries)
	}
	return nil
}

func cmdExplainImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain import", stderr)
	storeURL := fs.String("store", envOr("TDB_STORE", "./tdb-data"), "store to import into ($TDB_STORE)")
	from := fs.String("from", "https://openaipublic.blob.core.windows.net/neuron-explainer/data/explanations", "store URL of the folder holding {layer}/{index}.jsonl (anonymous reads of public containers)")
	dsName := fs.String("dataset", "", "dataset whose explanations these are")
	location := fs.String("location", "mlp.post_act", "location of the explained components")
	layers := fs.String("layers", "", "layers, e.g. 0-11 (default: the dataset's)")
	components := fs.String("components", "", "components, e.g. 0-3071 (default: the dataset's)")
	modelName := fs.String("model-name", "gpt-4", "who wrote the explanations (stored as method import:NAME)")
	workers := fs.Int("workers", 16, "files fetched in parallel")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsName == "" {
		return usagef("--dataset is required")
	}
	layerList, err := explain.ParseIndexList(*layers)
	if err != nil {
		return usagef("--layers: %v", err)
	}
	compList, err := explain.ParseIndexList(*components)
	if err != nil {
		return usagef("--components: %v", err)
	}
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	if len(layerList) == 0 || len(compList) == 0 {
		m, err := dataset.ReadManifest(ctx, st, *dsName)
		if err != nil {
			return usagef("--layers and --components are needed when the dataset has no manifest (%v)", err)
		}
		loc, ok := m.Location(*location)
		if !ok {
			return usagef("dataset %s has no location %s", *dsName, *location)
		}
		if len(layerList) == 0 {
			layerList = loc.Layers
		}
		if len(compList) == 0 {
			for i := range loc.Components {
				compList = append(compList, i)
			}
		}
	}
	src, err := store.Open(ctx, *from)
	if err != nil {
		return err
	}
	im := &explain.Import{Source: src, Store: st, Dataset: *dsName, Location: *location, Layers: layerList,
		Components: compList, Model: *modelName, Workers: *workers, Progress: stderr}
	sum, err := im.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: imported %d explanations from %s (%d files missing)\n", *dsName, sum.Imported, src, sum.Missing)
	return nil
}

func cmdExplainShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain show", stderr)
	storeURL := fs.String("store", envOr("TDB_STORE", "./tdb-data"), "store holding the dataset ($TDB_STORE)")
	dsName := fs.String("dataset", "", "dataset name")
	location := fs.String("location", "mlp.post_act", "location")
	layer := fs.Int("layer", 0, "layer")
	index := fs.Int("index", 0, "component index")
	asJSON := fs.Bool("json", false, "print JSON: {data: [{explanation, method, scores}]}")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsName == "" {
		return usagef("--dataset is required")
	}
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	ex, err := explain.Read(ctx, st, *dsName, *location, *layer, *index)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, map[string]any{"data": ex})
	}
	if len(ex) == 0 {
		fmt.Fprintf(stdout, "%s %s layer %d #%d has no explanations (run tdb explain)\n", *dsName, *location, *layer, *index)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tSIMULATION\tDETECTION\tFUZZING\tEXPLANATION")
	for _, e := range ex {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Method, scoreText(e.Scores.Simulation), scoreText(e.Scores.Detection), scoreText(e.Scores.Fuzzing), e.Explanation)
	}
	return tw.Flush()
}

func scoreText(s *explain.Score) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f (%s)", s.Value, s.Judge)
}

func cmdExplainSearch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain search", stderr)
	storeURL := fs.String("store", envOr("TDB_STORE", "./tdb-data"), "store holding the dataset ($TDB_STORE)")
	dsName := fs.String("dataset", "", "dataset name")
	query := fs.String("query", "", "words to look for in explanations")
	limit := fs.Int("limit", 20, "at most this many results")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsName == "" || strings.TrimSpace(*query) == "" {
		return usagef("--dataset and --query are required")
	}
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	hits, err := explain.Search(ctx, st, *dsName, *query, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, map[string]any{"data": hits})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RELEVANCE\tLOCATION\tLAYER\tINDEX\tMETHOD\tSIMULATION\tEXPLANATION")
	for _, h := range hits {
		fmt.Fprintf(tw, "%.3f\t%s\t%d\t%d\t%s\t%s\t%s\n", h.Relevance, h.Location, h.Layer, h.Component, h.Method, scoreText(h.Scores.Simulation), h.Explanation.Explanation)
	}
	return tw.Flush()
}
