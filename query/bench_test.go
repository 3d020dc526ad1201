package query

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"tdb/collate"
	"tdb/dataset"
	"tdb/store"
	"tdb/store/azuritetest"
)

// The serving benchmark of README "Query service speed". It is not a timed
// test: it runs only with TDB_QUERY_BENCH=DIR (DIR keeps the generated
// dataset between runs), e.g.
//
//	TDB_QUERY_BENCH=/tmp/qbench go test -run ServeBenchmark -v -timeout 30m ./query
//
// TDB_QUERY_BENCH_LAYERS (default 12) and TDB_QUERY_BENCH_SECONDS (default
// 10) shorten it; TDB_QUERY_BENCH_AZURITE=1 serves from Azurite instead of
// the local store.

const (
	benchComponents = 3072
	benchT          = 64
	benchWindows    = 400
)

// genGPT2Shaped writes a dataset shaped like GPT-2 small's MLP neurons
// (layers × 3072 components; top 32, random 16, 10 × 5 quantile records of
// 64 tokens) with the real accumulators and writer, from synthetic
// activations: no model needed.
func genGPT2Shaped(tb testing.TB, st store.Store, name string, layers int) {
	ctx := context.Background()
	if _, err := dataset.ReadManifest(ctx, st, name); err == nil {
		return
	}
	cfg := collate.DefaultConfig()
	rng := rand.New(rand.NewPCG(1, 2))
	m := &dataset.Manifest{Name: name, Model: "gpt2", Corpus: "synthetic:bench", Tokens: benchWindows * benchT, NCtx: benchT,
		Settings: dataset.Settings(cfg), ComponentsPerRowGroup: collate.DefaultComponentsPerRowGroup, CreatedBy: "query benchmark"}
	loc := dataset.ManifestLocation{Name: "mlp.post_act", Components: benchComponents}
	toks := make([]int32, benchT)
	acts := make([]float32, benchT*benchComponents)
	for l := range layers {
		acc, err := collate.NewLayerAccumulator("mlp.post_act", l, benchComponents, cfg)
		if err != nil {
			tb.Fatal(err)
		}
		for w := range benchWindows {
			for i := range toks {
				toks[i] = int32(rng.IntN(50257))
			}
			for i := range acts {
				acts[i] = float32(rng.NormFloat64())
			}
			if err := acc.AddWindow(dataset.Source{Doc: int64(w), Offset: 0}, toks, acts); err != nil {
				tb.Fatal(err)
			}
		}
		if err := collate.WriteLayer(ctx, st, name, acc, 0); err != nil {
			tb.Fatal(err)
		}
		loc.Layers = append(loc.Layers, l)
		tb.Logf("generated layer %d", l)
	}
	m.Locations = []dataset.ManifestLocation{loc}
	if err := dataset.WriteManifest(ctx, st, m); err != nil {
		tb.Fatal(err)
	}
}

type loadResult struct {
	reqs     int
	errors   int
	rps      float64
	p50, p99 time.Duration
}

func (r loadResult) String() string {
	return fmt.Sprintf("%7.0f req/s, p50 %6.2f ms, p99 %6.2f ms (%d requests, %d errors)", r.rps, ms(r.p50), ms(r.p99), r.reqs, r.errors)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// load runs conc clients GETting random paths for d.
func load(base string, paths []string, conc int, d time.Duration) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			var mine []time.Duration
			bad := 0
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := client.Get(base + paths[rng.IntN(len(paths))])
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	return summarize(lat, errs, d)
}

func summarize(lat []time.Duration, errs int, d time.Duration) loadResult {
	slices.Sort(lat)
	r := loadResult{reqs: len(lat), errors: errs, rps: float64(len(lat)) / d.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func TestServeBenchmark(t *testing.T) {
	dir := os.Getenv("TDB_QUERY_BENCH")
	if dir == "" {
		t.Skip("set TDB_QUERY_BENCH=DIR to run the serving benchmark")
	}
	layers := envInt("TDB_QUERY_BENCH_LAYERS", 12)
	secs := time.Duration(envInt("TDB_QUERY_BENCH_SECONDS", 10)) * time.Second
	var st store.Store
	var err error
	staticDir, where := "static", "local store"
	if os.Getenv("TDB_QUERY_BENCH_AZURITE") != "" {
		// The same on Azure Blob: a fresh Azurite (in memory), so the
		// dataset is generated again.
		conn, endpoint := azuritetest.Start(t)
		st, err = store.NewAzure(endpoint+"/bench/data", store.AzureCredentials{ConnectionString: conn})
		staticDir, where = "static-azurite", "Azurite"
	} else {
		st, err = store.NewLocal(filepath.Join(dir, "store"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("store: %s", where)
	t0 := time.Now()
	genGPT2Shaped(t, st, "gpt2-bench", layers)
	t.Logf("dataset ready in %v", time.Since(t0).Round(time.Millisecond))
	const cacheBytes = 1 << 30
	opts := testOpts(t)
	opts.CacheBytes = cacheBytes

	// Working set: 2,000 random components, pre-rendered as static files
	// with exactly the API's bytes.
	rng := rand.New(rand.NewPCG(5, 6))
	var paths []string
	seen := map[string]bool{}
	for len(paths) < 2000 {
		p := fmt.Sprintf("/api/v1/datasets/gpt2-bench/mlp.post_act/%d/%d", rng.IntN(layers), rng.IntN(benchComponents))
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	static := filepath.Join(dir, staticDir)
	fileSrv := httptest.NewServer(http.FileServer(http.Dir(static)))
	defer fileSrv.Close()
	api := newAPI(t, st, opts)
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()
	// Cold: a fresh server, the first read of each component, one at a
	// time; then the rest of the working set. Each answer is also written
	// as a static file (the same bytes) for http.FileServer.
	var cold []time.Duration
	for i, p := range paths {
		t1 := time.Now()
		resp, err := http.Get(apiSrv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", p, resp.StatusCode, err)
		}
		if i < 300 {
			cold = append(cold, time.Since(t1))
		}
		f := filepath.Join(static, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	coldRes := summarize(cold, 0, time.Duration(len(cold))*time.Second)
	conc := 16
	fs := load(fileSrv.URL, paths, conc, secs)
	ap := load(apiSrv.URL, paths, conc, secs)
	runtime.GC()
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	size, _ := st.Size(context.Background(), dataset.RecordsKey("gpt2-bench", "mlp.post_act", 0))
	t.Logf("dataset: %d layers × %d components, records.parquet %.1f MB per layer; response %d bytes (first path)", layers, benchComponents, float64(size)/1e6, len(mustRead(t, filepath.Join(static, filepath.FromSlash(paths[0])))))
	t.Logf("cold (fresh server, sequential, first 300 components): p50 %.2f ms, p99 %.2f ms", ms(coldRes.p50), ms(coldRes.p99))
	t.Logf("http.FileServer (pre-rendered, %d clients): %v", conc, fs)
	t.Logf("tdb query API   (warm, %d clients):         %v", conc, ap)
	t.Logf("API / FileServer: %.0f%% of req/s, p99 %.2fx", 100*ap.rps/fs.rps, float64(ap.p99)/float64(fs.p99))
	t.Logf("memory: heap in use %.0f MB, Sys %.0f MB; cache holds %.0f MB (bound %d MB)", float64(mem.HeapInuse)/1e6, float64(mem.Sys)/1e6, float64(api.r.cache.bytes()+api.r.answers.bytes())/1e6, cacheBytes>>20)
}

func mustRead(t *testing.T, f string) []byte {
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkWarmComponent serves one cached component answer (needs the
// TDB_QUERY_BENCH dataset).
func BenchmarkWarmComponent(b *testing.B) {
	dir := os.Getenv("TDB_QUERY_BENCH")
	if dir == "" {
		b.Skip()
	}
	st, _ := store.NewLocal(filepath.Join(dir, "store"))
	api := newAPI(b, st, testOpts(b))
	p := "/api/v1/datasets/gpt2-bench/mlp.post_act/3/77"
	get(b, api, p)
	b.ResetTimer()
	for range b.N {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
	}
}

// BenchmarkColdRowGroup renders a component of a new row group each time:
// its pages read and decoded (the whole row group in a dataset written
// without a page index), then rendered (needs the TDB_QUERY_BENCH
// dataset).
func BenchmarkColdRowGroup(b *testing.B) {
	dir := os.Getenv("TDB_QUERY_BENCH")
	if dir == "" {
		b.Skip()
	}
	st, _ := store.NewLocal(filepath.Join(dir, "store"))
	r := NewReader(st, testOpts(b).Strings, 1<<30)
	ctx := context.Background()
	r.View(ctx, "gpt2-bench", "mlp.post_act", 3, 0)
	b.ResetTimer()
	for i := range b.N {
		if _, err := r.ComponentJSON(ctx, "gpt2-bench", "mlp.post_act", 3, (i*64+5)%3072); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdRead renders components as the serving benchmark's cold
// phase does: a fresh Reader (empty caches) reads the first 300 of a
// random sequence of components over the layers, then starts afresh; it
// reports the CPU time of the process per read (cpu-ms/op, less sensitive
// to other load on the machine than the wall time; run with -cpu 1).
// Needs the TDB_QUERY_BENCH dataset.
func BenchmarkColdRead(b *testing.B) {
	dir := os.Getenv("TDB_QUERY_BENCH")
	if dir == "" {
		b.Skip("set TDB_QUERY_BENCH=DIR (the serving benchmark's dataset)")
	}
	st, err := store.NewLocal(filepath.Join(dir, "store"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := dataset.ReadManifest(context.Background(), st, "gpt2-bench")
	if err != nil {
		b.Fatal(err)
	}
	layers := len(m.Locations[0].Layers)
	rng := rand.New(rand.NewPCG(5, 6))
	type comp struct{ layer, index int }
	seq := make([]comp, 300)
	for i := range seq {
		seq[i] = comp{rng.IntN(layers), rng.IntN(benchComponents)}
	}
	strs := testOpts(b).Strings
	ctx := context.Background()
	var r *Reader
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		if i%len(seq) == 0 {
			b.StopTimer()
			r = NewReader(st, strs, 1<<30)
			runtime.GC()
			b.StartTimer()
		}
		c := seq[i%len(seq)]
		if _, err := r.ComponentJSON(ctx, "gpt2-bench", "mlp.post_act", c.layer, c.index); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
