package layering

import (
	"os/exec"
	"strings"
	"testing"
)

// goList runs go list from the module root with the given arguments.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// TestEngineHasNoInfrastructure: the model, autoencoders and the debugger
// build without NATS, Arrow, Azure or any store or pipeline package.
func TestEngineHasNoInfrastructure(t *testing.T) {
	forbidden := []string{"github.com/nats-io/", "github.com/apache/arrow-go/", "github.com/Azure/",
		"tdb/store", "tdb/collate", "tdb/dataset", "tdb/worker", "tdb/coordinator", "tdb/internal/natsx", "tdb/internal/jobs"}
	for _, pkg := range []string{"tdb/model", "tdb/autoencoder", "tdb/debugger"} {
		for _, dep := range goList(t, "-deps", pkg) {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}

// TestOnlyThePipelineImportsIt: worker and coordinator are imported by
// each other's tests, the pipeline and cmd/tdb only; HTTP services never
// import NATS.
func TestOnlyThePipelineImportsIt(t *testing.T) {
	lines := goList(t, "-f", `{{.ImportPath}}|{{join .Imports ","}}`, "tdb/...")
	pipeline := map[string]bool{"tdb/worker": true, "tdb/coordinator": true, "tdb/cmd/tdb": true}
	services := map[string]bool{"tdb/query": true, "tdb/viewer": true, "tdb/compat": true, "tdb/explain": true, "tdb/internal/service": true, "tdb/dataset": true}
	for _, line := range lines {
		pkg, imports, _ := strings.Cut(line, "|")
		for _, imp := range strings.Split(imports, ",") {
			if (imp == "tdb/worker" || imp == "tdb/coordinator") && !pipeline[pkg] {
				t.Errorf("%s imports %s; only the pipeline and cmd/tdb may", pkg, imp)
			}
			if services[pkg] && (strings.HasPrefix(imp, "github.com/nats-io/") || imp == "tdb/internal/natsx") {
				t.Errorf("%s imports %s; an HTTP service talks to NATS only if it must", pkg, imp)
			}
		}
	}
	if len(lines) < 20 {
		t.Fatalf("go list found only %d packages", len(lines))
	}
}
