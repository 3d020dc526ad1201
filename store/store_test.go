package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"tdb/store"
	"tdb/store/azuritetest"
	"tdb/store/storetest"
)

func TestLocalConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.NewLocal(filepath.Join(t.TempDir(), "root"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { assertNoTempFiles(t, s.Root()) })
		return s
	})
}

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}

var containerSeq atomic.Int64

// newContainerURL returns a store URL for a fresh container on the emulator.
func newContainerURL(endpoint string) string {
	return fmt.Sprintf("%s/c%06d", endpoint, containerSeq.Add(1))
}

func TestAzureConformance(t *testing.T) {
	conn, endpoint := azuritetest.Start(t)
	creds := store.AzureCredentials{ConnectionString: conn}
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.NewAzure(newContainerURL(endpoint), creds)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	// The same suite under a key prefix inside a shared container: keys
	// outside the prefix must stay invisible.
	t.Run("Prefixed", func(t *testing.T) {
		base := newContainerURL(endpoint)
		outside, err := store.NewAzure(base, creds)
		if err != nil {
			t.Fatal(err)
		}
		if err := outside.Put(t.Context(), "zzz-outside", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		var n atomic.Int64
		storetest.Run(t, func(t *testing.T) store.Store {
			s, err := store.NewAzure(fmt.Sprintf("%s/tenant/run%d", base, n.Add(1)), creds)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

func assertNoTempFiles(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tdb-put-") {
			t.Errorf("temp file left behind: %s", p)
		}
		return nil
	})
}

func TestLocalLayoutAndPermissions(t *testing.T) {
	root := t.TempDir()
	s, err := store.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "a/b/c.txt", strings.NewReader("hi")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "a", "b", "c.txt"))
	if err != nil {
		t.Fatalf("key not stored at ROOT/a/b/c.txt: %v", err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("blob mode = %v, want 0644", fi.Mode().Perm())
	}
	if got := s.String(); got != "file://"+root {
		t.Errorf("String() = %q, want file://%s", got, root)
	}
	// Deleting the last key removes the directories it leaves empty.
	if err := s.Delete(t.Context(), "a/b/c.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty directory a/ left after Delete: %v", err)
	}
	if _, err := os.Stat(root); err != nil {
		t.Errorf("Delete removed the root: %v", err)
	}
}

func TestLocalWriteFailuresNameTheKey(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s, err := store.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "blob", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "dir/inner", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, key string
	}{
		{"parent is a blob", "blob/child"},
		{"key is a directory of other keys", "dir"},
	}
	for _, c := range cases {
		err := s.Put(ctx, c.key, strings.NewReader("new"))
		if err == nil {
			t.Errorf("%s: Put(%q) succeeded", c.name, c.key)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", c.key)) {
			t.Errorf("%s: error %q does not name the key", c.name, err)
		}
	}
	assertNoTempFiles(t, root)

	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: permission bits do not stop writes")
		}
		ro := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		s, err := store.NewLocal(ro)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Put(ctx, "x/y.parquet", strings.NewReader("data"))
		if err == nil || !strings.Contains(err.Error(), `"x/y.parquet"`) || !errors.Is(err, os.ErrPermission) {
			t.Fatalf("Put into read-only dir: %v; want a permission error naming the key", err)
		}
	})
	t.Run("filesystem refuses the directory", func(t *testing.T) {
		// Works as root too, unlike permission bits: /proc takes no new entries.
		if _, err := os.Stat("/proc/self"); err != nil {
			t.Skip("no /proc")
		}
		s, err := store.NewLocal("/proc/self/tdb-store")
		if err != nil {
			t.Fatal(err)
		}
		err = s.Put(ctx, "x/y.parquet", strings.NewReader("data"))
		if err == nil || !strings.Contains(err.Error(), `"x/y.parquet"`) {
			t.Fatalf("Put under /proc: %v; want an error naming the key", err)
		}
	})
	t.Run("root is a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := store.NewLocal(f); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("NewLocal(file) = %v, want a not-a-directory error", err)
		}
	})
}

func TestLocalListSkipsTempFiles(t *testing.T) {
	root := t.TempDir()
	s, _ := store.NewLocal(root)
	if err := s.Put(t.Context(), "d/real", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// What a crashed Put leaves behind.
	if err := os.WriteFile(filepath.Join(root, "d", ".tdb-put-12345"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := s.List(t.Context(), "")
	if err != nil || !slices.Equal(keys, []string{"d/real"}) {
		t.Fatalf("List = %q, %v; want [d/real]", keys, err)
	}
}

// A temporary file nothing has written to for StaleTempAge is what a Put
// killed mid-write leaves: List and Delete remove it (and Delete then its
// emptied folder); a fresh one may be a Put in progress and stays.
func TestLocalSweepsStaleTempFiles(t *testing.T) {
	root := t.TempDir()
	s, _ := store.NewLocal(root)
	for _, k := range []string{"a/real", "b/real"} {
		if err := s.Put(t.Context(), k, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-store.StaleTempAge - time.Minute)
	temp := func(dir, name string, stale bool) string {
		p := filepath.Join(root, dir, name)
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
		if stale {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	staleA, freshA := temp("a", ".tdb-put-1", true), temp("a", ".tdb-put-2", false)
	staleB := temp("b", ".tdb-put-3", true)
	if keys, err := s.List(t.Context(), "a/"); err != nil || !slices.Equal(keys, []string{"a/real"}) {
		t.Fatalf("List = %q, %v", keys, err)
	}
	if _, err := os.Stat(staleA); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temp file after List: %v, want it removed", err)
	}
	if _, err := os.Stat(freshA); err != nil {
		t.Errorf("fresh temp file after List: %v, want it kept", err)
	}
	if err := s.Delete(t.Context(), "b/real"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(staleB)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("folder of a deleted key with only a stale temp file: %v, want it removed", err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	clearAzureEnv(t)
	cases := []struct {
		url     string
		want    string // String() of the store, "" for an error
		errPart string
	}{
		{url: dir, want: "file://" + dir},
		{url: "file://" + dir, want: "file://" + dir},
		{url: "file://localhost" + dir, want: "file://" + dir},
		{url: "mem://", want: "mem://"},
		{url: "mem://shared", want: "mem://shared"},
		{url: "azblob://acct/data", want: "azblob://acct/data"},
		{url: "azblob://acct/data/runs/1/", want: "azblob://acct/data/runs/1"},
		{url: "https://acct.blob.core.windows.net/data/p", want: "azblob://acct/data/p"},
		{url: "http://127.0.0.1:10000/devstoreaccount1/data", want: "http://127.0.0.1:10000/devstoreaccount1/data"},
		{url: "http://localhost:10000/devstoreaccount1/data/x", want: "http://localhost:10000/devstoreaccount1/data/x"},
		{url: "https://acct.blob.core.windows.net/data?sv=2024&sig=SECRET", want: "azblob://acct/data"},
		{url: "", errPart: "empty"},
		{url: "s3://bucket/x", errPart: "unknown store URL scheme"},
		{url: "file://host/x", errPart: "names host"},
		{url: "file://relative", errPart: "names host"},
		{url: "mem://a/b", errPart: "mem://NAME"},
		{url: "azblob://acct", errPart: "no container"},
		{url: "azblob://acct/Bad_Name", errPart: "container name"},
		{url: "azblob://acct/ab", errPart: "3 to 63"},
		{url: "azblob:///data", errPart: "empty account"},
		{url: "http://127.0.0.1:10000/", errPart: "no account"},
		{url: "azblob://acct/data/a/../b", errPart: "invalid key"},
	}
	for _, c := range cases {
		s, err := store.Open(t.Context(), c.url)
		if c.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), c.errPart) {
				t.Errorf("Open(%q) error = %v, want one containing %q", c.url, err, c.errPart)
			}
			continue
		}
		if err != nil {
			t.Errorf("Open(%q): %v", c.url, err)
			continue
		}
		if got := s.String(); got != c.want {
			t.Errorf("Open(%q).String() = %q, want %q", c.url, got, c.want)
		}
	}
}

func TestOpenNamedMemoryIsShared(t *testing.T) {
	a, _ := store.Open(t.Context(), "mem://TestOpenNamedMemoryIsShared")
	b, _ := store.Open(t.Context(), "mem://TestOpenNamedMemoryIsShared")
	fresh, _ := store.Open(t.Context(), "mem://")
	if err := a.Put(t.Context(), "k", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Size(t.Context(), "k"); err != nil || n != 1 {
		t.Fatalf("same-name store does not see the blob: %d, %v", n, err)
	}
	if _, err := fresh.Size(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("mem:// is not fresh: %v", err)
	}
}

// TestAzureCredentials checks every way of authenticating against the
// emulator, in the documented order of precedence.
func TestAzureCredentials(t *testing.T) {
	conn, endpoint := azuritetest.Start(t)
	ctx := t.Context()
	url := newContainerURL(endpoint)
	roundTrip := func(t *testing.T, s store.Store, key string) {
		t.Helper()
		if err := s.Put(ctx, key, strings.NewReader("payload")); err != nil {
			t.Fatalf("Put: %v", err)
		}
		rc, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		defer rc.Close()
		if got, _ := io.ReadAll(rc); string(got) != "payload" {
			t.Fatalf("Get = %q", got)
		}
	}
	t.Run("connection string", func(t *testing.T) {
		s, err := store.NewAzure(url, store.AzureCredentials{ConnectionString: conn})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s, "conn")
	})
	t.Run("shared key", func(t *testing.T) {
		s, err := store.NewAzure(url, store.AzureCredentials{AccountName: azuritetest.Account, AccountKey: azuritetest.AccountKey})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s, "key")
	})
	t.Run("wrong key is refused clearly", func(t *testing.T) {
		s, err := store.NewAzure(url, store.AzureCredentials{AccountKey: "d3Jvbmcga2V5IGZvciB0ZXN0aW5nIG9ubHk="})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Put(ctx, "k", strings.NewReader("x"))
		if err == nil || !strings.Contains(err.Error(), "HTTP 403") || !strings.Contains(err.Error(), `"k"`) {
			t.Fatalf("Put with a wrong key: %v; want HTTP 403 naming the key", err)
		}
	})
	t.Run("account mismatch", func(t *testing.T) {
		_, err := store.NewAzure(url, store.AzureCredentials{AccountName: "other", AccountKey: azuritetest.AccountKey})
		if err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("NewAzure with another account: %v", err)
		}
		other := strings.Replace(conn, "BlobEndpoint=http://127.0.0.1:", "BlobEndpoint=http://127.0.0.2:", 1)
		_, err = store.NewAzure(url, store.AzureCredentials{ConnectionString: other})
		if err == nil || !strings.Contains(err.Error(), "points at") {
			t.Fatalf("NewAzure with a connection string for another endpoint: %v", err)
		}
	})
	sasQuery := containerSAS(t, conn, containerName(url))
	t.Run("SAS token env", func(t *testing.T) {
		s, err := store.NewAzure(url, store.AzureCredentials{SASToken: "?" + sasQuery})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s, "sas")
		if strings.Contains(s.String(), "sig=") {
			t.Fatalf("String() leaks the SAS: %s", s)
		}
	})
	t.Run("SAS in URL wins over a wrong key", func(t *testing.T) {
		s, err := store.NewAzure(url+"?"+sasQuery, store.AzureCredentials{AccountKey: "d3Jvbmcga2V5IGZvciB0ZXN0aW5nIG9ubHk="})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s, "sas-url")
	})
	t.Run("connection string wins over a wrong key", func(t *testing.T) {
		s, err := store.NewAzure(url, store.AzureCredentials{ConnectionString: conn, AccountKey: "d3Jvbmcga2V5IGZvciB0ZXN0aW5nIG9ubHk="})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s, "conn2")
	})
	t.Run("anonymous", func(t *testing.T) {
		public := newContainerURL(endpoint)
		azuritetest.CreateContainer(t, conn, containerName(public), container.PublicAccessTypeContainer)
		writer, _ := store.NewAzure(public, store.AzureCredentials{ConnectionString: conn})
		roundTrip(t, writer, "pub/data")
		anon, err := store.NewAzure(public, store.AzureCredentials{})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := anon.Get(ctx, "pub/data")
		if err != nil {
			t.Fatalf("anonymous Get of a public blob: %v", err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != "payload" {
			t.Fatalf("anonymous Get = %q", got)
		}
		keys, err := anon.List(ctx, "")
		if err != nil || !slices.Equal(keys, []string{"pub/data"}) {
			t.Fatalf("anonymous List = %q, %v", keys, err)
		}
		_, err = anon.Get(ctx, "pub/missing")
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("anonymous Get of a missing blob: %v", err)
		}
		for op, err := range map[string]error{
			"Put":    anon.Put(ctx, "pub/x", strings.NewReader("x")),
			"Delete": anon.Delete(ctx, "pub/data"),
		} {
			if !errors.Is(err, store.ErrReadOnly) || !strings.Contains(err.Error(), store.EnvAzureConnectionString) {
				t.Errorf("anonymous %s: %v; want ErrReadOnly saying how to authenticate", op, err)
			}
		}
	})
	t.Run("anonymous on a private container", func(t *testing.T) {
		anon, _ := store.NewAzure(url, store.AzureCredentials{})
		_, err := anon.Get(ctx, "conn") // exists, but the container is private
		t.Logf("anonymous Get of a private blob: %v", err)
		if err == nil || !strings.Contains(err.Error(), `"conn"`) {
			t.Fatalf("anonymous Get of a private blob: %v; want an error naming the key", err)
		}
		if errors.Is(err, store.ErrNotFound) && !strings.Contains(err.Error(), "private container") {
			t.Fatalf("anonymous not-found error %q does not hint at a private container", err)
		}
	})
	t.Run("Open reads the environment", func(t *testing.T) {
		t.Setenv(store.EnvAzureConnectionString, conn)
		s, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, s, "env")
	})
}

func containerName(url string) string { return url[strings.LastIndexByte(url, '/')+1:] }

// TestAzureListPaging lists more keys than one page holds.
func TestAzureListPaging(t *testing.T) {
	conn, endpoint := azuritetest.Start(t)
	store.SetListPageSize(t, 7)
	s, err := store.NewAzure(newContainerURL(endpoint), store.AzureCredentials{ConnectionString: conn})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 30 {
		k := fmt.Sprintf("k/%03d", 29-i) // written in reverse order
		want = append(want, k)
		if err := s.Put(t.Context(), k, bytes.NewReader(nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(t.Context(), "l/outside", bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	got, err := s.List(t.Context(), "k/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List over pages of 7 = %q, want %q", got, want)
	}
}

func TestValidateKey(t *testing.T) {
	for _, k := range storetest.BadKeys {
		if err := store.ValidateKey(k); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
	for _, k := range []string{"a", "a/b/c.parquet", "layer=0/x", "...", "a/...b", ".hidden", strings.Repeat("k", store.MaxKeyLen)} {
		if err := store.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", k, err)
		}
	}
}

// FuzzValidateKey: any key the validator accepts stays inside the local
// store's root and round-trips through it.
func FuzzValidateKey(f *testing.F) {
	for _, k := range append(slices.Clone(storetest.BadKeys), "a/b", "x/../y", "ü/日本", "a/.b/c") {
		f.Add(k)
	}
	root := f.TempDir()
	s, err := store.NewLocal(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if store.ValidateKey(key) != nil {
			return
		}
		p := filepath.Join(root, filepath.FromSlash(key))
		if rel, err := filepath.Rel(root, p); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			t.Fatalf("valid key %q escapes the root: %q", key, p)
		}
		// Names longer than the filesystem allows are refused by the OS, not us.
		for seg := range strings.SplitSeq(key, "/") {
			if len(seg) > 255 {
				return
			}
		}
		if err := s.Put(t.Context(), key, strings.NewReader(key)); err != nil {
			if strings.Contains(err.Error(), "in the way") || strings.Contains(err.Error(), "parent of the key") {
				return // collides with an earlier fuzz key's file/directory
			}
			t.Fatalf("Put(valid %q): %v", key, err)
		}
		defer s.Delete(t.Context(), key)
		keys, err := s.List(t.Context(), key)
		if err != nil || !slices.Contains(keys, key) {
			t.Fatalf("List(%q) = %q, %v; want it to contain the key", key, keys, err)
		}
	})
}

// FuzzOpenURL: Open never panics, and an Azure store's String() reopens to
// the same store.
func FuzzOpenURL(f *testing.F) {
	for _, u := range []string{"azblob://acct/data/p", "https://a.blob.core.windows.net/ccc/x?sig=1", "http://127.0.0.1:1/acc/cont", "mem://x", "file:///tmp", "http://[::1]:10000/a/ccc", "https://host/ccc"} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !strings.HasPrefix(raw, "azblob://") && !strings.HasPrefix(raw, "http") {
			return // local paths would touch the filesystem
		}
		s, err := store.NewAzure(raw, store.AzureCredentials{})
		if err != nil {
			return
		}
		again, err := store.NewAzure(s.String(), store.AzureCredentials{})
		if err != nil {
			t.Fatalf("String() %q of %q does not reopen: %v", s.String(), raw, err)
		}
		if again.String() != s.String() {
			t.Fatalf("reopened %q as %q", s.String(), again.String())
		}
	})
}

func benchLocalPut(b *testing.B, size int) {
	s, err := store.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("tdb-blob"), size/8)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		if err := s.Put(ctx, fmt.Sprintf("bench/k%d", i%16), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchLocalGet(b *testing.B, size int) {
	s, err := store.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("tdb-blob"), size/8)
	ctx := context.Background()
	if err := s.Put(ctx, "bench/k", bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rc, err := s.Get(ctx, "bench/k")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, rc, buf); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

func BenchmarkLocalPut(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20, 32 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) { benchLocalPut(b, size) })
	}
}

func BenchmarkLocalGet(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20, 32 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) { benchLocalGet(b, size) })
	}
}

func BenchmarkLocalGetRange(b *testing.B) {
	s, _ := store.NewLocal(b.TempDir())
	ctx := context.Background()
	if err := s.Put(ctx, "k", bytes.NewReader(make([]byte, 64<<20))); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 << 10)
	for i := 0; b.Loop(); i++ {
		rc, err := s.GetRange(ctx, "k", int64(i%1000)*(64<<10), 64<<10)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, rc)
		rc.Close()
	}
}
