package query

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"tdb/dataset"
	"tdb/model/tokenizer"
	"tdb/store"
)

var (
	tokOnce sync.Once
	tok     *tokenizer.Tokenizer
	strs    Strings
)

func testOpts(t testing.TB) Options {
	tokOnce.Do(func() {
		var err error
		if tok, err = tokenizer.GPT2(); err != nil {
			panic(err)
		}
		strs = TokenStrings(tok)
	})
	return Options{Tokenizer: tok, Strings: strs}
}

// countingST counts ranged reads and bytes of a real store.
type countingST struct {
	store.Store
	gets, bytes atomic.Int64
}

func (c *countingST) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	c.gets.Add(1)
	c.bytes.Add(n)
	return c.Store.GetRange(ctx, key, off, n)
}

func TestAPI(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	m := makeDataset(t, mem, "demo", 40, 8, 300, 1)
	st := &countingST{Store: mem}
	api := newAPI(t, st, testOpts(t))

	var list []DatasetInfo
	getData(t, api, "/api/v1/datasets", &list)
	if len(list) != 1 || list[0].Name != "demo" || list[0].Tokens != m.Tokens || list[0].NCtx != 8 || len(list[0].Locations) != 2 {
		t.Fatalf("datasets = %+v", list)
	}
	var man dataset.Manifest
	getData(t, api, "/api/v1/datasets/demo", &man)
	if !reflect.DeepEqual(&man, m) {
		t.Errorf("manifest = %+v, want %+v", man, m)
	}

	t.Run("component", func(t *testing.T) {
		for _, c := range []struct {
			loc          string
			layer, index int
		}{{"mlp.post_act", 0, 0}, {"mlp.post_act", 1, 17}, {"mlp.post_act", 1, 39}, {"attn.heads", 0, 3}} {
			want, err := dataset.ReadComponent(ctx, mem, "demo", c.loc, c.layer, c.index)
			if err != nil {
				t.Fatal(err)
			}
			st.gets.Store(0)
			var got Component
			getData(t, api, fmt.Sprintf("/api/v1/datasets/demo/%s/%d/%d", c.loc, c.layer, c.index), &got)
			if got.Location != c.loc || got.Layer != c.layer || got.Index != c.index || got.Pairs != want.Pairs || got.Dataset != "demo" {
				t.Errorf("%v: header %+v", c, got)
			}
			if !reflect.DeepEqual(got.Stats.Stats, want.Stats) || len(got.Stats.HistogramEdges) != len(want.Stats.Histogram)+1 {
				t.Errorf("%v: stats %+v, want %+v", c, got.Stats, want.Stats)
			}
			if len(got.Top) != len(want.Top) || len(got.Top) == 0 || len(got.Random) != len(want.Random) || len(got.Quantiles) != len(want.Quantiles) {
				t.Fatalf("%v: %d top %d random %d quantiles, want %d %d %d", c, len(got.Top), len(got.Random), len(got.Quantiles), len(want.Top), len(want.Random), len(want.Quantiles))
			}
			for i, r := range got.Top {
				w := want.Top[i]
				if r.Rank != i || r.MaxActivation != w.MaxActivation || r.Source != w.Source || !slices.Equal(r.Tokens, w.Tokens) || !slices.Equal(r.Activations, w.Activations) {
					t.Errorf("%v: top %d = %+v, want %+v", c, i, r, w)
				}
				if len(r.TokenStrings) != len(r.Tokens) || r.TokenStrings[0] != tok.Decode([]int{int(r.Tokens[0])}) {
					t.Errorf("%v: token strings %q for %v", c, r.TokenStrings, r.Tokens)
				}
				if wantLayout := map[bool]string{false: "tokens", true: "lower_triangle"}[want.Pairs]; r.ActivationsLayout != wantLayout {
					t.Errorf("layout %q, want %q", r.ActivationsLayout, wantLayout)
				}
			}
			for b, q := range got.Quantiles {
				if q.Bucket != b || q.Lower != want.Stats.QuantileBoundaries[b] || q.Upper != want.Stats.QuantileBoundaries[b+1] || len(q.Records) != len(want.Quantiles[b]) {
					t.Errorf("%v: quantile %d = %+v", c, b, q)
				}
				for _, r := range q.Records {
					if r.MaxActivation < q.Lower || r.MaxActivation >= q.Upper && q.Upper != want.Stats.Max {
						t.Errorf("%v: bucket %d record max %v outside [%v, %v)", c, b, r.MaxActivation, q.Lower, q.Upper)
					}
				}
			}
			// A second read comes from the caches: no store request.
			st.gets.Store(0)
			var again Component
			getData(t, api, fmt.Sprintf("/api/v1/datasets/demo/%s/%d/%d", c.loc, c.layer, c.index), &again)
			if n := st.gets.Load(); n != 0 {
				t.Errorf("%v: warm read made %d store requests", c, n)
			}
			var k2 Component
			getData(t, api, fmt.Sprintf("/api/v1/datasets/demo/%s/%d/%d?k=2", c.loc, c.layer, c.index), &k2)
			if len(k2.Top) != 2 || !reflect.DeepEqual(k2.Top, got.Top[:2]) || !reflect.DeepEqual(k2.Random, got.Random) {
				t.Errorf("k=2: %d top", len(k2.Top))
			}
		}
	})

	t.Run("layer table", func(t *testing.T) {
		var all []dataset.Stats
		for c := 0; c < 40; c++ {
			v, err := dataset.ReadComponent(ctx, mem, "demo", "mlp.post_act", 1, c)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, v.Stats)
		}
		for _, tc := range []struct {
			sort, order string
			key         func(s dataset.Stats) float64
		}{
			{"max", "desc", func(s dataset.Stats) float64 { return -float64(s.Max) }},
			{"mean", "asc", func(s dataset.Stats) float64 { return s.Mean }},
			{"frac_nonzero", "desc", func(s dataset.Stats) float64 { return -s.FracNonzero }},
			{"kurtosis", "desc", func(s dataset.Stats) float64 { return -s.Kurtosis }},
			{"variance", "asc", func(s dataset.Stats) float64 { return s.Variance }},
		} {
			idx := make([]int, 40)
			for i := range idx {
				idx[i] = i
			}
			slices.SortStableFunc(idx, func(a, b int) int {
				x, y := tc.key(all[a]), tc.key(all[b])
				if x < y {
					return -1
				} else if x > y {
					return 1
				}
				return 0
			})
			var page Table
			getData(t, api, "/api/v1/datasets/demo/mlp.post_act/1?sort="+tc.sort+"&order="+tc.order+"&limit=7&offset=5", &page)
			if page.Total != 40 || len(page.Components) != 7 {
				t.Fatalf("%s: total %d, %d rows", tc.sort, page.Total, len(page.Components))
			}
			for i, row := range page.Components {
				if row.Index != idx[5+i] || row.Max != all[row.Index].Max || row.Mean != all[row.Index].Mean {
					t.Errorf("%s %s row %d = %+v, want component %d", tc.sort, tc.order, 5+i, row, idx[5+i])
				}
			}
		}
		var last Table
		getData(t, api, "/api/v1/datasets/demo/mlp.post_act/1?offset=38", &last)
		if len(last.Components) != 2 || last.Components[1].Index != 39 || last.Sort != "index" {
			t.Errorf("last page %+v", last)
		}
	})

	t.Run("search", func(t *testing.T) {
		// Component c fires on tokens ≡ c mod 50; pick a token seen at the
		// peak of component 7's best record.
		v, err := dataset.ReadComponent(ctx, mem, "demo", "mlp.post_act", 1, 7)
		if err != nil {
			t.Fatal(err)
		}
		best := v.Top[0]
		peak := dataset.PeakPosition(&best, false)
		id := best.Tokens[peak]
		var res SearchResult
		getData(t, api, fmt.Sprintf("/api/v1/datasets/demo/search?token=%%23%d&location=mlp.post_act&layer=1&limit=50", id), &res)
		if res.Token == nil || *res.Token != int(id) || res.Layers != 1 || len(res.Hits) == 0 {
			t.Fatalf("search: %+v", res)
		}
		found := false
		for i, h := range res.Hits {
			e := h.Evidence
			if e.Tokens[e.Position] != id || h.Layer != 1 || h.Location != "mlp.post_act" {
				t.Errorf("hit %+v: evidence token %d at %d, want %d", h, e.Tokens[e.Position], e.Position, id)
			}
			if i > 0 && h.Score > res.Hits[i-1].Score {
				t.Errorf("hits not ranked by score")
			}
			if h.Index == 7 {
				found = true
				if h.Score != best.MaxActivation || e.Rank != 0 || e.Source != best.Source {
					t.Errorf("component 7 hit %+v, want its top record %+v", h, best.Source)
				}
			}
		}
		if !found {
			t.Errorf("component 7 not found for token %d: %+v", id, res.Hits)
		}
		// The same by the token's text, across every location and layer.
		text := tok.Decode([]int{int(id)})
		if ids := tok.Encode(text); len(ids) == 1 && ids[0] == int(id) {
			var byText SearchResult
			getData(t, api, "/api/v1/datasets/demo/search?token="+strings.ReplaceAll(text, " ", "%20"), &byText)
			if byText.Layers != 3 || len(byText.Hits) < len(res.Hits) {
				t.Errorf("token by text: %d layers %d hits", byText.Layers, len(byText.Hits))
			}
		}
		// Text search: a context string from one record finds its component.
		snippet := strings.Join(strs(best.Tokens[1:4]), "")
		var tr SearchResult
		getData(t, api, "/api/v1/datasets/demo/search?location=mlp.post_act&layer=1&limit=200&text="+urlEscape(snippet), &tr)
		found = false
		for _, h := range tr.Hits {
			if !strings.Contains(strings.Join(h.Evidence.TokenStrings, ""), snippet) {
				t.Errorf("text hit %+v does not contain %q", h, snippet)
			}
			found = found || h.Index == 7
		}
		if !found {
			t.Errorf("text %q did not find component 7 (%d hits)", snippet, len(tr.Hits))
		}
		// Lazily built for a dataset without index files: same answer.
		keys, _ := mem.List(ctx, "datasets/demo/")
		old := store.NewMemory()
		for _, k := range keys {
			if strings.HasSuffix(k, "index.parquet") {
				continue
			}
			rc, _ := mem.Get(ctx, k)
			old.Put(ctx, k, rc)
			rc.Close()
		}
		var lazy SearchResult
		getData(t, newAPI(t, old, testOpts(t)), fmt.Sprintf("/api/v1/datasets/demo/search?token=%%23%d&location=mlp.post_act&layer=1&limit=50", id), &lazy)
		if !reflect.DeepEqual(lazy, res) {
			t.Errorf("lazy index search differs:\n got %+v\nwant %+v", lazy, res)
		}
	})

	t.Run("export", func(t *testing.T) {
		code, a, hdr := get(t, api, "/api/v1/datasets/demo/mlp.post_act/0/export")
		if code != 200 || hdr.Get("Content-Type") != "application/gzip" {
			t.Fatalf("export: %d %v", code, hdr)
		}
		zr, err := gzip.NewReader(bytes.NewReader(a.Data))
		if err != nil {
			t.Fatal(err)
		}
		lines, _ := io.ReadAll(zr)
		rows := strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n")
		if len(rows) != 40 {
			t.Fatalf("export has %d lines, want 40", len(rows))
		}
		for _, c := range []int{0, 13, 39} {
			var got, want Component
			if err := json.Unmarshal([]byte(rows[c]), &got); err != nil {
				t.Fatal(err)
			}
			getData(t, api, fmt.Sprintf("/api/v1/datasets/demo/mlp.post_act/0/%d", c), &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("export line %d differs from the component answer", c)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		checkErrors(t, api, []errorCase{
			{"/api/v1/datasets/nope", "not_found", 404, "nope"},
			{"/api/v1/datasets/nope/mlp.post_act/0/1", "not_found", 404, "nope"},
			{"/api/v1/datasets/demo/mlp.pre_act/0/1", "not_found", 404, "mlp.pre_act"},
			{"/api/v1/datasets/demo/mlp.post_act/5/1", "not_found", 404, "layer 5"},
			{"/api/v1/datasets/demo/mlp.post_act/0/40", "not_found", 404, "0..39"},
			{"/api/v1/datasets/demo/mlp.post_act/0/x", "bad_request", 400, "index"},
			{"/api/v1/datasets/demo/mlp.post_act/-1/0", "bad_request", 400, "layer"},
			{"/api/v1/datasets/demo/mlp.post_act/0/1?k=-3", "bad_request", 400, "k="},
			{"/api/v1/datasets/demo/mlp.post_act/0/1?k=99999", "bad_request", 400, "k="},
			{"/api/v1/datasets/demo/mlp.post_act/0?sort=bogus", "bad_request", 400, "sort"},
			{"/api/v1/datasets/demo/mlp.post_act/0?order=up", "bad_request", 400, "order"},
			{"/api/v1/datasets/demo/mlp.post_act/0?limit=100000", "bad_request", 400, "limit"},
			{"/api/v1/datasets/..%2F..%2Fetc/mlp.post_act/0/1", "bad_request", 400, "dataset"},
			{"/api/v1/datasets/.hidden", "bad_request", 400, "dataset"},
			{"/api/v1/datasets/demo/search", "bad_request", 400, "token"},
			{"/api/v1/datasets/demo/search?token=%20Paris%20is", "bad_request", 400, "not exactly one"},
			{"/api/v1/datasets/demo/search?token=%23-1", "bad_request", 400, "#N"},
			{"/api/v1/nothing", "not_found", 404, "no such endpoint"},
		})
		req := httptest.NewRequest("POST", "/api/v1/datasets", nil)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code != 405 {
			t.Errorf("POST: %d", rec.Code)
		}
	})
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// TestCorruptFileIsolated: a damaged Parquet file is a 500 naming it for
// its dataset only; other datasets keep serving.
func TestCorruptFileIsolated(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMemory()
	makeDataset(t, mem, "good", 16, 6, 120, 2)
	makeDataset(t, mem, "bad", 16, 6, 120, 3)
	for _, key := range []string{dataset.RecordsKey("bad", "mlp.post_act", 0), dataset.StatsKey("bad", "mlp.post_act", 1)} {
		rc, _ := mem.Get(ctx, key)
		b, _ := io.ReadAll(rc)
		rc.Close()
		if strings.HasSuffix(key, "records.parquet") {
			b = b[:len(b)/2] // truncated
		} else {
			for i := 4; i < len(b)-100; i += 7 {
				b[i] ^= 0x5a // corrupted pages, intact footer
			}
		}
		if err := mem.Put(ctx, key, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	api := newAPI(t, mem, testOpts(t))
	for _, path := range []string{"/api/v1/datasets/bad/mlp.post_act/0/3", "/api/v1/datasets/bad/mlp.post_act/1/3", "/api/v1/datasets/bad/mlp.post_act/1?sort=max"} {
		code, a, _ := get(t, api, path)
		if code != 500 || a.ErrorType != "internal" || !regexp.MustCompile(`datasets/bad/mlp\.post_act/layer=[01]/(records|stats)\.parquet`).MatchString(a.Error) {
			t.Errorf("GET %s: %d %s %q, want 500 naming the file", path, code, a.ErrorType, a.Error)
		}
	}
	var c Component
	getData(t, api, "/api/v1/datasets/good/mlp.post_act/0/3", &c)
	if len(c.Top) == 0 {
		t.Error("good dataset has no records")
	}
	var list []DatasetInfo
	getData(t, api, "/api/v1/datasets", &list)
	if len(list) != 2 {
		t.Errorf("datasets: %+v", list)
	}
}

func TestAuthAndCORS(t *testing.T) {
	mem := store.NewMemory()
	makeDataset(t, mem, "demo", 8, 4, 40, 4)
	opts := testOpts(t)
	opts.AuthToken, opts.CORSOrigins = "s3cret", []string{"http://viewer.example"}
	api := newAPI(t, mem, opts)
	if code, a, _ := get(t, api, "/api/v1/datasets"); code != 401 || a.Status != "error" {
		t.Errorf("no token: %d %+v", code, a)
	}
	if code, _, _ := get(t, api, "/api/v1/datasets", "Authorization", "Bearer wrong"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	code, _, hdr := get(t, api, "/api/v1/datasets", "Authorization", "Bearer s3cret", "Origin", "http://viewer.example")
	if code != 200 || hdr.Get("Access-Control-Allow-Origin") != "http://viewer.example" {
		t.Errorf("good token: %d %v", code, hdr)
	}
	_, _, hdr = get(t, api, "/api/v1/datasets", "Authorization", "Bearer s3cret", "Origin", "http://evil.example")
	if hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin allowed: %v", hdr)
	}
	req := httptest.NewRequest("OPTIONS", "/api/v1/datasets", nil)
	req.Header.Set("Origin", "http://viewer.example")
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	if rec.Code != 204 || !strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", rec.Code, rec.Header())
	}
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	api := newAPI(t, store.NewMemory(), testOpts(t))
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/openapi.json", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("openapi.json: %d %v", rec.Code, rec.Header())
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi version %q", doc.OpenAPI)
	}
	for _, rt := range routes {
		if _, ok := doc.Paths[rt.path]["get"]; !ok {
			t.Errorf("route %s is not in openapi.json", rt.path)
		}
	}
	if len(doc.Paths) != len(routes) {
		t.Errorf("openapi.json has %d paths, the API %d", len(doc.Paths), len(routes))
	}
}

// TestConcurrentReads: many clients, a cache too small for the working set
// (constant eviction and reloading), every answer right (-race).
func TestConcurrentReads(t *testing.T) {
	mem := store.NewMemory()
	makeDataset(t, mem, "demo", 40, 8, 200, 5)
	ref := newAPI(t, mem, testOpts(t))
	opts := testOpts(t)
	opts.CacheBytes = 64 << 10
	api := newAPI(t, mem, opts)
	want := map[string][]byte{}
	var paths []string
	for c := 0; c < 40; c += 3 {
		for _, l := range []int{0, 1} {
			p := fmt.Sprintf("/api/v1/datasets/demo/mlp.post_act/%d/%d", l, c)
			_, a, _ := get(t, ref, p)
			want[p] = a.Data
			paths = append(paths, p)
		}
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range 40 {
				p := paths[rng.IntN(len(paths))]
				a, status, err := fetch(srv.URL + p)
				if err != nil || status != 200 || !bytes.Equal(a.Data, want[p]) {
					t.Errorf("%s: %d %v (answer differs: %v)", p, status, err, !bytes.Equal(a.Data, want[p]))
					return
				}
			}
		}()
	}
	wg.Wait()
	if b := api.r.cache.bytes() + api.r.answers.bytes(); b > opts.CacheBytes {
		t.Errorf("cache holds %d bytes, bound %d", b, opts.CacheBytes)
	}
}
