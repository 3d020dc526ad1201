package explain

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"tdb/dataset"
	"tdb/store"
)

// Job explains (and scores) the components of a dataset. A job is cut into
// Tasks, one per location, layer and block of ChunkSize components: the unit
// a work queue can carry, since a task reads and writes only its own
// explanations file. Run runs them in-process.
type Job struct {
	Store   store.Store
	Dataset string
	// Locations, Layers and Components narrow the job (empty: all).
	Locations  []string
	Layers     []int
	Components []int
	Explainer  Explainer
	// Judge makes the score predictions (nil: the builtin judge).
	Judge Judge
	// Scores lists the scoring methods to run (ScoreMethods names).
	Scores []string
	// Workers explain components in parallel (≤ 0: 1).
	Workers int
	// Progress, if set, receives a line now and then and one per task.
	Progress io.Writer
	// FlushEvery writes finished explanations every so many components so
	// an interrupted task loses little (≤ 0: 256).
	FlushEvery int
	// Now stamps rows (nil: time.Now).
	Now func() time.Time
	// Explained, if set, is called with the number of components a task
	// has explained so far each time one finishes (a queue worker reports
	// it as the task's progress).
	Explained func(n int)
}

// Task is one location, layer and block of components of a job.
type Task struct {
	Location string `json:"location"`
	Layer    int    `json:"layer"`
	// Lo and Hi delimit the block [Lo, Hi) (one chunk file).
	Lo int `json:"lo"`
	Hi int `json:"hi"`
}

// Summary counts what a job or task did.
type Summary struct {
	Explained int `json:"explained"`
	Skipped   int `json:"skipped"`
	// Tasks is how many tasks ran.
	Tasks int `json:"tasks"`
}

// Plan lists the job's tasks from the dataset's manifest. Components that
// are out of range for one location (heads vs neurons) are skipped there;
// a component that fits no location is an error.
func (j *Job) Plan(ctx context.Context) (*dataset.Manifest, []Task, error) {
	m, err := dataset.ReadManifest(ctx, j.Store, j.Dataset)
	if err != nil {
		return nil, nil, err
	}
	for _, name := range j.Locations {
		if _, ok := m.Location(name); !ok {
			return nil, nil, fmt.Errorf("explain: dataset %s has no location %q", j.Dataset, name)
		}
	}
	for _, c := range j.Components {
		fits := false
		for _, loc := range m.Locations {
			if (len(j.Locations) == 0 || slices.Contains(j.Locations, loc.Name)) && c >= 0 && c < loc.Components {
				fits = true
			}
		}
		if !fits {
			return nil, nil, fmt.Errorf("explain: no location of dataset %s has a component %d", j.Dataset, c)
		}
	}
	var tasks []Task
	for _, loc := range m.Locations {
		if len(j.Locations) > 0 && !slices.Contains(j.Locations, loc.Name) {
			continue
		}
		for _, l := range j.Layers {
			if !slices.Contains(loc.Layers, l) {
				return nil, nil, fmt.Errorf("explain: dataset %s has no layer %d of %s (it has %v)", j.Dataset, l, loc.Name, loc.Layers)
			}
		}
		for _, l := range loc.Layers {
			if len(j.Layers) > 0 && !slices.Contains(j.Layers, l) {
				continue
			}
			for lo := 0; lo < loc.Components; lo += ChunkSize {
				hi := min(lo+ChunkSize, loc.Components)
				if len(j.Components) > 0 && !slices.ContainsFunc(j.Components, func(c int) bool { return c >= lo && c < hi }) {
					continue
				}
				tasks = append(tasks, Task{Location: loc.Name, Layer: l, Lo: lo, Hi: hi})
			}
		}
	}
	return m, tasks, nil
}

// Run plans the job and runs every task in turn.
func (j *Job) Run(ctx context.Context) (Summary, error) {
	m, tasks, err := j.Plan(ctx)
	if err != nil {
		return Summary{}, err
	}
	var sum Summary
	start := time.Now()
	for i, t := range tasks {
		s, err := j.RunTask(ctx, m, t)
		sum.Explained += s.Explained
		sum.Skipped += s.Skipped
		sum.Tasks++
		if err != nil {
			return sum, err
		}
		if j.Progress != nil {
			fmt.Fprintf(j.Progress, "explain: task %d/%d done (%s layer %d components %d-%d): %d explained, %d already done; %.1f components/s overall\n",
				i+1, len(tasks), t.Location, t.Layer, t.Lo, t.Hi, s.Explained, s.Skipped, float64(sum.Explained)/time.Since(start).Seconds())
		}
	}
	return sum, nil
}

// RunTask explains the task's components that have no explanation by the
// job's method yet, scores them, and merges them into the task's file.
func (j *Job) RunTask(ctx context.Context, m *dataset.Manifest, t Task) (Summary, error) {
	method := j.Explainer.Method()
	done, err := doneInChunk(ctx, j.Store, j.Dataset, t, method)
	if err != nil {
		return Summary{}, err
	}
	var sum Summary
	want := func(c int) bool {
		if c < t.Lo || c >= t.Hi {
			return false
		}
		if len(j.Components) > 0 && !slices.Contains(j.Components, c) {
			return false
		}
		if done[c] {
			return false
		}
		return true
	}
	for c := t.Lo; c < t.Hi; c++ {
		if done[c] && (len(j.Components) == 0 || slices.Contains(j.Components, c)) {
			sum.Skipped++
		}
	}
	judge := j.Judge
	if judge == nil {
		if b, ok := j.Explainer.(*Builtin); ok {
			judge = &BuiltinJudge{Vocab: b.Vocab}
		} else {
			return sum, fmt.Errorf("explain: job needs a judge")
		}
	}
	now := j.Now
	if now == nil {
		now = time.Now
	}
	workers := max(j.Workers, 1)
	flushEvery := j.FlushEvery
	if flushEvery <= 0 {
		flushEvery = 256
	}
	comps := make(chan *Component, workers)
	results := make(chan Row, workers)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(comps)
		return EachComponent(gctx, j.Store, m, t.Location, t.Layer, want, func(c *Component) error {
			select {
			case comps <- c:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		g.Go(func() error {
			defer wg.Done()
			for c := range comps {
				text, err := j.Explainer.Explain(gctx, c)
				if err != nil {
					return fmt.Errorf("explain: %s layer %d component %d: %w", c.Location, c.Layer, c.Index, err)
				}
				scores, err := Scored(gctx, judge, c, text, j.Scores)
				if err != nil {
					return err
				}
				row := Row{Location: c.Location, Layer: c.Layer, Component: c.Index,
					Explanation: Explanation{Explanation: text, Method: method, Scores: scores, Created: now().UTC()}}
				select {
				case results <- row:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	go func() { wg.Wait(); close(results) }()
	var pending []Row
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		// Not gctx: a cancelled job still saves what it finished.
		if err := Write(context.WithoutCancel(ctx), j.Store, j.Dataset, pending); err != nil {
			return err
		}
		pending = pending[:0]
		return nil
	}
	last := time.Now()
	start := last
	var werr error
	for r := range results {
		pending = append(pending, r)
		sum.Explained++
		if j.Explained != nil {
			j.Explained(sum.Explained)
		}
		if len(pending) >= flushEvery && werr == nil {
			werr = flush()
		}
		if j.Progress != nil && time.Since(last) > 2*time.Second {
			last = time.Now()
			fmt.Fprintf(j.Progress, "explain: %s layer %d: %d components explained in this task (%.1f/s)\n",
				t.Location, t.Layer, sum.Explained, float64(sum.Explained)/time.Since(start).Seconds())
		}
	}
	gerr := g.Wait()
	if werr == nil {
		werr = flush()
	}
	if gerr != nil {
		return sum, gerr
	}
	return sum, werr
}

// doneInChunk reads the task's file for the components already explained
// by method.
func doneInChunk(ctx context.Context, st store.Store, dataset string, t Task, method Method) (map[int]bool, error) {
	if err := checkKeyParts(dataset, t.Location, t.Layer, t.Lo); err != nil {
		return nil, err
	}
	rows, err := readChunk(ctx, st, ChunkKey(dataset, t.Location, t.Layer, t.Lo), t.Location, t.Layer)
	return doneBy(rows, method), err
}
