package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"tdb/store"
)

// Behaviour is one named check of the Store contract.
type Behaviour struct {
	Name string
	// Slow behaviours (large blobs, many goroutines) are skipped with -short.
	Slow bool
	Run  func(t *testing.T, s store.Store)
}

// Behaviours lists every check Run performs, each on a fresh, empty store.
var Behaviours = []Behaviour{
	{Name: "PutGetRoundTrip", Run: testPutGet},
	{Name: "EmptyBlob", Run: testEmptyBlob},
	{Name: "Overwrite", Run: testOverwrite},
	{Name: "MissingKey", Run: testMissing},
	{Name: "List", Run: testList},
	{Name: "Delete", Run: testDelete},
	{Name: "Ranges", Run: testRanges},
	{Name: "InvalidKeys", Run: testInvalidKeys},
	{Name: "OddKeys", Run: testOddKeys},
	{Name: "FailingReader", Run: testFailingReader},
	{Name: "CancelledContext", Run: testCancelled},
	{Name: "String", Run: testString},
	{Name: "LargeBlob", Slow: true, Run: testLarge},
	{Name: "ConcurrentPutsSameKey", Slow: true, Run: testConcurrentPuts},
	{Name: "ReadersSeeWholeBlobs", Slow: true, Run: testReadersDuringPuts},
}

// Run runs every behaviour as a subtest on a store from newStore, which must
// return an empty store each time it is called.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	for _, b := range Behaviours {
		t.Run(b.Name, func(t *testing.T) {
			if b.Slow && testing.Short() {
				t.Skip("slow; skipped with -short")
			}
			b.Run(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, s store.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(ctx(t), key, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, s store.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return data
}

func getRange(s store.Store, c context.Context, key string, off, n int64) ([]byte, error) {
	rc, err := s.GetRange(c, key, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func wantNotFound(t *testing.T, op, key string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("%s(%q) error = %v, want one wrapping store.ErrNotFound", op, key, err)
	}
	if !strings.Contains(err.Error(), key) {
		t.Errorf("%s(%q) error %q does not name the key", op, key, err)
	}
}

func testPutGet(t *testing.T, s store.Store) {
	data := []byte("hello, blob\n")
	const key = "datasets/demo/manifest.json"
	put(t, s, key, data)
	if got := get(t, s, key); !bytes.Equal(got, data) {
		t.Fatalf("Get = %q, want %q", got, data)
	}
	n, err := s.Size(ctx(t), key)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("Size = %d, %v; want %d", n, err, len(data))
	}
}

func testEmptyBlob(t *testing.T, s store.Store) {
	const key = "empty"
	put(t, s, key, nil)
	if got := get(t, s, key); len(got) != 0 {
		t.Fatalf("Get(empty) = %d bytes", len(got))
	}
	if n, err := s.Size(ctx(t), key); err != nil || n != 0 {
		t.Fatalf("Size(empty) = %d, %v", n, err)
	}
	for _, r := range [][2]int64{{0, -1}, {0, 0}, {0, 10}} {
		got, err := getRange(s, ctx(t), key, r[0], r[1])
		if err != nil || len(got) != 0 {
			t.Fatalf("GetRange(empty, %d, %d) = %q, %v; want empty", r[0], r[1], got, err)
		}
	}
	if _, err := getRange(s, ctx(t), key, 1, -1); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetRange(empty, 1, -1) error = %v, want an out-of-range error", err)
	}
	keys, err := s.List(ctx(t), "")
	if err != nil || !slices.Equal(keys, []string{key}) {
		t.Fatalf("List = %q, %v; want [empty]", keys, err)
	}
}

func testOverwrite(t *testing.T, s store.Store) {
	const key = "a/b"
	put(t, s, key, []byte("first version, longer"))
	put(t, s, key, []byte("second"))
	if got := get(t, s, key); string(got) != "second" {
		t.Fatalf("after overwrite Get = %q, want %q", got, "second")
	}
	if n, _ := s.Size(ctx(t), key); n != 6 {
		t.Fatalf("after overwrite Size = %d, want 6", n)
	}
}

func testMissing(t *testing.T, s store.Store) {
	put(t, s, "present/x", []byte("x"))
	for _, key := range []string{"absent", "present/absent", "present", "present/x/y"} {
		_, err := s.Get(ctx(t), key)
		wantNotFound(t, "Get", key, err)
		_, err = s.GetRange(ctx(t), key, 0, 1)
		wantNotFound(t, "GetRange", key, err)
		_, err = s.GetRange(ctx(t), key, 0, 0)
		wantNotFound(t, "GetRange(len 0)", key, err)
		_, err = s.Size(ctx(t), key)
		wantNotFound(t, "Size", key, err)
	}
}

func testList(t *testing.T, s store.Store) {
	keys := []string{
		"datasets/demo/manifest.json",
		"datasets/demo/mlp.post_act/layer=0/part-0.parquet",
		"datasets/demo/mlp.post_act/layer=10/part-0.parquet",
		"datasets/demo2/manifest.json",
		"datasets/other/manifest.json",
		"jobs/1/state",
		"top",
	}
	for i, k := range slices.Backward(keys) { // insertion order must not matter
		put(t, s, k, []byte{byte(i)})
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"", keys},
		{"datasets/", keys[:5]},
		{"datasets/demo", keys[:4]},
		{"datasets/demo/", keys[:3]},
		{"datasets/demo/mlp.post_act/layer=1", keys[2:3]},
		{"datasets/demo/manifest.json", keys[:1]},
		{"datasets/demo/manifest.json/", nil},
		{"jobs", keys[5:6]},
		{"t", keys[6:7]},
		{"top/", nil},
		{"nothing", nil},
		{"nothing/deeper/", nil},
	}
	for _, c := range cases {
		got, err := s.List(ctx(t), c.prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", c.prefix, err)
		}
		if len(got) != len(c.want) || !slices.Equal(got, c.want) {
			t.Errorf("List(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
	for _, bad := range []string{"/abs", "../up", "a/../b", "a//b"} {
		if _, err := s.List(ctx(t), bad); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("List(%q) error = %v, want ErrInvalidKey", bad, err)
		}
	}
}

func testDelete(t *testing.T, s store.Store) {
	put(t, s, "d/one", []byte("1"))
	put(t, s, "d/two", []byte("2"))
	if err := s.Delete(ctx(t), "d/one"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx(t), "d/one")
	wantNotFound(t, "Get after Delete", "d/one", err)
	if got := get(t, s, "d/two"); string(got) != "2" {
		t.Fatalf("sibling after Delete = %q", got)
	}
	for _, k := range []string{"d/one", "never/was", "d"} {
		if err := s.Delete(ctx(t), k); err != nil {
			t.Fatalf("Delete(missing %q) = %v, want nil", k, err)
		}
	}
	keys, err := s.List(ctx(t), "")
	if err != nil || !slices.Equal(keys, []string{"d/two"}) {
		t.Fatalf("List after Delete = %q, %v", keys, err)
	}
	// A deleted key's name is free again, also as a "directory".
	if err := s.Delete(ctx(t), "d/two"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "d", []byte("now a blob"))
	if got := get(t, s, "d"); string(got) != "now a blob" {
		t.Fatalf("Get(d) = %q", got)
	}
}

func testRanges(t *testing.T, s store.Store) {
	data := randomBytes(1, 1000)
	const key = "r/blob"
	put(t, s, key, data)
	size := int64(len(data))
	cases := []struct {
		off, n int64
		want   []byte // nil with wantErr
		err    bool
	}{
		{0, -1, data, false},
		{0, size, data, false},
		{0, 0, []byte{}, false},
		{0, 1, data[:1], false},
		{1, 1, data[1:2], false},
		{size - 1, 1, data[size-1:], false},
		{size - 1, -1, data[size-1:], false},
		{size - 1, 100, data[size-1:], false}, // cut at the end
		{10, size, data[10:], false},          // cut at the end
		{500, 250, data[500:750], false},
		{size, -1, []byte{}, false}, // at the end: empty
		{size, 5, []byte{}, false},
		{size, 0, []byte{}, false},
		{size + 1, -1, nil, true}, // past the end
		{size + 100, 1, nil, true},
		{-1, 1, nil, true},
	}
	for _, c := range cases {
		got, err := getRange(s, ctx(t), key, c.off, c.n)
		if c.err {
			if err == nil {
				t.Errorf("GetRange(%d, %d) = %d bytes, want an error", c.off, c.n, len(got))
			} else if errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetRange(%d, %d) error %v wraps ErrNotFound; the blob exists", c.off, c.n, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("GetRange(%d, %d): %v", c.off, c.n, err)
			continue
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("GetRange(%d, %d) = %d bytes, want %d (first differing content)", c.off, c.n, len(got), len(c.want))
		}
	}
}

// BadKeys are keys every backend must refuse.
var BadKeys = []string{
	"", "/abs", "/", "a/", "a//b", "./a", "a/./b", "..", "../a", "a/..", "a/../b",
	`a\b`, "a\x00b", "bad\xffutf8", strings.Repeat("k", store.MaxKeyLen+1), ".tdb-put-123", "x/.tdb-put-1",
}

func testInvalidKeys(t *testing.T, s store.Store) {
	c := ctx(t)
	for _, key := range BadKeys {
		errs := map[string]error{
			"Put":    s.Put(c, key, strings.NewReader("x")),
			"Delete": s.Delete(c, key),
		}
		_, errs["Get"] = s.Get(c, key)
		_, errs["GetRange"] = s.GetRange(c, key, 0, 1)
		_, errs["Size"] = s.Size(c, key)
		for op, err := range errs {
			if !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("%s(%q) error = %v, want ErrInvalidKey", op, key, err)
			}
		}
	}
	keys, err := s.List(c, "")
	if err != nil || len(keys) != 0 {
		t.Fatalf("after refused Puts List = %q, %v; want nothing stored", keys, err)
	}
}

func testOddKeys(t *testing.T, s store.Store) {
	keys := []string{"with space/file name.txt", "ünïcödé/日本語", "a-b_c.d~e/f=g,h;i@j+k", "...dots/..x"}
	for i, k := range keys {
		put(t, s, k, []byte(fmt.Sprint(i)))
	}
	for i, k := range keys {
		if got := get(t, s, k); string(got) != fmt.Sprint(i) {
			t.Errorf("Get(%q) = %q, want %q", k, got, fmt.Sprint(i))
		}
	}
	got, err := s.List(ctx(t), "")
	want := slices.Sorted(slices.Values(keys))
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("List = %q, %v; want %q", got, err, want)
	}
}

// failingReader yields n bytes and then an error, like a network source that dies.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func testFailingReader(t *testing.T, s store.Store) {
	const key = "fail/blob"
	old := []byte("the old complete value")
	put(t, s, key, old)
	boom := errors.New("source died")
	// Several blocks' worth, so a block store has staged blocks when it fails.
	err := s.Put(ctx(t), key, &failingReader{bytes.NewReader(randomBytes(2, 9<<20)), boom})
	if err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	if !strings.Contains(err.Error(), key) {
		t.Errorf("Put error %q does not name the key", err)
	}
	if got := get(t, s, key); !bytes.Equal(got, old) {
		t.Fatalf("after failed Put Get = %d bytes, want the old %d-byte value", len(got), len(old))
	}
	err = s.Put(ctx(t), "fail/new", &failingReader{strings.NewReader("partial"), boom})
	if err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	_, err = s.Get(ctx(t), "fail/new")
	wantNotFound(t, "Get after failed Put", "fail/new", err)
	keys, err := s.List(ctx(t), "")
	if err != nil || !slices.Equal(keys, []string{key}) {
		t.Fatalf("List after failed Puts = %q, %v; want only %q", keys, err, key)
	}
}

func testCancelled(t *testing.T, s store.Store) {
	c, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(c, "c/k", strings.NewReader("x")); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	_, err := s.Get(ctx(t), "c/k")
	wantNotFound(t, "Get after cancelled Put", "c/k", err)
	put(t, s, "c/k", []byte("x"))
	if _, err := s.List(c, ""); err == nil {
		t.Error("List with a cancelled context succeeded")
	}
}

func testString(t *testing.T, s store.Store) {
	str := s.String()
	if !strings.Contains(str, "://") {
		t.Fatalf("String() = %q, want a URL", str)
	}
	if strings.Contains(str, "sig=") || strings.Contains(str, "AccountKey") {
		t.Fatalf("String() = %q leaks a secret", str)
	}
}

func testLarge(t *testing.T, s store.Store) {
	data := randomBytes(3, 20<<20+12345) // not a multiple of any block size
	const key = "large/blob.bin"
	put(t, s, key, data)
	if n, err := s.Size(ctx(t), key); err != nil || n != int64(len(data)) {
		t.Fatalf("Size = %d, %v; want %d", n, err, len(data))
	}
	if got := get(t, s, key); !bytes.Equal(got, data) {
		t.Fatalf("Get returned %d bytes, not the %d written", len(got), len(data))
	}
	// Ranges across the 1, 4 and 8 MiB block boundaries and at the very end.
	for _, r := range [][2]int64{{4<<20 - 7, 100}, {1<<20 - 1, 2}, {8 << 20, 3 << 20}, {int64(len(data)) - 10, -1}} {
		got, err := getRange(s, ctx(t), key, r[0], r[1])
		end := r[0] + r[1]
		if r[1] < 0 {
			end = int64(len(data))
		}
		if err != nil || !bytes.Equal(got, data[r[0]:end]) {
			t.Fatalf("GetRange(%d, %d) = %d bytes, %v; want %d matching bytes", r[0], r[1], len(got), err, end-r[0])
		}
	}
}

func testConcurrentPuts(t *testing.T, s store.Store) {
	const key = "race/blob"
	const writers = 8
	values := make([][]byte, writers)
	for i := range values {
		values[i] = randomBytes(uint64(10+i), 1<<20+i*4099) // distinct lengths and contents
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() { errs[i] = s.Put(ctx(t), key, bytes.NewReader(values[i])) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Put %d: %v", i, err)
		}
	}
	got := get(t, s, key)
	if !slices.ContainsFunc(values, func(v []byte) bool { return bytes.Equal(v, got) }) {
		t.Fatalf("after concurrent Puts the blob (%d bytes) is none of the values written", len(got))
	}
	if n, _ := s.Size(ctx(t), key); n != int64(len(got)) {
		t.Fatalf("Size = %d but Get gave %d bytes", n, len(got))
	}
	keys, err := s.List(ctx(t), "")
	if err != nil || !slices.Equal(keys, []string{key}) {
		t.Fatalf("List = %q, %v; want only %q (no temp files)", keys, err, key)
	}
}

func testReadersDuringPuts(t *testing.T, s store.Store) {
	const key = "atomic/blob"
	values := [][]byte{randomBytes(20, 2<<20), randomBytes(21, 3<<20+1)}
	put(t, s, key, values[0])
	c := ctx(t)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 6 {
			if err := s.Put(c, key, bytes.NewReader(values[(i+1)%2])); err != nil {
				t.Errorf("Put: %v", err)
				return
			}
		}
	})
	reads := 0
	for {
		select {
		case <-done:
			wg.Wait()
			if reads == 0 {
				t.Fatal("no read happened during the Puts")
			}
			return
		default:
		}
		rc, err := s.Get(c, key)
		if err != nil {
			t.Fatalf("Get during Puts: %v", err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read during Puts: %v", err)
		}
		reads++
		if !bytes.Equal(got, values[0]) && !bytes.Equal(got, values[1]) {
			t.Fatalf("a reader saw a %d-byte blob that is neither value written", len(got))
		}
	}
}
