#!/bin/sh
# Renders Istio's ztunnel chart, at the istio.io/istio version this module pins, with
# deploy/chart/values.yaml; extra arguments go to `helm template` (e.g. --set logAsJson=true).
# Helm runs from the Go module proxy; it is not a dependency of this module.
set -eu
cd "$(dirname "$0")/../.."
# On a fresh machine the module may not be in the cache yet: `go list -m` then names no
# directory, so download it first (a no-op when it is there).
go mod download istio.io/istio
chart="$(go list -m -f '{{.Dir}}' istio.io/istio)/manifests/charts/ztunnel"
exec go run helm.sh/helm/v3/cmd/helm@v3.22.0 template ztunnel "$chart" \
  --namespace istio-system -f deploy/chart/values.yaml "$@"
