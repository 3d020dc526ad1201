package store_test

import (
	"path/filepath"
	"strings"
	"testing"

	"tdb/store"
)

func TestOpenGlob(t *testing.T) {
	dir := t.TempDir()
	clearAzureEnv(t)
	cases := []struct {
		url, store, key, sas string
		errPart              string
	}{
		{url: "azblob://acct/data/corpus/*.jsonl", store: "azblob://acct/data", key: "corpus/*.jsonl"},
		{url: "https://acct.blob.core.windows.net/data/a/b.txt", store: "azblob://acct/data", key: "a/b.txt"},
		// A SAS token in a corpus URL authorizes the container it names.
		{url: "https://acct.blob.core.windows.net/data/c/*.jsonl?sv=2024&sig=SECRET", store: "azblob://acct/data", key: "c/*.jsonl", sas: "sv=2024&sig=SECRET"},
		// A custom domain is host style (the account is the first label), not path style.
		{url: "https://corpora.example.com/data/x/y.bin", store: "https://corpora.example.com/data", key: "x/y.bin"},
		{url: "http://127.0.0.1:10000/devstoreaccount1/data/x/*.txt", store: "http://127.0.0.1:10000/devstoreaccount1/data", key: "x/*.txt"},
		{url: "mem://corp/docs/a.jsonl", store: "mem://corp", key: "docs/a.jsonl"},
		{url: "file://" + dir + "/in/*.txt", store: "file://" + dir + "/in", key: "*.txt"},
		{url: "file://" + dir + "/in/a/b.txt", store: "file://" + dir + "/in/a", key: "b.txt"},
		{url: dir + "/x/*/*.txt", store: "file://" + dir + "/x", key: "*/*.txt"},
		{url: "azblob://acct/data", errPart: "names no blob"},
		{url: "mem://corp", errPart: "mem://NAME/KEY"},
		{url: "s3://b/k", errPart: "unknown store URL scheme"},
		{url: "azblob://acct/data/a/../b", errPart: "invalid key"},
	}
	for _, c := range cases {
		st, key, err := store.OpenGlob(t.Context(), c.url)
		if c.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), c.errPart) {
				t.Errorf("OpenGlob(%q) error = %v, want one containing %q", c.url, err, c.errPart)
			}
			continue
		}
		if err != nil {
			t.Errorf("OpenGlob(%q): %v", c.url, err)
			continue
		}
		if got := st.String(); got != filepath.ToSlash(c.store) {
			t.Errorf("OpenGlob(%q) store = %q, want %q", c.url, got, c.store)
		}
		if key != c.key {
			t.Errorf("OpenGlob(%q) key = %q, want %q", c.url, key, c.key)
		}
		if got := store.SASOf(st); got != c.sas {
			t.Errorf("OpenGlob(%q) SAS = %q, want %q", c.url, got, c.sas)
		}
	}
}

// clearAzureEnv hides the machine's Azure credentials from Open.
func clearAzureEnv(t *testing.T) {
	t.Helper()
	t.Setenv(store.EnvAzureConnectionString, "")
	t.Setenv(store.EnvAzureKey, "")
	t.Setenv(store.EnvAzureSASToken, "")
	t.Setenv(store.EnvAzureAccount, "")
}
