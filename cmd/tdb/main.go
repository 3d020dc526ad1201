// Command tdb is the Transformer Debugger: GPT-2 with hook points, the TDB
// engine, sparse autoencoders, and the distributed collation pipeline.
//
// Each subcommand lives in its own file and registers itself in init; this
// file only dispatches. Run "tdb help" for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"tdb/kernels"
	"tdb/model/hub"
	"tdb/store"
)

// command is one "tdb <name> ..." subcommand. Nested commands ("model pull")
// register under their full name with a space.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	if _, dup := commands[name]; dup {
		panic("duplicate command " + name)
	}
	commands[name] = command{summary, run}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "tdb: the Transformer Debugger (GPT-2 interpretability, in Go)")
	fmt.Fprintln(w, "\nusage: tdb <command> [flags]   (tdb <command> -h for flags)\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-20s %s\n", n, commands[n].summary)
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	kernels.Install() // the fast GEMMs, once for every command
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches and turns errors into exit codes: 2 for usage errors, 1 otherwise.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	name := args[0]
	rest := args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		if _, ok := commands[name+" "+rest[0]]; ok {
			name, rest = name+" "+rest[0], rest[1:]
		}
	}
	cmd, ok := commands[name]
	if !ok {
		var subs []string
		for n := range commands {
			if strings.HasPrefix(n, name+" ") {
				subs = append(subs, strings.TrimPrefix(n, name+" "))
			}
		}
		if len(subs) > 0 {
			slices.Sort(subs)
			fmt.Fprintf(stderr, "tdb %s: want one of: %s\n", name, strings.Join(subs, ", "))
		} else {
			fmt.Fprintf(stderr, "tdb: unknown command %q\n\n", name)
			usage(stderr)
		}
		return 2
	}
	if err := cmd.run(ctx, rest, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "tdb %s: %v\n", name, err)
		var ue usageError
		if errors.As(err, &ue) || errors.Is(err, store.ErrNotFound) {
			return 2 // bad input, or input naming what does not exist
		}
		return 1
	}
	return 0
}

// usageError marks bad flags or arguments (exit code 2).
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// stringList collects a repeatable flag (--prompt A --prompt B).
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tdb "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and maps flag errors to usage errors. Every integer
// flag of tdb is a count, a size, a layer or an index, so a negative value is
// rejected here, once, for all commands.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	var bad error
	fs.Visit(func(f *flag.Flag) {
		if g, ok := f.Value.(flag.Getter); ok && bad == nil {
			var n int64
			switch v := g.Get().(type) {
			case int:
				n = int64(v)
			case int64:
				n = v
			}
			if n < 0 {
				bad = usagef("-%s must not be negative (got %d)", f.Name, n)
			}
		}
	})
	return bad
}

// envOr returns the environment variable's value or def (flags fall back to TDB_… variables).
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// envString defines a string flag that defaults to $env (def when that is
// unset or empty) and names the variable at the end of its help, the one way
// tdb writes it.
func envString(fs *flag.FlagSet, name, env, def, usage string) *string {
	return fs.String(name, envOr(env, def), usage+" ($"+env+")")
}

// secretFlag is a string flag that falls back to the environment variable
// env like envString, but whose value --help never prints: a default taken
// from the environment would show a secret (an auth token) to anyone who
// runs --help.
func secretFlag(fs *flag.FlagSet, name, env, usage string) *string {
	v := os.Getenv(env)
	fs.Var(hiddenString{&v}, name, usage+" ($"+env+")")
	return &v
}

// hiddenString is secretFlag's flag.Value; String is empty, so the flag
// package shows no default.
type hiddenString struct{ p *string }

func (h hiddenString) String() string     { return "" }
func (h hiddenString) Set(s string) error { *h.p = s; return nil }

// storeFlag is --store, the store URL: $TDB_STORE, else ./tdb-data.
func storeFlag(fs *flag.FlagSet, usage string) *string {
	return envString(fs, "store", "TDB_STORE", "./tdb-data", usage)
}

// modelFlag is --model: $TDB_MODEL, else gpt2.
func modelFlag(fs *flag.FlagSet, usage string) *string {
	return envString(fs, "model", "TDB_MODEL", "gpt2", usage)
}

// natsDirFlag is the embedded NATS server's data folder: $TDB_NATS_DIR,
// else nats/ in the cache, shared by tdb collate, explain, jobs and
// nats-server so that each finds the others' jobs.
func natsDirFlag(fs *flag.FlagSet, name, usage string) *string {
	return envString(fs, name, "TDB_NATS_DIR", filepath.Join(hub.CacheDir(), "nats"), usage)
}
