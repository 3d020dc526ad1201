package main

import (
	"context"
	"fmt"
	"io"

	"tdb/internal/natsx"
)

func init() {
	register("nats-server", "run an embedded NATS server with JetStream (for development and tests; production uses nats-server)", cmdNatsServer)
}

func cmdNatsServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("nats-server", stderr)
	listen := fs.String("listen", "127.0.0.1:4222", "client address host:port (port 0: any free port)")
	dir := natsDirFlag(fs, "dir", "JetStream data folder")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	emb, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: *dir, Listen: *listen})
	if err != nil {
		return err
	}
	defer emb.Shutdown()
	fmt.Fprintln(stdout, emb.URL())
	fmt.Fprintf(stderr, "NATS with JetStream at %s (data in %s); Ctrl-C stops it\n", emb.URL(), *dir)
	<-ctx.Done()
	return nil
}
