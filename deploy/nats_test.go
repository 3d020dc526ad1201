package deploy

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestNATSConfig loads the cluster's nats.conf with nats-server's own
// configuration parser (as nats-server --config does at start), for the
// pod nats-1, and checks what it sets up.
func TestNATSConfig(t *testing.T) {
	b := build(t, "k8s/base")
	cm := generated[corev1.ConfigMap](b, "nats-config")
	if cm == nil {
		t.Fatal("no nats-config ConfigMap")
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(cm.Data["nats.conf"]), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAME", "nats-1")
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server rejects nats.conf: %v", err)
	}
	if opts.ServerName != "nats-1" {
		t.Errorf("server_name = %q, want the pod name nats-1", opts.ServerName)
	}
	if !opts.JetStream || opts.StoreDir != "/data" {
		t.Errorf("JetStream %v in %q, want enabled in /data (the persistent volume)", opts.JetStream, opts.StoreDir)
	}
	if opts.Cluster.Name != "tdb" || opts.Cluster.Port != 6222 || len(opts.Routes) != 3 {
		t.Errorf("cluster %q on port %d with %d routes, want tdb on 6222 with 3", opts.Cluster.Name, opts.Cluster.Port, len(opts.Routes))
	}
	if opts.Port != 4222 || opts.HTTPPort != 8222 {
		t.Errorf("client port %d, monitoring port %d; want 4222 and 8222", opts.Port, opts.HTTPPort)
	}
	if opts.JetStreamMaxStore <= 0 {
		t.Error("max_file_store unset: JetStream would size itself from the whole disk")
	}
	for _, path := range kustomizations {
		ss := find[appsv1.StatefulSet](build(t, path), "nats")
		if q := ss.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage(); q.Value() <= opts.JetStreamMaxStore {
			t.Errorf("%s: max_file_store %d does not fit the %s volume", path, opts.JetStreamMaxStore, q)
		}
	}
}

// TestComposeNATSCommand parses the Compose NATS command line with
// nats-server's own flag parser.
func TestComposeNATSCommand(t *testing.T) {
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.UnmarshalStrict(data, &cf); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	noop := func() {}
	opts, err := server.ConfigureOptions(fs, cf.Services["nats"].Command, noop, noop, noop)
	if err != nil {
		t.Fatalf("nats-server rejects %q: %v", cf.Services["nats"].Command, err)
	}
	if !opts.JetStream || opts.StoreDir != "/data" || opts.HTTPPort != 8222 {
		t.Errorf("JetStream %v in %q, monitoring port %d; want JetStream in the /data volume and 8222 for the healthcheck", opts.JetStream, opts.StoreDir, opts.HTTPPort)
	}
	for _, v := range cf.Services["nats"].Volumes {
		if strings.HasSuffix(v, ":"+opts.StoreDir) {
			return
		}
	}
	t.Errorf("no volume on the JetStream store_dir %s", opts.StoreDir)
}
