package coordinator_test

import (
	"context"
	"net/url"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"tdb/coordinator"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/store"
)

// burn is the body of the "burn" role: a CPU-burning neighbour.
func burn() int {
	for range runtime.NumCPU() {
		go func() {
			x := 0
			for {
				x++
			}
		}()
	}
	select {}
}

// A busy machine must not kill the coordinator: coordinator and worker run
// with GOMAXPROCS=1 next to a process burning every CPU, and the NATS
// server is restarted (a few seconds down) in the middle of the job. The
// job finishes with the dataset of a run without faults, and the
// coordinator is still the same process.
func TestSoakBusyMachineNATSRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test")
	}
	want, _ := referenceDataset(t, faultSpec(t, "reference"))
	dir := filepath.Join(t.TempDir(), "nats")
	emb, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(emb.URL())
	f := &faultEnv{t: t, natsURL: emb.URL(), storeDir: filepath.Join(t.TempDir(), "store"), ackWait: 2 * time.Second, maxDeliv: 5}
	t.Cleanup(func() {
		f.stopAll()
		emb.Shutdown()
	})
	f.start("burn", "burner")
	coord := f.start("coordinator", "coordinator", "GOMAXPROCS=1")
	f.start("worker", "w1", "GOMAXPROCS=1", "TDB_FAULT_SHARD_DELAY=200ms")
	nc, err := nats.Connect(emb.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	client, err := coordinator.NewClient(ctx, nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	spec := faultSpec(t, "soak")
	state, err := client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "a shard to finish", func() bool {
		p, err := client.Progress(ctx, state.ID)
		return err == nil && p.Done >= 1
	})
	emb.Shutdown()
	time.Sleep(3 * time.Second)
	emb, err = natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: dir, Listen: u.Host})
	if err != nil {
		t.Fatal(err)
	}
	final, err := client.Wait(ctx, state.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != jobs.Done {
		t.Fatalf("final %+v", final)
	}
	select {
	case <-coord.done:
		t.Fatalf("the coordinator exited:\n%s", coord.out.String())
	default:
	}
	st, _ := store.NewLocal(f.storeDir)
	sameDataset(t, datasetFiles(t, st, spec.Dataset), want)
}
