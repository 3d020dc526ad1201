// Package deploy holds no code: it is the Go module of the deployment tests
// (deploy_test.go), which strict-decode the Kubernetes manifests into the
// Kubernetes, KEDA and Prometheus Operator API types, build the kustomize
// overlays, parse the alert rules and the Grafana dashboard, and check that
// flags, environment variables, metric names and JetStream names match the
// tdb code. It is a separate module so that its heavy dependencies stay out
// of the main module; run it with deploy/test.sh.
package deploy
