// Package local tests deploy/local/cluster.sh: a real tdb cluster on one
// machine (three nats-server processes, Azurite, two coordinators, three
// workers, the query service and the viewer) survives kill -9 of a worker,
// the leading coordinator and a NATS node in the middle of a job, and writes
// the same dataset, byte for byte, as a single-process run.
package local

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// root is the tdb repository (this file is in deploy/local).
const root = "../.."

// The job: random weights (no download), a synthetic corpus cut into small
// blocks so that it makes ~50 shards of a second or two each: long enough
// to kill three processes while it runs.
const (
	datasetName   = "cluster-test"
	containerName = "tdb"
)

var jobFlags = []string{
	"--model", "random:tiny",
	"--corpus", "synthetic:ioi?docs=10000&seed=3",
	"--block-bytes", "8192",
	"--tokens-per-shard", "4000",
	"--dataset", datasetName,
}

// shardRecord is the part of a worker's shard record (KV jobs.<id>.shard.<i>)
// the test reads.
type shardRecord struct {
	Index    int       `json:"index"`
	Status   string    `json:"status"`
	Delivery int       `json:"delivery"`
	Worker   string    `json:"worker"`
	Updated  time.Time `json:"updated"`
}

// missing skips the test outside CI, fails it in CI.
func missing(t *testing.T, format string, a ...any) {
	t.Helper()
	msg := fmt.Sprintf("CLUSTER TEST NOT RUN: "+format, a...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s\n\tIn CI a missing dependency is a failure.", msg)
	}
	t.Skip(msg)
}

func TestClusterSurvivesKills(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the cluster test starts ten processes and runs two collation jobs")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		missing(t, "curl not found (cluster.sh checks health with it)")
	}
	start := time.Now()
	dir := t.TempDir()
	tdb := buildTDB(t, dir)
	natsServer := buildNATSServer(t)
	azurite := findAzurite(t)
	base := freePortBlock(t)
	t.Logf("binaries ready in %.1fs; port block %d", time.Since(start).Seconds(), base)

	clusterDir := filepath.Join(dir, "cluster")
	env := append(os.Environ(),
		"TDB_CLUSTER_DIR="+clusterDir,
		"TDB_CLUSTER_PORT="+strconv.Itoa(base),
		"TDB_CLUSTER_ACK_WAIT=4s",
		// A killed tdb service comes back (as under Compose or Kubernetes),
		// but only after the standby coordinator's lease TTL (5 s), so the
		// failover is what finishes the job.
		"TDB_CLUSTER_RESTART_DELAY=6s",
		"TDB_BIN="+tdb, "NATS_SERVER="+natsServer, "TDB_AZURITE="+azurite,
	)
	script := func(ctx context.Context, arg string) (string, error) {
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "deploy", "local", "cluster.sh"), arg)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, filepath.Join(clusterDir, "logs"))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := script(ctx, "down"); err != nil {
			t.Errorf("cluster.sh down: %v\n%s", err, out)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	upStart := time.Now()
	out, err := script(ctx, "up")
	if err != nil {
		t.Fatalf("cluster.sh up: %v\n%s", err, out)
	}
	t.Logf("cluster up in %.1fs:\n%s", time.Since(upStart).Seconds(), out)
	for _, name := range []string{"nats-1", "nats-2", "nats-3", "azurite", "coordinator-1", "coordinator-2", "worker-1", "worker-2", "worker-3"} {
		if !regexp.MustCompile(`(?m)^` + name + ` +\d+ +up `).MatchString(out) {
			t.Errorf("cluster.sh status does not show %s up", name)
		}
	}
	cmds := commands(t, tdb)
	services := map[string]int{}
	if cmds["query"] {
		services["query"] = base + 81
	}
	if cmds["serve"] {
		services["viewer"] = base + 80
	}
	for name, port := range services {
		if code, _ := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); code != http.StatusOK {
			t.Errorf("%s /healthz: HTTP %d", name, code)
		}
	}
	if len(services) < 2 {
		t.Logf("NOTE: this tdb lacks %v; those services are not part of this run", missingOf(cmds, "query", "serve"))
	}

	natsURL := fmt.Sprintf("nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d", base+11, base+12, base+13)
	blobEndpoint := fmt.Sprintf("http://127.0.0.1:%d/devstoreaccount1", base+40)
	storeURL := blobEndpoint + "/" + containerName
	connString := "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + azuriteKey + ";BlobEndpoint=" + blobEndpoint + ";"

	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		t.Fatalf("connecting to the cluster: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	checkReplicas(ctx, t, js, "before the job")

	// Submit the job and follow it.
	collate := exec.CommandContext(ctx, tdb, append([]string{"collate", "--nats", natsURL, "--store", storeURL}, jobFlags...)...)
	collate.Env = append(os.Environ(), "AZURE_STORAGE_CONNECTION_STRING="+connString, "TDB_CACHE_DIR="+filepath.Join(dir, "cache"))
	var collateOut, collateErr lockedBuffer
	collate.Stdout, collate.Stderr = &collateOut, &collateErr
	jobStart := time.Now()
	if err := collate.Start(); err != nil {
		t.Fatal(err)
	}
	collateDone := make(chan error, 1)
	go func() { collateDone <- collate.Wait() }()
	jobID := waitJobID(ctx, t, &collateErr, collateDone)
	kv := jobBucket(ctx, t, js)

	pid := func(name string) int {
		b, err := os.ReadFile(filepath.Join(clusterDir, "run", name+".pid"))
		if err != nil {
			t.Fatalf("pid of %s: %v", name, err)
		}
		p, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("pid file of %s: %v", name, err)
		}
		return p
	}
	kill := func(name, why string) time.Time {
		p := pid(name)
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %s (pid %d): %v", name, p, err)
		}
		at := time.Now()
		t.Logf("%5.1fs kill -9 %s (pid %d): %s", at.Sub(jobStart).Seconds(), name, p, why)
		return at
	}

	// 1. A worker that is computing a shard.
	var victim string
	var victimShards []int
	records := waitShards(ctx, t, kv, jobID, collateDone, func(rs map[int]shardRecord) bool {
		done := 0
		for _, r := range rs {
			if r.Status == "done" {
				done++
			}
		}
		if done < 3 {
			return false
		}
		for _, r := range rs {
			if r.Status == "running" {
				return true
			}
		}
		return false
	})
	for _, r := range records {
		if r.Status == "running" && victim == "" {
			victim = processOf(r.Worker)
		}
	}
	for i, r := range records {
		if r.Status == "running" && processOf(r.Worker) == victim {
			victimShards = append(victimShards, i)
		}
	}
	workerKilled := kill(victim, fmt.Sprintf("it computes shard(s) %v", victimShards))
	doneAt := countDone(records)

	// 2. The leading coordinator.
	waitShards(ctx, t, kv, jobID, collateDone, func(rs map[int]shardRecord) bool { return countDone(rs) >= doneAt+4 })
	leader, how := leaderCoordinator(ctx, t, js, pid)
	kill(leader, how)

	// 3. A NATS node: the leader of the job bucket, which every worker
	// writes a finished shard to (until a new leader is elected, workers
	// must hold their deliveries, not give them back), and of the shard
	// stream when one server leads both.
	records = waitShards(ctx, t, kv, jobID, collateDone, func(rs map[int]shardRecord) bool { return countDone(rs) >= doneAt+8 })
	node, shardsNode := streamLeader(ctx, t, js, "KV_tdb-jobs"), streamLeader(ctx, t, js, "TDB_SHARDS")
	leads := "the job bucket KV_tdb-jobs"
	if node == shardsNode {
		leads += " and stream TDB_SHARDS"
	}
	kill("nats-"+strings.TrimPrefix(node, "n"), fmt.Sprintf("server %s leads %s; %d shards done", node, leads, countDone(records)))

	select {
	case err := <-collateDone:
		if err != nil {
			t.Fatalf("tdb collate --nats: %v\nstdout: %s\nstderr: %s", err, collateOut.String(), collateErr.String())
		}
	case <-ctx.Done():
		t.Fatalf("the job did not finish: %v\nstderr: %s", ctx.Err(), collateErr.String())
	}
	jobTime := time.Since(jobStart)
	t.Logf("cluster job done in %.1fs: %s", jobTime.Seconds(), strings.TrimSpace(collateOut.String()))
	if !strings.Contains(collateOut.String(), "dataset "+datasetName+" written") {
		t.Errorf("tdb collate said %q, want the dataset written", collateOut.String())
	}

	// The killed worker's unfinished shards were redelivered to others.
	final := readShards(ctx, t, kv, jobID)
	for _, i := range victimShards {
		r := final[i]
		switch {
		case r.Status != "done":
			t.Errorf("shard %d is %s after the job", i, r.Status)
		case processOf(r.Worker) == victim && r.Updated.After(workerKilled):
			t.Errorf("shard %d recorded done by %s after it was killed", i, r.Worker)
		case processOf(r.Worker) != victim && r.Delivery < 2:
			t.Errorf("shard %d finished by %s on delivery %d, want a redelivery (>= 2)", i, r.Worker, r.Delivery)
		case processOf(r.Worker) != victim:
			t.Logf("shard %d: redelivered to %s (delivery %d)", i, r.Worker, r.Delivery)
		}
	}
	checkReplicas(ctx, t, js, "after the job")

	// The same spec in one process (embedded NATS, local store).
	refStore := filepath.Join(dir, "reference")
	ref := exec.CommandContext(ctx, tdb, append([]string{"collate", "--store", refStore, "--nats-dir", filepath.Join(dir, "reference-nats"),
		"--nats-listen", "", "--workers", "2"}, jobFlags...)...)
	ref.Env = append(os.Environ(), "TDB_CACHE_DIR="+filepath.Join(dir, "cache"))
	refStart := time.Now()
	refOut, err := ref.CombinedOutput()
	if err != nil {
		t.Fatalf("single-process tdb collate: %v\n%s", err, refOut)
	}
	t.Logf("single-process job done in %.1fs", time.Since(refStart).Seconds())
	refJob := jobLine.FindStringSubmatch(string(refOut))
	if refJob == nil {
		t.Fatalf("no job id in the single-process run's output:\n%s", refOut)
	}

	want := localFiles(t, filepath.Join(refStore, "datasets", datasetName))
	got := blobFiles(ctx, t, connString, "datasets/"+datasetName+"/")
	compareDatasets(t, got, want, jobID, refJob[1])
	reportRestarts(t, filepath.Join(clusterDir, "run", "restarts"), victim, leader, filepath.Join(clusterDir, "logs"))

	if port, ok := services["query"]; ok {
		code, body := get(ctx, fmt.Sprintf("http://127.0.0.1:%d/api/v1/datasets/%s", port, datasetName))
		if code != http.StatusOK || !strings.Contains(body, datasetName) {
			t.Errorf("query service: GET /api/v1/datasets/%s: HTTP %d %.200s", datasetName, code, body)
		}
	}
	t.Logf("total %.1fs", time.Since(start).Seconds())
}

// buildTDB builds the tdb binary of this checkout.
func buildTDB(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "tdb")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tdb")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tdb: %v\n%s", err, out)
	}
	return bin
}

// buildNATSServer installs nats-server, at the version tdb's go.mod
// requires, into a cache folder (once), as cluster.sh does: $NATS_SERVER if
// set, else TDB_CLUSTER_CACHE or the user cache folder.
func buildNATSServer(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NATS_SERVER"); p != "" {
		if !isExecutable(p) {
			t.Fatalf("NATS_SERVER=%q is not an executable", p)
		}
		return p
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 (v\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("no github.com/nats-io/nats-server/v2 requirement in go.mod")
	}
	version := string(m[1])
	cache := os.Getenv("TDB_CLUSTER_CACHE")
	if cache == "" {
		uc, err := os.UserCacheDir()
		if err != nil {
			missing(t, "no cache folder for nats-server: %v (set TDB_CLUSTER_CACHE)", err)
		}
		cache = filepath.Join(uc, "tdb", "cluster")
	}
	binDir := filepath.Join(cache, "nats-server-"+version)
	bin := filepath.Join(binDir, "nats-server")
	if isExecutable(bin) {
		return bin
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "install", "github.com/nats-io/nats-server/v2@"+version)
	cmd.Dir = binDir // outside any module: go install pkg@version
	cmd.Env = append(os.Environ(), "GOBIN="+binDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		missing(t, "go install github.com/nats-io/nats-server/v2@%s failed (offline? set NATS_SERVER): %v\n%s", version, err, out)
	}
	return bin
}

// findAzurite looks where .ci/run installs azurite-blob, then $TDB_AZURITE
// and $PATH.
func findAzurite(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TDB_AZURITE"); p != "" {
		if !isExecutable(p) {
			t.Fatalf("TDB_AZURITE=%q is not an executable", p)
		}
		return p
	}
	for _, rel := range []string{".ci/node/node_modules/.bin/azurite-blob", "node_modules/.bin/azurite-blob"} {
		if p, err := filepath.Abs(filepath.Join(root, rel)); err == nil && isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p
	}
	missing(t, "azurite-blob not found: npm install --prefix .ci/node azurite@3.37.0, or set TDB_AZURITE")
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// freePortBlock finds a base port whose block (cluster.sh uses base+11 to
// base+81) is free now. Other tests on the machine may take a port later;
// cluster.sh then refuses to start, naming it.
func freePortBlock(t *testing.T) int {
	t.Helper()
	used := []int{40, 80, 81}
	for i := 1; i <= 3; i++ {
		used = append(used, 10+i, 20+i, 30+i, 60+i)
	}
	used = append(used, 51, 52)
	for try := 0; try < 50; try++ {
		base := 20000 + int(time.Now().UnixNano()/1000%300)*100
		free := true
		for _, off := range used {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free block of ports")
	return 0
}

// commands lists the subcommands of the built tdb ("tdb help").
func commands(t *testing.T, tdb string) map[string]bool {
	t.Helper()
	out, err := exec.Command(tdb, "help").Output()
	if err != nil {
		t.Fatalf("tdb help: %v", err)
	}
	cmds := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "  ") {
			if f := strings.Fields(line); len(f) > 0 {
				cmds[f[0]] = true
			}
		}
	}
	return cmds
}

func missingOf(have map[string]bool, names ...string) []string {
	var out []string
	for _, n := range names {
		if !have[n] {
			out = append(out, "tdb "+n)
		}
	}
	return out
}

func get(ctx context.Context, url string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// checkReplicas: the shard stream and the job bucket are replicated on all
// three servers (and stay so: a client must not scale them down).
func checkReplicas(ctx context.Context, t *testing.T, js jetstream.JetStream, when string) {
	t.Helper()
	for _, name := range []string{"TDB_SHARDS", "KV_tdb-jobs"} {
		var info *jetstream.StreamInfo
		err := retry(ctx, 20*time.Second, func(ctx context.Context) error {
			s, err := js.Stream(ctx, name)
			if err == nil {
				info = s.CachedInfo()
			}
			return err
		})
		if err != nil {
			t.Errorf("%s: stream %s: %v", when, name, err)
			continue
		}
		if info.Config.Replicas != 3 {
			t.Errorf("%s: stream %s has %d replicas, want 3", when, name, info.Config.Replicas)
		}
	}
}

// retry calls f (each call bounded by 5 s) until it succeeds or d passes:
// while a NATS node is down, requests may time out until leaders move.
func retry(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(d)
	for {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(c)
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var jobLine = regexp.MustCompile(`job (\S+) \(`)

// waitJobID reads the job id from tdb collate's first line.
func waitJobID(ctx context.Context, t *testing.T, stderr *lockedBuffer, done <-chan error) string {
	t.Helper()
	for {
		if m := jobLine.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("tdb collate ended before submitting: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no job id from tdb collate: %s", stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func jobBucket(ctx context.Context, t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	var kv jetstream.KeyValue
	if err := retry(ctx, 20*time.Second, func(ctx context.Context) (err error) {
		kv, err = js.KeyValue(ctx, "tdb-jobs")
		return err
	}); err != nil {
		t.Fatalf("KV bucket tdb-jobs: %v", err)
	}
	return kv
}

// readShards reads the job's shard records.
func readShards(ctx context.Context, t *testing.T, kv jetstream.KeyValue, job string) map[int]shardRecord {
	t.Helper()
	out := map[int]shardRecord{}
	err := retry(ctx, 30*time.Second, func(ctx context.Context) error {
		lister, err := kv.ListKeysFiltered(ctx, "jobs."+job+".shard.*")
		if err != nil {
			return err
		}
		var keys []string
		for k := range lister.Keys() {
			keys = append(keys, k)
		}
		for _, k := range keys {
			e, err := kv.Get(ctx, k)
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			var r shardRecord
			if err := json.Unmarshal(e.Value(), &r); err != nil {
				return fmt.Errorf("shard record %s: %w", k, err)
			}
			out[r.Index] = r
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading shard records: %v", err)
	}
	return out
}

// waitShards polls the shard records until ok says so.
func waitShards(ctx context.Context, t *testing.T, kv jetstream.KeyValue, job string, done <-chan error, ok func(map[int]shardRecord) bool) map[int]shardRecord {
	t.Helper()
	for {
		rs := readShards(ctx, t, kv, job)
		if ok(rs) {
			return rs
		}
		select {
		case err := <-done:
			t.Fatalf("the job ended before the faults were injected (err %v; %d shard records): make it longer", err, len(rs))
		case <-ctx.Done():
			t.Fatalf("waiting for shards: %v", ctx.Err())
		case <-time.After(150 * time.Millisecond):
		}
	}
}

func countDone(rs map[int]shardRecord) int {
	n := 0
	for _, r := range rs {
		if r.Status == "done" {
			n++
		}
	}
	return n
}

// processOf maps a worker name in a shard record (worker-2-0: process
// worker-2, goroutine 0) to its cluster.sh process name.
func processOf(worker string) string {
	if i := strings.LastIndexByte(worker, '-'); i > 0 {
		return worker[:i]
	}
	return worker
}

// leaderCoordinator finds the coordinator that holds the leader lease (KV
// bucket tdb-leader, key coordinator: its pid). A tdb without leader
// election has no such bucket: both coordinators drive every job, and
// either is "the leader".
func leaderCoordinator(ctx context.Context, t *testing.T, js jetstream.JetStream, pid func(string) int) (name, why string) {
	t.Helper()
	var lease struct {
		ID  string `json:"id"`
		PID int    `json:"pid"`
	}
	var noBucket bool
	err := retry(ctx, 15*time.Second, func(ctx context.Context) error {
		kv, err := js.KeyValue(ctx, "tdb-leader")
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			noBucket = true
			return nil // an answer, not a failure to retry
		}
		if err != nil {
			return err
		}
		e, err := kv.Get(ctx, "coordinator")
		if err != nil {
			return err
		}
		return json.Unmarshal(e.Value(), &lease)
	})
	if err == nil && noBucket {
		return "coordinator-1", "this tdb has no leader election (no tdb-leader bucket): both coordinators lead"
	}
	if err != nil {
		t.Fatalf("reading the coordinator leader lease: %v", err)
	}
	for _, n := range []string{"coordinator-1", "coordinator-2"} {
		if pid(n) == lease.PID {
			return n, fmt.Sprintf("it holds the leader lease (%s)", lease.ID)
		}
	}
	t.Fatalf("the leader lease names pid %d (%s), neither coordinator's", lease.PID, lease.ID)
	return "", ""
}

// streamLeader names the server that leads a stream.
func streamLeader(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) string {
	t.Helper()
	var leader string
	err := retry(ctx, 15*time.Second, func(ctx context.Context) error {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return errors.New("no stream leader")
		}
		leader = info.Cluster.Leader
		return nil
	})
	if err != nil {
		t.Fatalf("stream %s leader: %v", stream, err)
	}
	if !regexp.MustCompile(`^n[123]$`).MatchString(leader) {
		t.Fatalf("stream leader %q is not one of cluster.sh's servers n1..n3", leader)
	}
	return leader
}

// localFiles reads every file under dir, by slash path relative to it.
func localFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("reading the reference dataset: %v", err)
	}
	return out
}

// blobFiles reads every blob under prefix in Azurite's container.
func blobFiles(ctx context.Context, t *testing.T, connString, prefix string) map[string][]byte {
	t.Helper()
	c, err := container.NewClientFromConnectionString(connString, containerName, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	pager := c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("listing %s in Azurite: %v", prefix, err)
		}
		for _, item := range page.Segment.BlobItems {
			name := *item.Name
			resp, err := c.NewBlobClient(name).DownloadStream(ctx, nil)
			if err != nil {
				t.Fatalf("downloading %s: %v", name, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("downloading %s: %v", name, err)
			}
			out[strings.TrimPrefix(name, prefix)] = b
		}
	}
	return out
}

// compareDatasets wants the same files with the same sha256. One field may
// differ: the manifest's created_by names the job id ("tdb coordinator (job
// j-...)"), and a job id is derived from the spec and the store the job
// writes to, so the cluster's job (Azurite) and the reference (a local
// folder) have different ids. The manifest is compared byte for byte after
// the cluster's job id is replaced by the reference's; it holds no store
// URL and no time.
func compareDatasets(t *testing.T, got, want map[string][]byte, gotJob, wantJob string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the single-process run wrote no files")
	}
	if _, ok := want["manifest.json"]; !ok {
		t.Errorf("the reference dataset has no manifest.json: %v", keys(want))
	}
	if m, ok := got["manifest.json"]; ok && gotJob != wantJob {
		if n := bytes.Count(m, []byte(gotJob)); n != 1 {
			t.Errorf("the cluster's manifest names its job %s %d times, want once (in created_by)", gotJob, n)
		}
		got["manifest.json"] = bytes.ReplaceAll(m, []byte(gotJob), []byte(wantJob))
	}
	for _, k := range keys(want) {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: missing from the cluster's dataset", k)
		case sha(g) != sha(want[k]):
			t.Errorf("%s: sha256 %s (%d bytes) on the cluster, %s (%d bytes) in one process", k, sha(g), len(g), sha(want[k]), len(want[k]))
		}
	}
	for _, k := range keys(got) {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: only in the cluster's dataset", k)
		}
	}
	if !t.Failed() {
		t.Logf("%d files identical (manifest up to the job id: cluster %s, single process %s): %v", len(want), gotJob, wantJob, keys(want))
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// reportRestarts logs every tdb service the cluster's supervisor restarted:
// the killed ones are expected; any other names a service that exited by
// itself (its log's last lines say why).
func reportRestarts(t *testing.T, file, killedWorker, killedCoordinator, logs string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if f[1] == killedWorker || f[1] == killedCoordinator {
			t.Logf("restarted after kill -9: %s", line)
			continue
		}
		lb, _ := os.ReadFile(filepath.Join(logs, f[1]+".log"))
		t.Logf("NOTE: %s exited without being killed and was restarted: %s\n%s", f[1], line, strings.Join(tail(lb, 4), "\n"))
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dumpLogs prints the tail of every process log (on failure).
func dumpLogs(t *testing.T, dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		lines := tail(b, 25)
		t.Logf("---- %s (last %d lines)\n%s", e.Name(), len(lines), strings.Join(lines, "\n"))
	}
}

func tail(b []byte, n int) []string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

// azuriteKey is the emulator's well-known development account key (public,
// documented by Microsoft; not a secret).
const azuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
