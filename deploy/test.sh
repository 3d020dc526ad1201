#!/usr/bin/env bash
# Validates deploy/: strict-decodes the Kubernetes manifests into the API
# types, builds the kustomize overlays, parses the alert rules and the
# Grafana dashboard, and checks the compose file and the Dockerfile against
# the tdb code. A separate Go module, so its dependencies stay out of tdb's.
set -euo pipefail
cd "$(dirname "$0")"
go vet ./...
go test "$@" ./...
