#!/usr/bin/env bash
# The project's test command: vet, lint, and every test with the race
# detector. Needs the kube-apiserver and etcd test binaries (scripts/build-kube.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
echo "== go vet"
go vet ./...
echo "== golangci-lint"
go tool -modfile=tools/lint/go.mod golangci-lint run ./...
echo "== go test -race"
go test -race -count=1 -timeout 45m ./...
