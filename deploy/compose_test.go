package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// composeFile is the part of the Compose specification the compose file
// uses; decoding is strict, so a misspelt key fails.
type composeFile struct {
	Name     string                    `json:"name"`
	XTDB     composeService            `json:"x-tdb"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]*struct{}      `json:"volumes"`
}

type composeService struct {
	Image       string                                `json:"image"`
	Build       *struct{ Context, Dockerfile string } `json:"build"`
	Command     []string                              `json:"command"`
	Restart     string                                `json:"restart"`
	Environment map[string]string                     `json:"environment"`
	Volumes     []string                              `json:"volumes"`
	Ports       []string                              `json:"ports"`
	Profiles    []string                              `json:"profiles"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Deploy *struct {
		Replicas int `json:"replicas"`
	} `json:"deploy"`
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval"`
		Timeout  string   `json:"timeout"`
		Retries  int      `json:"retries"`
	} `json:"healthcheck"`
	Networks map[string]struct {
		Aliases []string `json:"aliases"`
	} `json:"networks"`
}

// interpolate applies Compose's ${VAR:-default} with the variables unset.
func interpolate(s string) string {
	return regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`).ReplaceAllString(s, "$1")
}

func TestComposeFile(t *testing.T) {
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.UnmarshalStrict(data, &cf); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, name := range []string{"nats", "coordinator", "worker", "query", "viewer", "azurite"} {
		if _, ok := cf.Services[name]; !ok {
			t.Errorf("compose.yaml has no service %s", name)
		}
	}
	cmds := cliCommands(t)
	images := map[string]bool{}
	for name, s := range cf.Services {
		for _, v := range s.Volumes {
			vol, _, _ := strings.Cut(v, ":")
			if _, ok := cf.Volumes[vol]; !ok && !strings.HasPrefix(vol, ".") && !strings.HasPrefix(vol, "/") {
				t.Errorf("service %s mounts undeclared volume %s", name, vol)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("service %s depends on unknown %s", name, dep)
			}
		}
		if name == "nats" || name == "azurite" {
			continue
		}
		images[s.Image] = true
		args := make([]string, len(s.Command))
		for i, a := range s.Command {
			args[i] = interpolate(a)
		}
		checkArgs(t, cmds, "compose "+name, args)
		for k := range s.Environment {
			checkEnvVarKnown(t, k)
		}
		if s.Environment["TDB_NATS"] != "nats://nats:4222" {
			t.Errorf("compose %s: TDB_NATS=%q, want the nats service", name, s.Environment["TDB_NATS"])
		}
		if v := flagValue(args, "addr"); v != "" && !strings.HasPrefix(v, "0.0.0.0:") {
			t.Errorf("compose %s: --addr=%s is not reachable from outside the container", name, v)
		}
	}
	if len(images) != 1 {
		t.Errorf("compose tdb services use images %v, want one", images)
	}
	if b := cf.Services["coordinator"].Build; b == nil || b.Dockerfile != "deploy/Dockerfile" || b.Context != ".." {
		t.Errorf("coordinator build %+v, want context .. and deploy/Dockerfile", b)
	}
	if w := cf.Services["worker"].Deploy; w == nil || w.Replicas < 2 {
		t.Error("compose should start more than one worker")
	}
	nats := cf.Services["nats"]
	if want := "nats:" + natsServerVersion(t) + "-alpine"; nats.Image != want {
		t.Errorf("compose nats image %q, want %q", nats.Image, want)
	}
	if !slices.Contains(nats.Command, "--jetstream") {
		t.Error("compose nats runs without JetStream")
	}
	if !slices.Contains(cf.Services["azurite"].Profiles, "azurite") {
		t.Error("azurite should be optional (profile azurite)")
	}
	// The Azurite alias is the host of the store URL the file documents.
	aliases := cf.Services["azurite"].Networks["default"].Aliases
	if !slices.Contains(aliases, "devstoreaccount1.azurite") || !strings.Contains(string(data), "TDB_STORE=http://devstoreaccount1.azurite:10000/") {
		t.Errorf("azurite aliases %v do not match the documented TDB_STORE", aliases)
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users, entry []string
	env := map[string]string{}
	var run strings.Builder
	for _, line := range strings.Split(regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(data), " "), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			users = append(users, f[1])
		case "ENTRYPOINT":
			entry = append(entry, strings.Join(f[1:], " "))
		case "ENV":
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		case "RUN":
			run.WriteString(line + "\n")
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM %v", froms)
	}
	if want := "golang:" + goMinor(t); !strings.HasPrefix(froms[0], want) {
		t.Errorf("builder %s, want %s (go.mod's go directive)", froms[0], want)
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage %s, want distroless/static or scratch", final)
	}
	if len(users) == 0 || users[len(users)-1] == "root" || strings.HasPrefix(users[len(users)-1], "0") {
		t.Errorf("final user %v must not be root", users)
	}
	if env["CGO_ENABLED"] != "0" {
		t.Error("the build must set CGO_ENABLED=0 (a static binary)")
	}
	if !strings.Contains(run.String(), "go build") || !strings.Contains(run.String(), "./cmd/tdb") {
		t.Error("the build does not go build ./cmd/tdb")
	}
	if len(entry) != 1 || entry[0] != `["/tdb"]` {
		t.Errorf("ENTRYPOINT %v, want [\"/tdb\"] (the services pass the subcommand)", entry)
	}
	if _, err := os.Stat("../cmd/tdb/main.go"); err != nil {
		t.Error(err)
	}
}
