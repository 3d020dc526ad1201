package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// EmbeddedOptions configures an in-process NATS server with JetStream.
type EmbeddedOptions struct {
	// Dir holds JetStream's files; they survive restarts, so a job started
	// by one "tdb collate" resumes in the next one.
	Dir string
	// Listen is "host:port" for TCP clients (port 0: a free port). Empty:
	// no TCP listener, in-process connections only.
	Listen string
	Logger *slog.Logger
}

// Embedded is a running in-process NATS server.
type Embedded struct {
	srv  *server.Server
	dir  string
	lock *os.File
}

// LockFile in the embedded server's folder is locked while a server uses
// the folder and holds its PID: two servers on one JetStream folder would
// corrupt the job state.
const LockFile = "tdb-nats.lock"

// LockedError: another process runs an embedded server on the folder.
type LockedError struct {
	Dir string
	PID int
	// URL is the other server's client URL, when it listens on TCP.
	URL string
}

func (e *LockedError) Error() string {
	msg := fmt.Sprintf("another tdb (PID %d) is running an embedded NATS server on %s", e.PID, e.Dir)
	if e.URL != "" {
		return msg + fmt.Sprintf("; wait for it to finish, follow it with `tdb jobs list --nats %s`, add workers with `tdb worker --nats %s`, or use another --nats-dir", e.URL, e.URL)
	}
	return msg + "; wait for it to finish, or use another --nats-dir"
}

// URLFile is the file in the embedded server's folder that holds its client
// URL while it runs, so "tdb jobs" and extra workers on the same machine can
// find it.
const URLFile = "tdb-nats.url"

// StartEmbedded starts a JetStream-enabled server storing into opts.Dir and
// waits until it accepts connections.
func StartEmbedded(opts EmbeddedOptions) (*Embedded, error) {
	if opts.Dir == "" {
		return nil, errors.New("embedded NATS: no data folder given")
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded NATS: creating %s: %w", opts.Dir, err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		var le *LockedError
		if errors.As(err, &le) {
			if b, rerr := os.ReadFile(filepath.Join(opts.Dir, URLFile)); rerr == nil {
				le.URL = strings.TrimSpace(string(b))
			}
		}
		return nil, err
	}
	unlock := func() {
		if lock != nil {
			lock.Close()
		}
	}
	so := &server.Options{
		ServerName: "tdb-embedded",
		JetStream:  true,
		StoreDir:   opts.Dir,
		NoSigs:     true,
		NoLog:      true,
		// Shard messages are small, but a job plan or spec can be larger
		// than the 1 MiB default.
		MaxPayload: 8 << 20,
	}
	if opts.Listen == "" {
		so.DontListen = true
	} else {
		host, portStr, err := net.SplitHostPort(opts.Listen)
		if err != nil {
			unlock()
			return nil, fmt.Errorf("embedded NATS: listen address %q: %w", opts.Listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			unlock()
			return nil, fmt.Errorf("embedded NATS: listen port %q: %w", portStr, err)
		}
		if host == "" {
			host = "0.0.0.0"
		}
		if port == 0 {
			port = server.RANDOM_PORT
		}
		so.Host, so.Port = host, port
	}
	srv, err := server.NewServer(so)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		unlock()
		return nil, fmt.Errorf("embedded NATS in %s did not start within 30s", opts.Dir)
	}
	e := &Embedded{srv: srv, dir: opts.Dir, lock: lock}
	if opts.Listen != "" {
		if err := os.WriteFile(filepath.Join(opts.Dir, URLFile), []byte(srv.ClientURL()+"\n"), 0o644); err != nil {
			e.Shutdown()
			return nil, fmt.Errorf("embedded NATS: %w", err)
		}
	}
	if opts.Logger != nil {
		opts.Logger.Info("embedded NATS server started", "dir", opts.Dir, "url", e.URL())
	}
	return e, nil
}

// URL is the TCP client URL, or "" when the server does not listen.
func (e *Embedded) URL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Connect opens an in-process client connection (no TCP involved).
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connecting to embedded NATS: %w", err)
	}
	return nc, nil
}

// Dialer returns a function that connects in-process; it has the shape of
// Connect so services can be handed either.
func (e *Embedded) Dialer() func(ctx context.Context, name string) (*nats.Conn, error) {
	return func(_ context.Context, name string) (*nats.Conn, error) { return e.Connect(name) }
}

// Shutdown stops the server and waits until its files are closed.
func (e *Embedded) Shutdown() {
	os.Remove(filepath.Join(e.dir, URLFile))
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	if e.lock != nil {
		e.lock.Close()
	}
}
