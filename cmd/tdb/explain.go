package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"tdb/coordinator"
	"tdb/dataset"
	"tdb/explain"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/internal/service"
	"tdb/internal/textutil"
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

func addLLMFlags(fs *flag.FlagSet) llmFlags {
	return llmFlags{
		url:      envString(fs, "llm-url", "TDB_LLM_URL", "", "OpenAI-compatible API base, e.g. http://localhost:8000/v1 (vLLM) or http://localhost:11434/v1 (Ollama); the key comes from TDB_LLM_API_KEY"),
		model:    envString(fs, "llm-model", "TDB_LLM_MODEL", "", "model name at --llm-url"),
		rps:      fs.Float64("llm-rps", 2, "at most this many LLM requests per second (0: unlimited)"),
		batch:    fs.Int("llm-batch", 5, "records per judge request"),
		attempts: fs.Int("llm-attempts", 6, "tries per LLM request (errors, 429s and unusable answers are retried with back-off)"),
	}
}

// selection is the --layers and --components flags of the explain commands.
type selection struct{ layers, components *string }

// addSelection adds them, with examples and what an empty flag means in
// their help.
func addSelection(fs *flag.FlagSet, layersEg, componentsEg, empty string) selection {
	return selection{
		layers:     fs.String("layers", "", fmt.Sprintf("layers, e.g. %s (default: %s)", layersEg, empty)),
		components: fs.String("components", "", fmt.Sprintf("components, e.g. %s (default: %s)", componentsEg, empty)),
	}
}

// parse reads both index lists; a bad one is a usage error.
func (s selection) parse() (layers, components []int, err error) {
	if layers, err = explain.ParseIndexList(*s.layers); err != nil {
		return nil, nil, usagef("--layers: %v", err)
	}
	if components, err = explain.ParseIndexList(*s.components); err != nil {
		return nil, nil, usagef("--components: %v", err)
	}
	return layers, components, nil
}

// cmdExplain submits an explain job (jobs.KindExplain) and follows it, as
// tdb collate does a collation: by default an embedded NATS server, the
// coordinator and --workers local workers run in this process (the
// in-process mode is that embedded pipeline); with --nats the job goes to
// a running coordinator and its workers. The job id is a hash of the spec,
// so the same command attaches to an interrupted job and resumes it, and a
// finished job runs again as a new attempt whose tasks skip every
// component already explained with the method.
func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", stderr)
	storeURL := storeFlag(fs, "store holding the dataset")
	dsName := fs.String("dataset", "", "dataset name")
	locations := fs.String("locations", "", "comma-separated locations (default: all of the dataset)")
	sel := addSelection(fs, "0-5,7", "0-99", "all")
	method := fs.String("method", "builtin", "explainer: builtin (no model) or llm")
	judge := fs.String("judge", "", "who makes score predictions: builtin or llm (default: the method's own)")
	scores := fs.String("score", "simulation", "scoring methods: any of simulation,detection,fuzzing (or none)")
	workers := fs.Int("workers", defaultWorkers(), "local workers (embedded mode); each explains the components of its task on every core")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	jobID := fs.String("job", "", "job id (default: a hash of the job spec, so re-running the same command resumes it)")
	natsURL := envString(fs, "nats", "TDB_NATS", "", "submit to the NATS cluster at this URL where tdb coordinator and tdb worker run (default: embedded server, local workers)")
	natsDir := natsDirFlag(fs, "nats-dir", "embedded NATS data folder; an interrupted job resumes from it")
	natsListen := fs.String("nats-listen", "127.0.0.1:0", "embedded mode: TCP address of the embedded server (port 0: any free port), so extra tdb worker processes can join; empty: in-process only")
	ackWait := fs.Duration("ack-wait", 30*time.Second, "embedded mode: time a task may go without an (in-progress) ack before redelivery")
	maxDeliver := fs.Int("max-deliver", 5, "embedded mode: deliveries of a task before the job fails")
	detach := fs.Bool("detach", false, "with --nats: submit and return without waiting")
	verbose := fs.Bool("v", false, "log every task")
	lf := addLLMFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *dsName == "" {
		return usagef("--dataset is required")
	}
	if err := jobs.ValidateDatasetName(*dsName); err != nil {
		return usagef("--dataset: %v", err)
	}
	if *workers < 1 {
		return usagef("--workers must be at least 1")
	}
	var scoreList []string
	if *scores != "none" && *scores != "" {
		for _, s := range textutil.List(*scores) {
			if !slices.Contains(explain.ScoreMethods, s) {
				return usagef("--score %q: want any of %s, or none", s, strings.Join(explain.ScoreMethods, ","))
			}
			scoreList = append(scoreList, s)
		}
	}
	if *judge == "" {
		*judge = *method
	}
	if *method != "builtin" && *method != "llm" {
		return usagef("--method %q: want builtin or llm", *method)
	}
	if *judge != "builtin" && *judge != "llm" {
		return usagef("--judge %q: want builtin or llm", *judge)
	}
	if (*method == "llm" || *judge == "llm") && (*lf.url == "" || *lf.model == "") {
		return usagef("the llm method and judge need --llm-url and --llm-model")
	}
	layerList, compList, err := sel.parse()
	if err != nil {
		return err
	}
	locList := textutil.List(*locations)
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	// Check the selection against the dataset before submitting (the
	// coordinator plans the same way).
	if _, _, err := (&explain.Job{Store: st, Dataset: *dsName, Locations: locList, Layers: layerList, Components: compList}).Plan(ctx); err != nil {
		if errors.Is(err, dataset.ErrNoDataset) || strings.HasPrefix(err.Error(), "explain:") {
			return usagef("%v", err)
		}
		return err
	}
	spec := jobs.JobSpec{ID: *jobID, Kind: jobs.KindExplain, Dataset: *dsName, Store: st.String(), Explain: &jobs.ExplainSpec{
		Locations: locList, Layers: layerList, Components: compList, Method: *method, Judge: *judge, Scores: scoreList,
	}}
	if spec.Explain.UsesLLM() {
		e := spec.Explain
		e.LLMURL, e.LLMModel, e.LLMRPS, e.LLMBatch, e.LLMAttempts = *lf.url, *lf.model, *lf.rps, *lf.batch, *lf.attempts
	}
	if spec, err = jobs.Normalize(spec); err != nil {
		return usagef("%v", err)
	}

	tty := isTerminal(stderr)
	stderr = &lockedWriter{w: stderr}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := service.NewLogger(stderr, false, level)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	client, svcErr, closeAll, err := openJobClient(ctx, runCtx, stop, jobNATS{
		url: *natsURL, dir: *natsDir, listen: *natsListen, storeURL: *storeURL, store: st, workers: *workers,
		log: log, reg: service.NewRegistry(), queue: natsx.QueueConfig{AckWait: *ackWait, MaxDeliver: *maxDeliver},
	}, "tdb explain", stderr)
	defer closeAll()
	if err != nil {
		return err
	}
	state, err := client.Submit(ctx, spec)
	if err != nil {
		return err
	}
	if state.Status == jobs.Done {
		// Done once; the explanations may have been deleted or the
		// dataset re-collated since: run again (explained components are
		// skipped, so this costs a read of each explanations file).
		if state, err = client.Rerun(ctx, state.ID); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "job %s (%s): explaining dataset %q in %s by %s\n", state.ID, state.Status, spec.Dataset, st, *method)
	if *detach && *natsURL != "" {
		fmt.Fprintln(stdout, state.ID)
		return nil
	}
	final, err := waitJob(ctx, client, state.ID, svcErr, *natsURL, *natsDir, "tdb explain", &explainProgress{w: stderr, tty: tty}, stderr)
	if err != nil {
		return err
	}
	p, err := client.Progress(ctx, final.ID)
	if err != nil {
		return err
	}
	out := struct {
		explain.Summary
		Job    string `json:"job"`
		Method string `json:"method"`
		Judge  string `json:"judge"`
	}{Summary: explain.Summary{Explained: int(p.Windows), Skipped: int(p.Tokens - p.Windows), Tasks: p.Done},
		Job: final.ID, Method: methodName(*method, *lf.model), Judge: methodName(*judge, *lf.model)}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "%s: %d components explained by %s, %d already done (%d tasks, job %s)\n", *dsName, out.Explained, out.Method, out.Skipped, out.Tasks, final.ID)
	return nil
}

// methodName is the stored name of an explainer or judge (explain.Method,
// Judge.Name): builtin, or llm:MODEL.
func methodName(method, llmModel string) string {
	if method == "llm" {
		return explain.Method{Explainer: explain.LLMName, Model: llmModel}.String()
	}
	return explain.BuiltinName
}

// explainProgress prints one line per finished task (and on a terminal a
// redrawn line as components finish): tasks done of planned, components
// gone through of planned, components/s.
type explainProgress struct {
	w    io.Writer
	tty  bool
	done int
	line string
	mu   sync.Mutex
}

func (p *explainProgress) update(pr coordinator.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := pr.State
	p.line = fmt.Sprintf("explain: task %d/%d done, %d running, %d failed; %d/%d components", pr.Done, st.Shards, pr.Running, pr.Failed, pr.Tokens, st.PlannedTokens)
	if st.Started != nil {
		end := time.Now()
		if st.Finished != nil {
			end = *st.Finished
		}
		if el := end.Sub(*st.Started).Seconds(); el > 0 {
			p.line += fmt.Sprintf(", %.1f components/s", float64(pr.Tokens)/el)
		}
	}
	if pr.LastError != "" && !st.Status.Final() {
		p.line += " (last error: " + textutil.Truncate(pr.LastError, 120) + ")"
	}
	switch {
	case p.tty:
		fmt.Fprintf(p.w, "\r\033[K%s", p.line)
	case pr.Done != p.done && st.Shards > 0:
		fmt.Fprintln(p.w, p.line)
	}
	p.done = pr.Done
}

func (p *explainProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.line != "" {
		fmt.Fprintln(p.w)
	}
}

func cmdExplainImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain import", stderr)
	storeURL := storeFlag(fs, "store to import into")
	from := fs.String("from", "https://openaipublic.blob.core.windows.net/neuron-explainer/data/explanations", "store URL of the folder holding {layer}/{index}.jsonl (anonymous reads of public containers)")
	dsName := fs.String("dataset", "", "dataset whose explanations these are")
	location := fs.String("location", "mlp.post_act", "location of the explained components")
	sel := addSelection(fs, "0-11", "0-3071", "the dataset's")
	modelName := fs.String("model-name", "gpt-4", "who wrote the explanations (stored as method import:NAME)")
	workers := fs.Int("workers", 16, "files fetched in parallel")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dsName == "" {
		return usagef("--dataset is required")
	}
	layerList, compList, err := sel.parse()
	if err != nil {
		return err
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
	storeURL := storeFlag(fs, "store holding the dataset")
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
	storeURL := storeFlag(fs, "store holding the dataset")
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
