package deploy

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Namespace is where every overlay puts tdb; the KEDA endpoint names it.
const namespace = "tdb"

// kustomizations are the folders a user may build; the overlays are the
// ones a user applies.
var (
	overlays       = []string{"k8s/overlays/local", "k8s/overlays/azure"}
	kustomizations = append([]string{"k8s/base"}, overlays...)
)

// newObject returns an empty typed object for an apiVersion and kind, or
// nil for a kind the manifests are not expected to hold.
func newObject(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/Service":
		return &corev1.Service{}
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}
	case "v1/Secret":
		return &corev1.Secret{}
	case "v1/PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{}
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "keda.sh/v1alpha1/ScaledObject":
		return &kedav1alpha1.ScaledObject{}
	case "monitoring.coreos.com/v1/PodMonitor":
		return &monitoringv1.PodMonitor{}
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}
	case "monitoring.coreos.com/v1/PrometheusRule":
		return &monitoringv1.PrometheusRule{}
	}
	return nil
}

// decodeStrict decodes one YAML document into its API type, rejecting
// unknown and duplicate fields.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	obj := newObject(tm.APIVersion, tm.Kind)
	if obj == nil {
		return nil, fmt.Errorf("unexpected kind %s %s", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// splitDocs splits a multi-document YAML file.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// TestManifestFilesDecodeStrictly decodes every manifest and patch file as
// written (before kustomize), so a misspelt field fails here by file name.
func TestManifestFilesDecodeStrictly(t *testing.T) {
	files, err := filepath.Glob("k8s/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("k8s/overlays/*/*.yaml")
	files = append(files, more...)
	n := 0
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(data) {
			if _, err := decodeStrict(doc); err != nil {
				t.Errorf("%s document %d: %v", f, i+1, err)
			}
			n++
		}
	}
	if n < 15 {
		t.Fatalf("decoded only %d documents from %d files; the manifests are missing", n, len(files))
	}
}

// built is one kustomization's output, decoded.
type built struct {
	path    string
	objects []any
}

func build(t *testing.T, path string) built {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), path)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", path, err)
	}
	out, err := rm.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	b := built{path: path}
	for i, doc := range splitDocs(out) {
		obj, err := decodeStrict(doc)
		if err != nil {
			t.Fatalf("kustomize build %s: resource %d: %v", path, i+1, err)
		}
		b.objects = append(b.objects, obj)
	}
	return b
}

func find[T any](b built, name string) *T {
	for _, o := range b.objects {
		if v, ok := o.(*T); ok && objectMeta(o).Name == name {
			return v
		}
	}
	return nil
}

func all[T any](b built) []*T {
	var out []*T
	for _, o := range b.objects {
		if v, ok := o.(*T); ok {
			out = append(out, v)
		}
	}
	return out
}

func objectMeta(o any) *metav1.ObjectMeta {
	switch v := o.(type) {
	case *corev1.Namespace:
		return &v.ObjectMeta
	case *corev1.Service:
		return &v.ObjectMeta
	case *corev1.ConfigMap:
		return &v.ObjectMeta
	case *corev1.Secret:
		return &v.ObjectMeta
	case *corev1.PersistentVolumeClaim:
		return &v.ObjectMeta
	case *appsv1.Deployment:
		return &v.ObjectMeta
	case *appsv1.StatefulSet:
		return &v.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		return &v.ObjectMeta
	case *kedav1alpha1.ScaledObject:
		return &v.ObjectMeta
	case *monitoringv1.PodMonitor:
		return &v.ObjectMeta
	case *monitoringv1.ServiceMonitor:
		return &v.ObjectMeta
	case *monitoringv1.PrometheusRule:
		return &v.ObjectMeta
	}
	panic(fmt.Sprintf("no metadata for %T", o))
}

// generated finds a generated ConfigMap or Secret by its name before the
// hash suffix.
func generated[T corev1.ConfigMap | corev1.Secret](b built, base string) *T {
	for _, o := range b.objects {
		if v, ok := o.(*T); ok {
			n := objectMeta(o).Name
			if n == base || strings.HasPrefix(n, base+"-") && len(n) == len(base)+11 {
				return v
			}
		}
	}
	return nil
}

// workload is a Deployment or StatefulSet's pod template with its name.
type workload struct {
	kind, name string
	replicas   int32
	template   corev1.PodTemplateSpec
}

func workloads(b built) []workload {
	var out []workload
	for _, d := range all[appsv1.Deployment](b) {
		out = append(out, workload{"Deployment", d.Name, ptrOr(d.Spec.Replicas, 1), d.Spec.Template})
	}
	for _, s := range all[appsv1.StatefulSet](b) {
		out = append(out, workload{"StatefulSet", s.Name, ptrOr(s.Spec.Replicas, 1), s.Spec.Template})
	}
	return out
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func TestKustomizationsBuild(t *testing.T) {
	for _, path := range kustomizations {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b := build(t, path)
			checkBuilt(t, b)
		})
	}
}

// checkBuilt checks what every kustomization must hold.
func checkBuilt(t *testing.T, b built) {
	for _, o := range b.objects {
		m := objectMeta(o)
		if _, isNS := o.(*corev1.Namespace); !isNS && m.Namespace != namespace {
			t.Errorf("%T %s is in namespace %q, want %q", o, m.Name, m.Namespace, namespace)
		}
		if m.Labels["app.kubernetes.io/part-of"] != "tdb" {
			t.Errorf("%T %s lacks the label app.kubernetes.io/part-of=tdb", o, m.Name)
		}
	}
	for _, name := range []string{"tdb-coordinator", "tdb-worker", "tdb-query", "tdb-viewer"} {
		if find[appsv1.Deployment](b, name) == nil {
			t.Errorf("no Deployment %s", name)
		}
	}
	if d := find[appsv1.Deployment](b, "tdb-coordinator"); d != nil && ptrOr(d.Spec.Replicas, 1) != 2 {
		t.Errorf("coordinator replicas = %d, want 2", ptrOr(d.Spec.Replicas, 1))
	}
	for _, name := range []string{"nats", "nats-headless", "tdb-query", "tdb-viewer"} {
		if find[corev1.Service](b, name) == nil {
			t.Errorf("no Service %s", name)
		}
	}
	checkNATS(t, b)
	checkSelectorsAndPorts(t, b)
	checkContainers(t, b)
	checkScaledObject(t, b)
	checkMonitors(t, b)
	if generated[corev1.ConfigMap](b, "tdb-grafana-dashboard") == nil {
		t.Error("no tdb-grafana-dashboard ConfigMap")
	}
}

func checkNATS(t *testing.T, b built) {
	ss := find[appsv1.StatefulSet](b, "nats")
	if ss == nil {
		t.Fatal("no StatefulSet nats")
	}
	n := ptrOr(ss.Spec.Replicas, 1)
	if n != 3 {
		t.Errorf("NATS replicas = %d, want 3", n)
	}
	if len(ss.Spec.VolumeClaimTemplates) != 1 || ss.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Fatalf("NATS needs one volume claim template named data, got %d", len(ss.Spec.VolumeClaimTemplates))
	}
	if q := ss.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage(); q.IsZero() {
		t.Error("NATS volume claim requests no storage")
	}
	headless := find[corev1.Service](b, ss.Spec.ServiceName)
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("NATS serviceName %q is not a headless Service", ss.Spec.ServiceName)
	}
	c := ss.Spec.Template.Spec.Containers[0]
	if want := "nats:" + natsServerVersion(t) + "-alpine"; c.Image != want {
		t.Errorf("NATS image %q, want %q (the nats-server version of the main go.mod)", c.Image, want)
	}
	// The configuration: JetStream on the persistent volume, a cluster
	// route to every replica through the headless service.
	cm := configMapForVolume(t, b, ss.Spec.Template.Spec, "config")
	conf := cm.Data["nats.conf"]
	if conf == "" {
		t.Fatalf("ConfigMap %s has no nats.conf", cm.Name)
	}
	var dataMount string
	for _, m := range c.VolumeMounts {
		if m.Name == "data" {
			dataMount = m.MountPath
		}
	}
	if !regexp.MustCompile(`(?s)jetstream\s*\{[^}]*store_dir:\s*` + regexp.QuoteMeta(dataMount) + `\s`).MatchString(conf) {
		t.Errorf("nats.conf does not put JetStream's store_dir on the data volume (%s):\n%s", dataMount, conf)
	}
	for i := range n {
		route := fmt.Sprintf("nats://%s-%d.%s:6222", ss.Name, i, ss.Spec.ServiceName)
		if !strings.Contains(conf, route) {
			t.Errorf("nats.conf has no cluster route %s", route)
		}
	}
	if !strings.Contains(conf, "server_name: $POD_NAME") || !hasFieldEnv(c, "POD_NAME", "metadata.name") {
		t.Error("NATS servers must be named after their pods (server_name: $POD_NAME from metadata.name): KEDA finds the stream leader by that name")
	}
	if !strings.Contains(conf, "\ncluster {") {
		t.Error("nats.conf has no cluster block")
	}
	// The coordinator creates the stream and bucket with as many replicas
	// as there are servers.
	coord := find[appsv1.Deployment](b, "tdb-coordinator")
	if coord != nil {
		if v := flagValue(coord.Spec.Template.Spec.Containers[0].Args, "replicas"); v != strconv.Itoa(int(n)) {
			t.Errorf("coordinator --replicas=%s, want %d (the NATS servers)", v, n)
		}
	}
}

func hasFieldEnv(c corev1.Container, name, field string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == field {
			return true
		}
	}
	return false
}

func configMapForVolume(t *testing.T, b built, spec corev1.PodSpec, volume string) *corev1.ConfigMap {
	t.Helper()
	for _, v := range spec.Volumes {
		if v.Name == volume && v.ConfigMap != nil {
			if cm := find[corev1.ConfigMap](b, v.ConfigMap.Name); cm != nil {
				return cm
			}
			t.Fatalf("volume %s names ConfigMap %s, which the build lacks", volume, v.ConfigMap.Name)
		}
	}
	t.Fatalf("no ConfigMap volume %s", volume)
	return nil
}

// checkSelectorsAndPorts: every Service selects pods and targets a named
// port they have; every probe uses a port of its container.
func checkSelectorsAndPorts(t *testing.T, b built) {
	for _, s := range all[corev1.Service](b) {
		var matched []workload
		for _, w := range workloads(b) {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.template.Labels)) {
				matched = append(matched, w)
			}
		}
		if len(matched) == 0 {
			t.Errorf("Service %s selects no pods", s.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.StrVal == "" {
				continue
			}
			if !hasPort(matched[0].template.Spec, p.TargetPort.StrVal) {
				t.Errorf("Service %s targets port %q that %s %s lacks", s.Name, p.TargetPort.StrVal, matched[0].kind, matched[0].name)
			}
		}
	}
	for _, w := range workloads(b) {
		sel := labels.Set(w.template.Labels)
		if len(sel) == 0 {
			t.Errorf("%s %s: pod template has no labels", w.kind, w.name)
		}
		for _, c := range w.template.Spec.Containers {
			for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				if p == nil {
					continue
				}
				var port string
				switch {
				case p.HTTPGet != nil:
					port = p.HTTPGet.Port.String()
				case p.TCPSocket != nil:
					port = p.TCPSocket.Port.String()
				}
				if port != "" && !containerHasPort(c, port) {
					t.Errorf("%s %s container %s: probe port %s is not one of its ports", w.kind, w.name, c.Name, port)
				}
			}
		}
	}
}

func hasPort(spec corev1.PodSpec, name string) bool {
	for _, c := range spec.Containers {
		if containerHasPort(c, name) {
			return true
		}
	}
	return false
}

func containerHasPort(c corev1.Container, nameOrNumber string) bool {
	for _, p := range c.Ports {
		if p.Name == nameOrNumber || strconv.Itoa(int(p.ContainerPort)) == nameOrNumber {
			return true
		}
	}
	return false
}

// checkContainers: the tdb containers run the one image as non-root, with
// subcommands and flags cmd/tdb defines, environment from the shared
// ConfigMap, metrics ports that match --metrics-addr and listen addresses
// that are not loopback.
func checkContainers(t *testing.T, b built) {
	cmds := cliCommands(t)
	cfg := generated[corev1.ConfigMap](b, "tdb-config")
	if cfg == nil {
		t.Fatal("no tdb-config ConfigMap")
	}
	for key := range cfg.Data {
		checkEnvVarKnown(t, key)
	}
	images := map[string]bool{}
	for _, w := range workloads(b) {
		if !strings.HasPrefix(w.name, "tdb-") {
			continue
		}
		spec := w.template.Spec
		if sc := spec.SecurityContext; sc == nil || !ptrOr(sc.RunAsNonRoot, false) || ptrOr(sc.RunAsUser, 0) == 0 {
			t.Errorf("%s: pods must run as a non-root user", w.name)
		}
		c := spec.Containers[0]
		images[c.Image] = true
		if c.SecurityContext == nil || !ptrOr(c.SecurityContext.ReadOnlyRootFilesystem, false) {
			t.Errorf("%s: root filesystem should be read-only", w.name)
		}
		if len(c.Command) > 0 {
			t.Errorf("%s: command %q overrides the image's /tdb entrypoint", w.name, c.Command)
		}
		checkArgs(t, cmds, w.name, c.Args)
		refs := map[string]bool{}
		for _, e := range c.EnvFrom {
			switch {
			case e.ConfigMapRef != nil:
				if find[corev1.ConfigMap](b, e.ConfigMapRef.Name) == nil {
					t.Errorf("%s: envFrom ConfigMap %s is not in the build", w.name, e.ConfigMapRef.Name)
				}
				refs[e.ConfigMapRef.Name] = true
			case e.SecretRef != nil:
				if find[corev1.Secret](b, e.SecretRef.Name) == nil && !ptrOr(e.SecretRef.Optional, false) {
					// Created by hand (azure overlay): fine, but only under
					// the documented name.
					if e.SecretRef.Name != "tdb-store-credentials" {
						t.Errorf("%s: envFrom Secret %s is neither built nor the documented tdb-store-credentials", w.name, e.SecretRef.Name)
					}
				}
			}
		}
		if !refs[cfg.Name] {
			t.Errorf("%s: does not take its environment from %s", w.name, cfg.Name)
		}
		for _, e := range c.Env {
			checkEnvVarKnown(t, e.Name)
		}
		// $(VAR) references in args must be defined for the container.
		for _, a := range c.Args {
			for _, m := range regexp.MustCompile(`\$\(([A-Z_]+)\)`).FindAllStringSubmatch(a, -1) {
				if _, ok := cfg.Data[m[1]]; !ok && !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == m[1] }) {
					if b.path != "k8s/base" || m[1] != "TDB_STORE" {
						t.Errorf("%s: argument %q uses $(%s), which the container's environment lacks", w.name, a, m[1])
					}
				}
			}
		}
		if v := flagValue(c.Args, "metrics-addr"); v != "" {
			if !containerHasPort(c, portOf(v)) {
				t.Errorf("%s: --metrics-addr=%s but no container port %s", w.name, v, portOf(v))
			}
		}
		if v := flagValue(c.Args, "addr"); v != "" {
			host, _, _ := strings.Cut(v, ":")
			if host == "127.0.0.1" || host == "localhost" || !containerHasPort(c, portOf(v)) {
				t.Errorf("%s: --addr=%s must listen on all interfaces on a container port", w.name, v)
			}
		}
	}
	if len(images) != 1 {
		t.Errorf("tdb services use %d images %v, want one", len(images), images)
	}
}

func portOf(addr string) string {
	i := strings.LastIndex(addr, ":")
	return addr[i+1:]
}

// flagValue returns the value of --name=value or --name value in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func checkScaledObject(t *testing.T, b built) {
	so := find[kedav1alpha1.ScaledObject](b, "tdb-worker")
	if so == nil {
		t.Fatal("no ScaledObject tdb-worker")
	}
	if so.Spec.ScaleTargetRef == nil || find[appsv1.Deployment](b, so.Spec.ScaleTargetRef.Name) == nil || so.Spec.ScaleTargetRef.Name != "tdb-worker" {
		t.Errorf("ScaledObject does not target the worker Deployment: %+v", so.Spec.ScaleTargetRef)
	}
	if lo, hi := ptrOr(so.Spec.MinReplicaCount, 0), ptrOr(so.Spec.MaxReplicaCount, 100); lo > hi || hi < 2 {
		t.Errorf("ScaledObject replicas %d..%d cannot scale out", lo, hi)
	}
	stream, consumer := natsNames(t)
	if len(so.Spec.Triggers) != 1 {
		t.Fatalf("want one trigger, got %d", len(so.Spec.Triggers))
	}
	tr := so.Spec.Triggers[0]
	if tr.Type != "nats-jetstream" {
		t.Errorf("trigger type %q, want nats-jetstream", tr.Type)
	}
	md := tr.Metadata
	if md["stream"] != stream || md["consumer"] != consumer {
		t.Errorf("trigger watches %s/%s; the code's stream and consumer are %s/%s", md["stream"], md["consumer"], stream, consumer)
	}
	if md["account"] != "$G" {
		t.Errorf("account %q: tdb uses NATS' global account $G", md["account"])
	}
	if n, err := strconv.Atoi(md["lagThreshold"]); err != nil || n < 1 {
		t.Errorf("lagThreshold %q is not a positive integer", md["lagThreshold"])
	}
	ss := find[appsv1.StatefulSet](b, "nats")
	want := fmt.Sprintf("%s.%s.svc.cluster.local:8222", ss.Spec.ServiceName, objectMeta(ss).Namespace)
	if md["natsServerMonitoringEndpoint"] != want {
		t.Errorf("natsServerMonitoringEndpoint %q, want %q (the headless service: KEDA prefixes the leader's server name)", md["natsServerMonitoringEndpoint"], want)
	}
	if !hasPort(ss.Spec.Template.Spec, "8222") {
		t.Error("NATS does not expose its monitoring port 8222")
	}
}

func checkMonitors(t *testing.T, b built) {
	pms := all[monitoringv1.PodMonitor](b)
	scraped := map[string]bool{}
	for _, pm := range pms {
		sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
		if err != nil {
			t.Fatalf("PodMonitor %s: %v", pm.Name, err)
		}
		n := 0
		for _, w := range workloads(b) {
			if !sel.Matches(labels.Set(w.template.Labels)) {
				continue
			}
			n++
			for _, ep := range pm.Spec.PodMetricsEndpoints {
				if ep.Port == nil || !hasPort(w.template.Spec, *ep.Port) {
					t.Errorf("PodMonitor %s: %s has no port %v", pm.Name, w.name, ep.Port)
				}
			}
			scraped[w.name] = true
		}
		if n == 0 {
			t.Errorf("PodMonitor %s selects no pods", pm.Name)
		}
	}
	for _, sm := range all[monitoringv1.ServiceMonitor](b) {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range all[corev1.Service](b) {
			if !sel.Matches(labels.Set(s.Labels)) {
				continue
			}
			for _, ep := range sm.Spec.Endpoints {
				if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
					t.Errorf("ServiceMonitor %s: Service %s has no port %q", sm.Name, s.Name, ep.Port)
				}
			}
			for _, w := range workloads(b) {
				if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.template.Labels)) {
					scraped[w.name] = true
				}
			}
		}
	}
	for _, name := range []string{"tdb-coordinator", "tdb-worker", "tdb-query", "tdb-viewer", "nats"} {
		if !scraped[name] {
			t.Errorf("nothing scrapes %s", name)
		}
	}
	if len(all[monitoringv1.PrometheusRule](b)) == 0 {
		t.Error("no PrometheusRule")
	}
}

// TestOverlayStores: every overlay names a store that all pods share (not a
// pod-local folder), and the local overlay's Azurite credentials match it.
func TestOverlayStores(t *testing.T) {
	for _, path := range overlays {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b := build(t, path)
			cfg := generated[corev1.ConfigMap](b, "tdb-config")
			raw := cfg.Data["TDB_STORE"]
			u, err := url.Parse(raw)
			if err != nil || !slices.Contains([]string{"azblob", "http", "https"}, u.Scheme) {
				t.Fatalf("TDB_STORE=%q: want an Azure Blob URL every pod can reach", raw)
			}
			account, _, _ := strings.Cut(u.Hostname(), ".")
			if u.Scheme != "azblob" && net4or6(u.Hostname()) {
				t.Errorf("TDB_STORE=%q: an IP is pod-local or unstable; name the account in the host", raw)
			}
			switch filepath.Base(path) {
			case "local":
				sec := generated[corev1.Secret](b, "tdb-store-credentials")
				if sec == nil {
					t.Fatal("local overlay generates no tdb-store-credentials")
				}
				cs := secretValue(sec, "AZURE_STORAGE_CONNECTION_STRING")
				fields := map[string]string{}
				for _, kv := range strings.Split(strings.TrimSuffix(cs, ";"), ";") {
					k, v, _ := strings.Cut(kv, "=")
					fields[k] = v
				}
				ep, err := url.Parse(fields["BlobEndpoint"])
				if err != nil || ep.Host != u.Host || fields["AccountName"] != account {
					t.Errorf("connection string (account %q, endpoint %q) does not match TDB_STORE %q", fields["AccountName"], fields["BlobEndpoint"], raw)
				}
				// Azurite's pod hostname.subdomain is the URL's host.
				az := find[appsv1.Deployment](b, "azurite")
				if az == nil {
					t.Fatal("local overlay has no azurite")
				}
				ps := az.Spec.Template.Spec
				if got := ps.Hostname + "." + ps.Subdomain; got != u.Hostname() || find[corev1.Service](b, ps.Subdomain) == nil {
					t.Errorf("azurite pod answers as %s (headless service %s), TDB_STORE names %s", got, ps.Subdomain, u.Hostname())
				}
			case "azure":
				if u.Scheme != "azblob" && !strings.HasSuffix(u.Hostname(), ".blob.core.windows.net") {
					t.Errorf("azure overlay TDB_STORE=%q is not an Azure Blob account URL", raw)
				}
				for _, d := range all[appsv1.Deployment](b) {
					for _, e := range d.Spec.Template.Spec.Containers[0].EnvFrom {
						if e.SecretRef != nil && ptrOr(e.SecretRef.Optional, false) {
							t.Errorf("%s: the store credentials must be required on Azure", d.Name)
						}
					}
				}
				ss := find[appsv1.StatefulSet](b, "nats")
				if sc := ptrOr(ss.Spec.VolumeClaimTemplates[0].Spec.StorageClassName, ""); sc == "" {
					t.Error("azure overlay: NATS volumes name no storage class")
				}
			}
		})
	}
}

func net4or6(host string) bool {
	return regexp.MustCompile(`^[0-9.]+$|:`).MatchString(host)
}

func secretValue(s *corev1.Secret, key string) string {
	if v, ok := s.StringData[key]; ok {
		return v
	}
	return string(bytes.TrimSpace(s.Data[key]))
}
