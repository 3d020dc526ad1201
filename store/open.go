package store

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Open returns the store a URL names:
//
//   - a plain path or file:///abs/path: the local filesystem (NewLocal);
//   - mem://: a fresh in-memory store; mem://NAME: the process-wide in-memory
//     store called NAME (NewMemory);
//   - azblob://ACCOUNT/CONTAINER[/prefix],
//     https://ACCOUNT.blob.core.windows.net/CONTAINER[/prefix] or a path-style
//     emulator URL such as http://127.0.0.1:10000/devstoreaccount1/CONTAINER[/prefix]:
//     Azure Blob (NewAzure), with credentials from the environment
//     (AzureCredentialsFromEnv). Precedence: a SAS token in the URL's query,
//     then AZURE_STORAGE_CONNECTION_STRING, then AZURE_STORAGE_KEY (shared
//     key; AZURE_STORAGE_ACCOUNT must match the URL's account if set), then
//     AZURE_STORAGE_SAS_TOKEN, else anonymous read-only access.
//
// Open makes no network request, so a wrong credential shows on first use.
func Open(ctx context.Context, rawURL string) (Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	scheme, rest, hasScheme := strings.Cut(rawURL, "://")
	if !hasScheme {
		if rawURL == "" {
			return nil, fmt.Errorf("store: empty store URL")
		}
		return NewLocal(rawURL)
	}
	switch strings.ToLower(scheme) {
	case "mem":
		if rest == "" {
			return NewMemory(), nil
		}
		if strings.ContainsAny(rest, "/?#") {
			return nil, fmt.Errorf("store: memory store URL %q: want mem:// or mem://NAME", rawURL)
		}
		return namedMemoryStore(rest), nil
	case "file":
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("store: file URL %q names host %q; want file:///absolute/path", rawURL, u.Host)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("store: file URL %q: queries and fragments are not allowed", rawURL)
		}
		if !filepath.IsAbs(u.Path) {
			return nil, fmt.Errorf("store: file URL %q: path is not absolute; want file:///absolute/path or a plain path", rawURL)
		}
		return NewLocal(u.Path)
	case "azblob", "http", "https":
		return NewAzure(rawURL, AzureCredentialsFromEnv())
	default:
		return nil, fmt.Errorf("store: unknown store URL scheme %q in %q (want a path, file://, mem://, azblob://, http(s)://)", scheme, rawURL)
	}
}
