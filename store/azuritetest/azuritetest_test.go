package azuritetest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeExec(t *testing.T, path, script string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestFindOrder(t *testing.T) {
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ciBin := filepath.Join(repo, ".ci/node/node_modules/.bin/azurite-blob")
	rootBin := filepath.Join(repo, "node_modules/.bin/azurite-blob")
	envBin := filepath.Join(t.TempDir(), "azurite-blob")
	writeExec(t, ciBin, "#!/bin/sh\n")
	writeExec(t, rootBin, "#!/bin/sh\n")
	writeExec(t, envBin, "#!/bin/sh\n")
	sub := filepath.Join(repo, "pkg", "deeper")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	t.Setenv("PATH", "")

	t.Setenv(EnvBinary, envBin)
	if got, err := Find(); err != nil || got != envBin {
		t.Fatalf("with $%s: Find() = %q, %v; want %q", EnvBinary, got, err, envBin)
	}
	t.Setenv(EnvBinary, filepath.Join(repo, "go.mod")) // not executable
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), EnvBinary) {
		t.Fatalf("with a non-executable $%s: Find() error = %v", EnvBinary, err)
	}
	t.Setenv(EnvBinary, "")
	if got, err := Find(); err != nil || got != ciBin {
		t.Fatalf("Find() = %q, %v; want the .ci/node one %q", got, err, ciBin)
	}
	os.Remove(ciBin)
	if got, err := Find(); err != nil || got != rootBin {
		t.Fatalf("Find() = %q, %v; want the module root one %q", got, err, rootBin)
	}
	os.Remove(rootBin)
	// A node_modules above the module root is not ours: the search stops at go.mod.
	writeExec(t, filepath.Join(filepath.Dir(repo), "node_modules/.bin/azurite-blob"), "#!/bin/sh\n")
	t.Cleanup(func() { os.RemoveAll(filepath.Join(filepath.Dir(repo), "node_modules")) })
	if got, err := Find(); err == nil {
		t.Fatalf("Find() = %q, want not found", got)
	}
}

func TestStartReportsEarlyExit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "azurite-blob")
	writeExec(t, bin, "#!/bin/sh\necho 'broken install: node missing' >&2\nexit 3\n")
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = start(t, bin, port)
	if err == nil || !strings.Contains(err.Error(), "broken install: node missing") {
		t.Fatalf("start of a failing binary: %v; want its output in the error", err)
	}
}

func TestStartServesBlobAPIAndStops(t *testing.T) {
	var endpoint string
	t.Run("run", func(t *testing.T) {
		conn, ep := Start(t)
		endpoint = ep
		if !strings.Contains(conn, "AccountKey="+AccountKey) || !strings.Contains(conn, "BlobEndpoint="+ep) {
			t.Fatalf("connection string %q lacks the key or endpoint", conn)
		}
		resp, err := http.Get(ep + "?comp=list")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// An unsigned request to list containers is refused by the real service.
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("x-ms-request-id") == "" {
			t.Fatalf("GET %s: %s (request id %q); want a 403 from the blob service", ep, resp.Status, resp.Header.Get("x-ms-request-id"))
		}
	})
	if endpoint == "" {
		t.Skip("emulator did not start")
	}
	host := strings.TrimPrefix(endpoint, "http://")
	host = host[:strings.IndexByte(host, '/')]
	if c, err := net.Dial("tcp", host); err == nil {
		c.Close()
		t.Fatalf("emulator still listening on %s after the test's cleanup", host)
	}
}

// TestMissingBinary runs a test in a child process with no Azurite to see
// that it skips normally and fails under CI.
func TestMissingBinary(t *testing.T) {
	if os.Getenv("AZURITETEST_CHILD") == "1" {
		Start(t)
		t.Fatal("Start returned without Azurite")
	}
	for _, c := range []struct {
		ci       string
		wantFail bool
		wantOut  string
	}{
		{"", false, "AZURITE NOT FOUND"},
		{"true", true, "In CI a missing dependency is a failure"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingBinary$", "-test.v")
		cmd.Env = append(os.Environ(), "AZURITETEST_CHILD=1", "CI="+c.ci, EnvBinary+"=/nonexistent/azurite-blob")
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != c.wantFail || !strings.Contains(string(out), c.wantOut) {
			t.Errorf("CI=%q: failed=%v, output:\n%s\nwant failed=%v and %q", c.ci, err != nil, out, c.wantFail, c.wantOut)
		}
	}
}
