#!/usr/bin/env bash
# The project's test command: vet, lint, and every test with the race
# detector. Builds the kube-apiserver and etcd test binaries first when
# they are missing (scripts/build-kube.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
echo "== test binaries (kube-apiserver, etcd)"
scripts/build-kube.sh
echo "== go vet"
go vet ./...
echo "== golangci-lint"
go tool -modfile=tools/lint/go.mod golangci-lint run ./...
echo "== go test -race"
go test -race -count=1 -timeout 45m ./...
