package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// ErrReadOnly is returned (wrapped) by writes to a store opened without
// credentials: anonymous access can only read public containers.
var ErrReadOnly = errors.New("store: read-only")

// Environment variables that carry Azure credentials (see AzureCredentialsFromEnv).
const (
	EnvAzureConnectionString = "AZURE_STORAGE_CONNECTION_STRING"
	EnvAzureAccount          = "AZURE_STORAGE_ACCOUNT"
	EnvAzureKey              = "AZURE_STORAGE_KEY"
	EnvAzureSASToken         = "AZURE_STORAGE_SAS_TOKEN"
)

// Transfer tuning. Blocks of 4 MiB, 4 in flight, bound one Put's memory to
// 16 MiB. Every request has a per-try timeout scaled by the bytes it moves
// (azureTryBase + bytes at azureMinRate), so an endpoint that accepts
// connections but never answers fails a metadata call in about
// (1+azureMaxRetries) × azureTryBase plus back-off, instead of hanging; the
// SDK's retry policy (exponential back-off) and the download retry reader
// resume after a timed-out try, and every failed try is logged.
const (
	azureBlockSize        = 4 << 20
	azureUploadConcurrent = 4
	azureMaxRetries       = 3
	azureReadRetries      = 3
	azureMinRate          = 1 << 20 // bytes/s a try may not fall below
)

// azureTryBase is the per-try allowance before any bytes move; tests lower it.
var azureTryBase = 10 * time.Second

// tries bounds the requests made with the returned context: each try may take
// azureTryBase plus the time to move n bytes at azureMinRate.
func tries(ctx context.Context, n int64) context.Context {
	return policy.WithRetryOptions(ctx, policy.RetryOptions{
		MaxRetries:    azureMaxRetries,
		TryTimeout:    azureTryBase + time.Duration(n/azureMinRate)*time.Second,
		RetryDelay:    azureTryBase / 20,
		MaxRetryDelay: azureTryBase / 2,
	})
}

// retryLog is a per-try policy that says on stderr (through slog) which
// request failed and is being retried, so a slow or dead endpoint is never
// silent.
type retryLog struct{}

func (retryLog) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	what := req.Raw().Method + " " + req.Raw().URL.Host + req.Raw().URL.Path
	switch {
	case err != nil && req.Raw().Context().Err() == nil:
		// The parent context is alive: the try timed out or the connection failed.
		slog.Warn("store: Azure request failed; retrying while attempts remain", "request", what, "err", err)
	case err != nil && errors.Is(req.Raw().Context().Err(), context.DeadlineExceeded):
		slog.Warn("store: Azure request timed out; retrying while attempts remain", "request", what)
	case resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500):
		slog.Warn("store: Azure request failed; retrying while attempts remain", "request", what, "status", resp.StatusCode)
	}
	return resp, err
}

// listPageSize caps blobs per List page (0: the service's default of 5000);
// tests lower it to exercise paging.
var listPageSize int32

// AzureCredentials says how to authenticate to Azure Blob. At most one way is
// used, in this order of precedence:
//
//  1. a SAS token in the store URL's query string;
//  2. ConnectionString (AccountKey or SharedAccessSignature form; its
//     endpoint must be the store URL's account);
//  3. AccountKey (shared key; AccountName, if set, must match the URL);
//  4. SASToken;
//  5. nothing: anonymous, read-only access to a public container.
type AzureCredentials struct {
	ConnectionString string
	AccountName      string
	AccountKey       string
	SASToken         string
}

// AzureCredentialsFromEnv reads AZURE_STORAGE_CONNECTION_STRING,
// AZURE_STORAGE_ACCOUNT, AZURE_STORAGE_KEY and AZURE_STORAGE_SAS_TOKEN.
func AzureCredentialsFromEnv() AzureCredentials {
	return AzureCredentials{
		ConnectionString: os.Getenv(EnvAzureConnectionString),
		AccountName:      os.Getenv(EnvAzureAccount),
		AccountKey:       os.Getenv(EnvAzureKey),
		SASToken:         os.Getenv(EnvAzureSASToken),
	}
}

// azureURL is a parsed Azure store URL.
type azureURL struct {
	scheme    string // "https" or "http" (Azurite)
	host      string // with port
	pathStyle bool   // account in the path (Azurite, IP hosts) rather than the host name
	account   string
	container string
	prefix    string // "" or ending in "/"
	sas       string // query string of the URL, if any
}

// serviceURL is the account's blob endpoint, ending in "/".
func (u azureURL) serviceURL() string {
	if u.pathStyle {
		return u.scheme + "://" + u.host + "/" + u.account + "/"
	}
	return u.scheme + "://" + u.host + "/"
}

// String is the URL without any SAS token, safe for logs.
func (u azureURL) String() string {
	var b strings.Builder
	if u.scheme == "https" && u.host == u.account+".blob.core.windows.net" {
		b.WriteString("azblob://" + u.account + "/")
	} else {
		b.WriteString(u.serviceURL())
	}
	b.WriteString(u.container)
	if u.prefix != "" {
		b.WriteString("/" + strings.TrimSuffix(u.prefix, "/"))
	}
	return b.String()
}

// rawURL is the URL with its SAS token, which parseAzureURL reads back to
// the same azureURL.
func (u azureURL) rawURL() string {
	s := u.serviceURL() + u.container
	if u.prefix != "" {
		s += "/" + strings.TrimSuffix(u.prefix, "/")
	}
	if u.sas != "" {
		s += "?" + u.sas
	}
	return s
}

// isPathStyleHost reports whether an endpoint puts the account name in the
// path: IP addresses and localhost, as the Azurite emulator does.
func isPathStyleHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return host == "localhost" || net.ParseIP(strings.Trim(host, "[]")) != nil
}

// parseAzureURL accepts azblob://ACCOUNT/CONTAINER[/prefix],
// https://ACCOUNT.blob.core.windows.net/CONTAINER[/prefix] (or any host whose
// first label is the account) and path-style http(s)://IP:PORT/ACCOUNT/CONTAINER[/prefix].
func parseAzureURL(raw string) (azureURL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return azureURL{}, fmt.Errorf("store: azure URL: %w", err)
	}
	var a azureURL
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) == 1 && segs[0] == "" {
		segs = nil
	}
	switch u.Scheme {
	case "azblob":
		a.scheme, a.host, a.account = "https", u.Host+".blob.core.windows.net", u.Host
	case "http", "https":
		a.scheme, a.host = u.Scheme, u.Host
		if isPathStyleHost(u.Host) {
			if len(segs) == 0 {
				return azureURL{}, fmt.Errorf("store: azure URL %q: no account in the path (want %s://%s/ACCOUNT/CONTAINER)", raw, u.Scheme, u.Host)
			}
			a.pathStyle, a.account, segs = true, segs[0], segs[1:]
		} else {
			a.account, _, _ = strings.Cut(u.Hostname(), ".")
		}
	default:
		return azureURL{}, fmt.Errorf("store: %q is not an Azure Blob URL", raw)
	}
	if a.account == "" {
		return azureURL{}, fmt.Errorf("store: azure URL %q: empty account name", raw)
	}
	if u.User != nil || u.Fragment != "" {
		return azureURL{}, fmt.Errorf("store: azure URL %q: user info and fragments are not allowed", raw)
	}
	if len(segs) == 0 {
		return azureURL{}, fmt.Errorf("store: azure URL %q: no container (want .../CONTAINER[/prefix])", raw)
	}
	a.container = segs[0]
	if err := validateContainer(a.container); err != nil {
		return azureURL{}, fmt.Errorf("store: azure URL %q: %w", raw, err)
	}
	if rest := strings.Join(segs[1:], "/"); rest != "" {
		if err := ValidateKey(rest); err != nil {
			return azureURL{}, fmt.Errorf("store: azure URL %q: prefix: %w", raw, err)
		}
		a.prefix = rest + "/"
	}
	a.sas = u.RawQuery
	return a, nil
}

// validateContainer applies Azure's container naming rules, so a typo gives a
// clear message rather than an HTTP 400 later.
func validateContainer(name string) error {
	if name == "$root" || name == "$web" {
		return nil
	}
	if len(name) < 3 || len(name) > 63 {
		return fmt.Errorf("container name %q must be 3 to 63 characters", name)
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(name)-1 && name[i-1] != '-'
		if !ok {
			return fmt.Errorf("container name %q may hold only lower-case letters, digits and single inner hyphens", name)
		}
	}
	return nil
}

// Azure is a Store on an Azure Blob container, optionally under a key prefix.
// Blobs are block blobs; Put commits the block list only once every block is
// staged, so readers see the old blob or the new one, never a mix.
type Azure struct {
	u        azureURL
	client   *container.Client
	readOnly bool
	auth     string // how it authenticates, for logs

	mu          sync.Mutex
	containerOK bool // the container is known to exist (or cannot be created by us)
}

// NewAzure opens the Azure Blob store at rawURL with the given credentials
// (see AzureCredentials for which one wins). It makes no request; the
// container is created by the first Put if it does not exist.
func NewAzure(rawURL string, cred AzureCredentials) (*Azure, error) {
	u, err := parseAzureURL(rawURL)
	if err != nil {
		return nil, err
	}
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{
			MaxRetries:    azureMaxRetries,
			TryTimeout:    azureTryBase,
			RetryDelay:    500 * time.Millisecond,
			MaxRetryDelay: 5 * time.Second,
		},
		PerRetryPolicies: []policy.Policy{retryLog{}},
		Telemetry:        policy.TelemetryOptions{ApplicationID: "tdb"},
	}}
	containerURL := u.serviceURL() + u.container
	s := &Azure{u: u}
	switch {
	case u.sas != "":
		s.auth = "SAS token in URL"
		s.client, err = container.NewClientWithNoCredential(containerURL+"?"+u.sas, opts)
	case cred.ConnectionString != "":
		s.auth = EnvAzureConnectionString
		s.client, err = container.NewClientFromConnectionString(cred.ConnectionString, u.container, opts)
		if err == nil {
			err = checkConnectionEndpoint(u, s.client.URL())
		}
	case cred.AccountKey != "":
		s.auth = "shared key"
		if cred.AccountName != "" && cred.AccountName != u.account {
			return nil, fmt.Errorf("store %s: %s=%q does not match the URL's account %q", u, EnvAzureAccount, cred.AccountName, u.account)
		}
		var key *azblob.SharedKeyCredential
		key, err = azblob.NewSharedKeyCredential(u.account, cred.AccountKey)
		if err == nil {
			s.client, err = container.NewClientWithSharedKeyCredential(containerURL, key, opts)
		}
	case cred.SASToken != "":
		s.auth = EnvAzureSASToken
		s.client, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(cred.SASToken, "?"), opts)
	default:
		s.auth = "anonymous (read-only)"
		s.readOnly = true
		s.client, err = container.NewClientWithNoCredential(containerURL, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %s: %w", u, s.auth, err)
	}
	return s, nil
}

// checkConnectionEndpoint refuses a connection string for another account or
// endpoint than the store URL names: silently writing elsewhere is worse than failing.
func checkConnectionEndpoint(u azureURL, clientURL string) error {
	c, err := url.Parse(clientURL)
	if err != nil {
		return err
	}
	var account string
	if isPathStyleHost(c.Host) {
		account, _, _ = strings.Cut(strings.TrimPrefix(c.Path, "/"), "/")
	} else {
		account, _, _ = strings.Cut(c.Hostname(), ".")
	}
	if account != u.account {
		return fmt.Errorf("the connection string is for account %q, the URL names %q", account, u.account)
	}
	// For explicit endpoints (Azurite, custom domains) the host must match too.
	if u.pathStyle && c.Host != u.host {
		return fmt.Errorf("the connection string points at %s, the URL at %s", c.Host, u.host)
	}
	return nil
}

// String returns the store URL without secrets.
func (s *Azure) String() string { return s.u.String() }

// Auth says how the store authenticates (for logs; never a secret).
func (s *Azure) Auth() string { return s.auth }

func (s *Azure) name(key string) string { return s.u.prefix + key }

// azureError shortens the SDK's multi-line response dumps to one line while
// keeping the original error for errors.As.
type azureError struct {
	status int
	code   string
	err    error
}

func (e *azureError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.status)
	if e.code != "" {
		msg += " " + e.code
	}
	switch e.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (check the credentials and their permissions)"
	}
	return msg
}

func (e *azureError) Unwrap() error { return e.err }

func isAzureNotFound(err error) bool {
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound) {
		return true
	}
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

func (s *Azure) wrap(op, key string, err error) error {
	var re *azcore.ResponseError
	isResp := errors.As(err, &re)
	if isAzureNotFound(err) {
		code := "HTTP 404"
		if isResp && re.ErrorCode != "" {
			code = re.ErrorCode
		}
		if s.readOnly {
			// Azure hides private containers from anonymous callers behind 404s.
			code += "; with anonymous access a private container also looks like this"
		}
		return fmt.Errorf("store %s: %s %q: %w (%s)", s, op, key, ErrNotFound, code)
	}
	if isResp {
		err = &azureError{status: re.StatusCode, code: re.ErrorCode, err: err}
	}
	return fmt.Errorf("store %s: %s %q: %w", s, op, key, err)
}

func (s *Azure) readOnlyErr(op, key string) error {
	return fmt.Errorf("store %s: %s %q: %w: anonymous access (set %s, %s+%s or %s to write)",
		s, op, key, ErrReadOnly, EnvAzureConnectionString, EnvAzureAccount, EnvAzureKey, EnvAzureSASToken)
}

// ensureContainer creates the container once per store. A credential that may
// not create containers (a container SAS) is not an error here: the upload
// itself then says whether the container exists.
func (s *Azure) ensureContainer(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.containerOK {
		return nil
	}
	_, err := s.client.Create(tries(ctx, 0), nil)
	switch {
	case err == nil:
		slog.Debug("store: created Azure container", "store", s.String())
	case bloberror.HasCode(err, bloberror.ContainerAlreadyExists):
	default:
		var re *azcore.ResponseError
		if !errors.As(err, &re) || (re.StatusCode != http.StatusForbidden && re.StatusCode != http.StatusUnauthorized) {
			return s.wrap("create container", s.u.container, err)
		}
		slog.Debug("store: cannot create Azure container, assuming it exists", "store", s.String(), "status", re.StatusCode, "code", re.ErrorCode)
	}
	s.containerOK = true
	return nil
}

// Put uploads r as a block blob, replacing any blob at key.
func (s *Azure) Put(ctx context.Context, key string, r io.Reader) error {
	if err := ValidateKey(key); err != nil {
		return s.wrap("put", key, err)
	}
	if s.readOnly {
		return s.readOnlyErr("put", key)
	}
	if err := s.ensureContainer(ctx); err != nil {
		return err
	}
	bb := s.client.NewBlockBlobClient(s.name(key))
	_, err := bb.UploadStream(tries(ctx, azureBlockSize), r, &blockblob.UploadStreamOptions{
		BlockSize:   azureBlockSize,
		Concurrency: azureUploadConcurrent,
	})
	if err != nil {
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			s.mu.Lock()
			s.containerOK = false // deleted behind our back: create it on the next Put
			s.mu.Unlock()
		}
		var re *azcore.ResponseError
		if errors.As(err, &re) {
			return s.wrap("put", key, err)
		}
		return fmt.Errorf("store %s: put %q: %w", s, key, err)
	}
	return nil
}

// Get downloads key. The reader resumes a broken download where it stopped
// (pinned to the blob's ETag, so a concurrent Put cannot mix two versions).
func (s *Azure) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, s.wrap("get", key, err)
	}
	// The size first, so that the download's per-try timeout fits the blob.
	size, err := s.Size(ctx, key)
	if err != nil {
		return nil, err
	}
	tctx := tries(ctx, size)
	resp, err := s.client.NewBlobClient(s.name(key)).DownloadStream(tctx, nil)
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return resp.NewRetryReader(tctx, &blob.RetryReaderOptions{MaxRetries: azureReadRetries}), nil
}

// GetRange downloads length bytes of key from offset (length < 0: to the end).
// A range reaching past the end is cut there; an offset past the end is an
// error, as for the other backends.
func (s *Azure) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, s.wrap("get range", key, err)
	}
	if err := checkRange(offset, length); err != nil {
		return nil, s.wrap("get range", key, err)
	}
	// An empty range, or an offset at or past the end (Azure answers 416),
	// cannot be expressed as an HTTP range: settle them with the blob's size.
	sizeCheck := func() (io.ReadCloser, error) {
		size, err := s.Size(ctx, key)
		if err != nil {
			return nil, err
		}
		if _, err := rangeLen(size, offset, length); err != nil {
			return nil, s.wrap("get range", key, err)
		}
		if offset < size && length != 0 {
			// The blob grew between the two requests; read it again.
			return s.GetRange(ctx, key, offset, length)
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if length == 0 {
		return sizeCheck()
	}
	rng := blob.HTTPRange{Offset: offset}
	if length > 0 {
		rng.Count = length
	}
	n := length
	if n < 0 {
		n = azureBlockSize // to the end: allow a block's worth
	}
	tctx := tries(ctx, n)
	resp, err := s.client.NewBlobClient(s.name(key)).DownloadStream(tctx, &blob.DownloadStreamOptions{Range: rng})
	if err != nil {
		var re *azcore.ResponseError
		if bloberror.HasCode(err, bloberror.InvalidRange) || errors.As(err, &re) && re.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return sizeCheck()
		}
		return nil, s.wrap("get range", key, err)
	}
	return resp.NewRetryReader(tctx, &blob.RetryReaderOptions{MaxRetries: azureReadRetries}), nil
}

// Size returns key's length from its properties.
func (s *Azure) Size(ctx context.Context, key string) (int64, error) {
	if err := ValidateKey(key); err != nil {
		return 0, s.wrap("size", key, err)
	}
	props, err := s.client.NewBlobClient(s.name(key)).GetProperties(tries(ctx, 0), nil)
	if err != nil {
		return 0, s.wrap("size", key, err)
	}
	if props.ContentLength == nil {
		return 0, fmt.Errorf("store %s: size %q: response has no Content-Length", s, key)
	}
	return *props.ContentLength, nil
}

// List pages through the flat blob listing under the store's prefix. A
// missing container holds no keys.
func (s *Azure) List(ctx context.Context, prefix string) ([]string, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("store %s: list %q: %w", s, prefix, err)
	}
	full := s.name(prefix)
	opts := &container.ListBlobsFlatOptions{Prefix: &full}
	if listPageSize > 0 {
		opts.MaxResults = &listPageSize
	}
	pager := s.client.NewListBlobsFlatPager(opts)
	var keys []string
	for pager.More() {
		page, err := pager.NextPage(tries(ctx, 0))
		if err != nil {
			if bloberror.HasCode(err, bloberror.ContainerNotFound) {
				return nil, nil
			}
			return nil, s.wrap("list", prefix, err)
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil {
				continue
			}
			k, ok := strings.CutPrefix(*item.Name, s.u.prefix)
			if ok && strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// Delete removes key and its snapshots; a missing key is not an error.
func (s *Azure) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return s.wrap("delete", key, err)
	}
	if s.readOnly {
		return s.readOnlyErr("delete", key)
	}
	_, err := s.client.NewBlobClient(s.name(key)).Delete(tries(ctx, 0), &blob.DeleteOptions{
		DeleteSnapshots: to(blob.DeleteSnapshotsOptionTypeInclude),
	})
	if err != nil && !isAzureNotFound(err) {
		return s.wrap("delete", key, err)
	}
	return nil
}

func to[T any](v T) *T { return &v }
