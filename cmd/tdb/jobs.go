package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"tdb/coordinator"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/internal/textutil"
)

func init() {
	register("jobs list", "list collation jobs", cmdJobsList)
	register("jobs status", "show a collation job's spec, state and progress", cmdJobsStatus)
	register("jobs cancel", "cancel a collation job", cmdJobsCancel)
}

// jobsConn connects "tdb jobs" to --nats, or to the embedded server of a
// running "tdb collate" (its URL file), or starts the embedded server on its
// folder for as long as the command runs.
func jobsConn(ctx context.Context, url, dir string) (*nats.Conn, func(), error) {
	if url == "" {
		if b, err := os.ReadFile(filepath.Join(dir, natsx.URLFile)); err == nil {
			if nc, err := nats.Connect(strings.TrimSpace(string(b)), nats.Name("tdb jobs")); err == nil {
				return nc, nc.Close, nil
			}
		}
		if _, err := os.Stat(dir); err != nil {
			return nil, nil, fmt.Errorf("no jobs: %s does not exist (give --nats URL for a cluster)", dir)
		}
		emb, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: dir})
		if err != nil {
			return nil, nil, err
		}
		nc, err := emb.Connect("tdb jobs")
		if err != nil {
			emb.Shutdown()
			return nil, nil, err
		}
		return nc, func() { nc.Close(); emb.Shutdown() }, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc, err := natsx.RetryDialer(url, nil)(cctx, "tdb jobs")
	if err != nil {
		return nil, nil, err
	}
	return nc, nc.Close, nil
}

// jobsCommand is what each tdb jobs command starts from: its flags parsed,
// its JOB argument (for those that take one) and a client connected to
// --nats, or to the embedded server (jobsConn).
type jobsCommand struct {
	client *coordinator.Client
	close  func()
	id     string
	asJSON bool
}

// openJobsCommand parses the flags of the tdb jobs command name (withJob:
// it takes one JOB argument) and connects its client; the caller closes it.
func openJobsCommand(ctx context.Context, name string, args []string, withJob bool, stderr io.Writer) (*jobsCommand, error) {
	fs := newFlags(name, stderr)
	url := envString(fs, "nats", "TDB_NATS", "", "NATS URL of the cluster (default: the embedded server of tdb collate)")
	dir := natsDirFlag(fs, "nats-dir", "embedded NATS data folder")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	jc := &jobsCommand{asJSON: *asJSON}
	if withJob {
		if fs.NArg() != 1 {
			return nil, usagef("usage: tdb %s [flags] JOB", name)
		}
		jc.id = fs.Arg(0)
	}
	nc, closeFn, err := jobsConn(ctx, *url, *dir)
	if err != nil {
		return nil, err
	}
	if jc.client, err = coordinator.NewClient(ctx, nc, 1); err != nil {
		closeFn()
		return nil, err
	}
	jc.close = closeFn
	return jc, nil
}

func cmdJobsList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	jc, err := openJobsCommand(ctx, "jobs list", args, false, stderr)
	if err != nil {
		return err
	}
	defer jc.close()
	states, err := jc.client.List(ctx)
	if err != nil {
		return err
	}
	if jc.asJSON {
		if states == nil {
			states = []jobs.JobState{}
		}
		return writeJSON(stdout, states)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATUS\tSHARDS\tTOKENS\tSUBMITTED\tREASON")
	for _, s := range states {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", s.ID, s.Status, s.Shards, s.Tokens, s.Submitted.Local().Format(time.DateTime), textutil.Truncate(s.Reason, 80))
	}
	return tw.Flush()
}

func cmdJobsStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	jc, err := openJobsCommand(ctx, "jobs status", args, true, stderr)
	if err != nil {
		return err
	}
	defer jc.close()
	spec, _, err := jc.client.Job(ctx, jc.id)
	if err != nil {
		return err
	}
	p, err := jc.client.Progress(ctx, jc.id)
	if err != nil {
		return err
	}
	if jc.asJSON {
		return writeJSON(stdout, map[string]any{"spec": spec, "state": p.State,
			"shards": map[string]any{"done": p.Done, "running": p.Running, "failed": p.Failed}, "tokens": p.Tokens, "last_error": p.LastError})
	}
	fmt.Fprintln(stdout, p.Format(time.Now()))
	if e := spec.Explain; spec.Kind == jobs.KindExplain && e != nil {
		fmt.Fprintf(stdout, "explain dataset %s: method %s, judge %s, scores %s, locations %s (tokens count components)\n", spec.Dataset, e.Method, e.Judge, strings.Join(e.Scores, ","), cmp.Or(strings.Join(e.Locations, ","), "all"))
	} else {
		fmt.Fprintf(stdout, "dataset %s: model %s, corpus %s, locations %s, n_ctx %d, top-k %d\n", spec.Dataset, spec.Model, spec.Corpus, strings.Join(spec.Locations, ","), spec.NCtx, spec.TopK)
	}
	if where := cmp.Or(p.State.Store, spec.Store); where != "" {
		fmt.Fprintf(stdout, "store: %s\n", where)
	}
	if p.State.Reason != "" {
		fmt.Fprintf(stdout, "reason: %s\n", p.State.Reason)
	}
	if p.LastError != "" && p.State.Status != jobs.Done {
		fmt.Fprintf(stdout, "last shard error: %s\n", p.LastError)
	}
	return nil
}

func cmdJobsCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	jc, err := openJobsCommand(ctx, "jobs cancel", args, true, stderr)
	if err != nil {
		return err
	}
	defer jc.close()
	st, err := jc.client.Cancel(ctx, jc.id)
	if err != nil {
		if errors.Is(err, coordinator.ErrNoJob) {
			return usagef("%v", err)
		}
		return err
	}
	fmt.Fprintf(stdout, "job %s %s\n", st.ID, st.Status)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
