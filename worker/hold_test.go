package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"tdb/internal/natsx"
)

// TestHoldWhileKeepsTheDelivery checks that a worker waiting for NATS to
// answer keeps its delivery: a step that fails for three times the ack wait
// and then succeeds is not redelivered meanwhile, and a step that can never
// succeed returns at once.
func TestHoldWhileKeepsTheDelivery(t *testing.T) {
	srv, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := srv.Connect("hold-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const ackWait = 400 * time.Millisecond
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "HOLD", Subjects: []string{"hold.>"}})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "hold.a", []byte("task")); err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-batch.Messages()
	if msg == nil {
		t.Fatal("no message delivered")
	}

	reg := prometheus.NewRegistry()
	w := &Worker{cfg: Config{Metrics: NewMetrics(reg)}, q: natsx.QueueConfig{AckWait: ackWait}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	outage := errors.New("nats: no response from stream")
	start := time.Now()
	var calls atomic.Int32
	err = w.holdWhile(ctx, msg, log, "test", func(context.Context) error {
		calls.Add(1)
		if time.Since(start) < 3*ackWait {
			return outage
		}
		return nil
	})
	if err != nil {
		t.Fatalf("holdWhile after a %v outage: %v", 3*ackWait, err)
	}
	if n := calls.Load(); n < 3 {
		t.Errorf("fn ran %d times; want at least 3 tries over the outage", n)
	}
	var counted dto.Metric
	if err := w.cfg.Metrics.Errors.WithLabelValues("kv").Write(&counted); err != nil {
		t.Fatal(err)
	}
	if got := counted.GetCounter().GetValue(); got != float64(calls.Load()-1) {
		t.Errorf("kv errors counted: %v, want %d", got, calls.Load()-1)
	}
	// Nothing was redelivered while the step waited.
	again, err := cons.Fetch(1, jetstream.FetchMaxWait(ackWait/2))
	if err != nil {
		t.Fatal(err)
	}
	for m := range again.Messages() {
		md, _ := m.Metadata()
		t.Errorf("message redelivered during the hold (delivery %d)", md.NumDelivered)
	}
	if err := msg.DoubleAck(ctx); err != nil {
		t.Fatalf("acking the held delivery: %v", err)
	}

	// A stopHolding error is returned unwrapped after one try.
	calls.Store(0)
	err = w.holdWhile(ctx, msg, log, "test", func(context.Context) error {
		calls.Add(1)
		return stopHolding(jetstream.ErrKeyNotFound)
	})
	if !errors.Is(err, jetstream.ErrKeyNotFound) || calls.Load() != 1 {
		t.Errorf("stopHolding: err %v after %d calls; want ErrKeyNotFound after 1", err, calls.Load())
	}
	var stop errStopHolding
	if errors.As(err, &stop) {
		t.Error("holdWhile returned the stopHolding wrapper")
	}

	// A cancelled context ends the hold with the step's error.
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	if err := w.holdWhile(cctx, msg, log, "test", func(context.Context) error { return outage }); !errors.Is(err, outage) {
		t.Errorf("cancelled hold: %v, want the outage error", err)
	}
}
