package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

var promql = parser.NewParser(parser.Options{})

// checkExpr parses a PromQL expression and checks every selector of a tdb_
// metric against the metrics the code exports: the name (with a
// histogram's _bucket/_sum/_count), and the label names it matches on.
func checkExpr(t *testing.T, where, expr string, metrics map[string]metric) {
	t.Helper()
	e, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", where, err, expr)
		return
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || !strings.HasPrefix(vs.Name, "tdb_") {
			return nil
		}
		m, ok := metrics[vs.Name]
		if !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, cut := strings.CutSuffix(vs.Name, suf); cut {
					if hm, found := metrics[base]; found && hm.kind == "Histogram" {
						m, ok = hm, true
						if suf == "_bucket" {
							m.labels = map[string]bool{"le": true}
							for l := range hm.labels {
								m.labels[l] = true
							}
						}
					}
				}
			}
		}
		if !ok {
			t.Errorf("%s: metric %s is not exported by tdb", where, vs.Name)
			return nil
		}
		for _, lm := range vs.LabelMatchers {
			if lm.Name == labels.MetricName {
				continue
			}
			if !m.labels[lm.Name] {
				t.Errorf("%s: %s has no label %q (labels: %v)", where, vs.Name, lm.Name, m.labels)
			}
		}
		return nil
	})
	// by (x) and without (x) on tdb metrics should name their labels too.
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		ae, ok := n.(*parser.AggregateExpr)
		if !ok || ae.Without {
			return nil
		}
		var names []string
		parser.Inspect(ae.Expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && strings.HasPrefix(vs.Name, "tdb_") {
				names = append(names, strings.TrimSuffix(vs.Name, "_bucket"))
			}
			return nil
		})
		for _, g := range ae.Grouping {
			for _, name := range names {
				if m, ok := metrics[name]; ok && g != "le" && !m.labels[g] {
					t.Errorf("%s: groups %s by %q, which it does not have", where, name, g)
				}
			}
		}
		return nil
	})
}

// TestAlertRules parses the PrometheusRule's groups with Prometheus' own
// rule-file parser (as promtool check rules does) and checks the metrics
// they use.
func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile("k8s/base/monitoring.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rule *monitoringv1.PrometheusRule
	for _, doc := range splitDocs(data) {
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := obj.(*monitoringv1.PrometheusRule); ok {
			rule = r
		}
	}
	if rule == nil {
		t.Fatal("monitoring.yaml holds no PrometheusRule")
	}
	groups, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	rgs, errs := rulefmt.Parse(groups, false, model.UTF8Validation, promql, nil)
	for _, err := range errs {
		t.Errorf("rulefmt: %v", err)
	}
	if rgs == nil {
		t.FailNow()
	}
	metrics := exportedMetrics(t)
	var alerts []string
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			checkExpr(t, "alert "+r.Alert, r.Expr, metrics)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s needs a severity label and a summary", r.Alert)
			}
		}
	}
	// The four kinds of trouble each have an alert.
	for _, want := range []string{"TDBShardsStuck", "TDBRedeliveryStorm", "TDBWorkerErrors", "TDBJobFailed"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no alert %s (have %v)", want, alerts)
		}
	}
	// Every tdb metric that signals trouble is watched by some alert.
	used := map[string]bool{}
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			for _, m := range regexp.MustCompile(`tdb_[a-z_]+`).FindAllString(r.Expr, -1) {
				used[m] = true
			}
		}
	}
	for _, m := range []string{"tdb_worker_errors_total", "tdb_coordinator_errors_total", "tdb_worker_redeliveries_total", "tdb_coordinator_jobs", "tdb_coordinator_queue_depth"} {
		if !used[m] {
			t.Errorf("no alert uses %s", m)
		}
	}
}

// dashboard is the part of Grafana's dashboard model the test reads.
type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos struct {
			H, W, X, Y int
		} `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("k8s/base/dashboards/tdb.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatal("tdb.json is not valid JSON")
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) < 6 {
		t.Fatalf("dashboard uid %q title %q with %d panels", d.UID, d.Title, len(d.Panels))
	}
	metrics := exportedMetrics(t)
	ids := map[int]bool{}
	used := map[string]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, "panel "+p.Title, q.Expr, metrics)
			for _, m := range regexp.MustCompile(`tdb_[a-z_]+`).FindAllString(q.Expr, -1) {
				used[strings.TrimSuffix(m, "_bucket")] = true
			}
		}
	}
	// Every exported pipeline metric is on the dashboard.
	for name := range metrics {
		if (strings.HasPrefix(name, "tdb_coordinator_") || strings.HasPrefix(name, "tdb_worker_")) && !used[name] {
			t.Errorf("dashboard shows no panel for %s", name)
		}
	}
}

// TestMainModuleExcludesDeploy: go test ./... in the repository root must
// not see this module (a nested go.mod cuts it off).
func TestMainModuleExcludesDeploy(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	cmd := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}}", "./...")
	cmd.Dir = root
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list in %s: %v\n%s", root, err, stderr.String())
	}
	pkgs := strings.Fields(out.String())
	if !slices.Contains(pkgs, "tdb/cmd/tdb") {
		t.Fatalf("go list ./... in the root did not list tdb/cmd/tdb: %v", pkgs)
	}
	for _, p := range pkgs {
		if strings.HasPrefix(p, "tdb/deploy") {
			t.Errorf("the main module's ./... includes %s", p)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "deploy", "go.mod")); err != nil {
		t.Error(err)
	}
}
