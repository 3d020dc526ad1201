package deploy

// Facts read from the tdb source tree (the parent folder), so the manifests
// cannot drift from the code: subcommands and their flags, environment
// variables, JetStream names, metric names, versions.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// root is the tdb repository, the parent of deploy/.
const root = ".."

// pendingCommands are subcommands that other work is adding (the query
// service and the viewer). Until they are registered their arguments are
// not checked; once registered they are checked like the others.
var pendingCommands = map[string]bool{"query": true, "serve": true}

var (
	cliOnce sync.Once
	cliCmds map[string]map[string]bool
	cliErr  error
)

// cliCommands maps each "tdb <command>" to the flags it defines, read from
// cmd/tdb: register("name", summary, fn) ties a command to fn, and every
// fs.X("flag", ...) call in fn (or in a function of the package that fn
// calls) defines a flag.
func cliCommands(t *testing.T) map[string]map[string]bool {
	t.Helper()
	cliOnce.Do(func() { cliCmds, cliErr = parseCLI(filepath.Join(root, "cmd", "tdb")) })
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliCmds
}

func parseCLI(dir string) (map[string]map[string]bool, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	funcs := map[string]*ast.FuncDecl{}
	registered := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			return nil, err
		}
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
				funcs[fd.Name.Name] = fd
			}
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 3 {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "register" {
				return true
			}
			name, ok1 := stringLit(call.Args[0])
			fn, ok2 := call.Args[2].(*ast.Ident)
			if ok1 && ok2 {
				registered[name] = fn.Name
			}
			return true
		})
	}
	if len(registered) == 0 {
		return nil, os.ErrNotExist
	}
	out := map[string]map[string]bool{}
	for cmd, fn := range registered {
		flags := map[string]bool{}
		collectFlags(funcs, fn, flags, nil, map[string]bool{})
		out[cmd] = flags
	}
	return out, nil
}

// collectFlags adds the flags the function name defines: fs.X("name", ...)
// calls in its body and, through the helpers it calls (envString(fs,
// "store", ...)), theirs. A helper's flag name may be one of its
// parameters; params holds the string literals the caller passed for them.
// onPath stops recursion cycles.
func collectFlags(funcs map[string]*ast.FuncDecl, name string, flags map[string]bool, params map[string]string, onPath map[string]bool) {
	fd := funcs[name]
	if fd == nil || onPath[name] {
		return
	}
	onPath[name] = true
	defer delete(onPath, name)
	literal := func(e ast.Expr) (string, bool) {
		if s, ok := stringLit(e); ok {
			return s, true
		}
		if id, ok := e.(*ast.Ident); ok {
			s, ok := params[id.Name]
			return s, ok
		}
		return "", false
	}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		switch fun := call.Fun.(type) {
		case *ast.SelectorExpr:
			if recv, ok := fun.X.(*ast.Ident); ok && recv.Name == "fs" && len(call.Args) > 0 {
				// fs.String("name", ...) or fs.StringVar(&v, "name", ...)
				for _, a := range call.Args[:min(2, len(call.Args))] {
					if s, ok := literal(a); ok {
						flags[s] = true
						break
					}
				}
			}
		case *ast.Ident:
			callee := funcs[fun.Name]
			if callee == nil {
				return true
			}
			args := map[string]string{}
			i := 0
			for _, field := range callee.Type.Params.List {
				for _, pn := range field.Names {
					if i < len(call.Args) {
						if s, ok := literal(call.Args[i]); ok {
							args[pn.Name] = s
						}
					}
					i++
				}
			}
			collectFlags(funcs, fun.Name, flags, args, onPath)
		}
		return true
	})
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

// checkArgs checks a container's arguments: a tdb subcommand (one or two
// words) followed by flags that subcommand defines.
func checkArgs(t *testing.T, cmds map[string]map[string]bool, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no arguments: the image's entrypoint needs a subcommand", where)
		return
	}
	cmd, rest := args[0], args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		if _, ok := cmds[cmd+" "+rest[0]]; ok {
			cmd, rest = cmd+" "+rest[0], rest[1:]
		}
	}
	flags, ok := cmds[cmd]
	if !ok {
		if pendingCommands[cmd] {
			t.Logf("%s: tdb %s is not in cmd/tdb yet; its flags are not checked", where, cmd)
			return
		}
		t.Errorf("%s: tdb has no subcommand %q", where, cmd)
		return
	}
	for _, a := range rest {
		if !strings.HasPrefix(a, "-") {
			continue // a flag's value
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !flags[name] {
			t.Errorf("%s: tdb %s has no flag --%s", where, cmd, name)
		}
	}
}

var (
	srcOnce  sync.Once
	srcText  string
	srcFiles []string
)

// goSource is the text of every non-test Go file of tdb outside deploy/.
func goSource(t *testing.T) string {
	t.Helper()
	srcOnce.Do(func() {
		var b strings.Builder
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && (d.Name() == "deploy" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && p != root {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
				data, err := os.ReadFile(p)
				if err == nil {
					srcFiles = append(srcFiles, p)
					b.Write(data)
					b.WriteByte('\n')
				}
			}
			return nil
		})
		srcText = b.String()
	})
	if srcText == "" {
		t.Fatal("no tdb Go source found in the parent folder")
	}
	return srcText
}

// checkEnvVarKnown fails for a TDB_ or AZURE_ variable that no tdb code
// reads (POD_NAME and other variables for the containers' own use pass).
func checkEnvVarKnown(t *testing.T, name string) {
	t.Helper()
	if !strings.HasPrefix(name, "TDB_") && !strings.HasPrefix(name, "AZURE_") {
		return
	}
	if !strings.Contains(goSource(t), strconv.Quote(name)) {
		t.Errorf("environment variable %s is read by no tdb code", name)
	}
}

// natsNames returns the work-queue stream and consumer names: the
// constants StreamName and ConsumerName of the package that lays out the
// JetStream objects (internal/natsutil; found wherever it moves under
// internal/).
func natsNames(t *testing.T) (stream, consumer string) {
	t.Helper()
	goSource(t)
	for _, f := range srcFiles {
		if !strings.Contains(filepath.ToSlash(f), "/internal/") {
			continue
		}
		consts := goConsts(t, f)
		if consts["StreamName"] != "" && consts["ConsumerName"] != "" {
			if stream != "" {
				t.Fatalf("StreamName and ConsumerName are defined twice (again in %s)", f)
			}
			stream, consumer = consts["StreamName"], consts["ConsumerName"]
		}
	}
	if stream == "" || consumer == "" {
		t.Fatal("no StreamName and ConsumerName constants under internal/")
	}
	return stream, consumer
}

func goConsts(t *testing.T, file string) map[string]string {
	t.Helper()
	af, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range af.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					if v, ok := stringLit(vs.Values[i]); ok {
						out[n.Name] = v
					}
				}
			}
		}
	}
	return out
}

// mainGoMod is the text of tdb's go.mod.
func mainGoMod(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// natsServerVersion is the nats-server version the main module builds
// against, without the v ("2.15.2").
func natsServerVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 v([0-9.]+)\s*$`).FindStringSubmatch(mainGoMod(t))
	if m == nil {
		t.Fatal("go.mod does not require github.com/nats-io/nats-server/v2")
	}
	return m[1]
}

// goMinor is the go directive's major.minor ("1.26").
func goMinor(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(mainGoMod(t))
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return m[1]
}

// metric is one metric the code exports: its type and label names.
type metric struct {
	kind   string // Counter, Gauge, Histogram (Vec stripped)
	labels map[string]bool
}

// exportedMetrics reads the metrics tdb defines with
// prometheus.NewX(prometheus.XOpts{Name: "..."}, []string{labels...}).
func exportedMetrics(t *testing.T) map[string]metric {
	t.Helper()
	out := map[string]metric{}
	goSource(t)
	fset := token.NewFileSet()
	for _, p := range srcFiles {
		af, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			kind, isNew := strings.CutPrefix(sel.Sel.Name, "New")
			if !ok || pkg.Name != "prometheus" || !isNew {
				return true
			}
			kind = strings.TrimSuffix(kind, "Vec")
			if kind != "Counter" && kind != "Gauge" && kind != "Histogram" && kind != "Summary" {
				return true
			}
			opts, ok := call.Args[0].(*ast.CompositeLit)
			if !ok {
				return true
			}
			var name string
			for _, e := range opts.Elts {
				if kv, ok := e.(*ast.KeyValueExpr); ok {
					if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Name" {
						name, _ = stringLit(kv.Value)
					}
				}
			}
			if name == "" {
				return true
			}
			m := metric{kind: kind, labels: map[string]bool{}}
			if len(call.Args) > 1 {
				if ls, ok := call.Args[1].(*ast.CompositeLit); ok {
					for _, e := range ls.Elts {
						if l, ok := stringLit(e); ok {
							m.labels[l] = true
						}
					}
				}
			}
			out[name] = m
			return true
		})
	}
	if len(out) < 10 {
		t.Fatalf("found only %d metric definitions in the tdb source", len(out))
	}
	return out
}
