package coordinator_test

// Fault tests with real processes: the test binary re-executes itself as a
// coordinator or a worker (TDB_FAULT_ROLE), against a NATS server embedded
// in the test process, and the test kills them with SIGKILL.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"tdb/coordinator"
	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/internal/syncbuf"
	"tdb/model"
	"tdb/store"
	"tdb/worker"
)

func TestMain(m *testing.M) {
	if os.Getenv("TDB_FAULT_ROLE") == "burn" {
		os.Exit(burn())
	}
	if role := os.Getenv("TDB_FAULT_ROLE"); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(m.Run())
}

// runRole is the body of a re-executed test binary.
func runRole(role string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	st, err := store.NewLocal(os.Getenv("TDB_FAULT_STORE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dial := natsx.RetryDialer(os.Getenv("TDB_FAULT_NATS"), log)
	switch role {
	case "coordinator":
		ack, _ := time.ParseDuration(os.Getenv("TDB_FAULT_ACK_WAIT"))
		maxDeliver, _ := strconv.Atoi(os.Getenv("TDB_FAULT_MAX_DELIVER"))
		ttl, _ := time.ParseDuration(os.Getenv("TDB_FAULT_LEADER_TTL"))
		var cst store.Store = st
		if d, _ := time.ParseDuration(os.Getenv("TDB_FAULT_SLOW_DATASET_PUT")); d > 0 {
			cst = slowDatasetStore{st, d}
		}
		err = coordinator.Run(ctx, coordinator.Config{Dial: dial, Store: cst, Logger: log, SweepInterval: 200 * time.Millisecond,
			Queue: natsx.QueueConfig{AckWait: ack, MaxDeliver: maxDeliver}, LeaderTTL: ttl, LeaderID: os.Getenv("TDB_FAULT_NAME")})
	case "worker":
		delay, _ := time.ParseDuration(os.Getenv("TDB_FAULT_SHARD_DELAY"))
		err = worker.Run(ctx, worker.Config{Name: os.Getenv("TDB_FAULT_NAME"), Dial: dial, Store: st, Logger: log,
			ShardDelay: delay, FetchWait: 200 * time.Millisecond})
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// slowDatasetStore makes every dataset write take d, so a test can kill a
// coordinator in the middle of a merge.
type slowDatasetStore struct {
	store.Store
	d time.Duration
}

func (s slowDatasetStore) Put(ctx context.Context, key string, r io.Reader) error {
	if strings.HasPrefix(key, "datasets/") {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.d):
		}
	}
	return s.Store.Put(ctx, key, r)
}

// proc is a re-executed test binary.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

type faultEnv struct {
	t        *testing.T
	natsURL  string
	storeDir string
	ackWait  time.Duration
	maxDeliv int
	procs    []*proc
}

func (f *faultEnv) start(role, name string, extra ...string) *proc {
	f.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TDB_FAULT_ROLE="+role, "TDB_FAULT_NAME="+name, "TDB_FAULT_NATS="+f.natsURL,
		"TDB_FAULT_STORE="+f.storeDir, "TDB_FAULT_ACK_WAIT="+f.ackWait.String(), "TDB_FAULT_MAX_DELIVER="+strconv.Itoa(f.maxDeliv))
	cmd.Env = append(cmd.Env, extra...)
	p := &proc{name: name, cmd: cmd, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	f.procs = append(f.procs, p)
	return p
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

func (f *faultEnv) stopAll() {
	for _, p := range f.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range f.procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if testing.Verbose() || f.t.Failed() {
			f.t.Logf("--- %s output:\n%s", p.name, p.out.String())
		}
	}
}

// newFaultEnv starts NATS in the test process on a TCP port, with a local
// store and a tiny model folder.
func newFaultEnv(t *testing.T, ackWait time.Duration, maxDeliver int) (*faultEnv, *natsx.Embedded) {
	t.Helper()
	emb, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	f := &faultEnv{t: t, natsURL: emb.URL(), storeDir: filepath.Join(t.TempDir(), "store"), ackWait: ackWait, maxDeliv: maxDeliver}
	t.Cleanup(func() {
		f.stopAll()
		emb.Shutdown()
	})
	return f, emb
}

// tinyModelDir saves a very small random GPT-2 (2 layers, 2 heads) once per
// test binary.
var tinyModelDir = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tdb-fault-model-")
	if err != nil {
		return "", err
	}
	m, err := model.NewRandom(model.Config{NLayer: 2, NHead: 2, DModel: 32, DMLP: 128, NCtx: 64, Vocab: 50257, Eps: 1e-5}, 1)
	if err != nil {
		return "", err
	}
	return dir, m.Save(dir)
})

func faultSpec(t *testing.T, name string) jobs.JobSpec {
	dir, err := tinyModelDir()
	if err != nil {
		t.Fatal(err)
	}
	return jobs.JobSpec{
		Dataset: name, Model: dir, Corpus: "synthetic:facts?docs=400&seed=5",
		Locations: []string{"mlp.post_act", "attn.heads"}, NCtx: 32, TopK: 8, RandomK: 4, QuantileBuckets: 4, PerBucket: 2,
		TokensPerShard: 1500, BatchSize: 4, BlockBytes: 2048,
	}
}

// referenceDataset runs spec in process without faults and returns its files.
func referenceDataset(t *testing.T, spec jobs.JobSpec) (map[string][]byte, jobs.JobState) {
	t.Helper()
	st := store.NewMemory()
	c := startCluster(t, 2, natsx.QueueConfig{AckWait: 5 * time.Second}, st)
	state, err := c.run(spec)
	if err != nil {
		t.Fatal(err)
	}
	return datasetFiles(t, st, spec.Dataset), state
}

func sameDataset(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("dataset has %d files, reference %d", len(got), len(want))
	}
	for k, v := range want {
		if k == "manifest.json" {
			continue
		}
		if !bytes.Equal(got[k], v) {
			t.Errorf("%s differs from the run without faults", k)
		}
	}
}

func clientFor(t *testing.T, emb *natsx.Embedded) *coordinator.Client {
	t.Helper()
	nc, err := emb.Connect("fault test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := coordinator.NewClient(context.Background(), nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(25 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// watchNoHalfDataset checks, while a job runs, that whenever the manifest
// is readable every component file it names is there too.
func watchNoHalfDataset(t *testing.T, st store.Store, name string, locations []string, layers int) (stop func() (sawManifest bool)) {
	ctx, cancel := context.WithCancel(context.Background())
	var saw bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rctx := context.Background() // reads are never cut short by stop
		for ctx.Err() == nil {
			if _, err := dataset.ReadManifest(rctx, st, name); err == nil {
				saw = true
				for _, loc := range locations {
					for l := range layers {
						if _, err := dataset.ReadComponent(rctx, st, name, loc, l, 0); err != nil {
							t.Errorf("manifest visible but %s layer %d unreadable: %v", loc, l, err)
						}
					}
				}
				return
			} else if !errors.Is(err, dataset.ErrNoDataset) {
				t.Errorf("reading manifest: %v", err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return func() bool {
		cancel()
		wg.Wait()
		if !saw { // the job finished between two polls
			_, err := dataset.ReadManifest(context.Background(), st, name)
			saw = err == nil
		}
		return saw
	}
}

func TestFaultKillWorkerMidShard(t *testing.T) {
	want, ref := referenceDataset(t, faultSpec(t, "reference"))
	f, emb := newFaultEnv(t, time.Second, 5)
	f.start("coordinator", "coordinator")
	victim := f.start("worker", "victim", "TDB_FAULT_SHARD_DELAY=3s")
	client := clientFor(t, emb)
	spec := faultSpec(t, "faulty")
	st, err := store.NewLocal(f.storeDir)
	if err != nil {
		t.Fatal(err)
	}
	stopWatch := watchNoHalfDataset(t, st, spec.Dataset, spec.Locations, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	state, err := client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	// Kill the victim while it is in the middle of its first shard.
	var victimShard int
	waitFor(t, 30*time.Second, "the victim to start a shard", func() bool {
		p, err := client.Progress(ctx, state.ID)
		return err == nil && p.Running > 0
	})
	victimShard = runningShard(t, ctx, emb, state.ID, "victim")
	victim.kill(t)
	f.start("worker", "w1", "TDB_FAULT_SHARD_DELAY=100ms")
	f.start("worker", "w2", "TDB_FAULT_SHARD_DELAY=100ms")
	final, err := client.Wait(ctx, state.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !stopWatch() {
		t.Error("the dataset never became visible")
	}
	if final.Shards != ref.Shards || final.Tokens != ref.Tokens {
		t.Fatalf("final %+v, reference %+v", final, ref)
	}
	rec := shardRecord(t, ctx, emb, state.ID, victimShard)
	if rec.Delivery < 2 || rec.Worker == "victim" {
		t.Errorf("shard %d record %+v: want it finished by another worker on a redelivery", victimShard, rec)
	}
	sameDataset(t, datasetFiles(t, st, spec.Dataset), want)
}

func TestFaultCoordinatorRestart(t *testing.T) {
	want, _ := referenceDataset(t, faultSpec(t, "reference"))
	f, emb := newFaultEnv(t, time.Second, 5)
	coord := f.start("coordinator", "coordinator-1")
	f.start("worker", "w1", "TDB_FAULT_SHARD_DELAY=400ms")
	client := clientFor(t, emb)
	spec := faultSpec(t, "restarted")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	state, err := client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a shard to finish", func() bool {
		p, err := client.Progress(ctx, state.ID)
		return err == nil && p.Done >= 1
	})
	coord.kill(t)
	// The worker goes on without a coordinator; a new one resumes the job.
	time.Sleep(500 * time.Millisecond)
	p, err := client.Progress(ctx, state.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.State.Status != jobs.Running || p.Done == p.State.Shards {
		t.Fatalf("after the kill: %+v; want a running job with shards left", p)
	}
	f.start("coordinator", "coordinator-2")
	if _, err := client.Wait(ctx, state.ID, nil); err != nil {
		t.Fatal(err)
	}
	st, _ := store.NewLocal(f.storeDir)
	sameDataset(t, datasetFiles(t, st, spec.Dataset), want)
}

// A shard whose worker dies on every delivery: the server's
// MAX_DELIVERIES advisory fails the job with the reason.
func TestFaultShardExhaustsDeliveries(t *testing.T) {
	f, emb := newFaultEnv(t, 500*time.Millisecond, 2)
	f.start("coordinator", "coordinator")
	client := clientFor(t, emb)
	spec := faultSpec(t, "doomed")
	spec.TokensPerShard = 1 << 20 // one shard
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	state, err := client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	for d := 1; d <= 2; d++ {
		w := f.start("worker", fmt.Sprintf("crasher-%d", d), "TDB_FAULT_SHARD_DELAY=1m")
		waitFor(t, 30*time.Second, fmt.Sprintf("delivery %d", d), func() bool {
			var r jobs.ShardRecord
			kv := bucket(t, ctx, emb)
			_, err := natsx.GetJSON(ctx, kv, jobs.ShardKey(state.ID, 0), &r)
			return err == nil && r.Delivery == d && r.Status == jobs.ShardRunning
		})
		w.kill(t)
	}
	// A healthy worker pulls next: the server has no delivery left for the
	// shard and reports it (MAX_DELIVERIES advisory); the coordinator's
	// sweep would catch it too.
	f.start("worker", "healthy")
	_, err = client.Wait(ctx, state.ID, nil)
	if err == nil || !strings.Contains(err.Error(), "shard 0 exhausted its 2 deliveries") {
		t.Fatalf("job error %v: want a failure naming the shard and its deliveries", err)
	}
	if !strings.Contains(err.Error(), "crasher-2") {
		t.Errorf("reason %q should name the last worker", err)
	}
}

// A worker started before NATS is reachable retries, says so, and works
// once the server appears.
func TestFaultWorkerWaitsForNATS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f := &faultEnv{t: t, natsURL: "nats://" + addr, storeDir: filepath.Join(t.TempDir(), "store"), ackWait: time.Second, maxDeliv: 3}
	w := f.start("worker", "early")
	defer f.stopAll()
	waitFor(t, 20*time.Second, "the worker to report that NATS is unreachable", func() bool {
		return strings.Count(w.out.String(), "cannot reach NATS; retrying") >= 2
	})
	emb, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats"), Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	f.start("coordinator", "coordinator")
	client := clientFor(t, emb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := faultSpec(t, "late")
	state, err := client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Wait(ctx, state.ID, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.out.String(), "connected to NATS") {
		t.Errorf("worker output lacks the reconnect:\n%s", w.out.String())
	}
}

func bucket(t *testing.T, ctx context.Context, emb *natsx.Embedded) jetstream.KeyValue {
	t.Helper()
	nc, err := emb.Connect("kv reader")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, natsx.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func shardRecord(t *testing.T, ctx context.Context, emb *natsx.Embedded, job string, shard int) jobs.ShardRecord {
	t.Helper()
	var r jobs.ShardRecord
	if _, err := natsx.GetJSON(ctx, bucket(t, ctx, emb), jobs.ShardKey(job, shard), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// runningShard returns the shard the named worker is computing.
func runningShard(t *testing.T, ctx context.Context, emb *natsx.Embedded, job, name string) int {
	t.Helper()
	kv := bucket(t, ctx, emb)
	lister, err := kv.ListKeysFiltered(ctx, jobs.ShardKeys(job))
	if err != nil {
		t.Fatal(err)
	}
	for key := range lister.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue
		}
		var r jobs.ShardRecord
		if json.Unmarshal(e.Value(), &r) == nil && r.Worker == name && r.Status == jobs.ShardRunning {
			return r.Index
		}
	}
	t.Fatalf("worker %s runs no shard", name)
	return -1
}

// leaderName is the coordinator holding the leader lease ("" if none).
func leaderName(ctx context.Context, emb *natsx.Embedded) string {
	nc, err := emb.Connect("lease reader")
	if err != nil {
		return ""
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx, natsx.LeaderBucket)
	if err != nil {
		return ""
	}
	l, err := natsx.CurrentLeader(ctx, kv)
	if err != nil {
		return ""
	}
	return l.ID
}

// Three coordinators: one leads (only it plans), the others stand by. The
// leader is killed with SIGKILL mid-job, then its successor mid-merge; the
// last one finishes, within seconds of each kill, and the dataset is
// byte-identical to a run without faults.
func TestFaultLeaderKilledMidJobAndMidMerge(t *testing.T) {
	want, _ := referenceDataset(t, faultSpec(t, "reference"))
	f, emb := newFaultEnv(t, time.Second, 5)
	ttl := 2 * time.Second
	coords := map[string]*proc{}
	for _, name := range []string{"c1", "c2", "c3"} {
		coords[name] = f.start("coordinator", name, "TDB_FAULT_LEADER_TTL="+ttl.String(), "TDB_FAULT_SLOW_DATASET_PUT=400ms")
	}
	f.start("worker", "w1", "TDB_FAULT_SHARD_DELAY=300ms")
	client := clientFor(t, emb)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var first string
	waitFor(t, 30*time.Second, "a leader", func() bool { first = leaderName(ctx, emb); return first != "" })
	spec := faultSpec(t, "leaders")
	state, err := client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "a shard to finish", func() bool {
		p, err := client.Progress(ctx, state.ID)
		return err == nil && p.Done >= 1
	})
	if p, _ := client.Progress(ctx, state.ID); p.State.Status != jobs.Running {
		t.Fatalf("job %s before the first kill; want running", p.State.Status)
	}
	coords[first].kill(t)
	killed := time.Now()
	var second string
	waitFor(t, 3*ttl+5*time.Second, "a new leader", func() bool {
		second = leaderName(ctx, emb)
		return second != "" && second != first
	})
	t.Logf("%s took over from %s after %v", second, first, time.Since(killed).Round(time.Millisecond))
	if d := time.Since(killed); d > ttl+3*time.Second {
		t.Errorf("takeover took %v with a %v lease", d, ttl)
	}
	waitFor(t, 2*time.Minute, "the merge", func() bool {
		p, err := client.Progress(ctx, state.ID)
		return err == nil && p.State.Status == jobs.Merging
	})
	time.Sleep(300 * time.Millisecond) // into the (slowed) dataset writes
	coords[second].kill(t)
	final, err := client.Wait(ctx, state.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != jobs.Done {
		t.Fatalf("final state %+v", final)
	}
	third := leaderName(ctx, emb)
	if third == first || third == second || third == "" {
		t.Errorf("leader after both kills is %q", third)
	}
	planned := 0
	for _, p := range coords {
		planned += strings.Count(p.out.String(), "planning job")
	}
	if planned != 1 {
		t.Errorf("the job was planned %d times; only the leader plans", planned)
	}
	st, _ := store.NewLocal(f.storeDir)
	sameDataset(t, datasetFiles(t, st, spec.Dataset), want)
}
