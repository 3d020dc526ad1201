package azuritetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"tdb/internal/syncbuf"
)

// The emulator's well-known development account (public, documented by
// Microsoft; not a secret).
const (
	Account    = "devstoreaccount1"
	AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// EnvBinary names the environment variable that points at azurite-blob.
const EnvBinary = "TDB_AZURITE"

// startTimeout bounds how long Azurite may take to listen.
const startTimeout = 60 * time.Second

// Start runs a fresh, in-memory Azurite blob service for the test and stops
// it in t.Cleanup. It returns a connection string for the emulator's account
// and the account's blob endpoint, e.g. "http://127.0.0.1:41234/devstoreaccount1";
// a store URL is endpoint + "/" + container.
func Start(t testing.TB) (connString, endpoint string) {
	t.Helper()
	bin, err := Find()
	if err != nil {
		Missing(t, err)
	}
	var lastErr error
	for range 3 { // a free port can be taken between probing and binding
		port, err := freePort()
		if err != nil {
			t.Fatalf("azuritetest: %v", err)
		}
		conn, ep, err := start(t, bin, port)
		if err == nil {
			return conn, ep
		}
		lastErr = err
	}
	t.Fatalf("azuritetest: %v", lastErr)
	return "", ""
}

// Missing skips t because Azurite is not installed, or fails it under CI.
func Missing(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("AZURITE NOT FOUND, Azure Blob tests NOT RUN: %v\n"+
		"\tinstall it: npm install --prefix .ci/node azurite@3.37.0 (or set %s=/path/to/azurite-blob)", err, EnvBinary)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s\n\tIn CI a missing dependency is a failure.", msg)
	}
	t.Skip(msg)
}

// Find locates the azurite-blob executable (see the package doc for the order).
func Find() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s=%q is not an executable file", EnvBinary, p)
	}
	var tried []string
	if dir, err := os.Getwd(); err == nil {
		for {
			for _, rel := range []string{".ci/node/node_modules/.bin/azurite-blob", "node_modules/.bin/azurite-blob"} {
				p := filepath.Join(dir, rel)
				if isExecutable(p) {
					return p, nil
				}
			}
			if fileExists(filepath.Join(dir, "go.mod")) {
				tried = append(tried, filepath.Join(dir, ".ci/node/node_modules/.bin"), filepath.Join(dir, "node_modules/.bin"))
				break // the module root: do not wander out of the repository
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("azurite-blob not in $%s, %v or $PATH", EnvBinary, tried)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(t testing.TB, bin string, port int) (connString, endpoint string, err error) {
	// --location cannot be combined with --inMemoryPersistence; the working
	// directory (a temp dir) catches anything else Azurite writes.
	cmd := exec.Command(bin,
		"--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose",
		"--inMemoryPersistence", "--extentMemoryLimit", "1024",
		"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port))
	cmd.Dir = t.TempDir()
	var out syncbuf.Buffer // the emulator's output, for error messages
	cmd.Stdout, cmd.Stderr = &out, &out
	setParentDeath(cmd)
	if err := cmd.Start(); err != nil {
		return "", "", fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	endpoint = fmt.Sprintf("http://127.0.0.1:%d/%s", port, Account)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for {
		select {
		case err := <-exited:
			return "", "", fmt.Errorf("azurite-blob exited before listening (%v): %s", err, out.String())
		case <-ctx.Done():
			stop()
			return "", "", fmt.Errorf("azurite-blob did not answer on port %d within %v: %s", port, startTimeout, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if ready(ctx, endpoint) {
			break
		}
	}
	t.Cleanup(stop)
	connString = fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		Account, AccountKey, endpoint)
	return connString, endpoint, nil
}

// ready reports whether the emulator answers HTTP (any status: an anonymous
// request is refused with 403, which proves the service is up).
func ready(ctx context.Context, endpoint string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?comp=list", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return !errors.Is(ctx.Err(), context.DeadlineExceeded)
}
