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

// OpenGlob opens the store that holds the keys a URL names and returns the
// key (or glob pattern, such as corpus/*.jsonl) inside it. It follows Open's
// grammar, so a URL means the same store to both:
//
//   - Azure URLs: the store is the container (a SAS token in the query is
//     kept); the key is everything after the container. Whether the account
//     is in the host or the path is decided as Open decides it (IP addresses
//     and localhost are path style; a custom domain is not).
//   - mem://NAME/key: the named memory store and the key.
//   - file:///abs/dir/key and plain paths: the folder up to the first
//     segment holding a glob character (or the last segment's parent), and
//     the rest.
func OpenGlob(ctx context.Context, rawURL string) (Store, string, error) {
	scheme, rest, hasScheme := strings.Cut(rawURL, "://")
	switch {
	case !hasScheme:
		dir, pattern, err := splitGlob(rawURL)
		if err != nil {
			return nil, "", err
		}
		st, err := Open(ctx, dir)
		return st, pattern, err
	case strings.EqualFold(scheme, "mem"):
		name, key, ok := strings.Cut(rest, "/")
		if !ok || name == "" || key == "" {
			return nil, "", fmt.Errorf("store: memory URL %q: want mem://NAME/KEY", rawURL)
		}
		st, err := Open(ctx, "mem://"+name)
		return st, key, err
	case strings.EqualFold(scheme, "file"):
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, "", fmt.Errorf("store: %w", err)
		}
		dir, pattern, err := splitGlob(u.Path)
		if err != nil {
			return nil, "", err
		}
		st, err := Open(ctx, (&url.URL{Scheme: "file", Path: dir}).String())
		return st, pattern, err
	case strings.EqualFold(scheme, "azblob"), strings.EqualFold(scheme, "http"), strings.EqualFold(scheme, "https"):
		a, err := parseAzureURL(rawURL)
		if err != nil {
			return nil, "", err
		}
		if a.prefix == "" {
			return nil, "", fmt.Errorf("store: URL %q names no blob inside the container", rawURL)
		}
		pattern := strings.TrimSuffix(a.prefix, "/")
		a.prefix = ""
		st, err := NewAzure(a.rawURL(), AzureCredentialsFromEnv())
		return st, pattern, err
	default:
		return nil, "", fmt.Errorf("store: unknown store URL scheme %q in %q (want a path, file://, mem://, azblob://, http(s)://)", scheme, rawURL)
	}
}

// splitGlob splits a local path into the folder before its first segment
// with a glob character (or its last segment's parent) and the rest.
func splitGlob(path string) (dir, pattern string, err error) {
	if path == "" {
		return "", "", fmt.Errorf("store: empty path")
	}
	segs := strings.Split(filepath.ToSlash(path), "/")
	cut := len(segs) - 1
	for i, s := range segs {
		if strings.ContainsAny(s, "*?[") {
			cut = i
			break
		}
	}
	dir = strings.Join(segs[:cut], "/")
	switch {
	case dir == "" && strings.HasPrefix(path, "/"):
		dir = "/"
	case dir == "":
		dir = "."
	}
	pattern = strings.Join(segs[cut:], "/")
	if pattern == "" {
		return "", "", fmt.Errorf("store: path %q names a folder, not a file or pattern", path)
	}
	return filepath.FromSlash(dir), pattern, nil
}
